//! Unpacking a submitted tar or tar.gz with path checks and limits.
//!
//! Nothing in the archive decides where a byte lands: every path is
//! checked as text first (relative, no `..`, not under a symbolic link the
//! archive made, not twice), files are created with `O_EXCL` and fixed
//! modes (no owners, no setuid), symbolic links may only point down into
//! the folder (relative, no `..`), hard links only to a file unpacked
//! before, and devices, FIFOs and sparse files are refused. Sizes are
//! counted as bytes arrive, so a lying header or a gzip bomb stops at the
//! limit.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tar::EntryType;

/// How much an archive may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// All files together, in bytes.
    pub max_total: u64,
    /// One file, in bytes.
    pub max_file: u64,
    /// Entries of any kind (files, directories, links).
    pub max_entries: usize,
}

impl Default for Limits {
    /// 64 MiB in all, 16 MiB per file, 2,000 entries: far above what a
    /// Dockerfile folder or a tree recipe needs.
    fn default() -> Self {
        Limits {
            max_total: 64 << 20,
            max_file: 16 << 20,
            max_entries: 2000,
        }
    }
}

/// Why an archive was refused; names the entry when one is to blame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnpackError {
    #[error("archive entry {path:?} is refused: {why}")]
    Entry { path: String, why: String },
    #[error("archive entry {path:?} is larger than the limit of {limit} bytes per file")]
    FileTooBig { path: String, limit: u64 },
    #[error("the archive holds more than {limit} bytes (at entry {path:?})")]
    TooBig { path: String, limit: u64 },
    /// The tar stream itself (headers, padding, data of any entry) is
    /// longer than the limits allow.
    #[error("the archive is longer than {cap} bytes unpacked, more than its limits allow")]
    TooLong { cap: u64 },
    #[error("the archive has more than {0} entries")]
    TooManyEntries(usize),
    #[error("reading the archive: {0}")]
    Read(io::Error),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// An unpacked archive; the directory is removed when this is dropped.
#[derive(Debug)]
pub struct Unpacked {
    pub dir: tempfile::TempDir,
    /// Regular files (hard links included) and their sizes, by path inside
    /// the archive.
    pub files: BTreeMap<String, u64>,
    /// Bytes written (a hard link adds none).
    pub total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
}

/// Counts the bytes of the tar stream and stops past a cap, so neither a
/// gzip bomb nor padding and headers can run without end.
struct Capped<R> {
    inner: R,
    left: u64,
    /// Set when the cap is reached: read errors are then told apart from
    /// it whatever the tar reader wraps them in.
    hit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            self.hit.set(true);
            return Err(io::Error::other("the archive stream reached its cap"));
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn refuse(path: &str, why: impl Into<String>) -> UnpackError {
    UnpackError::Entry {
        path: path.to_string(),
        why: why.into(),
    }
}

/// A path from the archive as the components it will have under the
/// folder: relative, `.` and empty components dropped, no `..`.
fn clean(raw: &str) -> Result<Vec<&str>, String> {
    if raw.starts_with('/') {
        return Err("absolute paths are refused".into());
    }
    let parts: Vec<&str> = raw
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Err("paths with '..' are refused".into());
    }
    Ok(parts)
}

