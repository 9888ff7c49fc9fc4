//! OCI image layouts and reproducible, parallel layer packing.
//!
//! The main entry points are [`pack_layer`] (a rootfs directory to one
//! compressed tar layer blob) and [`build_image_layout`] (a rootfs to a
//! complete one-layer OCI image layout, renamed into place atomically);
//! [`build_index_layout`] writes one such image per platform under an
//! image index (a multi-arch tag).
//!
//! Modules, from the bottom up:
//! - `pax`, `ustar`, `tar_entry`: the tar format. Our own small writer, so
//!   every header byte is deterministic: sorted PAX records, numeric owners
//!   only, whole-second mtimes, `SCHILY.xattr.*` for xattrs,
//!   `hdrcharset=BINARY` for long non-UTF-8 names.
//! - `tar_writer`: streams headers and file contents in fixed-size chunks.
//! - `tree_walker`: the rootfs walk in byte order of names, hard links,
//!   devices, xattrs, mtime clamping.
//! - `compress`: parallel multi-member gzip (libdeflate) and multithreaded zstd.
//! - `hashing_writer`: sha256 while streaming (diff_id and blob digest in one pass).
//! - `threaded_writer`: a stage on its own thread, so reading, compressing and
//!   writing overlap.
//! - `layer`: [`pack_layer`]; `layout`: [`OciLayoutWriter`], [`build_image_layout`],
//!   [`build_index_layout`].
//! - `canonical_json`: JSON with sorted keys, for stable digests.
//!
//! ```no_run
//! use std::path::Path;
//! use corral_oci::{build_image_layout, Compression, ImageConfigSpec, PackOptions};
//!
//! let cfg = ImageConfigSpec {
//!     architecture: "amd64".into(),
//!     os: "linux".into(),
//!     env: vec!["PATH=/usr/bin:/bin".into()],
//!     cmd: Some(vec!["/bin/sh".into()]),
//!     created: 1_700_000_000,
//!     ..Default::default()
//! };
//! let opts = PackOptions {
//!     compression: "zstd".parse::<Compression>()?,
//!     clamp_mtime: Some(1_700_000_000),
//!     ..Default::default()
//! };
//! let image = build_image_layout(
//!     Path::new("rootfs"),
//!     Path::new("out/base"),
//!     "latest",
//!     &cfg,
//!     &[],
//!     &opts,
//! )?;
//! println!("{} {}", image.tag, image.manifest_digest);
//! # Ok::<(), corral_oci::OciError>(())
//! ```

pub mod beneath;
mod canonical_json;
mod compress;
mod error;
pub mod grammar;
mod hashing_writer;
mod layer;
mod layout;
mod options;
mod pax;
pub mod read;
mod tar_entry;
mod tar_writer;
mod threaded_writer;
mod tree_walker;
mod ustar;

pub use error::OciError;
pub use hashing_writer::{sha256_file, sha256_parts};
pub use layer::{pack_layer, PackedLayer};
pub use layout::{
    build_image_layout, build_index_layout, rfc3339, BuiltImage, BuiltIndex, ExtraBlob,
    ImageConfigSpec, OciLayoutWriter, PlatformImage, ANNOTATION_UNPACKED_SIZE,
};
pub use oci_spec::image::MediaType;
pub use options::{Compression, PackOptions, Progress};
