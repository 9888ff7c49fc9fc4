//! Parallel gzip as a multi-member stream: every fixed-size chunk of the input
//! is a gzip member of its own, compressed by libdeflate on a worker.
//!
//! A single-member stream (pigz style) needs a streaming deflater that takes
//! a dictionary and a sync flush; libdeflate has neither, and it is roughly
//! twice as fast as zlib for a smaller output, so members win. RFC 1952
//! allows any number of members and every reader we care about reads them
//! all: Go's compress/gzip (containerd, docker, skopeo, umoci), Python's
//! gzip, GNU gzip, pigz, zlib's `gzread`. Tests in `tests/e2e/pack_readers.rs`
//! check those that run here.
//!
//! Member boundaries sit at multiples of [`CHUNK_SIZE`] of the uncompressed
//! stream and every header is the same 10 bytes, so the output depends only
//! on the data, the level and libdeflate's version, never on the number of
//! workers.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use libdeflater::{CompressionLvl, Compressor as Deflater};

use super::Compressor;

/// Uncompressed bytes per member. Part of the output format: changing it
/// changes every digest. Larger members gain little (each starts with an
/// empty window: 4 MiB members are 0.15% smaller at level 6) and cost memory
/// per worker.
pub(crate) const CHUNK_SIZE: usize = 1024 * 1024;

/// mtime 0, no name, no extra flags, OS 255 ("unknown"): the same everywhere.
pub(crate) const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

struct Job {
    data: Vec<u8>,
    reply: SyncSender<io::Result<Vec<u8>>>,
}

pub(crate) struct MultiMemberGzEncoder<W: Write + Send + 'static> {
    buf: Vec<u8>,
    members: u64,
    jobs: Option<SyncSender<Job>>,
    order: Option<SyncSender<Receiver<io::Result<Vec<u8>>>>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> MultiMemberGzEncoder<W> {
    /// `level` is libdeflate's, 1 to 12; the caller has checked it.
    pub(crate) fn new(out: W, level: i32, threads: usize) -> io::Result<Self> {
        let level = CompressionLvl::new(level).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gzip level {level}: {e:?}"),
            )
        })?;
        let threads = threads.max(1);
        // Bounded queues keep at most ~3 chunks per worker in memory.
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads);
        let (order_tx, order_rx) = mpsc::sync_channel(2 * threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|i| {
                let job_rx = Arc::clone(&job_rx);
                std::thread::Builder::new()
                    .name(format!("gzip-{i}"))
                    .spawn(move || worker(&job_rx, level))
            })
            .collect::<io::Result<Vec<_>>>()?;
        let writer = std::thread::Builder::new()
            .name("gzip-writer".into())
            .spawn(move || write_in_order(out, &order_rx))?;
        Ok(MultiMemberGzEncoder {
            buf: Vec::with_capacity(CHUNK_SIZE),
            members: 0,
            jobs: Some(job_tx),
            order: Some(order_tx),
            workers,
            writer: Some(writer),
        })
    }

    fn dispatch(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_SIZE));
        let (reply, result) = mpsc::sync_channel(1);
        let sent = self
            .order
            .as_ref()
            .is_some_and(|order| order.send(result).is_ok())
            && self
                .jobs
                .as_ref()
                .is_some_and(|jobs| jobs.send(Job { data, reply }).is_ok());
        if sent {
            self.members += 1;
            Ok(())
        } else {
            // The writer or the workers stopped: report their error.
            Err(self
                .shutdown()
                .err()
                .unwrap_or_else(|| io::Error::other("gzip pipeline stopped")))
        }
    }

    /// Closes the queues, joins every thread and returns the writer's result.
    fn shutdown(&mut self) -> io::Result<W> {
        self.jobs.take();
        self.order.take();
        let mut worker_panicked = false;
        for worker in self.workers.drain(..) {
            worker_panicked |= worker.join().is_err();
        }
        let out = match self.writer.take() {
            Some(writer) => writer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("gzip writer thread panicked")))?,
            None => return Err(io::Error::other("gzip pipeline already shut down")),
        };
        if worker_panicked {
            return Err(io::Error::other("gzip worker thread panicked"));
        }
        Ok(out)
    }
}

