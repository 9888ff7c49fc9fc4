//! Reading commits: the metadata keys corral records on a commit, what
//! it recorded ([`CommitInfo`]), a ref's history, and finding a commit by
//! version or checksum.

use std::path::Path;

use anyhow::{Context, Result};
use ostree::gio;
use ostree::glib;
use serde::Serialize;

/// Metadata keys of a compose commit.
pub mod keys {
    pub const VERSION: &str = "version";
    /// rpm-ostree's key, so its tools see the same input hash.
    pub const RPMOSTREE_INPUTHASH: &str = "rpmostree.inputhash";
    pub const INPUTHASH: &str = "corral.inputhash";
    /// The installed packages, NEVRA, sorted (`as`).
    pub const PACKAGES: &str = "corral.packages";
    pub const SOURCE_REVISION: &str = "corral.source-revision";
    /// Why an out-of-band compose was made.
    pub const REASON: &str = "corral.reason";
    pub const STREAM: &str = "corral.stream";
    pub const BOOTABLE: &str = "ostree.bootable";
    pub const LINUX: &str = "ostree.linux";
    /// The architecture the tree was built for (`[tree] arch`, dnf's
    /// `$basearch`); `corral disk build` picks the boot loader by it.
    pub const ARCH: &str = "corral.arch";
}

/// Checks that `path` is an OSTree repository, with an error that says
/// what it is instead (missing, a file, an empty or another directory).
pub fn require_existing(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("{}: no OSTree repository there", path.display()))?;
    anyhow::ensure!(
        meta.is_dir(),
        "{} is a file, not an OSTree repository",
        path.display()
    );
    if !path.join("config").is_file() || !path.join("objects").is_dir() {
        let empty = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .next()
            .is_none();
        anyhow::bail!(
            "{} is {}, not an OSTree repository (no config and objects/; `compose run` creates one)",
            path.display(),
            if empty { "an empty directory" } else { "a directory" }
        );
    }
    Ok(())
}

/// Opens an existing repository.
pub fn open(path: &Path) -> Result<ostree::Repo> {
    let repo = ostree::Repo::new_for_path(path);
    repo.open(gio::Cancellable::NONE)
        .with_context(|| format!("opening the repository {}", path.display()))?;
    Ok(repo)
}

/// A commit and what corral recorded on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitInfo {
    pub checksum: String,
    pub version: Option<String>,
    /// Seconds since the epoch.
    pub timestamp: u64,
    pub parent: Option<String>,
    pub inputhash: Option<String>,
    pub packages: Vec<String>,
    pub reason: Option<String>,
}

/// Reads commit `checksum`.
pub fn commit_info(repo: &ostree::Repo, checksum: &str) -> Result<CommitInfo> {
    let (commit, _) = repo
        .load_commit(checksum)
        .with_context(|| format!("loading commit {checksum}"))?;
    let dict = glib::VariantDict::new(Some(&commit.child_value(0)));
    let string = |key: &str| dict.lookup::<String>(key).ok().flatten();
    Ok(CommitInfo {
        checksum: checksum.to_string(),
        version: string(keys::VERSION),
        timestamp: ostree::commit_get_timestamp(&commit),
        parent: ostree::commit_get_parent(&commit).map(|p| p.to_string()),
        inputhash: string(keys::INPUTHASH).or_else(|| string(keys::RPMOSTREE_INPUTHASH)),
        packages: dict
            .lookup::<Vec<String>>(keys::PACKAGES)
            .ok()
            .flatten()
            .unwrap_or_default(),
        reason: string(keys::REASON),
    })
}

/// The commit `ostree_ref` points at, if the ref exists.
pub fn head(repo: &ostree::Repo, ostree_ref: &str) -> Result<Option<CommitInfo>> {
    let rev = repo
        .resolve_rev(ostree_ref, true)
        .with_context(|| format!("resolving {ostree_ref}"))?;
    rev.map(|c| commit_info(repo, &c)).transpose()
}

/// The commits of `ostree_ref`, newest first, as far as the repository
/// holds them.
pub fn history(repo: &ostree::Repo, ostree_ref: &str) -> Result<Vec<CommitInfo>> {
    let mut out = Vec::new();
    let mut next = head(repo, ostree_ref)?;
    while let Some(info) = next {
        next = match &info.parent {
            Some(p) if has_commit(repo, p)? => Some(commit_info(repo, p)?),
            _ => None,
        };
        out.push(info);
    }
    Ok(out)
}

/// Whether the repository holds commit `checksum`.
pub fn has_commit(repo: &ostree::Repo, checksum: &str) -> Result<bool> {
    Ok(repo
        .load_variant_if_exists(ostree::ObjectType::Commit, checksum)
        .with_context(|| format!("looking up commit {checksum}"))?
        .is_some())
}

/// Finds a commit by version on `ostree_ref`'s history, or as a ref or
/// checksum.
pub fn resolve(repo: &ostree::Repo, ostree_ref: &str, rev: &str) -> Result<CommitInfo> {
    if let Some(found) = history(repo, ostree_ref)?
        .into_iter()
        .find(|c| c.version.as_deref() == Some(rev) || c.checksum.starts_with(rev))
    {
        return Ok(found);
    }
    let checksum = repo
        .resolve_rev(rev, false)
        .with_context(|| format!("no version or commit `{rev}` on {ostree_ref}"))?
        .with_context(|| format!("no version or commit `{rev}` on {ostree_ref}"))?;
    commit_info(repo, &checksum)
}
