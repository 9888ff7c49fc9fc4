//! `corral host auto` and `corral host steady`: updates without a person.
//!
//! `auto` (run by the timer) deploys the origin's newest commit once this
//! host's rollout delay after its release has passed, then asks the
//! strategy whether it may reboot now, and if so runs the reboot command.
//! A deployment that is still waiting for its reboot (outside the window,
//! no FleetLock slot) is tried again at the next run without fetching
//! anything. `steady` (run after the boot health check passed) gives the
//! FleetLock slot back.
//!
//! On a booted host "waiting for its reboot" means the default deployment
//! is not the booted one. A sysroot in a directory boots nothing, so there
//! the state file records which deployment `auto` wrote and for which one
//! it ran the reboot command; that deployment then counts as booted.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::HostConfig;
use crate::fleetlock::FleetLockClient;
use crate::health::{self, HealthState};
use crate::strategy::{self, Strategy, UpdatesConfig};
use crate::sysroot::{same, Host};
use crate::upgrade::{self, CommitRef, DeployReport, UpgradeOptions, UpgradeOutcome};

/// Where `auto` keeps its state, under the stateroot's `/var`.
pub const STATE_PATH: &str = "lib/corral/updates.json";
/// The machine id, in a deployment's root.
pub const MACHINE_ID: &str = "etc/machine-id";

/// What `auto` remembers between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdatesState {
    /// The deployment `auto` wrote last (`CHECKSUM.SERIAL`).
    pub deployed: Option<String>,
    /// The deployment the reboot command last ran for.
    pub rebooted_into: Option<String>,
    /// When the reboot command last ran (seconds since the epoch).
    pub last_reboot: Option<u64>,
}

impl UpdatesState {
    pub fn path(host: &Host, osname: &str) -> PathBuf {
        host.var_dir(osname).join(STATE_PATH)
    }

    pub fn load(path: &Path) -> Result<UpdatesState> {
        match std::fs::read(path) {
            Ok(b) => {
                serde_json::from_slice(&b).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UpdatesState::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Written to a temporary file, synced, and renamed over the old one:
    /// the reboot follows at once.
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = path.parent().context("a state path without a directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = path.with_extension("json.tmp");
        let mut text = serde_json::to_vec_pretty(self)?;
        text.push(b'\n');
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))
    }
}

/// How a run of `auto` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutoResult {
    /// Nothing newer, nothing waiting for a reboot.
    UpToDate,
    /// An update is out, and this host's rollout delay has not passed.
    WaitingRollout,
    /// Deployed; the reboot waits for the next maintenance window.
    WaitingWindow,
    /// Deployed; every reboot slot of the group is taken.
    WaitingLock,
    /// The reboot command ran.
    Rebooted,
}

/// What `auto` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct AutoReport {
    pub result: AutoResult,
    pub strategy: Strategy,
    /// The update: the newest commit of the origin, or the one deployed
    /// and waiting for its reboot.
    pub commit: Option<CommitRef>,
    /// The deployment this run wrote, if any.
    pub deployed: Option<Box<DeployReport>>,
    /// The deployment waiting for (or getting) its reboot, `CHECKSUM.SERIAL`.
    pub pending: Option<String>,
    /// `waiting-rollout`: when the delay passes; `waiting-window`: when
    /// the next window opens (seconds since the epoch).
    pub not_before: Option<u64>,
    /// `waiting-rollout`: this host's delay after the release, seconds.
    pub delay: Option<u64>,
    /// `waiting-lock`: the server's answer.
    pub lock: Option<String>,
}

/// The settings `auto` and `steady` need from `host.toml`.
fn settings(host: &Host, osname: &str) -> Result<(UpdatesConfig, Option<PathBuf>)> {
    let root = running(host, osname).map(|d| host.deployment_dir(&d));
    let config = match &root {
        Some(r) => HostConfig::load(r)?,
        None => HostConfig::default(),
    };
    Ok((config.updates, root))
}

/// The deployment running now: the booted one, else (a directory) the
/// default.
fn running(host: &Host, osname: &str) -> Option<ostree::Deployment> {
    host.booted().or_else(|| {
        host.deployments()
            .into_iter()
            .find(|d| d.osname() == osname)
    })
}

/// The host's machine id, from the running deployment's `/etc`.
pub fn machine_id(root: Option<&Path>) -> Result<String> {
    let root = root.context("there is no deployment to read /etc/machine-id from")?;
    let path = root.join(MACHINE_ID);
    let id = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_string();
    if id.is_empty() {
        bail!(
            "{} is empty: the rollout delay and the FleetLock id are derived from the machine id",
            path.display()
        );
    }
    Ok(id)
}

/// The deployment waiting for a reboot, if any.
fn pending(host: &Host, osname: &str, state: &UpdatesState) -> Option<ostree::Deployment> {
    let first = host
        .deployments()
        .into_iter()
        .find(|d| d.osname() == osname)?;
    match host.booted() {
        Some(b) => (!same(&first, &b)).then_some(first),
        None => {
            let k = health::key(&first);
            (state.deployed.as_deref() == Some(k.as_str())
                && state.rebooted_into.as_deref() != Some(k.as_str()))
            .then_some(first)
        }
    }
}

