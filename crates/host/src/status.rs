//! What `corral host status` shows: every deployment with its role,
//! version, commit, date, origin, signature, pin and health, the package
//! changes between the running and the next deployment, the last
//! rollback the health check made and the last staged deployment that
//! was not finalized.

use anyhow::Result;
use corral_ostree::commit::commit_info;
use corral_ostree::container::derived;
use corral_ostree::diff::{diff_packages, PackageDiff};
use serde::Serialize;

use crate::denylist::{DeniedCommit, Denylist};
use crate::finalize::{self, FinalizeFailure};
use crate::health::{self, DeploymentHealth, HealthState, RollbackRecord};
use crate::image_source::{ImageOrigin, Transport, ORIGIN_GROUP, ORIGIN_KEY};
use crate::signature::{self, SignatureState};
use crate::sysroot::{same, Host};
use crate::upgrade::date;

/// A deployment's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Running now.
    Booted,
    /// Boots next, not booted yet.
    Pending,
    /// The default of a sysroot that is not booted.
    Default,
    /// What `rollback` makes the default.
    Rollback,
    Older,
}

/// One deployment.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentStatus {
    pub index: usize,
    pub role: Role,
    pub osname: String,
    pub checksum: String,
    pub serial: i32,
    pub version: Option<String>,
    pub timestamp: u64,
    pub date: String,
    pub origin: Option<String>,
    /// For a deployment made from a container image: the image.
    pub image: Option<DeployedImage>,
    pub pinned: bool,
    pub staged: bool,
    pub signature: SignatureState,
    pub health: Option<DeploymentHealth>,
}

/// The image a deployment came from.
#[derive(Debug, Clone, Serialize)]
pub struct DeployedImage {
    /// `TRANSPORT:IMAGE` as given to `rebase`.
    pub reference: String,
    pub manifest_digest: String,
    /// A derived image: the OS commit under its layers, and the layers.
    pub base_commit: Option<String>,
    pub derived_layers: Vec<String>,
}

/// Packages changed from one deployment to another.
#[derive(Debug, Clone, Serialize)]
pub struct Changes {
    pub from: usize,
    pub to: usize,
    pub packages: PackageDiff,
}

/// The whole status.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub sysroot: String,
    pub booted: bool,
    pub deployments: Vec<DeploymentStatus>,
    /// Booted to pending; in a sysroot that is not booted, rollback to
    /// default.
    pub changes: Option<Changes>,
    pub last_rollback: Option<RollbackRecord>,
    /// Commits the health check rolled back, which `upgrade` skips, oldest
    /// rollback first.
    pub denied: Vec<DeniedCommit>,
    /// The last deployment staged for a reboot that libostree did not
    /// finalize at shutdown: one a later boot finds now, else the last
    /// one recorded.
    pub last_finalize_failure: Option<FinalizeFailure>,
}

/// Roles in boot order.
pub fn roles(n: usize, booted: Option<usize>) -> Vec<Role> {
    (0..n)
        .map(|i| match booted {
            Some(b) if i == b => Role::Booted,
            Some(b) if i < b => Role::Pending,
            Some(b) if i == b + 1 => Role::Rollback,
            Some(_) => Role::Older,
            None if i == 0 => Role::Default,
            None if i == 1 => Role::Rollback,
            None => Role::Older,
        })
        .collect()
}

/// Reads the status of `host`.
pub fn status(host: &Host) -> Result<HostStatus> {
    let repo = host.repo();
    let list = host.deployments();
    let booted = host.booted();
    let booted_index = booted
        .as_ref()
        .and_then(|b| list.iter().position(|d| same(d, b)));
    let roles = roles(list.len(), booted_index);
    let mut health_by_os = std::collections::BTreeMap::new();
    let mut denied = Vec::new();
    let mut out = Vec::new();
    let mut packages = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let os = d.osname().to_string();
        if !health_by_os.contains_key(&os) {
            health_by_os.insert(
                os.clone(),
                HealthState::load(&HealthState::path(host, &os))?,
            );
            denied.extend(
                Denylist::load(&Denylist::path(host, &os))?
                    .commits
                    .into_values(),
            );
        }
        let info = commit_info(&repo, &d.csum())?;
        let image = ImageOrigin::of(d);
        let remote = match &image {
            Some(i) => match &i.source.transport {
                Transport::RemoteRegistry { remote } => Some(remote.clone()),
                _ => None,
            },
            None => Host::origin(d).map(|o| o.remote),
        };
        let sig = match &remote {
            Some(r) if repo.remote_list().iter().any(|x| x.as_str() == r) => {
                signature::check(&repo, &d.csum(), r)?
            }
            _ => SignatureState::NoRemote,
        };
        packages.push(info.packages.clone());
        out.push(DeploymentStatus {
            index: i,
            role: roles[i],
            osname: os.clone(),
            checksum: d.csum().to_string(),
            serial: d.deployserial(),
            version: info.version.clone(),
            timestamp: info.timestamp,
            date: date(info.timestamp),
            origin: d
                .origin()
                .and_then(|k| {
                    k.string("origin", "refspec")
                        .or_else(|_| k.string(ORIGIN_GROUP, ORIGIN_KEY))
                        .ok()
                })
                .map(|s| s.to_string()),
            image: image.map(|i| {
                let derived = derived::derived_of(&repo, &d.csum());
                DeployedImage {
                    reference: i.source.to_string(),
                    manifest_digest: i.manifest_digest,
                    base_commit: derived.as_ref().map(|(b, _)| b.clone()),
                    derived_layers: derived.map(|(_, l)| l).unwrap_or_default(),
                }
            }),
            pinned: d.is_pinned(),
            staged: d.is_staged(),
            signature: sig,
            health: health_by_os[&os].deployments.get(&health::key(d)).cloned(),
        });
    }
    let pair = match booted_index {
        Some(b) if b > 0 => Some((b, 0)),
        Some(_) => None,
        None if list.len() >= 2 => Some((1, 0)),
        None => None,
    };
    let changes = pair.map(|(from, to)| Changes {
        from,
        to,
        packages: diff_packages(&packages[from], &packages[to]),
    });
    let last_rollback = health_by_os
        .values()
        .flat_map(|s| s.rollbacks.iter())
        .max_by_key(|r| r.at)
        .cloned();
    denied.sort_by_key(|d| d.at);
    let mut last_finalize_failure = health_by_os
        .values()
        .flat_map(|s| s.finalize_failures.iter())
        .max_by_key(|f| f.found_at)
        .cloned();
    for os in health_by_os.keys() {
        if let Some(f) = finalize::unrecorded(host, os)? {
            last_finalize_failure = Some(f);
        }
    }
    Ok(HostStatus {
        sysroot: host.path().display().to_string(),
        booted: booted.is_some(),
        deployments: out,
        changes,
        last_rollback,
        denied,
        last_finalize_failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_rpm_ostree() {
        use Role::*;
        assert_eq!(roles(3, Some(0)), vec![Booted, Rollback, Older]);
        assert_eq!(roles(3, Some(1)), vec![Pending, Booted, Rollback]);
        assert_eq!(roles(3, None), vec![Default, Rollback, Older]);
        assert_eq!(roles(0, None), Vec::<Role>::new());
    }
}
