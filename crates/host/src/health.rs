//! The boot health check, greenboot-like without GRUB2's boot counter:
//! `corral host check` runs at every boot, runs the scripts in
//! `/etc/corral/health.d/{required.d,wanted.d}`, counts the failed boots
//! of the deployment in `/var/lib/corral/health.json` and, after
//! `max-failed-boots` of them, makes the previous deployment the default,
//! records why and denies the commit to later upgrades
//! ([`crate::denylist`]).
//!
//! Boots are told apart by the kernel's boot id: running `check` again in
//! the same boot updates the results but does not count another failed
//! boot.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::HostConfig;
use crate::denylist::{self, DeniedCommit};
use crate::sysroot::{same, Host};

/// Where the state lives, under the stateroot's `/var`.
pub const STATE_PATH: &str = "lib/corral/health.json";
/// Where the scripts live, under the deployment's root.
pub const SCRIPTS_DIR: &str = "etc/corral/health.d";
/// The kernel's id of the running boot.
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";
/// Overrides [`BOOT_ID_PATH`]: for tests of sysroots in directories, which
/// have no boot of their own.
pub const BOOT_ID_ENV: &str = "CORRAL_BOOT_ID";

/// The id of the running boot: `$CORRAL_BOOT_ID` when set, else the
/// kernel's.
pub fn boot_id() -> Result<String> {
    if let Some(id) = std::env::var_os(BOOT_ID_ENV).filter(|v| !v.is_empty()) {
        return Ok(id.to_string_lossy().into_owned());
    }
    let id = std::fs::read_to_string(BOOT_ID_PATH)
        .with_context(|| format!("reading the boot id from {BOOT_ID_PATH}"))?;
    Ok(id.trim().to_string())
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One deployment's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentHealth {
    pub failed_boots: u32,
    pub healthy: bool,
    pub last_check: u64,
    /// Required checks that failed on the last failed boot.
    #[serde(default)]
    pub failed_checks: Vec<String>,
    /// The boot id of the last failed boot: another failed check in that
    /// boot does not count again.
    #[serde(default)]
    pub last_failed_boot: Option<String>,
}

impl DeploymentHealth {
    /// Records a check in boot `boot_id` whose failed required checks are
    /// `failed` (none: healthy). Returns whether it counted a new failed
    /// boot: the first failed check of a boot does, later ones in the same
    /// boot only update the results.
    pub fn record(&mut self, failed: Vec<String>, boot_id: &str, now: u64) -> bool {
        self.last_check = now;
        self.healthy = failed.is_empty();
        if self.healthy {
            self.failed_boots = 0;
            self.failed_checks.clear();
            self.last_failed_boot = None;
            return false;
        }
        self.failed_checks = failed;
        if self.last_failed_boot.as_deref() == Some(boot_id) {
            return false;
        }
        self.failed_boots += 1;
        self.last_failed_boot = Some(boot_id.to_string());
        true
    }
}

/// A rollback the check made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub from: String,
    pub to: String,
    pub at: u64,
    pub reason: String,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    /// Keyed by `CHECKSUM.SERIAL`.
    pub deployments: BTreeMap<String, DeploymentHealth>,
    pub rollbacks: Vec<RollbackRecord>,
    /// Deployments staged and not finalized at shutdown, oldest first.
    #[serde(default)]
    pub finalize_failures: Vec<crate::finalize::FinalizeFailure>,
}

impl HealthState {
    pub fn path(host: &Host, osname: &str) -> PathBuf {
        host.var_dir(osname).join(STATE_PATH)
    }

    pub fn load(path: &Path) -> Result<HealthState> {
        crate::state_file::load(path)
    }

    /// Written to a temporary file and renamed over the old one.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::state_file::save(self, path)
    }
}

/// The key of a deployment in the state file.
pub fn key(d: &ostree::Deployment) -> String {
    format!("{}.{}", d.csum(), d.deployserial())
}

/// One script's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptResult {
    pub name: String,
    pub required: bool,
    pub passed: bool,
    /// The exit code, or why there is none.
    pub status: String,
    /// The end of its output.
    pub output: String,
}

/// What `check` found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutcome {
    pub deployment: String,
    pub healthy: bool,
    pub boot_id: String,
    /// False when this boot had failed a check already and was counted
    /// then.
    pub counted: bool,
    pub failed_boots: u32,
    pub max_failed_boots: u32,
    pub scripts: Vec<ScriptResult>,
    pub rolled_back: Option<RollbackRecord>,
    /// The commit the rollback denied to later upgrades.
    pub denied: Option<DeniedCommit>,
}

fn scripts(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let meta = e
            .metadata()
            .with_context(|| format!("reading {}", e.path().display()))?;
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

fn run_script(path: &Path, root: &Path, timeout: Duration) -> Result<(bool, String, String)> {
    // Its own process group, so that a timeout stops what it started too.
    let mut child = Command::new(path)
        .process_group(0)
        .current_dir(root)
        .env("CORRAL_DEPLOYMENT_ROOT", root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", path.display()))?;
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .with_context(|| format!("waiting for {}", path.display()))?
        {
            break Some(s);
        }
        if started.elapsed() > timeout {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut output);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut output);
    }
    let tail: String = output
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    Ok(match status {
        Some(s) if s.success() => (true, "exit 0".into(), tail),
        Some(s) => (
            false,
            s.code().map_or_else(
                || format!("killed by a signal ({s})"),
                |c| format!("exit {c}"),
            ),
            tail,
        ),
        None => (
            false,
            format!("timed out after {} s", timeout.as_secs()),
            tail,
        ),
    })
}

