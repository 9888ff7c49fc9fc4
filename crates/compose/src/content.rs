//! Content objects of an archive repository, written without libostree.
//!
//! An OSTree content object is named by the SHA-256 of its file header
//! (`(uuuusa(ayay))`: owner, group, mode, rdev, symlink target, xattrs,
//! the numbers big-endian) framed by its size, followed by the file's
//! bytes. The archive repository stores it as `objects/XX/REST.filez`: a
//! header of the same kind with the size in front (`(tuuuusa(ayay))`),
//! then the content as raw DEFLATE (nothing for a symlink). Compressing
//! with libdeflate instead of zlib, and hashing once while the bytes are
//! in memory, is what makes a compose cheaper than `ostree commit`; the
//! checksums are the ones libostree computes, so commits are identical.
//!
//! Objects are staged in the repository's `tmp/`, flushed with one
//! `syncfs` (unless `core.fsync=false`) and only then renamed into
//! `objects/`: a crash leaves no half-written object under a valid name.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use libdeflater::{CompressionLvl, Compressor};
use ostree::glib::{self, prelude::*};
use sha2::{Digest, Sha256};

/// Files up to this size are read whole and compressed by libdeflate;
/// larger ones are streamed (libdeflate has no streaming mode).
const WHOLE_FILE_MAX: u64 = 64 << 20;

/// What a content object's header records about a file.
#[derive(Debug, Clone)]
pub struct FileMeta {
    pub uid: u32,
    pub gid: u32,
    /// `st_mode`, file type bits included.
    pub mode: u32,
    /// The target of a symlink; empty for a regular file.
    pub symlink_target: String,
    /// `a(ayay)`, as [`crate::writer`] reads them; `None` is no xattrs.
    pub xattrs: Option<glib::Variant>,
}

impl FileMeta {
    /// The owner, group and mode of `meta` (from `symlink_metadata`).
    pub fn from_metadata(
        meta: &std::fs::Metadata,
        symlink_target: String,
        xattrs: Option<glib::Variant>,
    ) -> FileMeta {
        FileMeta {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode(),
            symlink_target,
            xattrs,
        }
    }

    fn is_symlink(&self) -> bool {
        self.mode & 0o170000 == 0o120000
    }

    fn xattrs(&self) -> glib::Variant {
        self.xattrs.clone().unwrap_or_else(|| {
            let ty = glib::VariantTy::new("(ayay)").expect("a valid variant type");
            glib::Variant::array_from_iter_with_type(ty, std::iter::empty::<glib::Variant>())
        })
    }

    /// The common fields, as libostree stores them: numbers big-endian.
    fn fields(&self) -> [glib::Variant; 6] {
        [
            self.uid.to_be().to_variant(),
            self.gid.to_be().to_variant(),
            self.mode.to_be().to_variant(),
            0u32.to_variant(),
            self.symlink_target.to_variant(),
            self.xattrs(),
        ]
    }

    /// The checksummed header, framed: big-endian length, four NULs,
    /// the serialized `(uuuusa(ayay))`.
    pub fn file_header(&self) -> Vec<u8> {
        framed(&glib::Variant::tuple_from_iter(self.fields()))
    }

    /// The `.filez` header, framed like [`FileMeta::file_header`]:
    /// `(tuuuusa(ayay))` with the uncompressed size first.
    pub fn archive_header(&self, size: u64) -> Vec<u8> {
        let mut items = vec![size.to_be().to_variant()];
        items.extend(self.fields());
        framed(&glib::Variant::tuple_from_iter(items))
    }
}

fn framed(v: &glib::Variant) -> Vec<u8> {
    let data = v.data();
    let len = u32::try_from(data.len()).expect("a file header under 4 GiB");
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(data);
    out
}

/// The OSTree checksum of a content object whose file header (framed,
/// from [`FileMeta::file_header`]) is `header` and whose bytes are
/// `content`.
pub fn checksum(header: &[u8], content: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(header);
    h.update(content);
    hex::encode(h.finalize())
}

/// Content objects staged for one repository; [`ContentStore::publish`]
/// moves them into `objects/`.
pub struct ContentStore {
    objects: PathBuf,
    staging: tempfile::TempDir,
    level: i32,
    fsync: bool,
    /// Checksums staged (or being staged) by this store.
    claimed: Mutex<HashSet<String>>,
}

impl ContentStore {
    /// A store for the archive repository at `repo_path`, compressing at
    /// the repository's `archive.zlib-level` (default 6).
    pub fn new(repo: &ostree::Repo, repo_path: &Path) -> Result<ContentStore> {
        let config = repo.copy_config();
        let level = config.integer("archive", "zlib-level").unwrap_or(6);
        anyhow::ensure!(
            (1..=9).contains(&level),
            "archive.zlib-level {level} of {} is not between 1 and 9",
            repo_path.display()
        );
        let fsync = config.boolean("core", "fsync").unwrap_or(true);
        let tmp = repo_path.join("tmp");
        let staging = tempfile::Builder::new()
            .prefix("corral-staging-")
            .tempdir_in(&tmp)
            .with_context(|| format!("creating a staging directory in {}", tmp.display()))?;
        Ok(ContentStore {
            objects: repo_path.join("objects"),
            staging,
            level,
            fsync,
            claimed: Mutex::new(HashSet::new()),
        })
    }

