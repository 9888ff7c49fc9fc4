//! Walks a rootfs in a fixed order (names sorted by bytes in every directory)
//! and turns each file into a tar entry: hard links, devices, xattrs, clamped
//! mtimes, numeric owners. Nothing depends on inode numbers, ctimes, atimes or
//! the order the kernel returns directory entries in.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::tar_entry::{EntryHeader, EntryKind};
use crate::tar_writer::{AppendError, TarWriter};
use crate::OciError;

/// What the walk saw.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WalkStats {
    pub entries: u64,
    /// Newest mtime written (after clamping); 0 for an empty tree.
    pub newest_mtime: i64,
}

/// Writes every entry below `rootfs` (not the root itself) to `tar`.
/// Output errors are returned as `io::Error` for the caller to name the blob.
pub(crate) fn write_tree<W: Write>(
    rootfs: &Path,
    tar: &mut TarWriter<W>,
    clamp_mtime: Option<i64>,
) -> Result<WalkStats, WalkError> {
    let mut stats = WalkStats::default();
    // First path seen for each multiply-linked inode; later ones become type 1.
    let mut first_link: HashMap<(u64, u64), Vec<u8>> = HashMap::new();

    let walker = walkdir::WalkDir::new(rootfs)
        .follow_links(false)
        .min_depth(1)
        .sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    for item in walker {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(rootfs).to_owned();
            WalkError::Source(OciError::Read {
                path,
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("filesystem loop")),
            })
        })?;
        let path = item.path();
        let read_err = |source: io::Error| {
            WalkError::Source(OciError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let meta = fs::symlink_metadata(path).map_err(read_err)?;
        let rel = path
            .strip_prefix(rootfs)
            .expect("walkdir yields paths below its root")
            .as_os_str()
            .as_bytes();
        let mut name = rel.to_vec();

        let ft = meta.file_type();
        let mut kind = if ft.is_dir() {
            name.push(b'/');
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File { size: meta.len() }
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(read_err)?;
            EntryKind::Symlink {
                target: target.as_os_str().as_bytes().to_vec(),
            }
        } else if ft.is_char_device() {
            let (major, minor) = device_numbers(meta.rdev());
            EntryKind::CharDevice { major, minor }
        } else if ft.is_block_device() {
            let (major, minor) = device_numbers(meta.rdev());
            EntryKind::BlockDevice { major, minor }
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else {
            // Sockets cannot be represented in tar (and are recreated by their owner).
            tracing::warn!(path = %path.display(), "skipping socket");
            continue;
        };

        if !ft.is_dir() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            match first_link.get(&key) {
                Some(first) => {
                    kind = EntryKind::HardLink {
                        target: first.clone(),
                    }
                }
                None => {
                    first_link.insert(key, name.clone());
                }
            }
        }

        let mtime = match clamp_mtime {
            Some(clamp) => meta.mtime().min(clamp),
            None => meta.mtime(),
        };
        // A hard link shares the inode of its target: its xattrs are already there.
        let xattrs = if matches!(kind, EntryKind::HardLink { .. }) {
            Vec::new()
        } else {
            read_xattrs(path).map_err(read_err)?
        };
        let header = EntryHeader {
            path: name,
            kind,
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime,
            xattrs,
        };

        let result = if header.data_size() > 0 {
            let mut file = File::open(path).map_err(read_err)?;
            tar.append(&header, Some((&mut file, path)))
        } else {
            tar.append(&header, None)
        };
        result.map_err(|e| match e {
            AppendError::Source(e) => WalkError::Source(e),
            AppendError::Output(e) => WalkError::Output(e),
        })?;

        stats.entries += 1;
        stats.newest_mtime = stats.newest_mtime.max(mtime);
    }
    Ok(stats)
}

/// A failure of the walk: either the source tree or the output stream.
#[derive(Debug)]
pub(crate) enum WalkError {
    Source(OciError),
    Output(io::Error),
}

fn device_numbers(rdev: u64) -> (u64, u64) {
    (
        u64::from(libc::major(rdev as libc::dev_t)),
        u64::from(libc::minor(rdev as libc::dev_t)),
    )
}

/// All xattrs of `path` (not following symlinks), sorted by name bytes.
fn read_xattrs(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if is_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut xattrs = Vec::new();
    for name in names {
        // A value removed between list and get is simply gone.
        if let Some(value) = xattr::get(path, &name)? {
            xattrs.push((name.as_bytes().to_vec(), value));
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

fn is_unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTSUP) || e.kind() == io::ErrorKind::Unsupported
}
