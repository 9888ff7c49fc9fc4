//! Garbage collection: mark every manifest reachable from a tag (through
//! index children and referrers) and the blobs they use; sweep what is
//! unmarked and older than the grace period. The grace period makes it safe
//! online: a blob or manifest pushed but not yet referenced is young.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::api::manifests::references;
use crate::name::{Digest, RepoName};
use crate::storage::{Result, Storage};

#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    /// `repo@digest` of manifest links removed (or that would be).
    pub manifests: Vec<String>,
    /// Blobs removed (or that would be).
    pub blobs: Vec<String>,
    pub bytes: u64,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub young_kept: usize,
    /// Idle upload sessions and temporary files removed (or that would be).
    pub idle: Vec<String>,
    pub dry_run: bool,
}

fn older_than(t: SystemTime, grace: Duration) -> bool {
    SystemTime::now().duration_since(t).unwrap_or_default() > grace
}

/// Marks what `repo` references; returns (manifests kept, blobs used).
async fn mark_repo(
    store: &dyn Storage,
    repo: &RepoName,
    grace: Duration,
) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
    let linked = store.list_manifests(repo).await?;
    let mut stack: Vec<Digest> = Vec::new();
    for t in store.list_tags(repo).await? {
        if let Some((d, _)) = store.get_tag(repo, &t).await? {
            stack.push(d);
        }
    }
    // Young manifests are roots too: an index's children are pushed first.
    stack.extend(
        linked
            .iter()
            .filter(|(_, t)| !older_than(*t, grace))
            .map(|(d, _)| d.clone()),
    );
    let mut manifests = HashSet::new();
    let mut blobs = HashSet::new();
    while let Some(d) = stack.pop() {
        if !manifests.insert(d.clone()) {
            continue;
        }
        for r in store.list_referrers(repo, &d).await? {
            if let Some(rd) = r
                .get("digest")
                .and_then(|x| x.as_str())
                .and_then(|x| x.parse().ok())
            {
                stack.push(rd);
            }
        }
        let Some(m) = store.get_manifest(repo, &d).await? else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.body) else {
            continue;
        };
        let (b, children, _) = references(&v);
        blobs.extend(b);
        stack.extend(children);
    }
    Ok((manifests, blobs))
}

pub async fn collect(store: &dyn Storage, grace: Duration, dry_run: bool) -> Result<GcReport> {
    let mut report = GcReport {
        dry_run,
        ..Default::default()
    };
    let mut live: HashSet<Digest> = HashSet::new();
    let all_blobs = store.list_blobs().await?;
    let mtimes: std::collections::HashMap<Digest, SystemTime> = all_blobs.iter().cloned().collect();
    for repo in store.list_repos().await? {
        let (manifests, blobs) = mark_repo(store, &repo, grace).await?;
        for (d, t) in store.list_manifests(&repo).await? {
            if manifests.contains(&d) || !older_than(t, grace) {
                continue;
            }
            report.manifests.push(format!("{repo}@{d}"));
            if !dry_run {
                store.delete_manifest(&repo, &d).await?;
            }
        }
        // Blob links no kept manifest uses go too (once old).
        for d in store.list_blob_links(&repo).await? {
            let unused = !blobs.contains(&d) && !manifests.contains(&d) && !dry_run;
            if unused && mtimes.get(&d).is_none_or(|t| older_than(*t, grace)) {
                store.unlink_blob(&repo, &d).await?;
            }
        }
        live.extend(manifests);
        live.extend(blobs);
    }
    let mut swept = BTreeSet::new();
    for (d, t) in all_blobs {
        if live.contains(&d) {
            continue;
        }
        if !older_than(t, grace) {
            report.young_kept += 1;
            continue;
        }
        report.bytes += store.blob_size(&d).await?.unwrap_or(0);
        swept.insert(d.to_string());
        if !dry_run {
            store.delete_blob(&d).await?;
        }
    }
    report.blobs = swept.into_iter().collect();
    // Abandoned uploads and leftovers of interrupted writes, idle past the
    // grace period (an active session or download keeps writing).
    report.idle = store.purge_idle(grace, dry_run).await?;
    tracing::info!(
        idle = report.idle.len(),
        manifests = report.manifests.len(),
        blobs = report.blobs.len(),
        bytes = report.bytes,
        dry_run,
        "gc done"
    );
    Ok(report)
}
