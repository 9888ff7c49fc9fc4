//! OSTree commits as OCI images, in the container format rpm-ostree and
//! bootc read ("ostree native containers"): each layer is a tar stream
//! holding part of a `bare-split-xattrs` repository under
//! `sysroot/ostree/repo` plus a hard-linked checkout of the same files,
//! and the first layer holds the commit, its detached metadata
//! (signatures) and every dirtree and dirmeta object.
//!
//! - [`objects`]: object paths in the tar stream and the writer of a
//!   commit's objects, with fixed headers so the bytes are stable.
//! - [`walk`]: a commit's tree: every content object and the paths that
//!   use it, every directory.
//! - [`chunks`]: which content goes into which layer: one layer per group
//!   of packages (from the rpmdb inside the commit), groups fixed by the
//!   package name, so a release that changes one package changes one
//!   layer and the commit layer.
//! - [`export`]: a commit to an OCI image layout ([`export::export_commit`]).
//! - [`import`]: such an image back into a repository, objects checked
//!   against their checksums ([`import::import_layout`]).
//! - [`location`]: `oci:DIR[:TAG]` and `docker://…`, as commands take them.
//! - [`derived`]: the container layers of a derived image (`FROM` the OS
//!   image) applied onto a checkout of its base commit, written as a new
//!   commit that records the base and the layers.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use corral_ostree::container::{export, import};
//! let repo = corral_ostree::commit::open(std::path::Path::new("repo"))?;
//! let opts = export::ExportOptions::default();
//! let image = export::export_commit(&repo, "fedora/43/x86_64/atomic-host", "out/os".as_ref(), "43.1", &opts)?;
//! let client = corral_ostree::commit::open(std::path::Path::new("client"))?;
//! let imported = import::import_layout(&client, "out/os".as_ref(), "43.1")?;
//! assert_eq!(imported.commit, image.commit);
//! # Ok(())
//! # }
//! ```

pub mod chunks;
pub mod derived;
pub mod export;
pub mod import;
pub mod location;
pub mod objects;
pub mod walk;

/// Labels (on the image config) and annotations (on the manifest) that
/// readers of the format look for.
pub mod labels {
    /// The commit checksum the image carries.
    pub const COMMIT: &str = "ostree.commit";
    /// The diff ID of the last layer, which holds the commit object.
    pub const FINAL_DIFFID: &str = "ostree.final-diffid";
    /// Marks the image as a bootable host image for bootc.
    pub const BOOTC: &str = "containers.bootc";
    pub const BOOTABLE: &str = "ostree.bootable";
    /// The commit's `version` metadata.
    pub const VERSION: &str = "version";
    pub const OCI_VERSION: &str = "org.opencontainers.image.version";
    /// On a layer descriptor: the packages whose files it holds.
    pub const COMPONENTS: &str = "ostree.components";
    /// The ref name of a manifest in a layout's `index.json`.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
}

/// The media type of every layer: gzip-compressed tar.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
