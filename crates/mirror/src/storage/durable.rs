//! Durable writes for the filesystem backend: a file becomes visible only
//! whole and fsynced, by a rename that is itself fsynced, and any failure
//! (a full disk above all) leaves what was there before untouched.
//!
//! These are plain blocking functions on `std::fs`, run in `spawn_blocking`.
//! `tokio::fs::File` is not used for them on purpose: its `write_all`
//! returns as soon as the bytes are buffered, and `sync_all` does not report
//! a failed buffered write (it keeps the error for the next write). A full
//! disk then produced a fsynced, renamed, *empty* file and a 201.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

use super::StorageError;

/// Whether `e` means the filesystem is out of space or of quota.
pub(crate) fn is_out_of_space(e: &io::Error) -> bool {
    let raw = e.raw_os_error();
    e.kind() == io::ErrorKind::StorageFull
        || raw == Some(rustix::io::Errno::NOSPC.raw_os_error())
        || raw == Some(rustix::io::Errno::DQUOT.raw_os_error())
}

/// Classifies an I/O error of `what` (e.g. "writing") on `path`: a full disk
/// becomes [`StorageError::InsufficientStorage`], anything else keeps its
/// kind and names the path.
pub(crate) fn error_at(what: &str, path: &Path, e: io::Error) -> StorageError {
    let text = format!("{what} {}: {e}", path.display());
    if is_out_of_space(&e) {
        StorageError::InsufficientStorage(text)
    } else {
        StorageError::Io(io::Error::new(e.kind(), text))
    }
}

/// Makes a directory entry (a create, rename or unlink in `dir`) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| error_at("syncing directory", dir, e))
}

/// Creates `dir` and its missing parents, syncing each parent that gained an
/// entry, so a crash cannot lose a directory that a synced file lives in.
pub(crate) fn create_dirs(dir: &Path) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = parent {
        create_dirs(p)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => match parent {
            Some(p) => sync_dir(p),
            None => Ok(()),
        },
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(error_at("creating directory", dir, e)),
    }
}

/// Writes `data` to a new file `tmp`, checked and fsynced. On error `tmp`
/// is removed.
pub(crate) fn write_new(tmp: &Path, data: &[u8]) -> Result<(), StorageError> {
    let result = File::options()
        .write(true)
        .create_new(true)
        .open(tmp)
        .and_then(|mut f| {
            f.write_all(data)?;
            f.flush()?;
            f.sync_all()
        });
    result.map_err(|e| {
        let _ = fs::remove_file(tmp);
        error_at("writing", tmp, e)
    })
}

/// Renames a complete, fsynced `from` over `dest` and syncs `dest`'s
/// directory. On error `from` is removed and `dest` is as it was (unless only
/// the directory sync failed: then `dest` is already the new file, whole).
pub(crate) fn rename_into_place(from: &Path, dest: &Path) -> Result<(), StorageError> {
    let dir = dest.parent().expect("destination has a parent");
    let renamed = create_dirs(dir)
        .and_then(|()| fs::rename(from, dest).map_err(|e| error_at("renaming into", dest, e)));
    if let Err(e) = renamed {
        let _ = fs::remove_file(from);
        return Err(e);
    }
    sync_dir(dir)
}

/// Replaces `dest` with `data` atomically and durably: temp file `tmp` in
/// the same filesystem, write, fsync, rename, fsync the directory.
pub(crate) fn replace_file(tmp: &Path, dest: &Path, data: &[u8]) -> Result<(), StorageError> {
    write_new(tmp, data)?;
    rename_into_place(tmp, dest)
}

/// Sets `path`'s modification time to now (how a rewrite of identical
/// content is recorded without writing: GC and tag TTLs go by it).
pub(crate) fn touch(path: &Path) -> Result<(), StorageError> {
    File::options()
        .append(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .map_err(|e| error_at("touching", path, e))
}

/// Like [`replace_file`], but when `dest` already holds exactly `data` it
/// only touches it: rewriting the same small file needs no free space, so a
/// re-push on a full disk still succeeds. Returns whether it wrote.
pub(crate) fn replace_if_changed(
    tmp: &Path,
    dest: &Path,
    data: &[u8],
) -> Result<bool, StorageError> {
    match fs::read(dest) {
        Ok(old) if old == data => {
            touch(dest)?;
            return Ok(false);
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(error_at("reading", dest, e)),
    }
    replace_file(tmp, dest, data)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_writes_whole_files_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp-1");
        let dest = dir.path().join("a/b/c");
        replace_file(&tmp, &dest, b"first").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"first");
        assert!(!tmp.exists());
        assert!(!replace_if_changed(&tmp, &dest, b"first").unwrap());
        assert!(replace_if_changed(&tmp, &dest, b"second").unwrap());
        assert_eq!(fs::read(&dest).unwrap(), b"second");
        assert!(!tmp.exists());
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("tag");
        fs::write(&dest, b"sha256:old").unwrap();
        // The temp file's directory does not exist: the write fails before
        // anything is renamed.
        let tmp = dir.path().join("missing/tmp");
        let e = replace_file(&tmp, &dest, b"sha256:new").unwrap_err();
        assert!(e.to_string().contains("missing/tmp"), "{e}");
        assert_eq!(fs::read(&dest).unwrap(), b"sha256:old");
    }

    #[test]
    fn out_of_space_is_classified() {
        let full = io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error());
        let quota = io::Error::from_raw_os_error(rustix::io::Errno::DQUOT.raw_os_error());
        let other = io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error());
        assert!(is_out_of_space(&full) && is_out_of_space(&quota));
        assert!(!is_out_of_space(&other));
        let p = Path::new("/srv/x");
        assert!(matches!(
            error_at("writing", p, full),
            StorageError::InsufficientStorage(m) if m.contains("/srv/x")
        ));
        assert!(matches!(error_at("writing", p, other), StorageError::Io(_)));
    }
}
