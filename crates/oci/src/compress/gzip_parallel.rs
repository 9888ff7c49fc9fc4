//! pigz-style parallel gzip: one gzip member, built from independently
//! deflated chunks.
//!
//! The stream is cut into fixed-size chunks. Each is raw-deflated on a worker
//! with the previous chunk's last 32 KiB as dictionary (so matches may reach
//! back across the cut and the ratio stays close to serial gzip) and ended
//! with a sync flush, which byte-aligns it; the last chunk is finished instead.
//! Concatenated in order the chunks form one valid deflate stream. CRC-32s
//! of the chunks are combined. The output depends only on the data, the
//! level and the chunk size, not on the number of workers.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress, Status};

use super::Compressor;

/// Uncompressed bytes per chunk. Part of the output format: changing it
/// changes every digest.
pub(crate) const CHUNK_SIZE: usize = 1024 * 1024;
/// Deflate's window: the most a match can reach back.
const DICT_SIZE: usize = 32 * 1024;

/// mtime 0, no name, no extra flags, OS 255 ("unknown"): the same everywhere.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

struct Job {
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Deflated>>,
}

struct Deflated {
    data: Vec<u8>,
    crc: crc32fast::Hasher,
    input_len: u64,
}

pub(crate) struct ParallelGzEncoder<W: Write + Send + 'static> {
    buf: Vec<u8>,
    dict: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    order: Option<SyncSender<Receiver<io::Result<Deflated>>>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> ParallelGzEncoder<W> {
    pub(crate) fn new(out: W, level: u32, threads: usize) -> Self {
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
                    .expect("spawning a gzip worker thread")
            })
            .collect();
        let writer = std::thread::Builder::new()
            .name("gzip-writer".into())
            .spawn(move || write_in_order(out, &order_rx))
            .expect("spawning the gzip writer thread");
        ParallelGzEncoder {
            buf: Vec::with_capacity(CHUNK_SIZE),
            dict: Vec::new(),
            jobs: Some(job_tx),
            order: Some(order_tx),
            workers,
            writer: Some(writer),
        }
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_SIZE));
        let tail = data.len().saturating_sub(DICT_SIZE);
        let next_dict = data[tail..].to_vec();
        let dict = std::mem::replace(&mut self.dict, next_dict);
        let (reply, result) = mpsc::sync_channel(1);
        let sent = self
            .order
            .as_ref()
            .is_some_and(|order| order.send(result).is_ok())
            && self.jobs.as_ref().is_some_and(|jobs| {
                jobs.send(Job {
                    data,
                    dict,
                    last,
                    reply,
                })
                .is_ok()
            });
        if sent {
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

impl<W: Write + Send + 'static> Write for ParallelGzEncoder<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let written = data.len();
        while !data.is_empty() {
            let room = CHUNK_SIZE - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == CHUNK_SIZE {
                self.dispatch(false)?;
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Compressor<W> for ParallelGzEncoder<W> {
    fn finish(mut self: Box<Self>) -> io::Result<W> {
        self.dispatch(true)?;
        self.shutdown()
    }
}

impl<W: Write + Send + 'static> Drop for ParallelGzEncoder<W> {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.shutdown();
        }
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, level: u32) {
    loop {
        // The lock is held only while waiting for the next job.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = deflate_chunk(level, &job.data, &job.dict, job.last).map(|data| {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&job.data);
            Deflated {
                data,
                crc,
                input_len: job.data.len() as u64,
            }
        });
        // The writer may have gone away after an error; nothing to do then.
        let _ = job.reply.send(result);
    }
}

/// Deflates one chunk with a fresh compressor: a reused one (`reset()`) keeps
/// state that makes zlib-rs's output depend on which chunk the worker
/// handled before, and so on the thread count.
fn deflate_chunk(level: u32, data: &[u8], dict: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut deflate = Compress::new(flate2::Compression::new(level), false);
    if !dict.is_empty() {
        deflate.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let before = deflate.total_in();
        let status = deflate
            .compress_vec(input, &mut out, flush)
            .map_err(io::Error::other)?;
        input = &input[(deflate.total_in() - before) as usize..];
        let output_full = out.len() == out.capacity();
        match status {
            Status::StreamEnd => break,
            _ if !last && input.is_empty() && !output_full => break,
            _ => {}
        }
    }
    Ok(out)
}

fn write_in_order<W: Write>(
    mut out: W,
    order: &Receiver<Receiver<io::Result<Deflated>>>,
) -> io::Result<W> {
    out.write_all(&GZIP_HEADER)?;
    let mut crc = crc32fast::Hasher::new();
    let mut total: u64 = 0;
    // Receivers arrive in chunk order; each yields once its worker is done.
    for result in order.iter() {
        let deflated = result
            .recv()
            .map_err(|_| io::Error::other("gzip worker stopped"))??;
        out.write_all(&deflated.data)?;
        total += deflated.input_len;
        crc.combine(&deflated.crc);
    }
    out.write_all(&crc.finalize().to_le_bytes())?;
    out.write_all(&(total as u32).to_le_bytes())?;
    out.flush()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8], threads: usize) -> Vec<u8> {
        let mut enc = Box::new(ParallelGzEncoder::new(Vec::new(), 4, threads));
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

    #[test]
    fn round_trips_as_a_single_member() {
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE + 12345,
        ] {
            let data = sample(len);
            let gz = gzip(&data, 3);
            // GzDecoder (not MultiGzDecoder) stops after the first member.
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back.len(), data.len(), "len {len}");
            assert!(back == data, "len {len}");
            assert_eq!(&gz[..10], &GZIP_HEADER);
        }
    }

    #[test]
    fn output_does_not_depend_on_threads() {
        let data = sample(5 * CHUNK_SIZE / 2);
        assert_eq!(gzip(&data, 1), gzip(&data, 4));
        // Real machine code over many chunks: with reused (reset) zlib-rs
        // compressors this came out a few bytes different per thread count.
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let exe = &exe[..exe.len().min(12 * CHUNK_SIZE)];
        assert_eq!(gzip(exe, 1), gzip(exe, 3));
    }

    #[test]
    fn dictionary_keeps_the_ratio_close_to_serial() {
        // Repetitive data whose repeats straddle chunk cuts.
        let unit = sample(20_000);
        let data: Vec<u8> = unit.iter().cycle().take(4 * CHUNK_SIZE).copied().collect();

        // A chunk primed with its predecessor's tail compresses far better.
        let second = &data[CHUNK_SIZE..2 * CHUNK_SIZE];
        let cold = deflate_chunk(4, second, &[], false).unwrap().len();
        let dict = &data[CHUNK_SIZE - DICT_SIZE..CHUNK_SIZE];
        let primed = deflate_chunk(4, second, dict, false).unwrap().len();
        assert!(primed * 10 < cold * 7, "{primed} vs {cold}");

        let parallel = gzip(&data, 2).len();
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(4));
        serial.write_all(&data).unwrap();
        let serial = serial.finish().unwrap().len();
        assert!(parallel * 10 < serial * 12, "{parallel} vs {serial}");
    }
}
