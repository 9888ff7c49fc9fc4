//! OSTree commits as corral reads them, shared by the crates that make
//! commits (`corral-compose`), deploy them (`corral-host`) and put them on
//! disks (`corral-disk`), so that hosts and disks need nothing of composes.
//!
//! - [`commit`]: the metadata keys corral records on a commit, reading a
//!   commit ([`CommitInfo`]), a ref's history, finding a commit by
//!   version or checksum.
//! - [`container`]: commits as OCI images in the ostree container
//!   format (export in package layers, lossless import).
//! - [`diff`]: packages added, removed and changed between two commits.
//! - [`stream_file`]: the published stream file the website reads
//!   (`REPO/streams/NAME.json`): compose writes its versions, disk build
//!   records its images, both whole (temporary file, then rename).
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let repo = corral_ostree::commit::open(std::path::Path::new("repo"))?;
//! let history = corral_ostree::commit::history(&repo, "fedora/43/x86_64/atomic-host")?;
//! if let [new, old, ..] = history.as_slice() {
//!     let diff = corral_ostree::diff::diff_packages(&old.packages, &new.packages);
//!     print!("{}", corral_ostree::diff::render(&diff));
//! }
//! # Ok(())
//! # }
//! ```

pub mod commit;
pub mod container;
pub mod diff;
pub mod stream_file;

pub use commit::CommitInfo;
pub use diff::PackageDiff;
