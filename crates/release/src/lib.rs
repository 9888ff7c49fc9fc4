//! `corral release`: the whole release as one resumable job, and
//! `corral image outdated`'s answer to "which images need a respin".
//!
//! - [`config`]: `release.toml` (bases, library, streams, mirror, keys).
//! - [`plan`]: each step's items, built or kept, and why; the pure
//!   decisions (respin cadence, security advisories, changed inputs).
//! - [`state`]: what succeeded on which inputs, written atomically after
//!   every item, so a rerun resumes; [`lock`]: one run per work directory.
//! - [`pipeline`]: plan, then run the steps in order; the
//!   [`pipeline::BaseImageBuilder`] seam through which base images are built.
//! - [`steps`]: one module per step: `base`, `library`, `host`.
//! - [`publish`]: pushing to the mirror and signing there.
//! - [`repodata`], [`rpmvercmp`], [`outdated`]: repository metadata
//!   (primary, updateinfo) against an image's SBOM.
//! - [`report`]: the release report, Markdown and JSON.
//! - [`progress`]: per-step progress on stderr.
//! - [`cli`]: the `corral release` arguments.
//!
//! The release engineer's walkthrough is `docs/release.md`.

pub mod cli;
pub mod config;
pub mod error;
pub mod lock;
pub mod outdated;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod publish;
pub mod repodata;
pub mod report;
pub mod rpmvercmp;
pub mod state;
pub mod steps;

pub use config::ReleaseConfig;
pub use error::{ConfigError, RepodataError};
pub use pipeline::{BaseImageBuilder, RunOptions};
pub use plan::{Action, Plan, Step};
