//! Atomic Host composes: streams of signed OSTree commits, released on a
//! cadence, published with static deltas.
//!
//! - [`stream`]: the stream file (`ostree-refs/*.toml`): ref, cadence,
//!   retention, signing key and the tree recipe.
//! - [`version`]: `<releasever>.<YYYYMMDD>.<n>` numbering.
//! - [`cadence`]: release days and "is it due", against a [`cadence::Clock`].
//! - [`inputhash`]: what a compose was made from; same input, no commit.
//! - [`lockfile`]: the exact package builds a stream installs.
//! - [`postprocess`]: the stream's scripts, units and removals, in the tree.
//! - [`passwd`]: system users and groups moved to `/usr/lib`.
//! - [`ostree_ready`]: a root filesystem made OSTree-ready (kernel, `/usr/etc`,
//!   `/var` as tmpfiles.d, links into `/var`, `/sysroot`).
//! - [`repo`]: the archive repository, commit metadata, writing commits;
//!   reading them is `corral_ostree`'s, re-exported.
//! - [`content`]: content objects hashed, compressed and staged without
//!   libostree.
//! - [`writer`]: a tree written by every core.
//! - [`delta`]: static deltas, kept only when smaller than a plain pull.
//! - [`published`]: `streams/<name>.json` beside the repository, the
//!   versions and package diffs the website shows.
//! - [`sign`]: resolving the GPG signing key.
//! - [`lock`]: one compose per repository at a time (a `corral_pidlock`).
//! - [`compose`]: [`compose::run`] (`compose run`), all of the above in order; the ref moves last.
//! - [`plan`]: `compose plan`; [`diff`] (`compose diff`) is
//!   `corral_ostree::diff`.
//! - [`cli`]: the clap types and dispatch the `corral` binary mounts.

pub mod cadence;
pub mod cli;
pub mod compose;
pub mod content;
pub mod delta;
pub mod error;
pub mod export;
pub mod inputhash;
pub mod lock;
pub mod lockfile;
pub mod ostree_ready;
pub mod passwd;
pub mod plan;
pub mod postprocess;
pub mod published;
pub mod repo;
pub mod sign;
pub mod stream;
pub mod version;
pub mod workdir;
pub mod writer;

pub use corral_ostree::diff;

pub use cadence::{Clock, FixedClock, SystemClock};
pub use compose::{ComposeOutcome, RunOptions};
pub use error::ComposeError;
pub use stream::Stream;
pub use version::ComposeVersion;
