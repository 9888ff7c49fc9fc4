//! Writing deployments: a commit as the new default, rollback, pins and
//! cleanup. libostree swaps the boot configuration atomically, so a
//! killed process leaves the old set of deployments in place.
//!
//! On a booted host a new deployment is *staged* (as `ostree admin deploy
//! --stage` and rpm-ostree do): libostree checks it out now and
//! ostree-finalize-staged.service writes it at shutdown, merging `/etc`
//! again at that point, so edits an administrator makes between the
//! upgrade and the reboot are carried over. corral's drop-in for that
//! service (dist/systemd) then rewrites the GRUB menu and arms the boot
//! counter ([`crate::boot_count::sync_after_finalize`]).

use anyhow::{bail, Context, Result};
use ostree::gio;

use ostree::glib;

use crate::sysroot::{same, Host};

/// Why a deployment must stay, whatever the retention count says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    pub booted: bool,
    pub merge: bool,
    pub pinned: bool,
    pub new: bool,
}

/// Which deployments (in boot order) survive when `keep` are kept: the
/// new, booted, merge and pinned ones always; the others in order until
/// there are `keep`.
pub fn retain(list: &[Keep], keep: usize) -> Vec<bool> {
    let mut out: Vec<bool> = list
        .iter()
        .map(|k| k.booted || k.merge || k.pinned || k.new)
        .collect();
    let mut count = out.iter().filter(|k| **k).count();
    for slot in out.iter_mut() {
        if count >= keep {
            break;
        }
        if !*slot {
            *slot = true;
            count += 1;
        }
    }
    out
}

/// Where corral notes the deployment it staged, for the drop-in that runs
/// after libostree finalized it at shutdown (under `/run`: a staged
/// deployment does not outlive the boot that staged it).
pub const STAGED_NOTE: &str = "run/corral/staged-deployment";

/// What a change of the deployments does to GRUB's boot counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A new deployment became the default: count its boots.
    Arm(u32),
    /// The administrator (or the health check) chose the default.
    Disarm,
    Keep,
}

/// How [`deploy_commit`] writes a new deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployOptions {
    /// Deployments kept (the new, booted, merge and pinned ones always).
    pub keep: usize,
    /// Stage it for finalization at shutdown; only on a booted host.
    pub stage: bool,
    /// Boots of it that may fail to complete before GRUB falls back.
    pub max_failed_boots: u32,
}

fn write(
    host: &Host,
    list: &[ostree::Deployment],
    postclean: bool,
    counter: Counter,
) -> Result<()> {
    let opts = ostree::SysrootWriteDeploymentsOpts {
        do_postclean: postclean,
    };
    host.sysroot()
        .write_deployments_with_options(list, &opts, gio::Cancellable::NONE)
        .with_context(|| format!("writing the deployments of {}", host.path().display()))?;
    host.reload()?;
    // libostree wrote new BLS entries; a GRUB menu corral generated from
    // them must follow, or the next boot would start the old default.
    let boot = host.boot_dir();
    crate::grub::refresh(&boot)?;
    match counter {
        Counter::Arm(tries) if list.len() >= 2 => {
            crate::grub::arm(&boot, tries)?;
        }
        Counter::Arm(_) | Counter::Keep => {}
        Counter::Disarm => {
            crate::grub::disarm(&boot)?;
        }
    }
    Ok(())
}

/// libostree's note of the staged deployment on a booted host.
const STAGED_RUNSTATE: &str = "/run/ostree/staged-deployment";

/// Discards the staged deployment, if any, the way libostree does when a
/// written list leaves it out, but as a step of its own: libostree 2022.7
/// reloads the sysroot in the middle of such a write and then no longer
/// finds the booted deployment in the list it was given ("Attempting to
/// remove booted deployment"). Its checkout goes with the next cleanup.
/// Returns the discarded deployment's key.
fn unstage(host: &Host) -> Result<Option<String>> {
    let Some(staged) = host.sysroot().staged_deployment() else {
        return Ok(None);
    };
    match std::fs::remove_file(STAGED_RUNSTATE) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {STAGED_RUNSTATE}")),
    }
    // libostree reloads only when ostree/deploy changed (its own writes
    // bump its time); bump it so the reload drops the staged deployment
    let deploy = host.path().join("ostree/deploy");
    std::fs::File::open(&deploy)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()))
        .with_context(|| format!("updating the time of {}", deploy.display()))?;
    host.reload()?;
    if host.sysroot().staged_deployment().is_some() {
        bail!("{STAGED_RUNSTATE} is gone but libostree still has a staged deployment");
    }
    crate::finalize::forget_staged(host, &staged.osname())?;
    tracing::info!(deployment = %key(&staged), "discarded the staged deployment");
    Ok(Some(key(&staged)))
}

