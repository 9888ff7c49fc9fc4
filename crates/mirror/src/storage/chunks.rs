//! Reusable read buffers for blob bodies.
//!
//! A blob GET reads its file in chunks of a fixed size and hands each one
//! to the HTTP body. Allocating every chunk afresh costs more than the
//! read itself at loopback speeds: a 1 MiB allocation is served by `mmap`,
//! so every chunk page-faults its 256 pages in (the kernel zeroing each)
//! and unmaps them when the socket is done. The pool keeps the buffers:
//! a chunk's [`Bytes`] owns its buffer and gives it back when the body has
//! written it, so a steady stream of GETs touches the same memory again.
//!
//! The pool is bounded: buffers beyond [`MAX_IDLE`] are freed, so an idle
//! mirror holds at most `MAX_IDLE * size` bytes of them.

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Idle buffers kept per pool.
const MAX_IDLE: usize = 32;

/// A pool of equally sized read buffers.
pub(crate) struct ChunkPool {
    size: usize,
    idle: Mutex<Vec<Box<[u8]>>>,
}

impl ChunkPool {
    pub(crate) fn new(size: usize) -> Arc<ChunkPool> {
        Arc::new(ChunkPool {
            size,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take(&self) -> Box<[u8]> {
        let reused = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.unwrap_or_else(|| vec![0u8; self.size].into_boxed_slice())
    }

    fn give_back(&self, buf: Box<[u8]>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(buf);
        }
    }

    /// Fills a buffer with `read` (which gets a slice of exactly `len`
    /// bytes, `len` at most the pool's size) and returns it as `Bytes`
    /// that give the buffer back to the pool when dropped.
    pub(crate) fn fill(
        self: &Arc<Self>,
        len: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<()>,
    ) -> io::Result<Bytes> {
        assert!(
            len <= self.size,
            "chunk of {len} bytes from a pool of {}",
            self.size
        );
        let mut buf = self.take();
        if let Err(e) = read(&mut buf[..len]) {
            self.give_back(buf);
            return Err(e);
        }
        Ok(Bytes::from_owner(Chunk {
            buf: Some(buf),
            len,
            pool: self.clone(),
        }))
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.idle.lock().unwrap().len()
    }
}

/// A filled buffer on its way to the socket.
struct Chunk {
    buf: Option<Box<[u8]>>,
    len: usize,
    pool: Arc<ChunkPool>,
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        match &self.buf {
            Some(b) => &b[..self.len],
            None => &[],
        }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.give_back(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_holds_what_was_read_and_returns_its_buffer() {
        let pool = ChunkPool::new(8);
        let a = pool.fill(5, |b| {
            b.copy_from_slice(b"hello");
            Ok(())
        });
        let a = a.unwrap();
        assert_eq!(&a[..], b"hello");
        assert_eq!(pool.idle(), 0);
        // A slice of the chunk keeps the buffer out of the pool.
        let tail = a.slice(1..);
        drop(a);
        assert_eq!(pool.idle(), 0);
        assert_eq!(&tail[..], b"ello");
        drop(tail);
        assert_eq!(pool.idle(), 1);
        // The reused buffer's old bytes never show: a chunk is what its
        // read wrote, at the length asked for.
        let b = pool
            .fill(3, |b| {
                b.copy_from_slice(b"abc");
                Ok(())
            })
            .unwrap();
        assert_eq!(&b[..], b"abc");
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn a_failed_read_returns_the_buffer_and_the_error() {
        let pool = ChunkPool::new(4);
        let e = pool
            .fill(4, |_| {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short file"))
            })
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn the_pool_keeps_at_most_max_idle_buffers() {
        let pool = ChunkPool::new(1);
        let held: Vec<Bytes> = (0..MAX_IDLE + 5)
            .map(|_| pool.fill(1, |_| Ok(())).unwrap())
            .collect();
        drop(held);
        assert_eq!(pool.idle(), MAX_IDLE);
    }
}
