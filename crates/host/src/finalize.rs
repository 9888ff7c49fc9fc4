//! Whether the deployment corral staged was finalized at shutdown.
//!
//! libostree writes a staged deployment when the host shuts down
//! (ostree-finalize-staged.service). When that fails (a full `/boot`, an
//! `/etc` merge error) the host comes back on the deployment it ran
//! before, as if nothing had been staged. libostree leaves its error in
//! `/boot/ostree/finalize-failure.stamp`, which ostree-boot-complete.service
//! reports and removes early in the next boot.
//!
//! corral notes what it stages in the stateroot's `/var`
//! (`lib/corral/staged.json`, which outlives the boot, unlike the note
//! under `/run`) and judges it in a later boot: the staged commit is a
//! deployment now, so it was finalized; it is not, so finalization
//! failed. A failure is recorded in `health.json` (`status` shows it) and
//! the commit is denied like a rolled-back one, so that `auto` does not
//! stage it again and reboot into the same failure every hour; a newer
//! commit, or `corral host deploy CHECKSUM`, lifts that.
//!
//! corral's drop-in for ostree-boot-complete.service runs
//! `corral host finalize-check` before libostree consumes the stamp, so
//! the record carries libostree's own words; `auto`, `upgrade` and
//! `boot-complete` judge too, with a general message when the stamp is
//! gone.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::denylist::{self, DeniedCommit, DenyCause};
use crate::health::HealthState;
use crate::sysroot::Host;

/// Where the note of the staged deployment lives, under the stateroot's
/// `/var`.
pub const RECORD_PATH: &str = "lib/corral/staged.json";
/// libostree's note of a failed finalization, under `/boot`.
pub const FAILURE_STAMP: &str = "ostree/finalize-failure.stamp";

/// What corral staged, and in which boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedRecord {
    /// The staged deployment, `CHECKSUM.SERIAL`.
    pub deployment: String,
    pub checksum: String,
    /// The boot that staged it: finalization happens at its shutdown.
    pub boot_id: String,
    /// When it was staged (seconds since the epoch).
    pub at: u64,
}

/// A staged deployment that was not finalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizeFailure {
    pub deployment: String,
    pub checksum: String,
    pub version: Option<String>,
    pub staged_at: u64,
    /// When a later boot found it missing.
    pub found_at: u64,
    /// libostree's error, or what to read when it is gone.
    pub message: String,
}

/// What became of a staged deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still this boot: it is finalized at this boot's shutdown.
    Waiting,
    /// A later boot has it among the deployments.
    Finalized,
    /// A later boot does not have it; why, as best known.
    Failed(String),
}

/// What to read when libostree's stamp is gone.
pub const NO_STAMP: &str = "it is not among the deployments after the reboot \
     (journalctl -b -1 -u ostree-finalize-staged.service tells why)";

/// Judges `record` in boot `boot_id`, given the checksums of the
/// deployments written now (staged ones left out) and libostree's stamp.
pub fn judge(
    record: &StagedRecord,
    boot_id: &str,
    written: &[String],
    stamp: Option<&str>,
) -> Outcome {
    if record.boot_id == boot_id {
        return Outcome::Waiting;
    }
    if written.contains(&record.checksum) {
        return Outcome::Finalized;
    }
    Outcome::Failed(match stamp.map(str::trim) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => NO_STAMP.to_string(),
    })
}

fn record_path(host: &Host, osname: &str) -> PathBuf {
    host.var_dir(osname).join(RECORD_PATH)
}

/// Notes that `deployment` was staged in this boot.
pub fn note_staged(host: &Host, osname: &str, deployment: &ostree::Deployment) -> Result<()> {
    let record = StagedRecord {
        deployment: crate::health::key(deployment),
        checksum: deployment.csum().to_string(),
        boot_id: crate::health::boot_id()?,
        at: crate::health::now(),
    };
    crate::state_file::save(&record, &record_path(host, osname))
}

