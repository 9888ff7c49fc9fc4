//! The stream file the website reads: `REPO/streams/<name>.json`, the
//! stream's versions newest first, each with its commit, date and the
//! package diff against the version below (docs/site.md, "Atomic Host").
//!
//! The mirror serves the repository as bytes and links no libostree, so
//! what the page shows is published here, beside the repository, written
//! whole after every compose. The file's format and its whole-file write
//! are corral-ostree's ([`corral_ostree::stream_file`]), shared with
//! `corral disk build`, which records its images in the same file.
//!
//! Retention prunes old commits; a version whose parent is gone keeps the
//! diff the previous file recorded for it, when it was still computable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
pub use corral_ostree::stream_file::{
    path, read, write, Change, Diff, PublishedStream, PublishedVersion,
};

use crate::repo::CommitInfo;

/// What the stream file says, given the ref's `history` (newest first, as
/// far as the repository holds it) and the file as it was (`previous`).
pub fn build(
    name: &str,
    ostree_ref: &str,
    description: &str,
    key: Option<&str>,
    history: &[CommitInfo],
    previous: Option<&PublishedStream>,
) -> Result<PublishedStream> {
    let old_diffs: BTreeMap<&str, &Diff> = previous
        .map(|p| {
            p.versions
                .iter()
                .map(|v| (v.commit.as_str(), &v.diff))
                .collect()
        })
        .unwrap_or_default();
    let mut versions = Vec::with_capacity(history.len());
    for (i, c) in history.iter().enumerate() {
        let diff = match (history.get(i + 1), &c.parent) {
            (Some(below), _) => {
                corral_ostree::diff::diff_packages(&below.packages, &c.packages).into()
            }
            (None, None) => corral_ostree::diff::diff_packages(&[], &c.packages).into(),
            // the parent was pruned: what was computed while it existed
            (None, Some(_)) => old_diffs
                .get(c.checksum.as_str())
                .map(|d| (*d).clone())
                .unwrap_or_default(),
        };
        versions.push(PublishedVersion {
            version: c.version.clone().unwrap_or_else(|| c.checksum.clone()),
            commit: c.checksum.clone(),
            date: rfc3339(c.timestamp)?,
            diff,
        });
    }
    Ok(PublishedStream {
        name: name.to_string(),
        ostree_ref: ostree_ref.to_string(),
        description: description.to_string(),
        key: key.map(str::to_string),
        versions,
        disk_images: previous.map(|p| p.disk_images.clone()).unwrap_or_default(),
        // what `corral release` pushed; it names its own commit
        os_image: previous.and_then(|p| p.os_image.clone()),
    })
}

fn rfc3339(timestamp: u64) -> Result<String> {
    i64::try_from(timestamp)
        .ok()
        .and_then(corral_oci::rfc3339)
        .with_context(|| format!("commit timestamp {timestamp} is out of range"))
}

/// Rewrites stream `name`'s file in `repo` from the ref's history.
pub fn update(
    ostree: &ostree::Repo,
    repo: &Path,
    name: &str,
    ostree_ref: &str,
    description: &str,
    key: Option<&str>,
) -> Result<PathBuf> {
    let history = crate::repo::history(ostree, ostree_ref)?;
    let file = path(repo, name);
    let previous = read(&file);
    let stream = build(
        name,
        ostree_ref,
        description,
        key,
        &history,
        previous.as_ref(),
    )?;
    write(&file, &stream).with_context(|| format!("publishing the stream file of {name}"))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(n: u8, parent: Option<u8>, packages: &[&str]) -> CommitInfo {
        CommitInfo {
            checksum: format!("{n:02x}").repeat(32),
            version: Some(format!("43.20260102.{n}")),
            timestamp: 1_767_312_000 + u64::from(n),
            parent: parent.map(|p| format!("{p:02x}").repeat(32)),
            inputhash: None,
            packages: packages.iter().map(|p| p.to_string()).collect(),
            reason: None,
        }
    }

    #[test]
    fn versions_newest_first_with_the_diff_against_the_one_below() {
        let history = [
            commit(
                2,
                Some(1),
                &["corral-hello-1.1-1.noarch", "corral-kernel-6.1.0-1.noarch"],
            ),
            commit(
                1,
                None,
                &["corral-hello-1.0-1.noarch", "corral-kernel-6.1.0-1.noarch"],
            ),
        ];
        let s = build("sample", "r/43", "", Some("ABCD"), &history, None).unwrap();
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["ref"], "r/43");
        assert_eq!(v["key"], "ABCD");
        assert_eq!(v["versions"][0]["version"], "43.20260102.2");
        assert_eq!(v["versions"][0]["date"], "2026-01-02T00:00:02Z");
        assert_eq!(
            v["versions"][0]["diff"],
            serde_json::json!({"added": [], "removed": [], "changed": [
                {"name": "corral-hello.noarch", "from": "1.0-1", "to": "1.1-1"}]})
        );
        // the stream's first commit: everything is new
        assert_eq!(
            v["versions"][1]["diff"]["added"],
            serde_json::json!(["corral-hello-1.0-1.noarch", "corral-kernel-6.1.0-1.noarch"])
        );
    }

    #[test]
    fn a_pruned_parent_keeps_the_diff_recorded_while_it_existed() {
        let full = [
            commit(3, Some(2), &["a-3-1.noarch"]),
            commit(2, Some(1), &["a-2-1.noarch"]),
            commit(1, None, &["a-1-1.noarch"]),
        ];
        let mut before = build("s", "r", "", None, &full[1..], None).unwrap();
        before.disk_images = vec![corral_ostree::stream_file::PublishedDiskImage {
            name: "s.qcow2".into(),
            ..Default::default()
        }];
        before.os_image = Some(corral_ostree::stream_file::PublishedOsImage {
            repository: "127.0.0.1:5000/os/s".into(),
            digest: format!("sha256:{}", "d".repeat(64)),
            ..Default::default()
        });
        // commit 1 pruned by retention
        let after = build("s", "r", "", None, &full[..2], Some(&before)).unwrap();
        assert_eq!(after.versions.len(), 2);
        assert_eq!(after.versions[1].diff, before.versions[0].diff);
        assert_eq!(after.versions[1].diff.changed[0].to, "2-1");
        assert_eq!(after.disk_images, before.disk_images);
        assert_eq!(after.os_image, before.os_image);
        // nothing recorded: no diff rather than a made-up one
        let fresh = build("s", "r", "", None, &full[..2], None).unwrap();
        assert_eq!(fresh.versions[1].diff, Diff::default());
    }
}
