//! The curated Dockerfile library: parser, lint, graph and plan.
//!
//! - [`parse`]: corral's own Dockerfile parser (text in, syntax tree out).
//! - [`lint`]: rules from the Fedora container guidelines and common practice.
//! - [`library`]: the `dockerfiles/` folder, its `library.toml` and `image.toml` files.
//! - [`files`]: reading those files with a size limit, errors that name
//!   the path once.
//! - [`help`]: `help.md` to the `/help.1` man page every image carries.
//! - [`graph`]: dependencies between library images from their FROM lines.
//! - [`plan`]: what to rebuild, in order, and the [`plan::BuiltImages`] seam.
//! - [`engine_build`]: building, tagging and pushing through the Docker Engine API,
//!   and [`engine_build::EngineImages`], the engine behind [`plan::BuiltImages`].
//! - [`cli`]: the `corral dockerfiles` subcommands (also runnable on their own
//!   as `examples/corral-dockerfiles.rs`).
//!
//! The maintainer's guide is `docs/dockerfiles.md`; the rule reference is
//! `docs/rules/`.

pub mod cli;
pub mod engine_build;
pub mod files;
pub mod graph;
pub mod help;
pub mod library;
pub mod lint;
pub mod parse;
pub mod plan;

pub use parse::{parse, parse_bytes, Dockerfile};
