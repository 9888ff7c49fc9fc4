//! Runs a writer on its own thread behind a bounded queue of buffers, so the
//! stages of packing (reading files / hashing and compressing / hashing and
//! writing the blob) overlap instead of taking turns on one core.

use std::io::{self, Write};
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

/// Bytes handed over per message. Every write to the inner writer is exactly
/// this size (but the last), whatever sizes the producer wrote in: this makes
/// the compressor's input pattern, and so libzstd's output, a function of the
/// data alone.
const BUFFER_SIZE: usize = 1024 * 1024;
/// Buffers in flight: memory stays at most (QUEUE_DEPTH + 2) * BUFFER_SIZE.
const QUEUE_DEPTH: usize = 4;

pub(crate) struct ThreadedWriter<W: Write + Send + 'static> {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> ThreadedWriter<W> {
    pub(crate) fn new(mut inner: W, name: &str) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // On error, returning drops `rx`: the next send fails and the
                // producer collects this error from `join`.
                for buf in rx.iter() {
                    inner.write_all(&buf)?;
                }
                inner.flush()?;
                Ok(inner)
            })
            .expect("spawning a writer thread");
        ThreadedWriter {
            buf: Vec::with_capacity(BUFFER_SIZE),
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let buf = std::mem::replace(&mut self.buf, Vec::with_capacity(BUFFER_SIZE));
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(buf).is_ok());
        if sent {
            Ok(())
        } else {
            Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("writer thread stopped")))
        }
    }

    fn join(&mut self) -> io::Result<W> {
        self.tx.take();
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("writer thread panicked"))),
            None => Err(io::Error::other("writer thread already stopped")),
        }
    }

    /// Hands over what is buffered, waits for the thread and returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl<W: Write + Send + 'static> Write for ThreadedWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let written = data.len();
        while !data.is_empty() {
            let n = (BUFFER_SIZE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == BUFFER_SIZE {
                self.send()?;
            }
        }
        Ok(written)
    }

    /// Data is flushed by [`ThreadedWriter::finish`]; a mid-stream flush has no use here.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for ThreadedWriter<W> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_everything_through_in_order() {
        let mut w = ThreadedWriter::new(Vec::new(), "test");
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(300_007) {
            w.write_all(piece).unwrap();
        }
        assert_eq!(w.finish().unwrap(), data);
    }

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reports_the_inner_error() {
        let mut w = ThreadedWriter::new(Failing, "test");
        let mut result = Ok(());
        for _ in 0..20 {
            result = w.write_all(&[0u8; BUFFER_SIZE]);
            if result.is_err() {
                break;
            }
        }
        let err = result.and_then(|()| w.finish().map(|_| ())).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
    }
}
