//! Zstandard through libzstd's multithreaded encoder.
//!
//! With one or more workers libzstd's output does not depend on the worker
//! count, so even a single-threaded run uses the multithreaded code path.
//! It can depend on how the input is split across calls, though: the caller
//! feeds fixed-size buffers (`ThreadedWriter`), never the sizes `read()`
//! happened to return.

use std::io::{self, Write};

use ::zstd::stream::raw::CParameter;

use super::Compressor;

pub(crate) struct ZstdEncoder<W: Write> {
    encoder: ::zstd::stream::write::Encoder<'static, W>,
}

impl<W: Write> ZstdEncoder<W> {
    pub(crate) fn new(out: W, level: i32, threads: usize) -> io::Result<Self> {
        let mut encoder = ::zstd::stream::write::Encoder::new(out, level)?;
        encoder.multithread(threads.max(1) as u32)?;
        encoder.include_checksum(true)?;
        if level == 3 {
            // Smaller match-finder tables than libzstd's level 3 (hashLog
            // 17, chainLog 16): they stay in cache, which takes ~13% off
            // the CPU for a layer ~2% larger, still smaller than
            // `zstd -3`'s of the same tree (docs/benchmarks.md).
            encoder.set_parameter(CParameter::HashLog(16))?;
            encoder.set_parameter(CParameter::ChainLog(14))?;
        }
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
