//! The host's side of GRUB's boot counting ([`crate::grub`] has the
//! menu's side).
//!
//! - [`sync_after_finalize`] runs at shutdown after libostree finalized a
//!   staged deployment (`corral host grub-sync`, from the drop-in for
//!   ostree-finalize-staged.service): the menu gets the new entry and the
//!   counter is armed for it.
//! - [`boot_complete`] runs once a boot got through (`corral host
//!   boot-complete`, from corral-boot-complete.service after the health
//!   check): the counter stops, and if GRUB had fallen back to the previous
//!   deployment, that one becomes the default for good and the rollback is
//!   recorded beside the health check's.

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::HostConfig;
use crate::deploy::STAGED_NOTE;
use crate::grub::{self, BootCounter};
use crate::health::{key, HealthState, RollbackRecord};
use crate::sysroot::{same, Host};

/// What [`sync_after_finalize`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Synced {
    /// The GRUB menu was rewritten (it is one corral wrote).
    pub menu: bool,
    /// The finalized deployment whose boots are now counted, and how many.
    pub armed: Option<(String, u32)>,
}

/// Rewrites the GRUB menu from the boot entries and, when the default is
/// the deployment corral staged this boot (now finalized), arms the boot
/// counter with its `max-failed-boots`.
pub fn sync_after_finalize(host: &Host) -> Result<Synced> {
    let boot = host.boot_dir();
    let menu = grub::refresh(&boot)?;
    let mut armed = None;
    let note = host.path().join(STAGED_NOTE);
    let staged = match std::fs::read_to_string(&note) {
        Ok(t) => Some(t.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", note.display())),
    };
    let list = host.deployments();
    let booted = host.booted();
    if let (Some(staged), Some(first)) = (staged, list.first()) {
        let is_booted = booted.as_ref().is_some_and(|b| same(b, first));
        if key(first) == staged && !first.is_staged() && !is_booted && list.len() >= 2 {
            let tries = HostConfig::load(&host.deployment_dir(first))?.max_failed_boots;
            if grub::arm(&boot, tries)? {
                armed = Some((staged, tries.min(grub::MAX_BOOT_TRIES)));
            }
        }
    }
    Ok(Synced { menu, armed })
}

/// What [`boot_complete`] found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum BootCompleted {
    /// No boot was being counted.
    NotCounting,
    /// The default deployment completed a boot; the counter stopped.
    Completed { deployment: String },
    /// GRUB had fallen back; the booted deployment is now the default.
    FellBack(RollbackRecord),
    /// A deployment other than the default was chosen by hand at the menu
    /// while the default's boots were counted; the count goes on.
    OtherDeployment { deployment: String },
}

/// Marks the booted deployment's boot complete.
pub fn boot_complete(host: &Host, now: u64) -> Result<BootCompleted> {
    let booted = host
        .booted()
        .context("this sysroot is not booted; boot-complete marks the running boot")?;
    let boot = host.boot_dir();
    let list = host.deployments();
    let booted_at = list
        .iter()
        .position(|d| same(d, &booted))
        .context("the booted deployment is not in the list of deployments")?;
    let counter = grub::counter(&boot)?;
    match counter {
        BootCounter::Off => Ok(BootCompleted::NotCounting),
        BootCounter::Counting { .. } if booted_at == 0 => {
            grub::disarm(&boot)?;
            Ok(BootCompleted::Completed {
                deployment: key(&booted),
            })
        }
        BootCounter::Counting { .. } => Ok(BootCompleted::OtherDeployment {
            deployment: key(&booted),
        }),
        BootCounter::FellBack { tries } => {
            let from = list.first().map(key).unwrap_or_default();
            let record = RollbackRecord {
                from: from.clone(),
                to: key(&booted),
                at: now,
                reason: match tries {
                    Some(n) => format!("{n} boots of {from} did not complete"),
                    None => format!("boots of {from} did not complete"),
                },
            };
            if booted_at != 0 {
                // disarms the counter too
                crate::deploy::make_default(host, booted_at)
                    .context("making the deployment GRUB fell back to the default")?;
            } else {
                grub::disarm(&boot)?;
            }
            let osname = booted.osname().to_string();
            let state_path = HealthState::path(host, &osname);
            let mut state = HealthState::load(&state_path)?;
            state.rollbacks.push(record.clone());
            state.save(&state_path)?;
            tracing::warn!(from = %record.from, to = %record.to, "{}", record.reason);
            Ok(BootCompleted::FellBack(record))
        }
    }
}
