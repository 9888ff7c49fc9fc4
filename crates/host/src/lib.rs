//! Atomic hosts: the OSTree deployments of a sysroot, kept the way
//! rpm-ostree and bootc keep them, through libostree's sysroot API.
//!
//! - [`sysroot`]: opening a sysroot (`/` or a directory), its stateroot,
//!   the roles of its deployments (booted, pending, rollback).
//! - [`lock`]: one `corral host` writer at a time; the next one waits
//!   and says who holds the lock.
//! - [`config`]: `/etc/corral/host.toml` of the deployment (retention,
//!   failed boots before a rollback, stall timeout).
//! - [`remote`]: adding a remote the ostree way, GPG verification on.
//! - [`summary`]: the remote's summary, fetched and checked against the
//!   remote's keys before anything else is trusted.
//! - [`pull`]: pulls with a progress bar, a stall watchdog and statistics.
//! - [`signature`]: a commit's signature state against a remote's keys.
//! - [`space`]: free space in the repository and `/boot`, checked before
//!   anything is written.
//! - [`etc_merge`]: what the 3-way `/etc` merge did: local edits kept,
//!   files changed both locally and upstream.
//! - [`deploy`]: writing a commit as the new default deployment, with
//!   retention that never drops the booted or a pinned deployment.
//! - [`upgrade`]: `upgrade` and `deploy VERSION`, all of the above in order.
//! - [`image_source`]: image references with their transport
//!   (`ostree-remote-registry:`, `ostree-image-signed:`,
//!   `ostree-unverified-registry:`) and the origin of a deployment made
//!   from one.
//! - [`image_fetch`]: an image's manifest and layers from a registry into
//!   the sysroot's image cache, only the layers not deployed yet, a
//!   cut-off layer download resumed with a Range request.
//! - [`rebase`]: `rebase IMAGEREF` and `upgrade` of an image deployment:
//!   verify, fetch, import, deploy.
//! - [`grub`]: the GRUB menu corral writes from libostree's BLS entries,
//!   rewritten after every change of the deployments, with boot counting.
//! - [`grubenv`]: GRUB's environment block, where the boot counter lives.
//! - [`boot_count`]: the counter armed after a staged deployment is
//!   finalized, stopped when a boot completes, a fallback made permanent.
//! - [`denylist`]: commits the health check rolled back, which upgrades
//!   skip until deployed on purpose or superseded.
//! - [`finalize`]: whether a staged deployment was finalized at shutdown;
//!   a failure is recorded and its commit denied.
//! - [`status`]: what `status` shows, also as JSON.
//! - [`health`]: the boot health check, counting failed boots in `/var`
//!   and rolling back after too many.
//! - [`state_file`]: the JSON state under `/var`, written atomically.
//! - [`strategy`]: `[updates]`: immediate, periodic windows or a FleetLock
//!   slot before a reboot, and the rollout delay after a release.
//! - [`fleetlock`]: the FleetLock client (pre-reboot, steady-state).
//! - [`auto`]: `auto` (deploy, then reboot as the strategy allows) and
//!   `steady` (give the reboot slot back once healthy).
//! - [`cli`]: the clap types and dispatch the `corral` binary mounts.

pub mod auto;
pub mod boot_count;
pub mod cli;
pub mod config;
pub mod denylist;
pub mod deploy;
pub mod error;
pub mod etc_merge;
pub mod finalize;
pub mod fleetlock;
pub mod grub;
pub mod grubenv;
pub mod health;
pub mod image_fetch;
pub mod image_source;
pub mod lock;
pub mod pull;
pub mod rebase;
pub mod remote;
pub mod signature;
pub mod space;
pub mod state_file;
pub mod status;
pub mod strategy;
pub mod summary;
pub mod sysroot;
pub mod upgrade;

pub use error::HostError;
pub use sysroot::Host;
