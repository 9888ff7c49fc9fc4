//! Pulls from a remote into the sysroot's repository: a progress bar with
//! bytes, objects and a rate when stderr is a terminal, a watchdog that
//! stops a transfer which makes no progress, and the statistics of what
//! was moved.
//!
//! A pull writes objects only; no deployment changes. When one is killed,
//! libostree keeps what it fetched in the repository's staging directory
//! and the next pull starts from there.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use ostree::gio::{self, prelude::*};
use ostree::glib;
use serde::Serialize;

use crate::error::HostError;

/// Marks progress for [`run_watched`]'s watchdog.
pub type Alive = Arc<dyn Fn() + Send + Sync>;

/// Runs `work` on a thread of its own, with its own GLib main context,
/// and stops it when it shows no progress (calls of the [`Alive`] it is
/// given) for `stall`: the cancellable is triggered, and if libostree does
/// not come back within a grace period (its HTTP fetcher does not always
/// watch the cancellable), the thread is left behind and the stall is
/// reported; the caller is expected to end soon after.
pub fn run_watched<T, F>(stall: Duration, what: &str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&gio::Cancellable, Alive) -> Result<T> + Send + 'static,
{
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let alive: Alive = {
        let last = last.clone();
        Arc::new(move || last.store(start.elapsed().as_millis() as u64, Ordering::Release))
    };
    let cancellable = gio::Cancellable::new();
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let cancellable = cancellable.clone();
        std::thread::Builder::new()
            .name("corral-host-fetch".into())
            .spawn(move || {
                let ctx = glib::MainContext::new();
                let result = ctx
                    .with_thread_default(|| work(&cancellable, alive))
                    .unwrap_or_else(|e| Err(anyhow::anyhow!("acquiring a main context: {e}")));
                let _ = tx.send(result);
            })
            .context("starting the fetch thread")?;
    }
    let stalled = || HostError::Stalled {
        what: what.to_string(),
        seconds: stall.as_secs(),
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(result) => return result,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the fetch thread ended without a result while {what}")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        let idle = start.elapsed().as_millis() as u64 - last.load(Ordering::Acquire);
        if idle > stall.as_millis() as u64 {
            cancellable.cancel();
            return match rx.recv_timeout(Duration::from_secs(5)) {
                // whatever it says, it was stopped for stalling
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(anyhow::Error::new(stalled()).context(format!("{e:#}"))),
                Err(_) => Err(stalled().into()),
            };
        }
    }
}

/// What to pull.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub remote: String,
    pub ostree_ref: String,
    /// Pull this commit of the ref instead of its newest.
    pub commit: Option<String>,
    /// Commit objects only (for history and metadata).
    pub commit_only: bool,
    /// Parent commits to fetch too (-1: all).
    pub depth: i32,
    pub no_static_deltas: bool,
    /// Refuse a commit older than the one the local ref points at.
    pub timestamp_check: bool,
    /// Only ask what a delta would move (needs a static delta).
    pub dry_run: bool,
    pub stall: Duration,
}

impl PullRequest {
    pub fn new(remote: &str, ostree_ref: &str, stall: Duration) -> PullRequest {
        PullRequest {
            remote: remote.to_string(),
            ostree_ref: ostree_ref.to_string(),
            commit: None,
            commit_only: false,
            depth: 0,
            no_static_deltas: false,
            timestamp_check: false,
            dry_run: false,
            stall,
        }
    }
}

/// What a pull moved.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PullStats {
    pub bytes: u64,
    pub objects: u32,
    pub metadata_objects: u32,
    pub delta_parts: u32,
    /// Sum of the delta parts' compressed and uncompressed sizes, when a
    /// delta was used (also filled in by a dry run).
    pub delta_bytes: u64,
    pub delta_unpacked_bytes: u64,
    pub seconds: f64,
}

impl PullStats {
    pub fn used_delta(&self) -> bool {
        self.delta_parts > 0 || self.delta_bytes > 0
    }
}

fn bar_for(show: bool) -> Option<ProgressBar> {
    if !show || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {bytes} ({binary_bytes_per_sec}) {elapsed}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

/// Pulls per `req` into `repo`.
pub fn pull(repo: &ostree::Repo, req: &PullRequest, show_progress: bool) -> Result<PullStats> {
    crate::remote::require(repo, &req.remote)?;
    let options = glib::VariantDict::new(None);
    options.insert("refs", vec![req.ostree_ref.clone()]);
    if let Some(c) = &req.commit {
        options.insert("override-commit-ids", vec![c.clone()]);
    }
    let mut flags = ostree::RepoPullFlags::NONE;
    if req.commit_only {
        flags |= ostree::RepoPullFlags::COMMIT_ONLY;
    }
    options.insert("flags", flags.bits() as i32);
    options.insert("depth", req.depth);
    options.insert("disable-static-deltas", req.no_static_deltas);
    options.insert("timestamp-check", req.timestamp_check);
    if req.dry_run {
        // libostree answers a dry run only from a static delta's superblock
        options.insert("dry-run", true);
        options.insert("require-static-deltas", true);
    }
    options.insert("n-network-retries", 2u32);
    let options = options.end();

    let url = repo
        .remote_get_url(&req.remote)
        .map(|u| u.to_string())
        .unwrap_or_default();
    let what = format!("pulling {}:{} from {url}", req.remote, req.ostree_ref);
    let bar = bar_for(show_progress && !req.commit_only && !req.dry_run);
    let repo = repo.clone();
    let remote = req.remote.clone();
    let context = what.clone();
    run_watched(req.stall, &what, move |cancellable, alive| {
        let progress = ostree::AsyncProgress::new();
        {
            let bar = bar.clone();
            progress.connect_changed(move |p| {
                alive();
                if let Some(bar) = &bar {
                    let parts = p.uint("total-delta-parts");
                    bar.set_position(p.uint64("bytes-transferred"));
                    if parts > 0 {
                        bar.set_message(format!(
                            "delta part {}/{}",
                            p.uint("fetched-delta-parts"),
                            parts
                        ));
                    } else {
                        bar.set_message(format!(
                            "{}/{} objects",
                            p.uint("fetched"),
                            p.uint("requested")
                        ));
                    }
                }
            });
        }
        let started = Instant::now();
        let result = repo.pull_with_options(&remote, &options, Some(&progress), Some(cancellable));
        let stats = PullStats {
            bytes: progress.uint64("bytes-transferred"),
            objects: progress.uint("fetched"),
            metadata_objects: progress.uint("metadata-fetched"),
            delta_parts: progress.uint("fetched-delta-parts"),
            delta_bytes: progress.uint64("total-delta-part-size"),
            delta_unpacked_bytes: progress.uint64("total-delta-part-usize"),
            seconds: started.elapsed().as_secs_f64(),
        };
        progress.finish();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        result.with_context(|| context)?;
        Ok(stats)
    })
}