fn key(d: &ostree::Deployment) -> String {
    format!("{}.{}", d.csum(), d.deployserial())
}

/// Deploys `checksum` as the new default deployment of `osname` with
/// the origin file `origin`, its
/// `/etc` merged from `merge` and its kernel arguments taken from it,
/// then drops the deployments retention lets go. With `opts.stage` on a
/// booted host the deployment is staged instead of written (retention is
/// applied to the others first, as the staged one will join them).
/// Returns the new deployment and the keys of the dropped ones.
pub fn deploy_commit(
    host: &Host,
    osname: &str,
    checksum: &str,
    origin: &glib::KeyFile,
    merge: Option<&ostree::Deployment>,
    opts: DeployOptions,
) -> Result<(ostree::Deployment, Vec<String>)> {
    let booted = host.booted();
    // the new deployment replaces one staged earlier
    unstage(host)?;
    if opts.stage && booted.is_some() {
        return stage_commit(host, osname, checksum, origin, merge, opts);
    }
    let new = host
        .sysroot()
        .deploy_tree_with_options(
            Some(osname),
            checksum,
            Some(origin),
            merge,
            None,
            gio::Cancellable::NONE,
        )
        .with_context(|| format!("deploying {checksum}"))?;
    // a deployment staged earlier is replaced by this one
    let mut list = vec![new.clone()];
    list.extend(host.deployments().into_iter().filter(|d| !d.is_staged()));
    let (kept, dropped) = apply_retention(list, true, booted.as_ref(), merge, opts.keep);
    write(host, &kept, true, Counter::Arm(opts.max_failed_boots))?;
    let new = host
        .deployments()
        .into_iter()
        .next()
        .context("the new deployment is missing after writing it")?;
    Ok((new, dropped))
}

/// Splits `list` into the deployments retention keeps and the keys of
/// those it drops; with `first_is_new` the first is the new one.
fn apply_retention(
    list: Vec<ostree::Deployment>,
    first_is_new: bool,
    booted: Option<&ostree::Deployment>,
    merge: Option<&ostree::Deployment>,
    keep: usize,
) -> (Vec<ostree::Deployment>, Vec<String>) {
    let flags: Vec<Keep> = list
        .iter()
        .enumerate()
        .map(|(i, d)| Keep {
            new: first_is_new && i == 0,
            booted: booted.is_some_and(|b| same(b, d)),
            merge: merge.is_some_and(|m| same(m, d)),
            pinned: d.is_pinned(),
        })
        .collect();
    let keep_flags = retain(&flags, keep);
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for (d, k) in list.into_iter().zip(keep_flags) {
        if k {
            kept.push(d);
        } else {
            dropped.push(key(&d));
        }
    }
    (kept, dropped)
}

fn stage_commit(
    host: &Host,
    osname: &str,
    checksum: &str,
    origin: &glib::KeyFile,
    merge: Option<&ostree::Deployment>,
    opts: DeployOptions,
) -> Result<(ostree::Deployment, Vec<String>)> {
    let booted = host.booted();
    // Retention first, counting the staged deployment to come as the new
    // one: libostree's finalization keeps every deployment it finds.
    let existing: Vec<ostree::Deployment> = host
        .deployments()
        .into_iter()
        .filter(|d| !d.is_staged())
        .collect();
    let mut flags = vec![Keep {
        new: true,
        ..Keep::default()
    }];
    flags.extend(existing.iter().map(|d| Keep {
        new: false,
        booted: booted.as_ref().is_some_and(|b| same(b, d)),
        merge: merge.is_some_and(|m| same(m, d)),
        pinned: d.is_pinned(),
    }));
    let keep_flags = retain(&flags, opts.keep);
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for (d, k) in existing.into_iter().zip(keep_flags.into_iter().skip(1)) {
        if k {
            kept.push(d);
        } else {
            dropped.push(key(&d));
        }
    }
    if !dropped.is_empty() {
        write(host, &kept, true, Counter::Keep)?;
    }
    let new = host
        .sysroot()
        .stage_tree_with_options(
            Some(osname),
            checksum,
            Some(origin),
            merge,
            &ostree::SysrootDeployTreeOpts::default(),
            gio::Cancellable::NONE,
        )
        .with_context(|| format!("staging {checksum} for the next boot"))?;
    let note = host.path().join(STAGED_NOTE);
    if let Some(dir) = note.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = note.with_extension("tmp");
    std::fs::write(&tmp, format!("{}\n", key(&new)))
        .and_then(|_| std::fs::rename(&tmp, &note))
        .with_context(|| format!("writing {}", note.display()))?;
    host.reload()?;
    let staged = host
        .sysroot()
        .staged_deployment()
        .context("the staged deployment is missing after staging it")?;
    crate::finalize::note_staged(host, osname, &staged)?;
    tracing::info!(
        deployment = %key(&staged),
        "staged; ostree-finalize-staged.service writes it at shutdown"
    );
    Ok((staged, dropped))
}

