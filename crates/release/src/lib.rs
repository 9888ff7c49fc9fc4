//! `corral release`: the whole release as one resumable job.
//!
//! - [`config`]: `release.toml` (bases, library, streams, mirror, keys).
//! - [`plan`]: each step's items, built or kept, and why; the pure
//!   decisions (respin cadence, security advisories, changed inputs).
//! - [`state`]: what succeeded on which inputs, written atomically after
//!   every item, so a rerun resumes; [`lock`]: one run per work directory.
//! - [`pipeline`]: plan, then run the steps in order.
//! - [`steps`]: one module per step: `base` (built with `corral-image`),
//!   `library`, `host`.
//! - [`publish`]: pushing to the mirror and signing there.
//! - [`artifacts`]: what the website shows beside an image (help,
//!   Dockerfile and lint findings, advisories), pushed as artifacts that
//!   refer to it.
//! - [`report`]: the release report, Markdown and JSON.
//! - [`progress`]: per-step progress on stderr.
//! - [`cli`]: the `corral release` arguments.
//!
//! The release engineer's walkthrough is `docs/release.md`.

pub mod artifacts;
pub mod cli;
pub mod config;
pub mod error;
pub mod lock;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod publish;
pub mod report;
pub mod state;
pub mod steps;

pub use config::ReleaseConfig;
pub use error::ConfigError;
pub use pipeline::RunOptions;
pub use plan::{Action, Plan, Step};
