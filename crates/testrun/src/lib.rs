//! Image tests in containers confined by SELinux labels, one MCS category
//! pair per run so no two runs can touch each other's files.
//!
//! - [`spec`]: what a run checks, the `[tests]` table of an `image.toml`.
//! - [`mcs`]: the [`mcs::McsAllocator`], which hands out category pairs
//!   that no other live run (in this or another corral process, or a
//!   container already running in the engine) holds.
//! - [`label`]: SELinux labels, `label=…` security options and the host
//!   side of `:Z`/`:z` relabelling.
//! - [`engine`]: running an `image.toml`'s tests through the Docker Engine API (bollard).
//! - [`probe`]: service readiness probes inside a container's network
//!   namespace.
//! - [`report`]: results as text, JSON and JUnit XML.
//! - [`cli`]: the `corral test` arguments and the run over resolved
//!   targets; finding an image's `image.toml` in the library is the CLI's
//!   (corral-cli), so this crate needs nothing of corral-dockerfiles.
//!
//! The user guide is `docs/testrun.md`.

pub mod cli;
pub mod engine;
pub mod label;
pub mod mcs;
pub mod probe;
pub mod report;
pub mod spec;