/// Moves deployment `index` to the front (the default), the others keeping
/// their order; nothing is deleted.
pub fn make_default(host: &Host, index: usize) -> Result<()> {
    let n = host.deployments().len();
    if index >= n {
        bail!("there is no deployment {index} (only {n})");
    }
    let mut index = index;
    // A staged deployment can only be first: choosing another default
    // discards it.
    if index > 0 && unstage(host)?.is_some() {
        index -= 1;
    }
    let mut list = host.deployments();
    let d = list.remove(index);
    list.insert(0, d);
    write(host, &list, false, Counter::Disarm)
}

/// Makes deployment 1 the default and the old default its rollback;
/// again swaps them back. A staged deployment is discarded instead, the
/// booted one staying the default. Returns the default and its rollback.
pub fn rollback(host: &Host) -> Result<(ostree::Deployment, Option<ostree::Deployment>)> {
    let n = host.deployments().len();
    if n < 2 {
        bail!("there is no deployment to roll back to (only {n})");
    }
    make_default(host, 1)?;
    let now = host.deployments();
    let default = now
        .first()
        .cloned()
        .context("no deployment is left after the rollback")?;
    Ok((default, now.get(1).cloned()))
}

/// Pins or unpins deployment `index`.
pub fn set_pinned(host: &Host, index: usize, pinned: bool) -> Result<ostree::Deployment> {
    let d = host.by_index(index)?;
    if d.is_staged() {
        bail!("deployment {index} is staged for the next boot and cannot be pinned");
    }
    host.sysroot()
        .deployment_set_pinned(&d, pinned)
        .with_context(|| format!("changing the pin of deployment {index}"))?;
    host.reload()?;
    host.by_index(index)
}

/// What `cleanup` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cleaned {
    pub deployments: Vec<String>,
}

/// Removes the pending deployment (newer than the booted one) and/or the
/// rollback deployments (all after the booted one, or after the default
/// in a sysroot that is not booted), except pinned ones; then lets
/// libostree remove unreferenced boot files and prune the repository.
pub fn cleanup(host: &Host, pending: bool, rollback: bool) -> Result<Cleaned> {
    let mut out = Cleaned::default();
    if pending {
        if let Some(k) = unstage(host)? {
            out.deployments.push(k);
        }
    }
    let unstaged = !out.deployments.is_empty();
    let list = host.deployments();
    let booted = host.booted();
    let anchor = match &booted {
        Some(b) => list.iter().position(|d| same(d, b)).unwrap_or(0),
        None => 0,
    };
    let mut kept = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let drop = !d.is_pinned()
            && ((pending && booted.is_some() && i < anchor) || (rollback && i > anchor));
        if drop {
            out.deployments
                .push(format!("{}.{}", d.csum(), d.deployserial()));
        } else {
            kept.push(d.clone());
        }
    }
    if pending && booted.is_none() {
        tracing::info!("this sysroot is not booted, so it has no pending deployment");
    }
    if out.deployments.len() > usize::from(unstaged) {
        // the default is the booted one again: nothing new to count
        let counter = match (&booted, kept.first()) {
            (Some(b), Some(first)) if same(b, first) => Counter::Disarm,
            _ => Counter::Keep,
        };
        write(host, &kept, false, counter)?;
    }
    host.sysroot()
        .cleanup(gio::Cancellable::NONE)
        .with_context(|| format!("cleaning up {}", host.path().display()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(new: bool, booted: bool, merge: bool, pinned: bool) -> Keep {
        Keep {
            new,
            booted,
            merge,
            pinned,
        }
    }

    #[test]
    fn retention_keeps_the_newest_up_to_the_count() {
        let plain = Keep::default();
        let list = [
            k(true, false, false, false),
            k(false, false, true, false),
            plain,
            plain,
            plain,
        ];
        assert_eq!(retain(&list, 3), vec![true, true, true, false, false]);
        assert_eq!(retain(&list, 2), vec![true, true, false, false, false]);
    }

    #[test]
    fn booted_and_pinned_deployments_are_never_dropped() {
        let plain = Keep::default();
        let list = [
            k(true, false, false, false),
            plain,
            plain,
            k(false, true, true, false),
            k(false, false, false, true),
        ];
        // new + booted + pinned already make 3: nothing else is kept
        assert_eq!(retain(&list, 3), vec![true, false, false, true, true]);
        assert_eq!(retain(&list, 4), vec![true, true, false, true, true]);
    }
}
