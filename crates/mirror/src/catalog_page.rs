//! The catalog of every tag at `/catalog` (the website's pages, crate::site,
//! show repositories one at a time): server-rendered HTML, no JavaScript. Lists every
//! repository's tags with digest, size, creation date, whether their
//! signatures verify against the mirror's trusted keys ([`crate::trust`]),
//! and pull commands for podman and docker; then the disk images
//! ([`crate::disk_images`]) with size, checksum and signature state.
//! `/catalog.json` is the same data for machines. Repositories the
//! website's listing rules leave out ([`corral_site::listings`]) are left
//! out here too.
//!
//! Both are paginated by tag rows across repositories: `?n=` rows (default
//! [`DEFAULT_ROWS`], at most [`MAX_ROWS`]) after `?last=<repo>:<tag>`, the
//! last row of the previous page, with a `Link: <...>; rel="next"` header
//! (and a `next` field, a link at the bottom of the page). A page reads only
//! the repositories and tags it shows, through the storage's listing
//! indexes, so it costs the same at 10 tags or 10,000.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use futures_util::{stream, StreamExt as _};
use serde::Serialize;

use corral_site::html::{escape, human_size};

use crate::app::App;
use crate::auth::Identity;
use crate::disk_images::DiskImage;
use crate::manifest::is_index;
use crate::name::{Digest, RepoName};
use crate::trust::{tag_signatures, TagSignatures};

#[derive(Debug, Serialize)]
pub struct TagRow {
    pub tag: String,
    #[serde(serialize_with = "display")]
    pub digest: Digest,
    pub size: u64,
    pub created: Option<String>,
    pub signatures: TagSignatures,
    pub pull: String,
}

#[derive(Debug, Serialize)]
pub struct RepoRows {
    pub name: String,
    pub mirrored: bool,
    pub tags: Vec<TagRow>,
}

fn display<S: serde::Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

/// Facts shown for one tag.
async fn tag_row(app: &App, host: &str, repo: &RepoName, tag: &str) -> Option<TagRow> {
    let (d, _) = app.store.get_tag(repo, tag).await.ok()??;
    let m = app.store.get_manifest(repo, &d).await.ok()??;
    let v: serde_json::Value = serde_json::from_slice(&m.body).ok()?;
    let mut size = m.body.len() as u64;
    let mut created = v
        .get("annotations")
        .and_then(|a| a.get("org.opencontainers.image.created"))
        .and_then(|c| c.as_str())
        .map(str::to_string);
    if !is_index(&m.media_type) {
        size += v
            .get("config")
            .and_then(|c| c.get("size"))
            .and_then(|s| s.as_u64())
            .unwrap_or(0);
        if let Some(layers) = v.get("layers").and_then(|l| l.as_array()) {
            size += layers
                .iter()
                .filter_map(|l| l.get("size").and_then(|s| s.as_u64()))
                .sum::<u64>();
        }
        if created.is_none() {
            let cfg = v
                .get("config")
                .and_then(|c| c.get("digest"))
                .and_then(|d| d.as_str())
                .and_then(|d| d.parse::<Digest>().ok());
            if let Some(cfg) = cfg {
                if app
                    .store
                    .blob_size(&cfg)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|s| s < (1 << 20))
                {
                    if let Ok(Some((_, mut r))) = app.store.open_blob(&cfg, 0).await {
                        let mut buf = Vec::new();
                        use tokio::io::AsyncReadExt;
                        if r.read_to_end(&mut buf).await.is_ok() {
                            created = serde_json::from_slice::<serde_json::Value>(&buf)
                                .ok()
                                .and_then(|c| {
                                    c.get("created")
                                        .and_then(|c| c.as_str())
                                        .map(str::to_string)
                                });
                        }
                    }
                }
            }
        }
    }
    let signatures = tag_signatures(app, host, repo, tag, &d).await;
    Some(TagRow {
        tag: tag.to_string(),
        pull: format!("{host}/{repo}:{tag}"),
        digest: d,
        size,
        created,
        signatures,
    })
}

/// Tag rows read at once.
const ROW_READS: usize = 16;

/// Tag rows per page unless `?n=` says otherwise.
pub const DEFAULT_ROWS: usize = 100;
/// The most tag rows one page holds.
pub const MAX_ROWS: usize = 1000;

/// Where a catalog page starts and how many rows it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// The previous page's last row: the page starts after this tag of
    /// this repository.
    pub last: Option<(RepoName, String)>,
    pub rows: usize,
}