/// Unpacks a tar (or gzip-compressed tar, told by its magic bytes) into a
/// new temporary directory under `parent`.
pub fn unpack(archive: impl Read, limits: &Limits, parent: &Path) -> Result<Unpacked, UnpackError> {
    let dir = tempfile::Builder::new()
        .prefix("portal-upload-")
        .tempdir_in(parent)
        .map_err(|source| UnpackError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    let mut buffered = BufReader::new(archive);
    let gzip = buffered
        .fill_buf()
        .map_err(UnpackError::Read)?
        .starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    // Headers, extended headers and padding: a few blocks per entry.
    let cap = limits
        .max_total
        .saturating_add((limits.max_entries as u64 + 4).saturating_mul(4 * 512))
        .saturating_add(20 * 512);
    let hit = Rc::new(Cell::new(false));
    let mut tar = tar::Archive::new(Capped {
        inner: stream,
        left: cap,
        hit: hit.clone(),
    });
    let mut seen: BTreeMap<String, Kind> = BTreeMap::new();
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let mut count = 0usize;
    let read_err = |e: io::Error| {
        if hit.get() {
            UnpackError::TooLong { cap }
        } else {
            UnpackError::Read(e)
        }
    };
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        count += 1;
        if count > limits.max_entries {
            return Err(UnpackError::TooManyEntries(limits.max_entries));
        }
        let raw = String::from_utf8(entry.path_bytes().into_owned()).map_err(|e| {
            refuse(
                &String::from_utf8_lossy(e.as_bytes()),
                "the path is not UTF-8",
            )
        })?;
        let parts = clean(&raw).map_err(|why| refuse(&raw, why))?;
        let kind = entry.header().entry_type();
        if parts.is_empty() {
            if kind == EntryType::Directory {
                continue; // "./" itself
            }
            return Err(refuse(&raw, "the path is empty"));
        }
        let rel = parts.join("/");
        // Every parent must be a directory this archive made (or will make
        // implicitly): never a file, never a symbolic link.
        for i in 1..parts.len() {
            let parent = parts[..i].join("/");
            match seen.get(&parent) {
                Some(Kind::Symlink) => {
                    return Err(refuse(
                        &raw,
                        format!("it lies under the symbolic link {parent:?}"),
                    ))
                }
                Some(Kind::File) => {
                    return Err(refuse(&raw, format!("it lies under the file {parent:?}")))
                }
                Some(Kind::Dir) => {}
                None => {
                    seen.insert(parent, Kind::Dir);
                }
            }
        }
        match (seen.get(&rel), kind) {
            (None, _) => {}
            (Some(Kind::Dir), EntryType::Directory) => continue,
            (Some(_), _) => return Err(refuse(&raw, "the path appears twice")),
        }
        let dest = dir.path().join(&rel);
        let write_err = |source| UnpackError::Write {
            path: PathBuf::from(&rel),
            source,
        };
        if let Some(p) = dest.parent() {
            fs::create_dir_all(p).map_err(write_err)?;
        }
        match kind {
            EntryType::Directory => {
                fs::create_dir(&dest).map_err(write_err)?;
                seen.insert(rel, Kind::Dir);
            }
            EntryType::Regular | EntryType::Continuous => {
                let size = entry.header().size().map_err(read_err)?;
                if size > limits.max_file {
                    return Err(UnpackError::FileTooBig {
                        path: rel,
                        limit: limits.max_file,
                    });
                }
                if total + size > limits.max_total {
                    return Err(UnpackError::TooBig {
                        path: rel,
                        limit: limits.max_total,
                    });
                }
                let executable = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
                let mode = if executable { 0o755 } else { 0o644 };
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&dest)
                    .map_err(write_err)?;
                // Whatever the umask: the modes are ours, not the archive's.
                out.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(write_err)?;
                let mut data = (&mut entry).take(limits.max_file + 1);
                let mut buf = vec![0u8; 64 * 1024];
                let mut n = 0u64;
                loop {
                    let got = match data.read(&mut buf) {
                        Ok(0) => break,
                        Ok(got) => got,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(read_err(e)),
                    };
                    out.write_all(&buf[..got]).map_err(write_err)?;
                    n += got as u64;
                }
                if n != size {
                    return Err(refuse(
                        &rel,
                        format!("the header says {size} bytes, the data has {n}"),
                    ));
                }
                total += n;
                files.insert(rel.clone(), n);
                seen.insert(rel, Kind::File);
            }
            EntryType::Symlink => {
                let target = link_target(&entry, &raw)?;
                if target.starts_with('/') {
                    return Err(refuse(
                        &raw,
                        format!("the symbolic link points to the absolute path {target:?}"),
                    ));
                }
                if target.is_empty() || target.split('/').any(|c| c == "..") {
                    return Err(refuse(
                        &raw,
                        format!("the symbolic link points out of its folder ({target:?})"),
                    ));
                }
                std::os::unix::fs::symlink(&target, &dest).map_err(write_err)?;
                seen.insert(rel, Kind::Symlink);
            }
            EntryType::Link => {
                let target = link_target(&entry, &raw)?;
                let tparts = clean(&target)
                    .map_err(|why| refuse(&raw, format!("hard link target {target:?}: {why}")))?;
                let tpath = tparts.join("/");
                if seen.get(&tpath) != Some(&Kind::File) {
                    return Err(refuse(
                        &raw,
                        format!(
                            "the hard link's target {target:?} is not a file unpacked before it"
                        ),
                    ));
                }
                fs::hard_link(dir.path().join(&tpath), &dest).map_err(write_err)?;
                let size = files.get(&tpath).copied().unwrap_or(0);
                files.insert(rel.clone(), size);
                seen.insert(rel, Kind::File);
            }
            other => {
                let what = match other {
                    EntryType::Char | EntryType::Block => "devices are refused".to_string(),
                    EntryType::Fifo => "FIFOs are refused".to_string(),
                    other => format!("entries of type {other:?} are refused"),
                };
                return Err(refuse(&raw, what));
            }
        }
    }
    Ok(Unpacked { dir, files, total })
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, raw: &str) -> Result<String, UnpackError> {
    let bytes = entry
        .link_name_bytes()
        .ok_or_else(|| refuse(raw, "the link has no target"))?;
    String::from_utf8(bytes.into_owned()).map_err(|_| refuse(raw, "the link target is not UTF-8"))
}