fn fleet_lock_client(cfg: &UpdatesConfig, root: Option<&Path>) -> Result<FleetLockClient> {
    let f = cfg
        .fleet_lock
        .as_ref()
        .context("[updates.fleet-lock] base-url is not set in /etc/corral/host.toml")?;
    let id = strategy::fleet_lock_id(&machine_id(root)?);
    Ok(FleetLockClient::new(&f.base_url, &id, &f.group)?)
}

fn commit_of(host: &Host, d: &ostree::Deployment) -> Option<CommitRef> {
    corral_ostree::commit::commit_info(&host.repo(), &d.csum())
        .ok()
        .map(|c| CommitRef::of(&c))
}

/// One run of `corral host auto` at time `now`; the caller holds the
/// host lock.
pub fn auto(host: &Host, opts: &UpgradeOptions, now: u64) -> Result<AutoReport> {
    let osname = host.osname(opts.osname.as_deref())?;
    let (cfg, root) = settings(host, &osname)?;
    let state_path = UpdatesState::path(host, &osname);
    let mut state = UpdatesState::load(&state_path)?;
    let mut report = AutoReport {
        result: AutoResult::UpToDate,
        strategy: cfg.strategy,
        commit: None,
        deployed: None,
        pending: None,
        not_before: None,
        delay: None,
        lock: None,
    };

    let target = match pending(host, &osname, &state) {
        Some(d) => {
            report.commit = commit_of(host, &d);
            d
        }
        None => {
            let check = UpgradeOptions {
                check: true,
                download_only: false,
                ..opts.clone()
            };
            let to = match upgrade::upgrade(host, &check)? {
                UpgradeOutcome::Available { to, .. } => to,
                UpgradeOutcome::UpToDate { commit, .. } => {
                    report.commit = Some(commit);
                    return Ok(report);
                }
                other => bail!("unexpected answer to an update check: {other:?}"),
            };
            if let Some(after) = wary(&cfg, root.as_deref(), &to, now, &mut report)? {
                report.result = AutoResult::WaitingRollout;
                report.not_before = Some(after);
                report.commit = Some(to);
                return Ok(report);
            }
            let deploy = UpgradeOptions {
                check: false,
                download_only: false,
                ..opts.clone()
            };
            match upgrade::upgrade(host, &deploy)? {
                UpgradeOutcome::Deployed(r) => {
                    report.commit = Some(r.to.clone());
                    report.deployed = Some(r);
                }
                other => bail!("the update to {} was not deployed: {other:?}", to.label()),
            }
            host.reload()?;
            let first = host
                .deployments()
                .into_iter()
                .find(|d| d.osname() == osname)
                .context("no deployment after deploying")?;
            state.deployed = Some(health::key(&first));
            state.save(&state_path)?;
            first
        }
    };
    let key = health::key(&target);
    report.pending = Some(key.clone());
    // Checked again before the reboot: a commit released between the
    // check and the pull, or deployed by hand, waits its own delay too.
    if let Some(c) = report.commit.clone() {
        if let Some(after) = wary(&cfg, root.as_deref(), &c, now, &mut report)? {
            report.result = AutoResult::WaitingRollout;
            report.not_before = Some(after);
            return Ok(report);
        }
    }

    let mut lock = None;
    match cfg.strategy {
        Strategy::Immediate => {}
        Strategy::Periodic => {
            let windows = cfg.windows().map_err(anyhow::Error::msg)?;
            if !strategy::in_window(&windows, now) {
                report.result = AutoResult::WaitingWindow;
                report.not_before = strategy::next_window(&windows, now);
                return Ok(report);
            }
        }
        Strategy::FleetLock => {
            let client = fleet_lock_client(&cfg, root.as_deref())?;
            match client.pre_reboot() {
                Ok(()) => lock = Some(client),
                Err(e) if e.is_lock_held() => {
                    report.result = AutoResult::WaitingLock;
                    report.lock = Some(e.to_string());
                    return Ok(report);
                }
                Err(e) => return Err(e).context("taking a reboot slot from the FleetLock server"),
            }
        }
    }

    // Recorded first: a reboot that works does not come back to write it.
    let before = state.clone();
    state.rebooted_into = Some(key.clone());
    state.last_reboot = Some(now);
    state.save(&state_path)?;
    if let Err(e) = run_reboot(&cfg.reboot_command, &key) {
        state = before;
        state.save(&state_path)?;
        if let Some(client) = lock {
            // Nobody reboots: the slot goes back to the fleet.
            if let Err(e2) = client.steady_state() {
                tracing::warn!(error = %e2, "could not give the reboot slot back");
            }
        }
        return Err(e);
    }
    report.result = AutoResult::Rebooted;
    Ok(report)
}

