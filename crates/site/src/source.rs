//! What the site reads, and nothing more: the narrow interface the mirror
//! implements over its registry storage, its OSTree directory and its disk
//! images directory. Every call is bounded by a page size, so a page costs
//! the same at 10 repositories or 10,000.

use async_trait::async_trait;

use crate::model::{Artifact, DiskImage, Image, Listing, Stream, TrustedKeys};

/// The referrer artifact type of an SPDX SBOM.
pub const SBOM_ARTIFACT: &str = "application/spdx+json";
/// The referrer artifact type of an image's help text (Markdown).
pub const HELP_ARTIFACT: &str = "application/vnd.corral.help.v1+markdown";
/// The referrer artifact type of a library image's Dockerfile and lint
/// findings ([`crate::pages::repository::BuildInfo`]).
pub const BUILD_ARTIFACT: &str = "application/vnd.corral.build.v1+json";
/// The referrer artifact type of the advisories outstanding for an image
/// ([`crate::pages::repository::Advisory`] list).
pub const ADVISORIES_ARTIFACT: &str = "application/vnd.corral.advisories.v1+json";

#[async_trait]
pub trait Source: Send + Sync {
    /// Repositories after `after`, at most `n`, in lexical order.
    async fn repositories(&self, after: Option<&str>, n: usize) -> anyhow::Result<Listing>;
    /// Tags of `repo` after `after`, at most `n`, in lexical order
    /// (signature tags left out is the caller's job).
    async fn tags(&self, repo: &str, after: Option<&str>, n: usize) -> anyhow::Result<Listing>;
    /// The image `repo:tag` points to, `None` when there is no such tag.
    async fn image(&self, repo: &str, tag: &str) -> anyhow::Result<Option<Image>>;
    /// The newest artifact of `artifact_type` whose subject is
    /// `repo@digest`, with its first blob when that is at most `limit`
    /// bytes.
    async fn artifact(
        &self,
        repo: &str,
        digest: &str,
        artifact_type: &str,
        limit: u64,
    ) -> anyhow::Result<Option<Artifact>>;
    /// The published Atomic Host streams.
    async fn streams(&self) -> anyhow::Result<Vec<Stream>>;
    /// The published disk images, checked.
    async fn disk_images(&self) -> anyhow::Result<Vec<DiskImage>>;
    /// The keys signatures are checked against.
    fn trusted_keys(&self) -> TrustedKeys;
}
