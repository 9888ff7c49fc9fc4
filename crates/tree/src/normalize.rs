//! Making two installs of the same recipe identical: what rpm and dnf
//! stamp with the time, and file times newer than the tree's epoch.

use std::path::Path;

use crate::error::TreeError;

/// Removes the rpm database's lock and sqlite side files. The write-ahead
/// log is empty once rpm has closed the database cleanly; one that is not
/// empty is left alone (its content is part of the database).
pub fn rpmdb_side_files(root: &Path, dbpath: &str) -> Result<(), TreeError> {
    let db = root.join(dbpath.trim_start_matches('/'));
    for name in [
        ".rpm.lock",
        ".dbenv.lock",
        "rpmdb.sqlite-shm",
        "rpmdb.sqlite-wal",
    ] {
        let path = db.join(name);
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if name.ends_with("-wal") && meta.len() > 0 {
            continue;
        }
        std::fs::remove_file(&path).map_err(TreeError::io("removing", &path))?;
    }
    Ok(())
}

/// Sets every modification time later than `epoch` to `epoch`, links
/// included, as rpmbuild's `clamp_mtime_to_source_date_epoch` does.
pub fn clamp_mtimes(root: &Path, epoch: i64) -> Result<u64, TreeError> {
    let clamp = filetime::FileTime::from_unix_time(epoch, 0);
    let mut changed = 0;
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.map_err(TreeError::walk("walking", root))?;
        let meta = entry
            .metadata()
            .map_err(TreeError::walk("reading metadata of", entry.path()))?;
        let mtime = filetime::FileTime::from_last_modification_time(&meta);
        if mtime > clamp {
            filetime::set_symlink_file_times(entry.path(), clamp, clamp)
                .map_err(TreeError::io("setting times of", entry.path()))?;
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn clamps_only_newer_times() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        std::fs::write(&old, b"x").unwrap();
        filetime::set_file_mtime(&old, filetime::FileTime::from_unix_time(100, 0)).unwrap();
        std::fs::write(dir.path().join("new"), b"y").unwrap();
        std::os::unix::fs::symlink("new", dir.path().join("link")).unwrap();
        clamp_mtimes(dir.path(), 1000).unwrap();
        assert_eq!(std::fs::metadata(&old).unwrap().mtime(), 100);
        assert_eq!(
            std::fs::metadata(dir.path().join("new")).unwrap().mtime(),
            1000
        );
        assert_eq!(
            std::fs::symlink_metadata(dir.path().join("link"))
                .unwrap()
                .mtime(),
            1000
        );
        assert_eq!(std::fs::metadata(dir.path()).unwrap().mtime(), 1000);
    }
}
