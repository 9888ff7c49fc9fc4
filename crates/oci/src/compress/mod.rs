//! Layer compressors. Both produce output that depends only on the input and
//! the level, never on the number of threads.

mod gzip_members;
mod zstd;

use std::io::{self, Write};

pub(crate) use gzip_members::MultiMemberGzEncoder;
pub(crate) use zstd::ZstdEncoder;

use crate::Compression;

/// A streaming compressor that hands back its output writer when finished.
pub(crate) trait Compressor<W>: Write + Send {
    fn finish(self: Box<Self>) -> io::Result<W>;
}

/// Builds the compressor for `compression` writing into `out`.
pub(crate) fn new_compressor<W: Write + Send + 'static>(
    compression: Compression,
    level: i32,
    threads: usize,
    out: W,
) -> io::Result<Box<dyn Compressor<W>>> {
    Ok(match compression {
        Compression::Gzip => Box::new(MultiMemberGzEncoder::new(out, level, threads)?),
        Compression::Zstd => Box::new(ZstdEncoder::new(out, level, threads)?),
    })
}
