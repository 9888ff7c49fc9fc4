//! Garbage collection that is safe while clients push (the argument is in
//! docs/mirror.md, "Garbage collection").
//!
//! GC marks every manifest reachable from a tag (through index children and
//! referrers) and the blobs they use, once without the store lock (to read
//! and parse the manifests while writers go on) and again under the
//! exclusive store lock ([`Storage::lock`]), which every operation that
//! depends on existing content holds shared. The second mark lists
//! everything afresh and only reuses parsed manifests, which never change
//! under their digest; it decides, and the sweep runs under the same lock.
//! Unmarked manifest links, blob links and blobs go once older than the
//! grace period; a young blob link keeps its blob. Every removal is in the
//! [`GcReport`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::manifest::references;
use crate::name::{Digest, RepoName};
use crate::storage::{Result, Storage, StoreGuard};

#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    /// `repo@digest` of manifest links removed (or that would be), with
    /// their entries in referrers lists.
    pub manifests: Vec<String>,
    /// `repo@digest` of blob links removed (or that would be).
    pub blob_links: Vec<String>,
    /// Blobs removed (or that would be).
    pub blobs: Vec<String>,
    pub bytes: u64,
    /// Unreferenced blobs kept because they, or a link to them, are younger
    /// than the grace period.
    pub young_kept: usize,
    /// Idle upload sessions and temporary files removed (or that would be).
    pub idle: Vec<String>,
    /// Lock objects of crashed processes removed (S3).
    pub stale_locks: Vec<String>,
    /// How long GC held the exclusive store lock (writers waited), in ms.
    pub locked_ms: u64,
    pub dry_run: bool,
}

/// References of parsed manifests: (blobs, child manifests). Keyed by
/// digest alone: content addressed, so true in every repository and in
/// every pass.
type Parsed = HashMap<Digest, (Vec<Digest>, Vec<Digest>)>;

/// What marking one repository keeps.
struct RepoMark {
    manifests: HashSet<Digest>,
    blobs: HashSet<Digest>,
}

/// Ages measured against one instant of the store's clock.
#[derive(Clone, Copy)]
struct Ages {
    now: SystemTime,
    grace: Duration,
}

impl Ages {
    fn young(&self, t: SystemTime) -> bool {
        self.now.duration_since(t).unwrap_or_default() <= self.grace
    }
}

/// Marks what `repo` references: the targets of its tags and its young
/// manifest links (an index's children are pushed before the index), and
/// from them children, referrers and blobs.
async fn mark_repo(
    store: &dyn Storage,
    repo: &RepoName,
    linked: &[(Digest, SystemTime)],
    ages: Ages,
    parsed: &mut Parsed,
) -> Result<RepoMark> {
    let mut stack: Vec<Digest> = Vec::new();
    for t in store.list_tags(repo).await? {
        if let Some((d, _)) = store.get_tag(repo, &t).await? {
            stack.push(d);
        }
    }
    stack.extend(
        linked
            .iter()
            .filter(|(_, t)| ages.young(*t))
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
        if !parsed.contains_key(&d) {
            let Some(m) = store.get_manifest(repo, &d).await? else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.body) else {
                continue;
            };
            let (b, children, _) = references(&v);
            parsed.insert(d.clone(), (b, children));
        }
        let (b, children) = &parsed[&d];
        blobs.extend(b.iter().cloned());
        stack.extend(children.iter().cloned());
    }
    Ok(RepoMark { manifests, blobs })
}

