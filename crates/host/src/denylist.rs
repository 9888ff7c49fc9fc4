//! Commits the health check rolled back, per stateroot, in
//! `/var/lib/corral/denied.json`. Without it the next `upgrade` would
//! offer the same commit again and deploy it with a fresh health record,
//! and the daily timer would loop forever between a bad commit and a
//! rollback (the loop fedora-coreos-tracker#247 describes for Zincati).
//!
//! `upgrade` skips a denied commit; an explicit `deploy` of it takes it
//! off the list, and deploying a newer commit drops the older entries,
//! which an upgrade would refuse as downgrades anyway.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ostree::glib;
use serde::{Deserialize, Serialize};

use crate::sysroot::Host;

/// Where the list lives, under the stateroot's `/var`.
pub const STATE_PATH: &str = "lib/corral/denied.json";

/// Why a commit is denied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DenyCause {
    /// The health check (or GRUB's boot counter) rolled it back.
    #[default]
    RolledBack,
    /// It was staged and libostree did not finalize it at shutdown.
    NotFinalized,
}

impl DenyCause {
    /// `"rolled back"`, `"not finalized at shutdown"`.
    pub fn says(self) -> &'static str {
        match self {
            DenyCause::RolledBack => "rolled back",
            DenyCause::NotFinalized => "not finalized at shutdown",
        }
    }
}

/// A commit that was rolled back or not finalized, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedCommit {
    pub checksum: String,
    pub version: Option<String>,
    /// The commit's own timestamp: a newer commit deployed later
    /// supersedes the entry.
    pub timestamp: u64,
    /// The deployment (`CHECKSUM.SERIAL`) that failed.
    pub deployment: String,
    /// When it was rolled back, or found not finalized.
    pub at: u64,
    pub reason: String,
    #[serde(default)]
    pub cause: DenyCause,
}

/// The whole file, keyed by commit checksum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denylist {
    pub commits: BTreeMap<String, DeniedCommit>,
}

impl Denylist {
    pub fn path(host: &Host, osname: &str) -> PathBuf {
        host.var_dir(osname).join(STATE_PATH)
    }

    pub fn load(path: &Path) -> Result<Denylist> {
        crate::state_file::load(path)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::state_file::save(self, path)
    }

    pub fn get(&self, checksum: &str) -> Option<&DeniedCommit> {
        self.commits.get(checksum)
    }

    pub fn insert(&mut self, entry: DeniedCommit) {
        self.commits.insert(entry.checksum.clone(), entry);
    }

    /// Forgets `checksum` (deployed on purpose) and every entry older
    /// than `timestamp` (superseded by that newer deployment). Returns
    /// the checksums removed.
    pub fn clear_for_deploy(&mut self, checksum: &str, timestamp: u64) -> Vec<String> {
        let gone: Vec<String> = self
            .commits
            .values()
            .filter(|e| e.checksum == checksum || e.timestamp < timestamp)
            .map(|e| e.checksum.clone())
            .collect();
        for c in &gone {
            self.commits.remove(c);
        }
        gone
    }
}

/// The version and timestamp of a commit in the repository, read with
/// libostree alone (the deployment being denied is always there).
pub fn commit_version_and_time(
    repo: &ostree::Repo,
    checksum: &str,
) -> Result<(Option<String>, u64)> {
    let (commit, _) = repo
        .load_commit(checksum)
        .with_context(|| format!("reading commit {checksum}"))?;
    let meta = glib::VariantDict::new(Some(&commit.child_value(0)));
    let version = meta.lookup::<String>("version").ok().flatten();
    Ok((version, ostree::commit_get_timestamp(&commit)))
}

/// Records that `deployment` was rolled back for `reason` at `at`.
pub fn deny(
    host: &Host,
    osname: &str,
    deployment: &ostree::Deployment,
    reason: &str,
    at: u64,
) -> Result<DeniedCommit> {
    let checksum = deployment.csum().to_string();
    let (version, timestamp) = commit_version_and_time(&host.repo(), &checksum)?;
    let entry = DeniedCommit {
        checksum,
        version,
        timestamp,
        deployment: crate::health::key(deployment),
        at,
        reason: reason.to_string(),
        cause: DenyCause::RolledBack,
    };
    deny_entry(host, osname, entry.clone())?;
    Ok(entry)
}

/// Adds `entry` to the list of `osname`.
pub fn deny_entry(host: &Host, osname: &str, entry: DeniedCommit) -> Result<()> {
    let path = Denylist::path(host, osname);
    let mut list = Denylist::load(&path)?;
    tracing::info!(commit = %entry.checksum, "denied: {}", entry.reason);
    list.insert(entry);
    list.save(&path)
}

/// After `checksum` (from `timestamp`) was deployed: see
/// [`Denylist::clear_for_deploy`]. Returns the checksums removed.
pub fn cleared_by_deploy(
    host: &Host,
    osname: &str,
    checksum: &str,
    timestamp: u64,
) -> Result<Vec<String>> {
    let path = Denylist::path(host, osname);
    let mut list = Denylist::load(&path)?;
    let gone = list.clear_for_deploy(checksum, timestamp);
    if !gone.is_empty() {
        list.save(&path)?;
        for c in &gone {
            tracing::info!(commit = %c, "no longer denied");
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(checksum: &str, timestamp: u64) -> DeniedCommit {
        DeniedCommit {
            checksum: checksum.into(),
            version: None,
            timestamp,
            deployment: format!("{checksum}.0"),
            at: 1,
            reason: "2 failed boots".into(),
            cause: DenyCause::RolledBack,
        }
    }

    #[test]
    fn a_list_written_before_causes_reads_as_rollbacks() {
        let old = r#"{"commits": {"abc": {"checksum": "abc", "version": null, "timestamp": 5,
            "deployment": "abc.0", "at": 7, "reason": "2 failed boots"}}}"#;
        let l: Denylist = serde_json::from_str(old).unwrap();
        assert_eq!(l.get("abc"), Some(&entry_at("abc", 5, 7)));
    }

    fn entry_at(checksum: &str, timestamp: u64, at: u64) -> DeniedCommit {
        DeniedCommit {
            at,
            ..entry(checksum, timestamp)
        }
    }

    #[test]
    fn a_deploy_clears_its_commit_and_older_ones_only() {
        let mut l = Denylist::default();
        l.insert(entry("old", 10));
        l.insert(entry("bad", 20));
        l.insert(entry("newer", 30));
        // deploying a commit from time 20 on purpose
        assert_eq!(l.clear_for_deploy("bad", 20), vec!["bad", "old"]);
        assert_eq!(l.commits.keys().collect::<Vec<_>>(), vec!["newer"]);
        // an older commit does not supersede a newer entry
        assert!(l.clear_for_deploy("other", 5).is_empty());
        assert!(l.get("newer").is_some());
    }

    #[test]
    fn the_list_round_trips_through_an_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/lib/corral/denied.json");
        assert_eq!(Denylist::load(&path).unwrap(), Denylist::default());
        let mut l = Denylist::default();
        l.insert(entry("abc", 10));
        l.save(&path).unwrap();
        assert_eq!(Denylist::load(&path).unwrap(), l);
        assert!(!dir.path().join("var/lib/corral/denied.json.tmp").exists());
    }
}