/// Checks the booted deployment (in a sysroot that is not booted: the
/// default one) and rolls back after too many failed boots, a failed boot
/// being one `boot_id` with a failed required check.
pub fn check(
    host: &Host,
    osname: Option<&str>,
    max_failed: Option<u32>,
    script_timeout: Duration,
    boot_id: &str,
    now: u64,
) -> Result<CheckOutcome> {
    let osname = host.osname(osname)?;
    let list = host.deployments();
    let target = host
        .booted()
        .or_else(|| list.first().cloned())
        .context("there is no deployment to check")?;
    let root = host.deployment_dir(&target);
    let config = HostConfig::load(&root)?;
    let max = max_failed.unwrap_or(config.max_failed_boots).max(1);

    let mut results = Vec::new();
    for (sub, required) in [("required.d", true), ("wanted.d", false)] {
        for script in scripts(&root.join(SCRIPTS_DIR).join(sub))? {
            let (passed, status, output) = run_script(&script, &root, script_timeout)?;
            results.push(ScriptResult {
                name: format!(
                    "{sub}/{}",
                    script.file_name().unwrap_or_default().to_string_lossy()
                ),
                required,
                passed,
                status,
                output,
            });
        }
    }
    let healthy = results.iter().all(|r| r.passed || !r.required);
    let state_path = HealthState::path(host, &osname);
    let mut state = HealthState::load(&state_path)?;
    let k = key(&target);
    let record = state.deployments.entry(k.clone()).or_default();
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.required && !r.passed)
        .map(|r| format!("{} ({})", r.name, r.status))
        .collect();
    let counted = record.record(failed, boot_id, now);
    let failed_boots = record.failed_boots;
    let failed_checks = record.failed_checks.clone();
    let mut rolled_back = None;
    let mut denied = None;
    // Only on the check that counted the boot: a second check in the same
    // boot, after the rollback, must not roll back once more.
    if counted && failed_boots >= max {
        let pos = list.iter().position(|d| same(d, &target)).unwrap_or(0);
        if let Some(previous) = list.get(pos + 1).cloned() {
            let reason = format!(
                "{failed_boots} failed boots (limit {max}): {}",
                failed_checks.join(", ")
            );
            // Denied before the rollback is written: a crash between the
            // two must not leave a rollback whose commit the next upgrade
            // deploys again.
            denied = Some(denylist::deny(host, &osname, &target, &reason, now)?);
            crate::deploy::make_default(host, pos + 1)
                .context("making the previous deployment the default")?;
            let rec = RollbackRecord {
                from: k.clone(),
                to: key(&previous),
                at: now,
                reason,
            };
            state.rollbacks.push(rec.clone());
            rolled_back = Some(rec);
        } else {
            tracing::warn!(
                "{failed_boots} failed boots but no previous deployment to roll back to"
            );
        }
    }
    state.save(&state_path)?;
    Ok(CheckOutcome {
        deployment: k,
        healthy,
        boot_id: boot_id.to_string(),
        counted,
        failed_boots,
        max_failed_boots: max,
        scripts: results,
        rolled_back,
        denied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_an_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/lib/corral/health.json");
        assert_eq!(HealthState::load(&path).unwrap(), HealthState::default());
        let mut s = HealthState::default();
        s.deployments.insert(
            "abc.0".into(),
            DeploymentHealth {
                failed_boots: 2,
                ..Default::default()
            },
        );
        s.save(&path).unwrap();
        assert_eq!(HealthState::load(&path).unwrap(), s);
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn failed_boots_are_counted_once_per_boot_id() {
        let mut h = DeploymentHealth::default();
        let bad = || vec!["required.d/20-service (exit 4)".to_string()];
        assert!(h.record(bad(), "boot-1", 1));
        assert!(!h.record(bad(), "boot-1", 2));
        assert!(!h.record(vec!["required.d/30-db (exit 1)".into()], "boot-1", 3));
        assert_eq!(h.failed_boots, 1);
        assert_eq!(
            h.failed_checks,
            ["required.d/30-db (exit 1)"],
            "results updated"
        );
        assert_eq!(h.last_check, 3);
        assert!(h.record(bad(), "boot-2", 4));
        assert_eq!(h.failed_boots, 2);
        // healthy resets; a failure later in the same boot counts again
        assert!(!h.record(Vec::new(), "boot-2", 5));
        assert!(h.healthy && h.failed_boots == 0 && h.last_failed_boot.is_none());
        assert!(h.record(bad(), "boot-2", 6));
        assert_eq!(h.failed_boots, 1);
    }

    #[test]
    fn scripts_report_exit_codes_output_and_timeouts() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let ok = write("ok", "echo fine");
        let bad = write("bad", "echo broken >&2; exit 3");
        let slow = write("slow", "sleep 5");
        let (p, s, o) = run_script(&ok, dir.path(), Duration::from_secs(5)).unwrap();
        assert!(p && s == "exit 0" && o == "fine", "{s} {o}");
        let (p, s, o) = run_script(&bad, dir.path(), Duration::from_secs(5)).unwrap();
        assert!(!p && s == "exit 3" && o == "broken", "{s} {o}");
        let (p, s, _) = run_script(&slow, dir.path(), Duration::from_millis(200)).unwrap();
        assert!(!p && s.starts_with("timed out"), "{s}");
        // not executable: not a check
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        assert_eq!(scripts(dir.path()).unwrap().len(), 3);
    }
}
