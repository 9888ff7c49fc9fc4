//! The footprint policy: what a tree leaves out, and what that saved.

use std::path::Path;

use serde::Serialize;

use crate::error::TreeError;
use crate::rpmdb::OwnedFile;

/// What one policy item saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Saving {
    /// `docs`, `locales`, `caches` or `logs`.
    pub item: &'static str,
    pub files: u64,
    pub bytes: u64,
}

/// Files rpm skipped because of `tsflags=nodocs` and `%_install_langs`.
pub fn skipped_by_rpm(files: &[OwnedFile]) -> [Saving; 2] {
    let mut docs = Saving {
        item: "docs",
        files: 0,
        bytes: 0,
    };
    let mut locales = Saving {
        item: "locales",
        files: 0,
        bytes: 0,
    };
    for f in files.iter().filter(|f| !f.installed) {
        let s = if f.doc {
            &mut docs
        } else if f.lang.is_some() {
            &mut locales
        } else {
            continue;
        };
        s.files += 1;
        s.bytes += f.size;
    }
    [docs, locales]
}

/// Package-manager caches, relative to the tree.
pub const CACHE_PATHS: &[&str] = &["var/cache/dnf", "var/cache/yum", "var/cache/libdnf5"];
/// Package-manager logs and transaction history, relative to the tree.
/// Each is stamped with the time of the build.
pub const LOG_PATHS: &[&str] = &[
    "var/log/dnf.log",
    "var/log/dnf.rpm.log",
    "var/log/dnf.librepo.log",
    "var/log/hawkey.log",
    "var/log/dnf5.log",
    "var/lib/dnf",
    "var/lib/libdnf5",
];

/// Removes `paths` under `root` and says how much they held.
pub fn remove(root: &Path, item: &'static str, paths: &[&str]) -> Result<Saving, TreeError> {
    let mut saving = Saving {
        item,
        files: 0,
        bytes: 0,
    };
    for rel in paths {
        // Through a link the packages made, the path is not the tree's.
        let Some(path) = crate::normalize::beneath(root, rel) else {
            continue;
        };
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            for entry in walkdir::WalkDir::new(&path) {
                let entry = entry.map_err(TreeError::walk("measuring", &path))?;
                if entry.file_type().is_file() {
                    saving.files += 1;
                    saving.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                }
            }
            std::fs::remove_dir_all(&path).map_err(TreeError::io("removing", &path))?;
        } else {
            saving.files += 1;
            saving.bytes += meta.len();
            std::fs::remove_file(&path).map_err(TreeError::io("removing", &path))?;
        }
    }
    Ok(saving)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_skipped_docs_and_locales() {
        let f = |installed, doc, lang: Option<&str>, size| OwnedFile {
            package: "p".into(),
            installed,
            doc,
            lang: lang.map(str::to_string),
            size,
            path: "/x".into(),
        };
        let [docs, locales] = skipped_by_rpm(&[
            f(false, true, None, 10),
            f(false, false, Some("de"), 5),
            f(true, false, Some("en_US"), 7),
            f(true, true, None, 100),
        ]);
        assert_eq!((docs.files, docs.bytes), (1, 10));
        assert_eq!((locales.files, locales.bytes), (1, 5));
    }

    #[test]
    fn removes_and_measures() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/cache/dnf/a")).unwrap();
        std::fs::write(dir.path().join("var/cache/dnf/a/f"), b"12345").unwrap();
        std::fs::create_dir_all(dir.path().join("var/log")).unwrap();
        std::fs::write(dir.path().join("var/log/dnf.log"), b"123").unwrap();
        let s = remove(dir.path(), "caches", CACHE_PATHS).unwrap();
        assert_eq!((s.files, s.bytes), (1, 5));
        assert!(!dir.path().join("var/cache/dnf").exists());
        let s = remove(dir.path(), "logs", LOG_PATHS).unwrap();
        assert_eq!((s.files, s.bytes), (1, 3));
        assert!(dir.path().join("var/log").exists());
    }

    #[test]
    fn never_removes_through_a_link_out_of_the_tree() {
        let tree = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(host.path().join("dnf")).unwrap();
        std::fs::write(host.path().join("dnf/keep"), b"host file").unwrap();
        std::fs::write(host.path().join("dnf.log"), b"host log").unwrap();
        std::fs::create_dir(tree.path().join("var")).unwrap();
        for dir in ["var/cache", "var/log"] {
            std::os::unix::fs::symlink(host.path(), tree.path().join(dir)).unwrap();
        }
        let s = remove(tree.path(), "caches", CACHE_PATHS).unwrap();
        assert_eq!((s.files, s.bytes), (0, 0));
        let s = remove(tree.path(), "logs", LOG_PATHS).unwrap();
        assert_eq!((s.files, s.bytes), (0, 0));
        assert!(host.path().join("dnf/keep").exists());
        assert!(host.path().join("dnf.log").exists());
        // A link at the path itself is removed, not what it points to.
        std::fs::remove_file(tree.path().join("var/cache")).unwrap();
        std::fs::create_dir(tree.path().join("var/cache")).unwrap();
        std::os::unix::fs::symlink(host.path().join("dnf"), tree.path().join("var/cache/dnf"))
            .unwrap();
        remove(tree.path(), "caches", CACHE_PATHS).unwrap();
        assert!(tree.path().join("var/cache").exists());
        assert!(!tree.path().join("var/cache/dnf").exists());
        assert!(host.path().join("dnf/keep").exists());
    }
}
