//! Zstandard through libzstd's multithreaded encoder.
//!
//! With one or more workers libzstd's output does not depend on the worker
//! count, so even a single-threaded run uses the multithreaded code path.
//! It can depend on how the input is split across calls, though: the caller
//! feeds fixed-size buffers (`ThreadedWriter`), never the sizes `read()`
//! happened to return.

use std::io::{self, Write};

use super::Compressor;

pub(crate) struct ZstdEncoder<W: Write> {
    encoder: ::zstd::stream::write::Encoder<'static, W>,
}

impl<W: Write> ZstdEncoder<W> {
    pub(crate) fn new(out: W, level: i32, threads: usize) -> io::Result<Self> {
        let mut encoder = ::zstd::stream::write::Encoder::new(out, level)?;
        encoder.multithread(threads.max(1) as u32)?;
        encoder.include_checksum(true)?;
        Ok(ZstdEncoder { encoder })
    }
}

impl<W: Write> Write for ZstdEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.encoder.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.encoder.flush()
    }
}

impl<W: Write + Send> Compressor<W> for ZstdEncoder<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        self.encoder.finish()
    }
}
