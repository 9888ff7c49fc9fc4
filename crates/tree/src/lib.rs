//! Package recipes to root filesystems.
//!
//! - [`recipe`]: the TOML tree recipe (parse, validate, resolve paths).
//! - [`values`]: what each recipe value may be (package names, repository
//!   ids, architectures, URLs), since they reach dnf's command line and
//!   configuration.
//! - [`binfmt`]: the qemu-user handlers that run another architecture's
//!   scriptlets, checked before a build for that architecture.
//! - [`dnf`]: installing it with the real `dnf --installroot`, the rpm
//!   database inside the tree.
//! - [`limits`]: the cgroup (process and memory limits) of a sandboxed
//!   build.
//! - [`sandbox`]: the bubblewrap sandbox dnf and its scriptlets can run
//!   in: no network, none of the host but what the build needs.
//! - [`footprint`]: the policy that leaves out docs, locales, caches and
//!   logs, and what each item saved.
//! - [`normalize`]: what dnf and rpm stamp with the time, made stable.
//! - [`rpmdb`]: the installed packages, read back with `rpm --root`.
//! - [`sbom`]: SPDX JSON from those packages.
//! - [`source`]: ready trees, from a directory or a tar archive.
//! - [`build`]: all of it, into a tree renamed into place when complete.

pub mod binfmt;
pub mod build;
pub mod dnf;
pub mod error;
pub mod footprint;
pub mod limits;
pub mod normalize;
pub mod recipe;
pub mod rpmdb;
pub mod sandbox;
pub mod sbom;
pub mod source;
pub mod values;

pub use build::{
    build_tree, build_tree_in_sandbox, build_tree_in_sandbox_with, BuildOptions, TreeReport,
};
pub use error::TreeError;
pub use limits::SandboxLimits;
pub use recipe::Recipe;
pub use rpmdb::{Package, RpmDb};
pub use source::ReadyTree;
