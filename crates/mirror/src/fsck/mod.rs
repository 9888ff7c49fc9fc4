//! fsck: proves the store is whole, or names what is not.
//!
//! One check per file, each filling sections of [`FsckReport`]:
//! - [`blobs`]: every blob re-hashed against its digest (corrupt blobs).
//! - [`links`]: every link file parsed (malformed links) into the index the
//!   other checks walk.
//! - [`refs`]: tags → manifests → config, layers, index children and subject,
//!   all within the manifest's repository; blob links and referrer entries
//!   that point at nothing.
//! - [`garbage`]: orphan blobs, upload sessions and temp files.
//! - the repository index behind `_catalog`: every repository with a
//!   manifest has its marker (storage/fs_index.rs, storage/s3).
//! - [`repair`]: `--repair`, which removes garbage only (and adds missing
//!   index markers).
//!
//! Damage (exit 1) is what makes a pull fail or a push lie; garbage and
//! orphans only take space. A check that sees content missing asks the
//! storage again before reporting it, so content written during the run
//! (fsck works on a live store) is not reported as damage.

mod blobs;
mod garbage;
mod links;
mod refs;
mod repair;
mod report;

use std::time::{Duration, SystemTime};

pub use report::{
    BadLink, BrokenManifest, CorruptBlob, Counts, FsckReport, MissingReference, Orphan,
    RepairAction, RepairReport, SessionEntry, TempEntry, UnresolvedTag,
};

use crate::name::RepoName;
use crate::storage::{Storage, StorageError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsckError {
    /// A storage operation failed; `what` names the object.
    #[error("{what}")]
    Storage {
        what: String,
        #[source]
        source: StorageError,
    },
}

pub type Result<T, E = FsckError> = std::result::Result<T, E>;

/// Adds the object a storage call was about to its error.
pub(crate) trait Context<T> {
    fn about(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, StorageError> {
    fn about(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| FsckError::Storage {
            what: what(),
            source,
        })
    }
}

/// The default idle threshold: GC's default grace period.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(3600);

/// A session without its repository record younger than this may be one
/// being created (the record is written just after the directory).
pub const BROKEN_SESSION_MIN_AGE: Duration = Duration::from_secs(60);

/// What an upload session idle for `idle` is: `"broken"` (no readable
/// repository record, so it can never finish), `"stale"` (idle past the
/// threshold) or `"active"`. The report and repair both go by this.
pub(crate) fn session_state(has_repo: bool, idle: Duration, opts: &FsckOptions) -> &'static str {
    if !has_repo && idle > BROKEN_SESSION_MIN_AGE.min(opts.idle) {
        "broken"
    } else if idle > opts.idle {
        "stale"
    } else {
        "active"
    }
}

#[derive(Debug, Clone)]
pub struct FsckOptions {
    /// Repository-name prefixes mirrored from upstreams (`[[upstream]]
    /// prefix`): their content is fetched on demand, so references missing
    /// there are not damage.
    pub mirrored_prefixes: Vec<String>,
    /// Upload sessions and temp files idle for longer than this are stale
    /// garbage; younger ones may belong to a write in progress.
    pub idle: Duration,
}

impl Default for FsckOptions {
    fn default() -> Self {
        FsckOptions {
            mirrored_prefixes: Vec::new(),
            idle: DEFAULT_IDLE,
        }
    }
}

impl FsckOptions {
    fn is_mirrored(&self, repo: &RepoName) -> bool {
        self.mirrored_prefixes.iter().any(|p| {
            repo.as_str()
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

pub(crate) fn age(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

/// Checks the store with the default options.
pub async fn check(store: &dyn Storage) -> Result<FsckReport> {
    check_with(store, &FsckOptions::default()).await
}

/// Runs every check; the report says whether the store is damaged.
pub async fn check_with(store: &dyn Storage, opts: &FsckOptions) -> Result<FsckReport> {
    Ok(run(store, opts).await?.0)
}

/// Runs every check, then removes the garbage (see [`repair`]); the report's
/// sections are what was found before the repair.
pub async fn check_and_repair(store: &dyn Storage, opts: &FsckOptions) -> Result<FsckReport> {
    let (mut report, state) = run(store, opts).await?;
    // Removals happen under GC's exclusive store lock: no manifest PUT, mount
    // or upload finish can start depending on what repair re-checked and is
    // about to remove (the argument in docs/mirror.md, "Garbage collection").
    let guard = store
        .lock_exclusive()
        .await
        .about(|| "taking the store lock for repair".into())?;
    let done = repair::repair(store, opts, &report, &state).await;
    guard
        .release()
        .await
        .about(|| "releasing the store lock after repair".into())?;
    let done = done?;
    tracing::info!(
        removed = done.removed.len(),
        recovered = done.recovered.len(),
        kept = done.kept.len(),
        "fsck repair done"
    );
    report.repair = Some(done);
    Ok(report)
}

/// What the checks learnt that repair needs beyond the report.
struct State {
    index: links::LinkIndex,
    referenced: links::Referenced,
}

async fn run(store: &dyn Storage, opts: &FsckOptions) -> Result<(FsckReport, State)> {
    let mut report = FsckReport::default();
    let blobs = blobs::rehash(store, &mut report).await?;
    let scanned = store
        .scan_links()
        .await
        .about(|| "listing link files".into())?;
    let mut index = links::index(&scanned);
    report.malformed_links = std::mem::take(&mut index.malformed);
    let referenced = refs::check(store, opts, &index, &blobs, &mut report).await?;
    garbage::check(store, opts, &index, &blobs, &mut report).await?;
    report.unindexed_repos = store
        .unindexed_repos()
        .await
        .about(|| "checking the repository index".into())?
        .iter()
        .map(|r| r.to_string())
        .collect();
    report.finish();
    tracing::info!(
        blobs = report.blobs_checked,
        bytes = report.bytes_checked,
        damage = report.counts.damage,
        warnings = report.counts.warnings,
        garbage = report.counts.garbage,
        orphans = report.counts.orphans,
        "fsck done"
    );
    Ok((report, State { index, referenced }))
}
