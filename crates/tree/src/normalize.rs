//! Making two installs of the same recipe identical: what rpm and dnf
//! stamp with the time, and file times newer than the tree's epoch.

use std::path::Path;

use crate::error::TreeError;

/// `root` joined with `rel` when no directory on the way is a symbolic
/// link (the last component may be one). A tree's links are the packages'
/// and scriptlets' to make: followed on the builder, an absolute one (or
/// one climbing with `..`) leads out of the tree, so what corral removes
/// or reads after the build goes through none.
pub(crate) fn beneath(root: &Path, rel: &str) -> Option<std::path::PathBuf> {
    corral_oci::beneath::path_beneath(root, Path::new(rel)).ok()
}

/// Removes the rpm database's lock and sqlite side files. The write-ahead
/// log is empty once rpm has closed the database cleanly; one that is not
/// empty is left alone (its content is part of the database).
pub fn rpmdb_side_files(root: &Path, dbpath: &str) -> Result<(), TreeError> {
    let db = dbpath.trim_start_matches('/');
    for name in [
        ".rpm.lock",
        ".dbenv.lock",
        "rpmdb.sqlite-shm",
        "rpmdb.sqlite-wal",
    ] {
        let Some(path) = beneath(root, &format!("{db}/{name}")) else {
            continue;
        };
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
    fn side_files_are_never_removed_through_a_link() {
        let tree = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(host.path().join("rpm")).unwrap();
        std::fs::write(host.path().join("rpm/.rpm.lock"), "").unwrap();
        std::fs::create_dir_all(tree.path().join("usr/lib")).unwrap();
        std::os::unix::fs::symlink(host.path(), tree.path().join("usr/lib/sysimage")).unwrap();
        rpmdb_side_files(tree.path(), "/usr/lib/sysimage/rpm").unwrap();
        assert!(host.path().join("rpm/.rpm.lock").exists());
        // the database directory itself a link
        std::fs::remove_file(tree.path().join("usr/lib/sysimage")).unwrap();
        std::fs::create_dir(tree.path().join("usr/lib/sysimage")).unwrap();
        std::os::unix::fs::symlink(
            host.path().join("rpm"),
            tree.path().join("usr/lib/sysimage/rpm"),
        )
        .unwrap();
        rpmdb_side_files(tree.path(), "/usr/lib/sysimage/rpm").unwrap();
        assert!(host.path().join("rpm/.rpm.lock").exists());
        // a real one is cleaned
        std::fs::remove_file(tree.path().join("usr/lib/sysimage/rpm")).unwrap();
        std::fs::create_dir(tree.path().join("usr/lib/sysimage/rpm")).unwrap();
        std::fs::write(tree.path().join("usr/lib/sysimage/rpm/.rpm.lock"), "").unwrap();
        rpmdb_side_files(tree.path(), "/usr/lib/sysimage/rpm").unwrap();
        assert!(!tree.path().join("usr/lib/sysimage/rpm/.rpm.lock").exists());
    }

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
