//! OCI base images: a tree recipe (or a ready tree) to an image layout,
//! reading images back, and which released images need a respin. The
//! `corral image` commands and `corral release` both call this crate.
//!
//! Bottom up:
//! - [`config`]: the image config a recipe gives (corral's defaults for
//!   `Env` and `Cmd`, labels, OCI annotations, architecture names).
//! - [`sbom`]: the SPDX SBOM as a blob in the layout and as a file beside it.
//! - [`build`]: [`build::build`] runs dnf through `corral-tree`, packs the
//!   tree with `corral-oci` and returns digests, sizes, the image's time
//!   and the footprint policy's report; [`build::BuildProgress`] is how a
//!   caller shows progress.
//! - [`platform`]: `linux/arm64` and the rpm architecture of its packages.
//! - [`multi`]: [`multi::build_platforms`], the same recipe once per
//!   platform, packed under one image index (a multi-arch tag).
//! - [`inspect`]: manifest, config and layers of an image in any
//!   transport skopeo knows.
//! - [`rpmvercmp`], [`repodata`]: rpm's version order; repository metadata
//!   (`repomd.xml`, `primary.xml`, `updateinfo.xml`), parsed from text.
//! - [`outdated`]: a released image's SBOM against its repositories'
//!   newest packages and security advisories.
//!
//! ```no_run
//! use corral_image::build::{build, BuildRequest};
//! use std::path::Path;
//!
//! let req = BuildRequest::from_recipe(Path::new("base.toml"), Path::new("out/base"), "43");
//! let built = build(&req, &())?;
//! println!("{} with {} packages", built.manifest_digest, built.packages);
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod build;
pub mod config;
pub mod error;
pub mod inspect;
pub mod multi;
pub mod outdated;
pub mod platform;
pub mod repodata;
pub mod rpmvercmp;
pub mod sbom;

pub use build::{build, BuildProgress, BuildRequest, BuildResult};
pub use error::RepodataError;