impl PageQuery {
    /// From `?n=&last=<repo>:<tag>`; anything malformed means the defaults.
    pub fn parse(query: &str) -> PageQuery {
        let rows = crate::http::query_param(query, "n")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(DEFAULT_ROWS)
            .clamp(1, MAX_ROWS);
        let last = crate::http::query_param(query, "last").and_then(|l| {
            let (repo, tag) = l.split_once(':')?;
            Some((RepoName::parse(repo)?, tag.to_string()))
        });
        PageQuery { last, rows }
    }
}

/// One page of the catalog: repositories with their rows, and the query of
/// the next page when there is one.
#[derive(Debug, Serialize)]
pub struct CatalogPage {
    pub repositories: Vec<RepoRows>,
    /// `?n=..&last=..` of the next page.
    pub next: Option<String>,
}

/// One page of repositories and their image tags (signature tags left
/// out), in lexical order of repository, then tag.
pub async fn collect(app: &App, host: &str, q: &PageQuery) -> anyhow::Result<CatalogPage> {
    let mut out = Vec::new();
    let mut shown = 0;
    // The repository the previous page ended in, and its last tag shown.
    let mut resume = q.last.clone().map(|(r, t)| (r, Some(t)));
    let mut done_repo: Option<String> = q.last.as_ref().map(|(r, _)| r.to_string());
    loop {
        let (repo, mut after) = match resume.take() {
            Some(r) => r,
            None => match app
                .store
                .repos_page(done_repo.as_deref(), Some(1))
                .await?
                .items
                .pop()
            {
                Some(r) => (r, None),
                None => {
                    return Ok(CatalogPage {
                        repositories: out,
                        next: None,
                    })
                }
            },
        };
        done_repo = Some(repo.to_string());
        // An unlisted repository (a withdrawn community template) has no
        // rows here; its tags still pull.
        if !app.listings.is_listed(repo.as_str()) {
            continue;
        }
        let mut rows = Vec::new();
        let mut more_tags = true;
        while shown < q.rows && more_tags {
            let page = app
                .store
                .tags_page(&repo, after.as_deref(), Some(q.rows - shown))
                .await?;
            more_tags = page.more;
            // The rows' reads (tag, manifest, signatures) wait on storage,
            // not on each other: a few at a time, in the listing's order.
            let wanted: Vec<String> = page
                .items
                .iter()
                .filter(|t| !t.ends_with(".sig"))
                .cloned()
                .collect();
            let repo_ref = &repo;
            let batch: Vec<Option<TagRow>> = stream::iter(wanted)
                .map(|t| async move { tag_row(app, host, repo_ref, &t).await })
                .buffered(ROW_READS)
                .collect()
                .await;
            for row in batch.into_iter().flatten() {
                rows.push(row);
                shown += 1;
            }
            if let Some(last) = page.items.last() {
                after = Some(last.clone());
            }
        }
        let rows_shown = !rows.is_empty();
        if rows_shown || q.last.as_ref().is_none_or(|(r, _)| *r != repo) {
            out.push(RepoRows {
                name: repo.to_string(),
                mirrored: app.config.upstream_for(&repo).is_some(),
                tags: rows,
            });
        }
        if shown >= q.rows {
            let more = more_tags
                || !app
                    .store
                    .repos_page(Some(repo.as_str()), Some(1))
                    .await?
                    .items
                    .is_empty();
            let next = match (more, after) {
                (true, Some(tag)) => Some(format!(
                    "n={}&last={}",
                    q.rows,
                    crate::http::percent_encode(&format!("{repo}:{tag}"))
                )),
                _ => None,
            };
            return Ok(CatalogPage {
                repositories: out,
                next,
            });
        }
    }
}

/// The signature cell: a class for the colour and the text.
fn signature_cell(s: &TagSignatures) -> (&'static str, String) {
    match s {
        TagSignatures::Verified { format, key, .. } => {
            ("verified", format!("verified ({format}, key {key})"))
        }
        TagSignatures::NotVerified { reason, detail, .. } => (
            "unverified",
            format!("signed, not verified: {} ({detail})", reason.as_str()),
        ),
        TagSignatures::Unsigned => ("unsigned", "unsigned".to_string()),
    }
}