/// Runs GC: removes (or with `dry_run` lists) what no tag reaches and is
/// older than `grace`. A real run holds the store's exclusive lock while it
/// decides and sweeps, so writers wait for it; a dry run takes no lock.
pub async fn collect(store: &dyn Storage, grace: Duration, dry_run: bool) -> Result<GcReport> {
    let mut parsed = Parsed::new();
    if dry_run {
        let ages = Ages {
            now: SystemTime::now(),
            grace,
        };
        return sweep(store, ages, &mut parsed, None).await;
    }
    // Unlocked pass: reads and parses the manifests while writers go on,
    // so the locked pass only lists. Its decisions are thrown away.
    let warm = Ages {
        now: SystemTime::now(),
        grace,
    };
    for repo in store.list_repos().await? {
        let linked = store.list_manifests(&repo).await?;
        mark_repo(store, &repo, &linked, warm, &mut parsed).await?;
    }
    let started = std::time::Instant::now();
    let guard = store.lock_exclusive().await?;
    let locked_at = std::time::Instant::now();
    tracing::debug!(
        waited_ms = locked_at.duration_since(started).as_millis() as u64,
        "gc holds the store lock"
    );
    let ages = Ages {
        now: guard.now(),
        grace,
    };
    let result = sweep(store, ages, &mut parsed, Some(&guard)).await;
    // Released in order even on error (a dropped S3 guard would only be
    // deleted in the background).
    let released = guard.release().await;
    let mut report = result?;
    released?;
    report.locked_ms = locked_at.elapsed().as_millis() as u64;
    tracing::info!(locked_ms = report.locked_ms, "gc released the store lock");
    Ok(report)
}

/// Marks and sweeps. With a guard (the exclusive lock), removes and checks
/// the lock is still held before each removal; without, only lists.
async fn sweep(
    store: &dyn Storage,
    ages: Ages,
    parsed: &mut Parsed,
    guard: Option<&StoreGuard>,
) -> Result<GcReport> {
    let dry_run = guard.is_none();
    let mut report = GcReport {
        dry_run,
        stale_locks: guard
            .map(|g| g.stale_removed().to_vec())
            .unwrap_or_default(),
        ..Default::default()
    };
    let may_remove = || guard.map_or(Ok(false), |g| g.check().map(|()| true));
    // Listed after the lock is taken: nothing that depends on existing
    // content changes until the sweep is over.
    let all_blobs = store.list_blobs().await?;
    // Blobs kept manifests use, and blobs only a young link keeps.
    let mut live: HashSet<Digest> = HashSet::new();
    let mut young_linked: HashSet<Digest> = HashSet::new();
    // Repositories with only blob links too: their links keep blobs.
    for repo in store.list_linking_repos().await? {
        let linked = store.list_manifests(&repo).await?;
        let mark = mark_repo(store, &repo, &linked, ages, parsed).await?;
        for (d, t) in &linked {
            if mark.manifests.contains(d) || ages.young(*t) {
                live.insert(d.clone());
                continue;
            }
            report.manifests.push(format!("{repo}@{d}"));
            if may_remove()? {
                store.delete_manifest(&repo, d).await?;
            }
        }
        // A link goes when no kept manifest uses it and it is old by its
        // own time: a push refreshes the links it makes or reuses.
        for (d, t) in store.list_blob_links(&repo).await? {
            if mark.blobs.contains(&d) || mark.manifests.contains(&d) {
                continue;
            }
            if ages.young(t) {
                young_linked.insert(d);
                continue;
            }
            report.blob_links.push(format!("{repo}@{d}"));
            if may_remove()? {
                store.unlink_blob(&repo, &d).await?;
            }
        }
        // Referenced blobs stay even where the link is missing.
        live.extend(mark.manifests);
        live.extend(mark.blobs);
    }
    let mut swept = BTreeSet::new();
    for (d, t) in all_blobs {
        if live.contains(&d) {
            continue;
        }
        if ages.young(t) || young_linked.contains(&d) {
            report.young_kept += 1;
            continue;
        }
        report.bytes += store.blob_size(&d).await?.unwrap_or(0);
        swept.insert(d.to_string());
        if may_remove()? {
            store.delete_blob(&d).await?;
        }
    }
    report.blobs = swept.into_iter().collect();
    // Abandoned uploads and leftovers of interrupted writes, idle past the
    // grace period. Under the lock, so no upload is finishing meanwhile.
    if !dry_run {
        may_remove()?;
    }
    report.idle = store.purge_idle(ages.grace, dry_run).await?;
    tracing::info!(
        idle = report.idle.len(),
        manifests = report.manifests.len(),
        blob_links = report.blob_links.len(),
        blobs = report.blobs.len(),
        bytes = report.bytes,
        stale_locks = report.stale_locks.len(),
        dry_run,
        "gc done"
    );
    Ok(report)
}
