//! corral's test harness: the helpers every test suite shares, written
//! once. The end-to-end tests (tests/e2e, integration tests of the `corral`
//! package) and the mirror's and oci's own integration tests depend on it
//! as a dev-dependency. It depends on no crate of ours, so a test using it
//! drives corral from outside, and a crate low in the graph (corral-oci)
//! can use it without building the rest.
//!
//! - [`bin`]: the built `corral` and `corral-ostree` (`CARGO_BIN_EXE_corral`),
//!   running commands ([`run_ok`], [`require_tool`]), scratch directories.
//! - [`net`]: [`free_port`], [`http_get`], [`wait_http`], stopping a server
//!   process ([`stop_child`]).
//! - [`digest`]: [`sha256_hex`], [`sha256_file`], OCI layout indexes
//!   ([`layout_manifest_digest`], [`write_layout_index`]).
//! - [`repos`]: the sample RPM repositories, archive OSTree repositories.
//! - [`tree`]: what a tree on disk holds, entry by entry ([`tree_facts`]).
//! - [`images`]: small test images (busybox, payload-only), PNG decoding.
//! - Real tools, started for one test and stopped on drop: [`Dockerd`],
//!   [`Mirror`] (`corral mirror serve`), [`Upstream`] (docker-registry),
//!   [`Skopeo`], [`Gpg`], [`Garage`] (a 3-node S3 cluster), [`cdp::Browser`]
//!   (headless chromium).
//! - [`faults`], [`lying_upstream`]: the mirror's fault-injection helpers.
//! - [`accel`]: KVM or TCG for qemu; [`units`]: documented systemd units.
//!
//! A test that needs a tool which is missing fails with a message naming
//! it; nothing here skips silently.

pub mod accel;
pub mod bin;
pub mod cdp;
pub mod digest;
pub mod dockerd;
pub mod faults;
pub mod garage;
pub mod gpg;
pub mod images;
pub mod lying_upstream;
pub mod mirror;
pub mod net;
pub mod repos;
pub mod skopeo;
pub mod tree;
pub mod units;
pub mod upstream;

pub use accel::Accel;
pub use bin::*;
pub use digest::*;
pub use dockerd::Dockerd;
pub use garage::Garage;
pub use gpg::Gpg;
pub use images::*;
pub use mirror::Mirror;
pub use net::*;
pub use repos::*;
pub use skopeo::Skopeo;
pub use tree::*;
pub use units::{systemd_verify, verify_documented_units};
pub use upstream::Upstream;
