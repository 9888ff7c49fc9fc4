//! `upgrade` and `deploy`: the checked path from a remote's signed
//! summary to a new default deployment. Nothing in the sysroot changes
//! until the commit is fetched, its signature checked and the space for
//! its deployment found.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use corral_ostree::commit::{commit_info, history, CommitInfo};
use corral_ostree::diff::{diff_packages, PackageDiff};
use serde::Serialize;

use crate::config::HostConfig;
use crate::denylist::{self, Denylist};
use crate::deploy;
use crate::error::HostError;
use crate::etc_merge::{self, EtcMerge};
use crate::pull::{pull, PullRequest, PullStats};
use crate::signature::{self, SignatureState};
use crate::space;
use crate::summary;
use crate::sysroot::{Host, Origin};

/// A commit as reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitRef {
    pub checksum: String,
    pub version: Option<String>,
    pub timestamp: u64,
}

impl CommitRef {
    pub fn of(info: &CommitInfo) -> CommitRef {
        CommitRef {
            checksum: info.checksum.clone(),
            version: info.version.clone(),
            timestamp: info.timestamp,
        }
    }

    /// `VERSION (abcdef012345)` or the checksum.
    pub fn label(&self) -> String {
        let short = &self.checksum[..self.checksum.len().min(12)];
        match &self.version {
            Some(v) => format!("{v} ({short})"),
            None => short.to_string(),
        }
    }
}

/// Options shared by `upgrade` and `deploy`.
#[derive(Debug, Clone, Default)]
pub struct UpgradeOptions {
    pub osname: Option<String>,
    pub check: bool,
    pub download_only: bool,
    pub allow_downgrade: bool,
    pub no_static_deltas: bool,
    pub keep: Option<usize>,
    pub stall: Option<Duration>,
    pub progress: bool,
    /// Write the deployment at once even on a booted host, instead of
    /// staging it for finalization at shutdown.
    pub no_stage: bool,
}

/// A deployment written.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub from: Option<CommitRef>,
    pub to: CommitRef,
    pub signature: SignatureState,
    pub pull: PullStats,
    /// What the static delta said the objects unpack to, checked against
    /// the free space before the pull (none without a delta).
    pub delta_unpacked_bytes: Option<u64>,
    pub packages: PackageDiff,
    pub etc: EtcMerge,
    pub rollback: Option<String>,
    pub dropped: Vec<String>,
    /// Denied commits this deployment took off the list: itself, deployed
    /// on purpose, or older ones it supersedes.
    pub undenied: Vec<String>,
    /// Staged: libostree writes it at shutdown, merging `/etc` then.
    pub staged: bool,
}

/// What `upgrade` or `deploy` came to.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum UpgradeOutcome {
    /// The origin's newest commit is deployed already.
    UpToDate {
        commit: CommitRef,
        pending: bool,
    },
    /// `--check`: there is an update.
    Available {
        from: CommitRef,
        to: CommitRef,
        packages: PackageDiff,
        delta: bool,
    },
    /// The origin's newest commit was rolled back by the health check on
    /// this host; it is not offered again (`deploy` it to try again).
    Denied {
        commit: CommitRef,
        /// When it was rolled back or found not finalized.
        at: u64,
        date: String,
        reason: String,
        cause: crate::denylist::DenyCause,
    },
    /// `--download-only`: fetched and verified, not deployed.
    Downloaded {
        to: CommitRef,
        pull: PullStats,
    },
    Deployed(Box<DeployReport>),
}

struct Context_<'a> {
    host: &'a Host,
    osname: String,
    merge: Option<ostree::Deployment>,
    origin: Origin,
    config: HostConfig,
    stall: Duration,
}