    /// A writer for one thread.
    pub fn writer(&self) -> ContentWriter<'_> {
        let level = CompressionLvl::new(self.level).expect("a level between 1 and 9");
        ContentWriter {
            store: self,
            deflate: Compressor::new(level),
            input: Vec::new(),
            output: Vec::new(),
        }
    }

    fn object_path(&self, checksum: &str) -> PathBuf {
        self.objects
            .join(&checksum[..2])
            .join(format!("{}.filez", &checksum[2..]))
    }

    /// Whether the object needs writing: not in the repository, and not
    /// claimed by another writer of this store. Claims it if so.
    fn claim(&self, checksum: &str) -> bool {
        if self.object_path(checksum).exists() {
            return false;
        }
        self.claimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(checksum.to_string())
    }

    fn staged_path(&self, checksum: &str) -> PathBuf {
        self.staging.path().join(format!("{checksum}.filez"))
    }

    /// Flushes the staged objects to disk and renames them into
    /// `objects/`. Returns how many were new.
    pub fn publish(self) -> Result<usize> {
        let claimed = self.claimed.into_inner().unwrap_or_else(|e| e.into_inner());
        if self.fsync && !claimed.is_empty() {
            let dir = File::open(self.staging.path())
                .with_context(|| format!("opening {}", self.staging.path().display()))?;
            rustix::fs::syncfs(&dir)
                .with_context(|| format!("flushing {}", self.staging.path().display()))?;
        }
        let mut dirs = HashSet::new();
        for checksum in &claimed {
            let to = self.objects.join(&checksum[..2]);
            if dirs.insert(checksum[..2].to_string()) {
                std::fs::create_dir_all(&to)
                    .with_context(|| format!("creating {}", to.display()))?;
            }
            let from = self.staging.path().join(format!("{checksum}.filez"));
            let to = to.join(format!("{}.filez", &checksum[2..]));
            std::fs::rename(&from, &to)
                .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
        }
        Ok(claimed.len())
    }
}

/// One thread's writer: its compressor and buffers.
pub struct ContentWriter<'a> {
    store: &'a ContentStore,
    deflate: Compressor,
    input: Vec<u8>,
    output: Vec<u8>,
}

impl ContentWriter<'_> {
    /// Stages the symlink or regular file at `path` (whose header fields
    /// are `meta`) unless the repository has it; returns its checksum.
    pub fn write(&mut self, path: &Path, meta: &FileMeta, size: u64) -> Result<String> {
        let header = meta.file_header();
        if meta.is_symlink() {
            let checksum = checksum(&header, &[]);
            if self.store.claim(&checksum) {
                self.stage(&checksum, &meta.archive_header(0), &[])?;
            }
            return Ok(checksum);
        }
        if size > WHOLE_FILE_MAX {
            return self.write_streamed(path, meta, &header);
        }
        self.input.clear();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut self.input))
            .with_context(|| format!("reading {}", path.display()))?;
        let checksum = checksum(&header, &self.input);
        if !self.store.claim(&checksum) {
            return Ok(checksum);
        }
        let bound = self.deflate.deflate_compress_bound(self.input.len());
        self.output.resize(bound, 0);
        let n = self
            .deflate
            .deflate_compress(&self.input, &mut self.output)
            .map_err(|e| anyhow::anyhow!("compressing {}: {e:?}", path.display()))?;
        let archive_header = meta.archive_header(self.input.len() as u64);
        let staged = self.store.staged_path(&checksum);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&staged)?;
            f.write_all(&archive_header)?;
            f.write_all(&self.output[..n])?;
            set_object_mode(&f)
        };
        write().with_context(|| format!("writing {}", staged.display()))?;
        Ok(checksum)
    }

    /// A file too big to hold: hashed in one pass, compressed in a second
    /// only when the repository lacks it.
    fn write_streamed(&mut self, path: &Path, meta: &FileMeta, header: &[u8]) -> Result<String> {
        let open = || File::open(path).with_context(|| format!("opening {}", path.display()));
        let mut h = Sha256::new();
        h.update(header);
        let size = std::io::copy(&mut open()?, &mut HashWriter(&mut h))
            .with_context(|| format!("reading {}", path.display()))?;
        let checksum = hex::encode(h.finalize());
        if !self.store.claim(&checksum) {
            return Ok(checksum);
        }
        let staged = self.store.staged_path(&checksum);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&staged)?;
            f.write_all(&meta.archive_header(size))?;
            // Rare enough that the best level costs little; flate2's
            // zlib-rs at the same level writes bigger streams than zlib.
            let level = flate2::Compression::best();
            let mut enc = flate2::write::DeflateEncoder::new(std::io::BufWriter::new(&f), level);
            std::io::copy(&mut File::open(path)?, &mut enc)?;
            enc.finish()?.flush()?;
            set_object_mode(&f)
        };
        write().with_context(|| format!("writing {} from {}", staged.display(), path.display()))?;
        Ok(checksum)
    }

    fn stage(&self, checksum: &str, archive_header: &[u8], data: &[u8]) -> Result<()> {
        let staged = self.store.staged_path(checksum);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&staged)?;
            f.write_all(archive_header)?;
            f.write_all(data)?;
            set_object_mode(&f)
        };
        write().with_context(|| format!("writing {}", staged.display()))
    }
}

/// Objects are 0644 whatever the umask, as libostree leaves them.
fn set_object_mode(f: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
