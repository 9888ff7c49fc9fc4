//! Free space, checked before anything is written: the repository's file
//! system before a pull (exactly, when a static delta says how much it
//! unpacks to), `/boot` for a kernel and initramfs it does not hold yet,
//! and the sysroot for the new deployment's `/etc`.

use std::path::Path;

use anyhow::{Context, Result};
use ostree::gio::{self, prelude::*};

use crate::error::HostError;

/// Bytes available to unprivileged writers on the file system of `path`.
pub fn free_bytes(path: &Path) -> Result<u64> {
    let st = rustix::fs::statvfs(path)
        .map_err(std::io::Error::from)
        .with_context(|| format!("reading the free space of {}", path.display()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Fails with [`HostError::NoSpace`] unless `need` bytes plus `reserve`
/// fit on the file system of `path`.
pub fn require(path: &Path, what: &str, need: u64, reserve: u64) -> Result<()> {
    let free = free_bytes(path)?;
    if need.saturating_add(reserve) > free {
        return Err(HostError::NoSpace {
            mount: path.to_path_buf(),
            what: what.to_string(),
            need,
            reserve,
            free,
        }
        .into());
    }
    Ok(())
}

/// A commit's kernel and initramfs: their content checksums and sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    pub checksums: Vec<String>,
    pub bytes: u64,
}

fn child(dir: &gio::File, name: &str) -> gio::File {
    dir.child(name)
}

fn size_and_checksum(f: &gio::File) -> Result<Option<(u64, String)>> {
    let Ok(info) = f.query_info(
        "standard::size",
        gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
        gio::Cancellable::NONE,
    ) else {
        return Ok(None);
    };
    let rf = f
        .clone()
        .downcast::<ostree::RepoFile>()
        .map_err(|_| anyhow::anyhow!("not a file of the repository"))?;
    rf.ensure_resolved()
        .context("resolving a file of the commit")?;
    Ok(Some((info.size() as u64, rf.checksum().to_string())))
}

/// Finds `/usr/lib/modules/*/{vmlinuz,initramfs.img}` in commit `checksum`.
pub fn boot_files(repo: &ostree::Repo, checksum: &str) -> Result<BootFiles> {
    let (root, _) = repo
        .read_commit(checksum, gio::Cancellable::NONE)
        .with_context(|| format!("reading commit {checksum}"))?;
    let modules = child(&child(&child(&root, "usr"), "lib"), "modules");
    let mut out = BootFiles {
        checksums: Vec::new(),
        bytes: 0,
    };
    let Ok(entries) = modules.enumerate_children(
        "standard::name",
        gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
        gio::Cancellable::NONE,
    ) else {
        return Ok(out);
    };
    for info in entries {
        let info = info.context("listing /usr/lib/modules")?;
        let dir = modules.child(info.name());
        for name in ["vmlinuz", "initramfs.img"] {
            if let Some((size, csum)) = size_and_checksum(&dir.child(name))? {
                out.bytes += size;
                out.checksums.push(csum);
            }
        }
    }
    out.checksums.sort();
    Ok(out)
}

/// Total size of the regular files under `path` in commit `checksum`.
pub fn tree_bytes(repo: &ostree::Repo, checksum: &str, path: &str) -> Result<u64> {
    let (root, _) = repo
        .read_commit(checksum, gio::Cancellable::NONE)
        .with_context(|| format!("reading commit {checksum}"))?;
    let mut start = root;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        start = start.child(part);
    }
    fn walk(dir: &gio::File) -> Result<u64> {
        let Ok(entries) = dir.enumerate_children(
            "standard::name,standard::type,standard::size",
            gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
            gio::Cancellable::NONE,
        ) else {
            return Ok(0);
        };
        let mut total = 0;
        for info in entries {
            let info = info.context("listing a directory of the commit")?;
            match info.file_type() {
                gio::FileType::Directory => total += walk(&dir.child(info.name()))?,
                gio::FileType::Regular => total += info.size() as u64,
                _ => {}
            }
        }
        Ok(total)
    }
    walk(&start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_need_beyond_the_free_space_names_the_mount() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        require(dir.path(), "a test", 1, 0).unwrap();
        let err = require(dir.path(), "the new kernel", free, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not enough space on"), "{err}");
        assert!(err.contains("the new kernel"), "{err}");
    }
}
