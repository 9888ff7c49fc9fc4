//! Image tests in containers confined by SELinux labels, one MCS category
//! pair per run so no two runs can touch each other's files.
//!
//! - [`mcs`]: the [`mcs::McsAllocator`], which hands out category pairs
//!   that no other live run (in this or another corral process, or a
//!   container already running in the engine) holds.
//! - [`label`]: SELinux labels, `label=…` security options and the host
//!   side of `:Z`/`:z` relabelling.
//! - [`engine`]: running an `image.toml`'s tests through the Docker Engine API (bollard).
//! - [`probe`]: service readiness probes inside a container's network
//!   namespace.
//! - [`report`]: results as text, JSON and JUnit XML.
//! - [`cli`]: the `corral test` arguments (also runnable on their own as
//!   `examples/testrun.rs`).
//!
//! The user guide is `docs/testrun.md`.

pub mod cli;
pub mod engine;
pub mod label;
pub mod mcs;
pub mod probe;
pub mod report;
