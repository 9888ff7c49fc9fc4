//! Static deltas, published only when they beat a plain pull.
//!
//! Deltas are generated through libostree's `ostree_repo_static_delta_generate`
//! (the `ostree` crate's `Repo::static_delta_generate`), not the CLI.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine as _;
use ostree::gio;
use serde::Serialize;

/// What happened to one candidate delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeltaDecision {
    /// `None` for a from-scratch delta.
    pub from: Option<String>,
    pub to: String,
    /// Bytes of the delta's superblock and parts.
    pub delta_bytes: u64,
    /// Bytes a plain pull of the same change fetches: the archive objects
    /// of `to` not reachable from `from`.
    pub pull_bytes: u64,
    pub published: bool,
}

/// The delta's directory relative to the repository, as libostree names
/// it: modified base64 (`/` as `_`, no padding) of the binary checksums.
pub fn delta_dir(from: Option<&str>, to: &str) -> Result<PathBuf> {
    let b64 = |c: &str| -> Result<String> {
        let raw = hex::decode(c).with_context(|| format!("`{c}` is not a checksum"))?;
        Ok(base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(raw)
            .replace('/', "_"))
    };
    let to64 = b64(to)?;
    Ok(match from {
        Some(from) => {
            let f = b64(from)?;
            PathBuf::from(format!("deltas/{}/{}-{}", &f[..2], &f[2..], to64))
        }
        None => PathBuf::from(format!("deltas/{}/{}", &to64[..2], &to64[2..])),
    })
}

/// The size of a plain pull from `from` (or from nothing) to `to`.
pub fn plain_pull_bytes(repo: &ostree::Repo, from: Option<&str>, to: &str) -> Result<u64> {
    let want = repo
        .traverse_commit(to, 0, gio::Cancellable::NONE)
        .with_context(|| format!("walking commit {to}"))?;
    let have: HashSet<_> = match from {
        Some(from) => repo
            .traverse_commit(from, 0, gio::Cancellable::NONE)
            .with_context(|| format!("walking commit {from}"))?,
        None => HashSet::new(),
    };
    let mut total = 0;
    for object in want.difference(&have) {
        total += repo
            .query_object_storage_size(
                object.object_type(),
                object.checksum(),
                gio::Cancellable::NONE,
            )
            .with_context(|| format!("sizing object {}", object.checksum()))?;
    }
    Ok(total)
}

fn dir_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Generates the delta `from`→`to` and keeps it only when it is smaller
/// than a plain pull.
pub fn generate(
    repo: &ostree::Repo,
    repo_path: &Path,
    from: Option<&str>,
    to: &str,
) -> Result<DeltaDecision> {
    let dir = repo_path.join(delta_dir(from, to)?);
    let pull_bytes = plain_pull_bytes(repo, from, to)?;
    // libostree reads `params` unconditionally: an empty a{sv}, never NULL.
    let params = ostree::glib::VariantDict::new(None).end();
    repo.static_delta_generate(
        ostree::StaticDeltaGenerateOpt::Major,
        from,
        to,
        None,
        Some(&params),
        gio::Cancellable::NONE,
    )
    .with_context(|| {
        format!(
            "generating the static delta {}-{to}",
            from.unwrap_or("scratch")
        )
    })?;
    anyhow::ensure!(
        dir.is_dir(),
        "the static delta {}-{to} is not at {}",
        from.unwrap_or("scratch"),
        dir.display()
    );
    let delta_bytes = dir_bytes(&dir);
    let published = delta_bytes < pull_bytes;
    if !published {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    tracing::info!(
        from = from.unwrap_or("scratch"),
        to,
        delta_bytes,
        pull_bytes,
        published,
        "static delta"
    );
    Ok(DeltaDecision {
        from: from.map(str::to_string),
        to: to.to_string(),
        delta_bytes,
        pull_bytes,
        published,
    })
}

/// Removes deltas from or to commits the repository no longer holds.
pub fn prune_orphans(repo: &ostree::Repo, repo_path: &Path) -> Result<usize> {
    let names = repo
        .list_static_delta_names(gio::Cancellable::NONE)
        .context("listing static deltas")?;
    let mut removed = 0;
    for name in names {
        let (from, to) = match name.split_once('-') {
            Some((f, t)) => (Some(f), t),
            None => (None, name.as_str()),
        };
        let gone = |c: &str| -> Result<bool> { Ok(!crate::repo::has_commit(repo, c)?) };
        if gone(to)? || from.map(gone).transpose()?.unwrap_or(false) {
            let dir = repo_path.join(delta_dir(from, to)?);
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_dirs_use_modified_base64() {
        let to = "ff".repeat(32);
        let from = "00".repeat(32);
        let d = delta_dir(Some(&from), &to).unwrap();
        assert_eq!(
            d,
            PathBuf::from(format!(
                "deltas/AA/{}-{}",
                "A".repeat(41),
                "_".repeat(42) + "8"
            ))
        );
        let s = delta_dir(None, &to).unwrap();
        assert_eq!(
            s,
            PathBuf::from(format!("deltas/__/{}", "_".repeat(40) + "8"))
        );
        assert!(delta_dir(None, "zz").is_err());
    }
}