/// The page's access rule: the pull rule, with basic credentials welcome.
pub(crate) fn refuse(app: &App, headers: &HeaderMap) -> Option<Response> {
    if matches!(app.auth.identify(headers), Identity::Invalid)
        || (!app.auth.anonymous_pull() && matches!(app.auth.identify(headers), Identity::Anonymous))
    {
        let mut r = (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
        r.headers_mut().insert(
            "www-authenticate",
            axum::http::HeaderValue::from_static("Basic realm=\"corral\""),
        );
        return Some(r);
    }
    None
}

async fn rows(app: &App, headers: &HeaderMap, query: &str) -> Result<CatalogPage, Response> {
    if let Some(r) = refuse(app, headers) {
        return Err(r);
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| app.config.listen.to_string());
    collect(app, &host, &PageQuery::parse(query))
        .await
        .map_err(|e| {
            tracing::error!(error = format!("{e:#}"), "listing repositories");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        })
}

async fn disk_images(app: &Arc<App>) -> Result<Vec<DiskImage>, Response> {
    crate::disk_images::collect(app).await.map_err(|e| {
        tracing::error!(error = format!("{e:#}"), "listing disk images");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
    })
}

/// Adds the `Link` header to the next page of `path`.
fn with_next(mut r: Response, path: &str, next: &Option<String>) -> Response {
    if let Some(q) = next {
        if let Ok(v) = format!("<{path}?{q}>; rel=\"next\"").parse() {
            r.headers_mut().insert("link", v);
        }
    }
    r
}

/// `GET /catalog.json`.
pub(crate) async fn json(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let page = match rows(&app, &headers, query.as_deref().unwrap_or("")).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    match disk_images(&app).await {
        Ok(images) => with_next(
            axum::Json(serde_json::json!({
                "repositories": page.repositories,
                "disk_images": images,
                "next": page.next.as_ref().map(|q| format!("/catalog.json?{q}")),
            }))
            .into_response(),
            "/catalog.json",
            &page.next,
        ),
        Err(r) => r,
    }
}

/// `GET /catalog`.
pub(crate) async fn page(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let page = match rows(&app, &headers, query.as_deref().unwrap_or("")).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let repos = &page.repositories;
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>corral mirror</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.verified{color:#060}.unverified{color:#a00}code{font-size:.9em;white-space:nowrap}</style></head><body>\n<h1>corral mirror</h1>\n",
    );
    if repos.is_empty() {
        html.push_str("<p>No repositories yet.</p>\n");
    }
    for repo in repos {
        let _ = writeln!(html, "<h2 id=\"{0}\">{0}</h2>", escape(&repo.name));
        if repo.mirrored {
            html.push_str("<p>Mirrored from upstream.</p>\n");
        }
        html.push_str("<table><tr><th>tag</th><th>digest</th><th>size</th><th>created</th><th>signature</th><th>pull</th></tr>\n");
        for row in &repo.tags {
            let reference = escape(&row.pull);
            let (class, text) = signature_cell(&row.signatures);
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td><code>podman pull {reference}</code><br><code>docker pull {reference}</code></td></tr>",
                escape(&row.tag),
                escape(&row.digest.to_string()),
                escape(&human_size(row.size)),
                escape(row.created.as_deref().unwrap_or("")),
                escape(&text),
            );
        }
        html.push_str("</table>\n");
    }
    let images = match disk_images(&app).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if !images.is_empty() {
        html.push_str("<h2 id=\"disk-images\">Disk images</h2>\n<table><tr><th>image</th><th>size</th><th>sha256</th><th>signature</th></tr>\n");
        for i in &images {
            let (class, text) = crate::disk_images::signature_cell(&i.signature);
            let sum = match (&i.sha256, i.checksum_matches) {
                (Some(s), Some(true)) => s.clone(),
                (Some(s), _) => format!("{s} (does NOT match the file)"),
                (None, _) => "no .sha256 published".to_string(),
            };
            let _ = writeln!(
                html,
                "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td><code>{}</code></td><td class=\"{class}\">{}</td></tr>",
                escape(&i.url),
                escape(&i.name),
                escape(&human_size(i.size)),
                escape(&sum),
                escape(&text),
            );
        }
        html.push_str("</table>\n");
    }
    if let Some(q) = &page.next {
        let _ = writeln!(
            html,
            "<p><a rel=\"next\" href=\"/catalog?{}\">next page</a></p>",
            escape(q)
        );
    }
    html.push_str("</body></html>\n");
    with_next(Html(html).into_response(), "/catalog", &page.next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
