//! The error type of this crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while packing a layer or writing a layout.
///
/// Messages are lowercase and name the path or digest involved; the
/// underlying cause is available through [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The rootfs to pack is missing or is not a directory.
    #[error("rootfs {path} is not a directory")]
    RootfsNotDirectory { path: PathBuf },

    /// The layout destination already exists; it is never overwritten.
    #[error("destination {path} already exists")]
    DestinationExists { path: PathBuf },

    /// A file, directory, link or xattr of the rootfs could not be read.
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A regular file became shorter between `lstat` and reading it.
    #[error("{path} shrank while it was being packed (expected {expected} bytes, read {read})")]
    FileShrank {
        path: PathBuf,
        expected: u64,
        read: u64,
    },

    /// A file of the output layout could not be written.
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The compression pipeline failed (an I/O error of the blob or a worker failure).
    #[error("compressing layer into {path}")]
    Compress {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// An unknown compression name was given.
    #[error("unknown compression {0:?}, expected \"gzip\" or \"zstd\"")]
    UnknownCompression(String),

    /// A compression level outside the range of the algorithm.
    #[error("compression level {level} is out of range for {compression} ({min}..={max})")]
    InvalidLevel {
        compression: crate::Compression,
        level: i32,
        min: i32,
        max: i32,
    },

    /// A timestamp that cannot be formatted as RFC 3339.
    #[error("timestamp {0} is out of range")]
    InvalidTimestamp(i64),

    /// Two extra blobs asked for the same annotation prefix, or a tag is empty.
    #[error("invalid image parameter: {0}")]
    InvalidParameter(String),

    /// An OCI structure could not be built.
    #[error("building {what}")]
    Spec {
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },

    /// An OCI structure could not be serialized.
    #[error("serializing {what}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// An OCI layout read back is not what it should be (no such tag, a
    /// malformed digest, a blob that does not match it).
    #[error("{path}: {reason}")]
    Layout { path: PathBuf, reason: String },
}
