//! What libostree's 3-way `/etc` merge did to a new deployment.
//!
//! libostree keeps every file the administrator changed in `/etc` (against
//! the old deployment's `/usr/etc`) and takes the new defaults for the
//! rest. A file that changed on both sides keeps the local version and
//! quietly loses the upstream change; those are the ones reported.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// The merge's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EtcMerge {
    /// Paths (under /etc) changed, added or removed locally, carried into
    /// the new deployment.
    pub local: Vec<String>,
    /// Local changes to files the new version also changed: the local
    /// version was kept, the upstream change was not applied.
    pub conflicts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Facts {
    File { mode: u32, content: Vec<u8> },
    Link(std::path::PathBuf),
    Dir { mode: u32 },
    Other,
}

fn scan(root: &Path) -> Result<BTreeMap<String, Facts>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<String, Facts>) -> Result<()> {
        let dir = root.join(rel);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let rel = rel.join(entry.file_name());
            let path = root.join(&rel);
            let meta = std::fs::symlink_metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mode = meta.permissions().mode() & 0o7777;
            let facts = if meta.file_type().is_symlink() {
                Facts::Link(
                    std::fs::read_link(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                )
            } else if meta.is_dir() {
                walk(root, &rel, out)?;
                Facts::Dir { mode }
            } else if meta.is_file() {
                Facts::File {
                    mode,
                    content: std::fs::read(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                }
            } else {
                Facts::Other
            };
            out.insert(rel.to_string_lossy().into_owned(), facts);
        }
        Ok(())
    }
    walk(root, Path::new(""), &mut out)?;
    Ok(out)
}

fn changed(a: &BTreeMap<String, Facts>, b: &BTreeMap<String, Facts>) -> BTreeSet<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// Compares the old deployment's `/usr/etc` (its defaults) and `/etc`
/// (as the administrator left it) with the new deployment's `/usr/etc`.
pub fn inspect(old_deployment: &Path, new_deployment: &Path) -> Result<EtcMerge> {
    let old_defaults = scan(&old_deployment.join("usr/etc"))?;
    let old_local = scan(&old_deployment.join("etc"))?;
    let new_defaults = scan(&new_deployment.join("usr/etc"))?;
    let local = changed(&old_defaults, &old_local);
    let upstream = changed(&old_defaults, &new_defaults);
    Ok(EtcMerge {
        conflicts: local.intersection(&upstream).cloned().collect(),
        local: local.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn conflicts_are_files_changed_on_both_sides() {
        let t = tempfile::tempdir().unwrap();
        let (old, new) = (t.path().join("old"), t.path().join("new"));
        for (rel, text) in [("a.conf", "a1"), ("b.conf", "b1"), ("c.conf", "c1")] {
            put(&old, &format!("usr/etc/{rel}"), text);
            put(&old, &format!("etc/{rel}"), text);
        }
        // local: a edited, d added; upstream: a and b changed, c removed
        put(&old, "etc/a.conf", "a-local");
        put(&old, "etc/d.conf", "mine");
        put(&new, "usr/etc/a.conf", "a2");
        put(&new, "usr/etc/b.conf", "b2");
        let m = inspect(&old, &new).unwrap();
        assert_eq!(m.local, vec!["a.conf", "d.conf"]);
        assert_eq!(m.conflicts, vec!["a.conf"]);
    }

    #[test]
    fn a_mode_change_is_a_local_change() {
        let t = tempfile::tempdir().unwrap();
        let old = t.path().join("old");
        put(&old, "usr/etc/x", "same");
        put(&old, "etc/x", "same");
        std::fs::set_permissions(old.join("etc/x"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::fs::set_permissions(
            old.join("usr/etc/x"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let m = inspect(&old, &old).unwrap();
        assert_eq!(m.local, vec!["x"]);
        assert!(m.conflicts.is_empty());
    }
}
