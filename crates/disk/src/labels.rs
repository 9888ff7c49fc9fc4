//! SELinux labels for what libostree writes outside the commit.
//!
//! libostree checks a new deployment's `/etc` out of `/usr/etc` and labels
//! what it creates there through the kernel's file-creation context
//! (`setfscreatecon`), which has no effect on a build host without SELinux:
//! the directories come out with no `security.selinux` at all, and an
//! enforcing host then boots with an `unlabeled_t` `/etc` that sshd, D-Bus
//! and systemd-networkd are not allowed to search. Files keep the labels
//! the commit carries. [`label_unlabelled`] gives every entry that has no
//! label the one the deployment's own policy gives its path, as the host's
//! `restorecon` would.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use ostree::gio;

const XATTR: &str = "security.selinux";

/// Labels the entries under `root/sub` (and `sub` itself) that have no
/// `security.selinux`, with the policy of the deployment at `root`;
/// returns how many it labelled. A deployment without a policy is left
/// alone (0).
pub fn label_unlabelled(root: &Path, sub: &str) -> Result<usize> {
    let policy = ostree::SePolicy::new(&gio::File::for_path(root), gio::Cancellable::NONE)
        .with_context(|| format!("loading the SELinux policy of {}", root.display()))?;
    if policy.name().is_none_or(|n| n.is_empty()) {
        return Ok(0);
    }
    let mut labelled = 0;
    walk(&policy, &root.join(sub), &format!("/{sub}"), &mut labelled)?;
    Ok(labelled)
}

fn walk(policy: &ostree::SePolicy, path: &Path, abs: &str, labelled: &mut usize) -> Result<()> {
    let meta =
        std::fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let has = xattr::get(path, XATTR)
        .with_context(|| format!("reading the SELinux label of {}", path.display()))?
        .is_some();
    if !has {
        let label = policy
            .label(abs, meta.mode(), gio::Cancellable::NONE)
            .with_context(|| format!("looking up the SELinux label of {abs}"))?;
        if let Some(label) = label {
            let mut value = label.as_bytes().to_vec();
            value.push(0);
            xattr::set(path, XATTR, &value)
                .with_context(|| format!("labelling {} {label}", path.display()))?;
            *labelled += 1;
        }
    }
    if meta.is_dir() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("listing {}", path.display()))?
        {
            let entry = entry.with_context(|| format!("listing {}", path.display()))?;
            let name = entry.file_name();
            let child_abs = format!("{abs}/{}", name.to_string_lossy());
            walk(policy, &entry.path(), &child_abs, labelled)?;
        }
    }
    Ok(())
}
