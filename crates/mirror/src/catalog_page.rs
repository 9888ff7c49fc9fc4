//! The catalog page at `/`: server-rendered HTML, no JavaScript. Lists every
//! repository's tags with digest, size, creation date, whether their
//! signatures verify against the mirror's trusted keys ([`crate::trust`]),
//! and pull commands for podman and docker; then the disk images
//! ([`crate::disk_images`]) with size, checksum and signature state.
//! `/catalog.json` is the same data for machines.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::api::manifests::is_index;
use crate::api::App;
use crate::auth::Identity;
use crate::disk_images::DiskImage;
use crate::name::{Digest, RepoName};
use crate::trust::{tag_signatures, TagSignatures};

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

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
async fn tag_row(
    app: &App,
    host: &str,
    repo: &RepoName,
    tag: &str,
    tags: &[String],
) -> Option<TagRow> {
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
    let signatures = tag_signatures(app, host, repo, tag, &d, tags).await;
    Some(TagRow {
        tag: tag.to_string(),
        pull: format!("{host}/{repo}:{tag}"),
        digest: d,
        size,
        created,
        signatures,
    })
}

/// Every repository and its image tags (signature tags left out).
pub async fn collect(app: &App, host: &str) -> anyhow::Result<Vec<RepoRows>> {
    let mut out = Vec::new();
    for repo in app.store.list_repos().await? {
        let tags = app.store.list_tags(&repo).await.unwrap_or_default();
        let mut rows = Vec::new();
        for tag in tags.iter().filter(|t| !t.ends_with(".sig")) {
            if let Some(row) = tag_row(app, host, &repo, tag, &tags).await {
                rows.push(row);
            }
        }
        out.push(RepoRows {
            name: repo.to_string(),
            mirrored: app.config.upstream_for(&repo).is_some(),
            tags: rows,
        });
    }
    Ok(out)
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
fn refuse(app: &App, headers: &HeaderMap) -> Option<Response> {
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

async fn rows(app: &App, headers: &HeaderMap) -> Result<Vec<RepoRows>, Response> {
    if let Some(r) = refuse(app, headers) {
        return Err(r);
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| app.config.listen.to_string());
    collect(app, &host).await.map_err(|e| {
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

/// `GET /catalog.json`.
pub(crate) async fn json(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let repos = match rows(&app, &headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    match disk_images(&app).await {
        Ok(images) => axum::Json(serde_json::json!({
            "repositories": repos,
            "disk_images": images,
        }))
        .into_response(),
        Err(r) => r,
    }
}

/// `GET /`.
pub(crate) async fn page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let repos = match rows(&app, &headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>corral mirror</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.verified{color:#060}.unverified{color:#a00}code{font-size:.9em;white-space:nowrap}</style></head><body>\n<h1>corral mirror</h1>\n",
    );
    if repos.is_empty() {
        html.push_str("<p>No repositories yet.</p>\n");
    }
    for repo in &repos {
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
                escape(&human(row.size)),
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
                escape(&human(i.size)),
                escape(&sum),
                escape(&text),
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("</body></html>\n");
    Html(html).into_response()
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
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
    }
}
