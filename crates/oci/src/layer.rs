//! `pack_layer`: rootfs directory -> compressed layer blob, with its digest,
//! diff_id and size computed in the same pass.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use oci_spec::image::MediaType;

use crate::compress::{new_compressor, Compressor};
use crate::hashing_writer::HashingWriter;
use crate::tar_writer::TarWriter;
use crate::threaded_writer::ThreadedWriter;
use crate::tree_walker::{write_tree, WalkError};
use crate::{Compression, OciError, PackOptions, Progress};

/// How often the progress hook is called.
const PROGRESS_EVERY: u64 = 4 * 1024 * 1024;

/// A layer blob stored as `<blob_dir>/<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedLayer {
    /// `"sha256:<hex>"` of the compressed blob.
    pub digest: String,
    /// `"sha256:<hex>"` of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    pub media_type: MediaType,
    /// Number of tar entries (the rootfs directory itself is not one).
    pub entries: u64,
    pub uncompressed_size: u64,
    /// Newest mtime in the layer after clamping (0 for an empty rootfs).
    pub newest_mtime: i64,
}

/// Packs the tree under `rootfs` into a reproducible tar layer, compressed as
/// `opts.compression` says, and stores it as `blob_dir/<hex digest>` (written
/// to a temporary file in `blob_dir` first, renamed when complete).
///
/// Entries are relative paths without a `./` prefix; the root directory
/// itself is not an entry.
pub fn pack_layer(
    rootfs: &Path,
    blob_dir: &Path,
    opts: &PackOptions,
) -> Result<PackedLayer, OciError> {
    match std::fs::metadata(rootfs) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(OciError::RootfsNotDirectory {
                path: rootfs.to_owned(),
            })
        }
        Err(source) => {
            return Err(OciError::Read {
                path: rootfs.to_owned(),
                source,
            })
        }
    }
    let level = opts.effective_level()?;
    let threads = opts.effective_threads();
    let write_err = |source| OciError::Write {
        path: blob_dir.to_owned(),
        source,
    };
    let compress_err = |source| OciError::Compress {
        path: blob_dir.to_owned(),
        source,
    };

    let temp = tempfile::Builder::new()
        .prefix(".layer-")
        .tempfile_in(blob_dir)
        .map_err(write_err)?;
    let file = temp.as_file().try_clone().map_err(write_err)?;
    let blob = HashingWriter::new(BufWriter::with_capacity(1024 * 1024, file));
    // Pipeline: this thread walks and reads files and hashes the tar
    // (diff_id). gzip cuts the stream into members right here and
    // compresses them on its workers; its writer thread hashes and writes the
    // blob. libzstd takes input on the calling thread and does real work
    // there, so for zstd a second thread feeds it (this one is never late
    // with input) and a third hashes and writes the blob (which libzstd would
    // otherwise do on the feeding thread).
    let threaded = opts.compression == Compression::Zstd;
    let blob_stage = if threaded {
        BlobStage::Threaded(ThreadedWriter::new(blob, "layer-blob"))
    } else {
        BlobStage::Direct(blob)
    };
    let compressor =
        new_compressor(opts.compression, level, threads, blob_stage).map_err(compress_err)?;
    let compress_stage = if threaded {
        CompressStage::Threaded(ThreadedWriter::new(compressor, "layer-compress"))
    } else {
        CompressStage::Direct(compressor)
    };
    let tar_stream = ProgressWriter::new(HashingWriter::new(compress_stage), opts.progress.clone());
    let mut tar = TarWriter::new(tar_stream);

    let stats = write_tree(rootfs, &mut tar, opts.clamp_mtime).map_err(|e| match e {
        WalkError::Source(e) => e,
        WalkError::Output(e) => compress_err(e),
    })?;
    let (diff_hashing, progress) = tar.finish().map_err(compress_err)?.into_parts();
    let (compress_stage, diff_id, uncompressed_size) = diff_hashing.finish();
    if let Some(progress) = progress {
        progress.advance(uncompressed_size);
    }
    let blob = compress_stage
        .finish()
        .map_err(compress_err)?
        .into_inner()
        .map_err(compress_err)?;
    let (buffered, digest, size) = blob.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;

    let hex = digest.trim_start_matches("sha256:");
    let final_path = blob_dir.join(hex);
    temp.persist(&final_path).map_err(|e| OciError::Write {
        path: final_path.clone(),
        source: e.error,
    })?;
    tracing::debug!(%digest, %diff_id, size, uncompressed_size, entries = stats.entries, "layer packed");
    Ok(PackedLayer {
        digest,
        diff_id,
        size,
        media_type: opts.compression.layer_media_type(),
        entries: stats.entries,
        uncompressed_size,
        newest_mtime: stats.newest_mtime,
    })
}

type BlobWriter = HashingWriter<BufWriter<std::fs::File>>;

/// The blob writer, on the compressor's thread or on a thread of its own.
enum BlobStage {
    Direct(BlobWriter),
    Threaded(ThreadedWriter<BlobWriter>),
}

impl BlobStage {
    fn into_inner(self) -> io::Result<BlobWriter> {
        match self {
            BlobStage::Direct(w) => Ok(w),
            BlobStage::Threaded(w) => w.finish(),
        }
    }
}

impl Write for BlobStage {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            BlobStage::Direct(w) => w.write(buf),
            BlobStage::Threaded(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            BlobStage::Direct(w) => w.flush(),
            BlobStage::Threaded(w) => w.flush(),
        }
    }
}

/// The compressor, fed by this thread or by a thread of its own.
enum CompressStage {
    Direct(Box<dyn Compressor<BlobStage>>),
    Threaded(ThreadedWriter<Box<dyn Compressor<BlobStage>>>),
}

impl CompressStage {
    fn finish(self) -> io::Result<BlobStage> {
        match self {
            CompressStage::Direct(c) => c.finish(),
            CompressStage::Threaded(w) => w.finish()?.finish(),
        }
    }
}

impl Write for CompressStage {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            CompressStage::Direct(c) => c.write(buf),
            CompressStage::Threaded(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            CompressStage::Direct(c) => c.flush(),
            CompressStage::Threaded(w) => w.flush(),
        }
    }
}

/// Reports the byte count of the uncompressed stream every few MiB.
struct ProgressWriter<W> {
    inner: HashingWriter<W>,
    progress: Option<Arc<dyn Progress>>,
    next_report: u64,
}

impl<W: Write> ProgressWriter<W> {
    fn new(inner: HashingWriter<W>, progress: Option<Arc<dyn Progress>>) -> Self {
        ProgressWriter {
            inner,
            progress,
            next_report: PROGRESS_EVERY,
        }
    }

    fn into_parts(self) -> (HashingWriter<W>, Option<Arc<dyn Progress>>) {
        (self.inner, self.progress)
    }
}

impl<W: Write> Write for ProgressWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(progress) = &self.progress {
            if self.inner.len() >= self.next_report {
                progress.advance(self.inner.len());
                self.next_report = self.inner.len() + PROGRESS_EVERY;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