impl<W: Write + Send + 'static> Write for MultiMemberGzEncoder<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let written = data.len();
        while !data.is_empty() {
            let room = CHUNK_SIZE - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == CHUNK_SIZE {
                self.dispatch()?;
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Compressor<W> for MultiMemberGzEncoder<W> {
    fn finish(mut self: Box<Self>) -> io::Result<W> {
        // Empty input still needs one (empty) member to be a gzip file.
        if !self.buf.is_empty() || self.members == 0 {
            self.dispatch()?;
        }
        self.shutdown()
    }
}

impl<W: Write + Send + 'static> Drop for MultiMemberGzEncoder<W> {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.shutdown();
        }
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, level: CompressionLvl) {
    // libdeflate keeps no state between calls, only scratch memory: reusing
    // one compressor gives the same bytes as a fresh one per chunk.
    let mut deflater = Deflater::new(level);
    // Zeroed once; each member is then copied out at its compressed size,
    // which costs less than zeroing a bound-sized buffer per chunk.
    let mut scratch = vec![0u8; deflater.deflate_compress_bound(CHUNK_SIZE)];
    loop {
        // The lock is held only while waiting for the next job.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = gzip_member(&mut deflater, &mut scratch, &job.data);
        // The writer may have gone away after an error; nothing to do then.
        let _ = job.reply.send(result);
    }
}

/// One complete member: our fixed header, raw deflate, CRC-32 and length.
/// `scratch` holds at least `deflate_compress_bound(data.len())` bytes.
fn gzip_member(deflater: &mut Deflater, scratch: &mut [u8], data: &[u8]) -> io::Result<Vec<u8>> {
    let n = deflater
        .deflate_compress(data, scratch)
        .map_err(|e| io::Error::other(format!("libdeflate: {e}")))?;
    let mut out = Vec::with_capacity(GZIP_HEADER.len() + n + 8);
    out.extend_from_slice(&GZIP_HEADER);
    out.extend_from_slice(&scratch[..n]);
    out.extend_from_slice(&libdeflater::crc32(data).to_le_bytes());
    // ISIZE is the length mod 2^32; a chunk is far below that.
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(out)
}

fn write_in_order<W: Write>(
    mut out: W,
    order: &Receiver<Receiver<io::Result<Vec<u8>>>>,
) -> io::Result<W> {
    // Receivers arrive in chunk order; each yields once its worker is done.
    for result in order.iter() {
        let member = result
            .recv()
            .map_err(|_| io::Error::other("gzip worker stopped"))??;
        out.write_all(&member)?;
    }
    out.flush()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8], level: i32, threads: usize) -> Vec<u8> {
        let mut enc = Box::new(MultiMemberGzEncoder::new(Vec::new(), level, threads).unwrap());
        // Odd write sizes cross chunk boundaries.
        for piece in data.chunks(70_001) {
            enc.write_all(piece).unwrap();
        }
        enc.finish().unwrap()
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x1234_5678u32;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                // Half text-like repetition, half noise.
                if (i / 5000) % 2 == 0 {
                    b"corral packs layers "[i % 20]
                } else {
                    state as u8
                }
            })
            .collect()
    }

    /// Offsets of the members, found by decoding one member at a time.
    fn member_sizes(gz: &[u8]) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut rest = gz;
        while !rest.is_empty() {
            assert_eq!(&rest[..10], &GZIP_HEADER, "member {} header", sizes.len());
            let mut dec = flate2::bufread::GzDecoder::new(rest);
            let mut out = Vec::new();
            dec.read_to_end(&mut out).unwrap();
            sizes.push(out.len());
            rest = dec.into_inner();
        }
        sizes
    }

    #[test]
    fn members_are_cut_at_fixed_offsets_and_round_trip() {
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE + 12345,
        ] {
            let data = sample(len);
            let gz = gzip(&data, 6, 3);
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "len {len}");

            let mut expected: Vec<usize> = data.chunks(CHUNK_SIZE).map(<[u8]>::len).collect();
            if expected.is_empty() {
                expected.push(0);
            }
            assert_eq!(member_sizes(&gz), expected, "len {len}");
        }
    }

    #[test]
    fn output_does_not_depend_on_threads() {
        let data = sample(5 * CHUNK_SIZE / 2);
        assert_eq!(gzip(&data, 6, 1), gzip(&data, 6, 4));
        // Real machine code over many chunks, where a compressor that kept
        // state from its previous chunk would show it.
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let exe = &exe[..exe.len().min(12 * CHUNK_SIZE)];
        assert_eq!(gzip(exe, 6, 1), gzip(exe, 6, 3));
    }

    #[test]
    fn ratio_stays_close_to_one_serial_member() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let exe = &exe[..exe.len().min(8 * CHUNK_SIZE)];
        let members = gzip(exe, 6, 2).len();
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        serial.write_all(exe).unwrap();
        let serial = serial.finish().unwrap().len();
        // libdeflate's better parsing more than makes up for the lost windows.
        assert!(members * 100 < serial * 101, "{members} vs {serial}");
    }

    #[test]
    fn level_out_of_libdeflate_range_is_an_error() {
        let err = MultiMemberGzEncoder::new(Vec::new(), 13, 1)
            .err()
            .expect("level 13 refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
