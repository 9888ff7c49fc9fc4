//! Options of [`crate::pack_layer`]: compression, level, mtime clamp, threads, progress.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use oci_spec::image::MediaType;

use crate::OciError;

/// Compression of the layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Gzip: 1 MiB chunks compressed in parallel by libdeflate, one gzip
    /// member each.
    #[default]
    Gzip,
    /// Zstandard, with libzstd's multithreaded encoder.
    Zstd,
}

impl Compression {
    /// The OCI media type of a layer with this compression.
    pub fn layer_media_type(self) -> MediaType {
        match self {
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        }
    }

    /// The level used when [`PackOptions::level`] is `None`.
    pub fn default_level(self) -> i32 {
        match self {
            // libdeflate level 2 (greedy parsing) is ~1.6x as fast as zlib-rs
            // level 4 and still gives a smaller layer than umoci's (Go pgzip,
            // default level); level 1 does not. See scripts/bench-pack.sh.
            Compression::Gzip => 2,
            Compression::Zstd => 3,
        }
    }

    pub(crate) fn level_range(self) -> (i32, i32) {
        match self {
            // libdeflate's levels; 10-12 are its slow near-optimal parsers.
            Compression::Gzip => (1, 12),
            Compression::Zstd => (1, 22),
        }
    }
}

impl FromStr for Compression {
    type Err = OciError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => Err(OciError::UnknownCompression(other.to_owned())),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// Receives the number of uncompressed tar bytes produced so far, every few MiB
/// and once at the end. Called from the packing thread.
pub trait Progress: Send + Sync {
    fn advance(&self, uncompressed_bytes: u64);
}

impl<F: Fn(u64) + Send + Sync> Progress for F {
    fn advance(&self, uncompressed_bytes: u64) {
        self(uncompressed_bytes)
    }
}

/// How to pack a layer.
#[derive(Clone, Default)]
pub struct PackOptions {
    pub compression: Compression,
    /// Compression level; `None` = [`Compression::default_level`].
    pub level: Option<i32>,
    /// Every mtime in the layer becomes `min(mtime, clamp_mtime)` (SOURCE_DATE_EPOCH).
    pub clamp_mtime: Option<i64>,
    /// Compression threads; 0 = all cores. The output does not depend on it.
    pub threads: usize,
    /// Optional progress hook (e.g. to drive an indicatif bar).
    pub progress: Option<Arc<dyn Progress>>,
}

impl PackOptions {
    pub(crate) fn effective_level(&self) -> Result<i32, OciError> {
        let level = self.level.unwrap_or(self.compression.default_level());
        let (min, max) = self.compression.level_range();
        if !(min..=max).contains(&level) {
            return Err(OciError::InvalidLevel {
                compression: self.compression,
                level,
                min,
                max,
            });
        }
        Ok(level)
    }

    pub(crate) fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

impl fmt::Debug for PackOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackOptions")
            .field("compression", &self.compression)
            .field("level", &self.level)
            .field("clamp_mtime", &self.clamp_mtime)
            .field("threads", &self.threads)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}