/// Forgets the note: the staged deployment was discarded on purpose.
pub fn forget_staged(host: &Host, osname: &str) -> Result<()> {
    let path = record_path(host, osname);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

fn load(host: &Host, osname: &str) -> Result<Option<StagedRecord>> {
    crate::state_file::load::<Option<StagedRecord>>(&record_path(host, osname))
}

fn stamp(host: &Host) -> Result<Option<String>> {
    let path = host.boot_dir().join(FAILURE_STAMP);
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The outcome for `osname` now, changing nothing: `None` when nothing
/// staged is waiting for a verdict.
pub fn peek(host: &Host, osname: &str) -> Result<Option<(StagedRecord, Outcome)>> {
    let Some(record) = load(host, osname)? else {
        return Ok(None);
    };
    let written: Vec<String> = host
        .deployments()
        .iter()
        .filter(|d| !d.is_staged())
        .map(|d| d.csum().to_string())
        .collect();
    let outcome = judge(
        &record,
        &crate::health::boot_id()?,
        &written,
        stamp(host)?.as_deref(),
    );
    Ok(Some((record, outcome)))
}

/// The failure `record` stands for, found at `at`.
fn failure(host: &Host, record: &StagedRecord, message: String, at: u64) -> FinalizeFailure {
    let version = denylist::commit_version_and_time(&host.repo(), &record.checksum)
        .ok()
        .and_then(|(v, _)| v);
    FinalizeFailure {
        deployment: record.deployment.clone(),
        checksum: record.checksum.clone(),
        version,
        staged_at: record.at,
        found_at: at,
        message,
    }
}

/// A failure [`peek`] sees and nobody recorded yet.
pub fn unrecorded(host: &Host, osname: &str) -> Result<Option<FinalizeFailure>> {
    Ok(match peek(host, osname)? {
        Some((record, Outcome::Failed(message))) => {
            Some(failure(host, &record, message, crate::health::now()))
        }
        _ => None,
    })
}

/// What [`reconcile`] found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum Checked {
    /// corral staged nothing that waits for a verdict.
    NothingStaged,
    /// Staged in this boot: finalized at its shutdown.
    Waiting { deployment: String },
    /// Finalized: a deployment now; the note is gone.
    Finalized { deployment: String },
    /// Not finalized: recorded in `health.json`, the commit denied.
    Failed(FinalizeFailure),
}

/// Judges the note of `osname` at `now` and acts on the verdict: a
/// finalized deployment's note goes; a failure is recorded in
/// `health.json`, its commit denied, and the note goes. The caller holds
/// the host lock.
pub fn reconcile(host: &Host, osname: &str, now: u64) -> Result<Checked> {
    let Some((record, outcome)) = peek(host, osname)? else {
        return Ok(Checked::NothingStaged);
    };
    let checked = match outcome {
        Outcome::Waiting => {
            return Ok(Checked::Waiting {
                deployment: record.deployment,
            })
        }
        Outcome::Finalized => Checked::Finalized {
            deployment: record.deployment.clone(),
        },
        Outcome::Failed(message) => {
            let f = failure(host, &record, message, now);
            let path = HealthState::path(host, osname);
            let mut state = HealthState::load(&path)?;
            state.finalize_failures.push(f.clone());
            state.save(&path)?;
            deny(host, osname, &f)?;
            tracing::warn!(
                deployment = %f.deployment,
                "the deployment staged for the last reboot was not finalized: {}",
                f.message
            );
            Checked::Failed(f)
        }
    };
    forget_staged(host, osname)?;
    Ok(checked)
}

fn deny(host: &Host, osname: &str, f: &FinalizeFailure) -> Result<()> {
    let timestamp = denylist::commit_version_and_time(&host.repo(), &f.checksum)
        .map(|(_, t)| t)
        .unwrap_or(0);
    denylist::deny_entry(
        host,
        osname,
        DeniedCommit {
            checksum: f.checksum.clone(),
            version: f.version.clone(),
            timestamp,
            deployment: f.deployment.clone(),
            at: f.found_at,
            reason: f.message.clone(),
            cause: DenyCause::NotFinalized,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> StagedRecord {
        StagedRecord {
            deployment: "abc.0".into(),
            checksum: "abc".into(),
            boot_id: "boot-a".into(),
            at: 10,
        }
    }

    #[test]
    fn the_staging_boot_waits_for_its_shutdown() {
        assert_eq!(
            judge(&record(), "boot-a", &["old".into()], Some("boom")),
            Outcome::Waiting
        );
    }

    #[test]
    fn a_later_boot_with_the_commit_deployed_is_finalized() {
        let written = ["abc".to_string(), "old".to_string()];
        assert_eq!(
            judge(&record(), "boot-b", &written, None),
            Outcome::Finalized
        );
    }

    #[test]
    fn a_later_boot_without_it_failed_with_libostrees_words_or_a_pointer() {
        let written = ["old".to_string()];
        assert_eq!(
            judge(
                &record(),
                "boot-b",
                &written,
                Some("Writing bootloader config: No space left on device\n")
            ),
            Outcome::Failed("Writing bootloader config: No space left on device".into())
        );
        assert_eq!(
            judge(&record(), "boot-b", &written, None),
            Outcome::Failed(NO_STAMP.into())
        );
        assert_eq!(
            judge(&record(), "boot-b", &written, Some(" \n")),
            Outcome::Failed(NO_STAMP.into())
        );
    }
}
