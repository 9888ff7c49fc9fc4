//! The archive repository: creating it and writing a tree as a commit.
//! Reading commits and their metadata is [`corral_ostree::commit`],
//! re-exported here.

use std::path::Path;

use anyhow::{Context, Result};
use ostree::gio;
use ostree::glib::{self, prelude::*};

pub use corral_ostree::commit::{
    commit_info, has_commit, head, history, keys, open, require_existing, resolve, CommitInfo,
};

/// Opens the archive repository at `path`, creating it when missing.
pub fn open_or_create(path: &Path) -> Result<ostree::Repo> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    let repo = ostree::Repo::new_for_path(path);
    if !path.join("config").exists() {
        repo.create(ostree::RepoMode::Archive, gio::Cancellable::NONE)
            .with_context(|| format!("creating the archive repository {}", path.display()))?;
    }
    repo.open(gio::Cancellable::NONE)
        .with_context(|| format!("opening the repository {}", path.display()))?;
    Ok(repo)
}

/// What goes on a new commit.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest<'a> {
    pub parent: Option<&'a str>,
    pub subject: &'a str,
    pub body: Option<&'a str>,
    pub metadata: Vec<(&'static str, glib::Variant)>,
    pub timestamp: u64,
    /// Label every entry with the tree's own SELinux policy.
    pub selinux: bool,
}

/// Writes `rootfs` as a commit in one transaction, its content with
/// `threads` writers ([`crate::writer`]); no ref is touched.
pub fn commit_tree(
    repo: &ostree::Repo,
    repo_path: &Path,
    rootfs: &Path,
    threads: usize,
    req: &CommitRequest<'_>,
) -> Result<String> {
    let guard = repo
        .auto_transaction(gio::Cancellable::NONE)
        .context("starting a transaction")?;
    let mtree = crate::writer::write_tree(repo, repo_path, rootfs, threads, req.selinux)
        .with_context(|| format!("writing {} into the repository", rootfs.display()))?;
    let root = repo
        .write_mtree(&mtree, gio::Cancellable::NONE)
        .context("writing the directory tree")?;
    let root = root
        .downcast::<ostree::RepoFile>()
        .map_err(|_| anyhow::anyhow!("write_mtree returned no RepoFile"))?;
    let dict = glib::VariantDict::new(None);
    for (key, value) in &req.metadata {
        dict.insert_value(key, value);
    }
    let checksum = repo
        .write_commit_with_time(
            req.parent,
            Some(req.subject),
            req.body,
            Some(&dict.end()),
            &root,
            req.timestamp,
            gio::Cancellable::NONE,
        )
        .context("writing the commit")?;
    guard
        .commit(gio::Cancellable::NONE)
        .context("committing the transaction")?;
    Ok(checksum.to_string())
}