fn context<'a>(
    host: &'a Host,
    opts: &UpgradeOptions,
    origin: Option<Origin>,
) -> Result<Context_<'a>> {
    let osname = host.osname(opts.osname.as_deref())?;
    let merge = host.merge_deployment(Some(&osname));
    let origin = match (origin, &merge) {
        (Some(o), _) => o,
        (None, Some(m)) => match crate::image_source::ImageOrigin::of(m) {
            Some(image) => bail!(
                "deployment {} comes from the image {}: `corral host upgrade` and `rebase` update it, this command follows OSTree remotes (deploy with --origin REMOTE:REF to move back to one)",
                m.csum(),
                image.source
            ),
            None => Host::origin(m).with_context(|| {
                format!(
                    "deployment {} has no REMOTE:REF origin to update from; deploy with --origin REMOTE:REF",
                    m.csum()
                )
            })?,
        },
        (None, None) => bail!(
            "{} has no deployment of {osname} yet; make the first with `corral host deploy --origin REMOTE:REF`",
            host.path().display()
        ),
    };
    let mut config = match &merge {
        Some(m) => HostConfig::load(&host.deployment_dir(m))?,
        None => HostConfig::default(),
    };
    if let Some(k) = opts.keep {
        if k < 2 {
            bail!("--keep must be at least 2 (the new deployment and a rollback)");
        }
        config.keep = k;
    }
    let stall = opts.stall.unwrap_or_else(|| config.stall());
    Ok(Context_ {
        host,
        osname,
        merge,
        origin,
        config,
        stall,
    })
}

