//! One module per page. Each has a `collect` that reads what the page shows
//! through the [`crate::Source`] (a page's worth, never a whole listing)
//! into a serializable model, the JSON twin, and a `render` from that model
//! to HTML.

pub mod disk_images;
pub mod home;
pub mod repository;
pub mod streams;

use time::OffsetDateTime;

use crate::Source;

/// What a page request knows besides its path and query.
pub struct Context<'a> {
    pub source: &'a dyn Source,
    /// `host:port` clients pull from.
    pub host: String,
    /// `http://host:port` (or `https://`).
    pub base_url: String,
    pub now: OffsetDateTime,
    /// What the listings show apart or leave out.
    pub listings: &'a crate::listings::Listings,
}

impl Context<'_> {
    pub fn plain_http(&self) -> bool {
        self.base_url.starts_with("http://")
    }

    /// Where the mirror serves a trusted key file (`/keys/NAME`, by its
    /// file name).
    pub fn key_url(&self, name: &str) -> String {
        format!(
            "{}/keys/{}",
            self.base_url,
            crate::html::url_encode(name, false)
        )
    }

    /// The command that downloads a trusted key file into the current
    /// directory under its own name.
    pub fn key_download(&self, name: &str) -> String {
        format!(
            "curl -fsSL -o {} {}",
            crate::html::shell_word(name),
            self.key_url(name)
        )
    }
}

/// Tag names that are signatures or attachments, not images.
pub fn is_image_tag(tag: &str) -> bool {
    !(tag.ends_with(".sig") || tag.ends_with(".att") || tag.ends_with(".sbom"))
}

/// `n=` of a query, clamped.
pub fn page_size(query: &str, default: usize, max: usize) -> usize {
    crate::query_param(query, "n")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

/// The tag a repository is summarized by: `latest` when it exists, else the
/// lexically last of its first tags (versions sort so, mostly). Costs one
/// listing page and one image read.
pub async fn featured_tag(
    ctx: &Context<'_>,
    repo: &str,
) -> anyhow::Result<Option<crate::model::Image>> {
    if let Some(i) = ctx.source.image(repo, "latest").await? {
        return Ok(Some(i));
    }
    let tags = ctx.source.tags(repo, None, 100).await?;
    for t in tags.items.iter().rev().filter(|t| is_image_tag(t)) {
        if let Some(i) = ctx.source.image(repo, t).await? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}