/// When this host's rollout delay for `commit` has not passed yet, the
/// time it passes; records the delay in `report`.
fn wary(
    cfg: &UpdatesConfig,
    root: Option<&Path>,
    commit: &CommitRef,
    now: u64,
    report: &mut AutoReport,
) -> Result<Option<u64>> {
    if cfg.rollout_wariness == 0 {
        return Ok(None);
    }
    let delay =
        strategy::wariness_delay(&machine_id(root)?, &commit.checksum, cfg.rollout_wariness);
    report.delay = Some(delay);
    let after = commit.timestamp.saturating_add(delay);
    Ok((now < after).then_some(after))
}

fn run_reboot(argv: &[String], key: &str) -> Result<()> {
    let shown = argv.join(" ");
    tracing::info!(command = shown, deployment = key, "rebooting");
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .env("CORRAL_DEPLOYMENT", key)
        .status()
        .with_context(|| format!("running the reboot command `{shown}`"))?;
    if !status.success() {
        bail!("the reboot command `{shown}` failed: {status}");
    }
    Ok(())
}

/// What `steady` did.
#[derive(Debug, Clone, Serialize)]
pub struct SteadyReport {
    /// The running deployment, `CHECKSUM.SERIAL`.
    pub deployment: String,
    pub healthy: bool,
    /// Whether `[updates.fleet-lock]` is configured.
    pub fleet_lock: bool,
    /// Whether a steady-state was sent (and accepted).
    pub released: bool,
    pub reason: String,
}

/// `corral host steady`: once the running deployment passed its health
/// check, tell the FleetLock server (the slot, if this host holds one, is
/// released). A deployment that has not passed keeps the slot, so the
/// fleet does not move on past a broken update.
pub fn steady(host: &Host, osname: Option<&str>) -> Result<SteadyReport> {
    let osname = host.osname(osname)?;
    let d = running(host, &osname).context("there is no deployment")?;
    let k = health::key(&d);
    let (cfg, root) = settings(host, &osname)?;
    let record = HealthState::load(&HealthState::path(host, &osname))?
        .deployments
        .remove(&k);
    let healthy = record.as_ref().is_some_and(|r| r.healthy);
    let mut out = SteadyReport {
        deployment: k.clone(),
        healthy,
        fleet_lock: cfg.fleet_lock.is_some(),
        released: false,
        reason: String::new(),
    };
    if cfg.fleet_lock.is_none() {
        out.reason = format!(
            "strategy {} takes no reboot slot; nothing to release",
            cfg.strategy.as_str()
        );
        return Ok(out);
    }
    if !healthy {
        out.reason = match record {
            None => format!("deployment {k} has not been checked yet (corral host check)"),
            Some(_) => format!("deployment {k} failed its health check"),
        } + "; the reboot slot stays held";
        return Ok(out);
    }
    fleet_lock_client(&cfg, root.as_deref())?
        .steady_state()
        .context("telling the FleetLock server this host is steady")?;
    out.released = true;
    out.reason = format!("deployment {k} is healthy; steady-state sent");
    Ok(out)
}

/// What `corral host updates` shows.
#[derive(Debug, Clone, Serialize)]
pub struct UpdatesStatus {
    pub strategy: Strategy,
    pub rollout_wariness: u64,
    pub reboot_command: Vec<String>,
    /// Periodic: whether a window is open now, and when the next opens.
    pub in_window: Option<bool>,
    pub next_window: Option<u64>,
    /// FleetLock: the server (without credentials), group and this host's id.
    pub fleet_lock_url: Option<String>,
    pub fleet_lock_group: Option<String>,
    pub fleet_lock_id: Option<String>,
    /// The deployment waiting for its reboot.
    pub pending: Option<String>,
    pub state: UpdatesState,
}

pub fn updates_status(host: &Host, osname: Option<&str>, now: u64) -> Result<UpdatesStatus> {
    let osname = host.osname(osname)?;
    let (cfg, root) = settings(host, &osname)?;
    let state = UpdatesState::load(&UpdatesState::path(host, &osname))?;
    let windows = cfg.windows().map_err(anyhow::Error::msg)?;
    let periodic = cfg.strategy == Strategy::Periodic;
    let id = match &cfg.fleet_lock {
        Some(_) => Some(strategy::fleet_lock_id(&machine_id(root.as_deref())?)),
        None => None,
    };
    Ok(UpdatesStatus {
        strategy: cfg.strategy,
        rollout_wariness: cfg.rollout_wariness,
        reboot_command: cfg.reboot_command.clone(),
        in_window: periodic.then(|| strategy::in_window(&windows, now)),
        next_window: if periodic {
            strategy::next_window(&windows, now)
        } else {
            None
        },
        fleet_lock_url: cfg
            .fleet_lock
            .as_ref()
            .map(|f| crate::fleetlock::strip_credentials(&f.base_url)),
        fleet_lock_group: cfg.fleet_lock.as_ref().map(|f| f.group.clone()),
        fleet_lock_id: id,
        pending: pending(host, &osname, &state).map(|d| health::key(&d)),
        state,
    })
}