/// `corral host upgrade`.
pub fn upgrade(host: &Host, opts: &UpgradeOptions) -> Result<UpgradeOutcome> {
    let cx = context(host, opts, None)?;
    // A commit staged in an earlier boot and never finalized is denied
    // before the newest commit is looked at: it would fail again.
    crate::finalize::reconcile(host, &cx.osname, crate::health::now())?;
    let merge = cx.merge.clone().expect("an upgrade has a merge deployment");
    let repo = host.repo();
    let summary = summary::fetch(&repo, &cx.origin.remote, cx.stall)?;
    let head = summary.refs.get(&cx.origin.ostree_ref).with_context(|| {
        format!(
            "remote {} has no ref {} (it has: {})",
            cx.origin.remote,
            cx.origin.ostree_ref,
            summary.refs.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let current = commit_info(&repo, &merge.csum()).context("reading the deployed commit")?;
    let default = host.deployments().into_iter().next();
    if head.checksum == current.checksum
        || default.as_ref().is_some_and(|d| d.csum() == head.checksum)
    {
        let pending = head.checksum != current.checksum;
        let info = commit_info(&repo, &head.checksum)?;
        return Ok(UpgradeOutcome::UpToDate {
            commit: CommitRef::of(&info),
            pending,
        });
    }
    // A rolled-back commit is never offered again; a newer head is.
    if let Some(d) = Denylist::load(&Denylist::path(host, &cx.osname))?.get(&head.checksum) {
        tracing::info!(commit = %head.checksum, "the newest commit is denied: {}", d.reason);
        return Ok(UpgradeOutcome::Denied {
            commit: CommitRef {
                checksum: d.checksum.clone(),
                version: d.version.clone(),
                timestamp: d.timestamp,
            },
            at: d.at,
            date: date(d.at),
            reason: d.reason.clone(),
            cause: d.cause,
        });
    }
    // The commit object alone: its signature is checked on the way in,
    // and its timestamp and package list decide the rest.
    let mut meta = PullRequest::new(&cx.origin.remote, &cx.origin.ostree_ref, cx.stall);
    meta.commit_only = true;
    pull(&repo, &meta, false)?;
    let new = commit_info(&repo, &head.checksum)?;
    if new.timestamp < current.timestamp && !opts.allow_downgrade {
        return Err(HostError::Downgrade {
            remote: cx.origin.remote.clone(),
            ostree_ref: cx.origin.ostree_ref.clone(),
            new: CommitRef::of(&new).label(),
            new_date: date(new.timestamp),
            old: CommitRef::of(&current).label(),
            old_date: date(current.timestamp),
        }
        .into());
    }
    let delta = !opts.no_static_deltas && summary.has_delta(Some(&current.checksum), &new.checksum);
    if opts.check {
        return Ok(UpgradeOutcome::Available {
            from: CommitRef::of(&current),
            to: CommitRef::of(&new),
            packages: diff_packages(&current.packages, &new.packages),
            delta,
        });
    }
    let mut req = PullRequest::new(&cx.origin.remote, &cx.origin.ostree_ref, cx.stall);
    req.timestamp_check = !opts.allow_downgrade;
    req.no_static_deltas = opts.no_static_deltas;
    finish(&cx, req, &new, Some(current), delta, opts)
}

/// `corral host deploy [REV] [--origin REMOTE:REF]`: a version or
/// checksum from the ref's history (its newest when none is given).
pub fn deploy(
    host: &Host,
    rev: Option<&str>,
    origin: Option<Origin>,
    opts: &UpgradeOptions,
) -> Result<UpgradeOutcome> {
    let cx = context(host, opts, origin)?;
    let repo = host.repo();
    let summary = summary::fetch(&repo, &cx.origin.remote, cx.stall)?;
    let head = summary.refs.get(&cx.origin.ostree_ref).with_context(|| {
        format!(
            "remote {} has no ref {}",
            cx.origin.remote, cx.origin.ostree_ref
        )
    })?;
    // The newest commit needs no history. An older one is looked up in
    // the ref's history, commit objects only; that leaves the target
    // partially fetched, so libostree completes it object by object
    // (static deltas are published for the newest commits anyway).
    let target = match rev {
        // Not fetched ahead: a commit object alone would make libostree
        // complete the commit object by object instead of through the
        // published from-scratch delta. Its metadata is read after the pull.
        None => CommitInfo {
            checksum: head.checksum.clone(),
            version: head.version.clone(),
            timestamp: head.timestamp.unwrap_or(0),
            parent: None,
            inputhash: None,
            packages: Vec::new(),
            reason: None,
        },
        Some(r) => {
            let mut meta = PullRequest::new(&cx.origin.remote, &cx.origin.ostree_ref, cx.stall);
            meta.commit_only = true;
            meta.depth = -1;
            pull(&repo, &meta, false)?;
            let commits = history(&repo, &cx.origin.refspec())?;
            if commits.first().map(|c| c.checksum.as_str()) != Some(head.checksum.as_str()) {
                bail!(
                    "the local copy of {} does not match the remote's summary",
                    cx.origin.refspec()
                );
            }
            commits
                .iter()
                .find(|c| {
                    c.version.as_deref() == Some(r) || (r.len() >= 6 && c.checksum.starts_with(r))
                })
                .cloned()
                .with_context(|| {
                    let versions: Vec<String> = commits
                        .iter()
                        .map(|c| {
                            c.version
                                .clone()
                                .unwrap_or_else(|| c.checksum[..12].to_string())
                        })
                        .collect();
                    format!(
                        "{} has no version or commit `{r}`; it has {}",
                        cx.origin.refspec(),
                        versions.join(", ")
                    )
                })?
        }
    };
    let current = match &cx.merge {
        Some(m) => Some(commit_info(&repo, &m.csum())?),
        None => None,
    };
    if let Some(d) = host.deployments().first() {
        if d.csum() == target.checksum && Host::origin(d).as_ref() == Some(&cx.origin) {
            return Ok(UpgradeOutcome::UpToDate {
                commit: CommitRef::of(&target),
                pending: false,
            });
        }
    }
    let delta = !opts.no_static_deltas
        && match &current {
            Some(c) => summary.has_delta(Some(&c.checksum), &target.checksum),
            None => summary.has_delta(None, &target.checksum),
        };
    let mut req = PullRequest::new(&cx.origin.remote, &cx.origin.ostree_ref, cx.stall);
    req.commit = Some(target.checksum.clone());
    req.no_static_deltas = opts.no_static_deltas;
    finish(&cx, req, &target, current, delta, opts)
}

fn finish(
    cx: &Context_<'_>,
    req: PullRequest,
    new: &CommitInfo,
    current: Option<CommitInfo>,
    delta: bool,
    opts: &UpgradeOptions,
) -> Result<UpgradeOutcome> {
    let host = cx.host;
    let repo = host.repo();
    let repo_path = host.path().join("ostree/repo");
    // Space for the objects: exact when a static delta says what it
    // unpacks to; otherwise the reserve, and libostree's own checks.
    let mut estimate = None;
    if delta {
        let mut dry = req.clone();
        dry.dry_run = true;
        dry.no_static_deltas = false;
        match pull(&repo, &dry, false) {
            Ok(s) => estimate = Some(s.delta_unpacked_bytes),
            Err(e) => tracing::warn!("no size from the static delta: {e:#}"),
        }
    }
    let need = estimate.unwrap_or(0);
    space::require(
        &repo_path,
        &format!("the objects of {}", CommitRef::of(new).label()),
        need,
        cx.config.reserve_bytes,
    )?;
    let stats = pull(&repo, &req, opts.progress)?;
    let new = &commit_info(&repo, &new.checksum)?;
    let sig = signature::check(&repo, &new.checksum, &cx.origin.remote)?;
    if !sig.is_valid() {
        return Err(HostError::BadSignature {
            checksum: new.checksum.clone(),
            remote: cx.origin.remote.clone(),
            why: sig.describe(),
        }
        .into());
    }
    if opts.download_only {
        return Ok(UpgradeOutcome::Downloaded {
            to: CommitRef::of(new),
            pull: stats,
        });
    }
    // Space for the deployment, before it is written.
    let boot = space::boot_files(&repo, &new.checksum)?;
    let mut have_boot = false;
    for d in host.deployments() {
        if space::boot_files(&repo, &d.csum())?.checksums == boot.checksums {
            have_boot = true;
        }
    }
    if !have_boot && boot.bytes > 0 {
        space::require(
            &host.boot_dir(),
            &format!("the kernel and initramfs of {}", CommitRef::of(new).label()),
            boot.bytes,
            cx.config.reserve_bytes.min(boot.bytes),
        )?;
    }
    let etc_bytes = space::tree_bytes(&repo, &new.checksum, "usr/etc")?;
    space::require(
        &host.path().join("ostree/deploy"),
        &format!("the /etc of {}", CommitRef::of(new).label()),
        etc_bytes,
        cx.config.reserve_bytes,
    )?;

    let (deployment, dropped) = deploy::deploy_commit(
        host,
        &cx.osname,
        &new.checksum,
        &cx.origin.keyfile(),
        cx.merge.as_ref(),
        deploy::DeployOptions {
            keep: cx.config.keep,
            stage: !opts.no_stage,
            max_failed_boots: cx.config.max_failed_boots,
        },
    )?;
    let etc = match &cx.merge {
        Some(m) => etc_merge::inspect(&host.deployment_dir(m), &host.deployment_dir(&deployment))?,
        None => EtcMerge::default(),
    };
    // Deployed on purpose, or superseded by a newer commit.
    let undenied = denylist::cleared_by_deploy(host, &cx.osname, &new.checksum, new.timestamp)?;
    let rollback = host
        .deployments()
        .get(1)
        .map(|d| format!("{}.{}", d.csum(), d.deployserial()));
    Ok(UpgradeOutcome::Deployed(Box::new(DeployReport {
        packages: diff_packages(
            current
                .as_ref()
                .map(|c| c.packages.as_slice())
                .unwrap_or_default(),
            &new.packages,
        ),
        from: current.as_ref().map(CommitRef::of),
        to: CommitRef::of(new),
        signature: sig,
        pull: stats,
        delta_unpacked_bytes: estimate,
        etc,
        rollback,
        dropped,
        undenied,
        staged: deployment.is_staged(),
    })))
}

/// RFC 3339 in UTC.
pub fn date(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(corral_oci::rfc3339)
        .unwrap_or_else(|| secs.to_string())
}
