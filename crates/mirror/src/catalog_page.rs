//! The catalog page at `/`: server-rendered HTML, no JavaScript. Lists every
//! repository's tags with digest, size, creation date, whether signatures are
//! attached, and pull commands for podman and docker.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::api::manifests::is_index;
use crate::api::App;
use crate::auth::Identity;
use crate::name::{Digest, RepoName};

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

pub struct TagRow {
    pub tag: String,
    pub digest: Digest,
    pub size: u64,
    pub created: Option<String>,
    pub signed: bool,
}

/// Facts shown for one tag.
async fn tag_row(app: &App, repo: &RepoName, tag: &str, tags: &[String]) -> Option<TagRow> {
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
    let sig_tag = format!("sha256-{}.sig", d.hex());
    let signed = tags.contains(&sig_tag)
        || !app.store.list_referrers(repo, &d).await.ok()?.is_empty()
        || crate::lookaside::has_signature(&app.config.storage, repo.as_str(), d.hex());
    Some(TagRow {
        tag: tag.to_string(),
        digest: d,
        size,
        created,
        signed,
    })
}

pub(crate) async fn page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if matches!(app.auth.identify(&headers), Identity::Invalid)
        || (!app.auth.anonymous_pull()
            && matches!(app.auth.identify(&headers), Identity::Anonymous))
    {
        let mut r = (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
        r.headers_mut().insert(
            "www-authenticate",
            axum::http::HeaderValue::from_static("Basic realm=\"corral\""),
        );
        return r;
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| app.config.listen.to_string());
    let repos = match app.store.list_repos().await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "listing repositories");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
    };
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>corral mirror</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}code{font-size:.9em;white-space:nowrap}</style></head><body>\n<h1>corral mirror</h1>\n",
    );
    if repos.is_empty() {
        html.push_str("<p>No repositories yet.</p>\n");
    }
    for repo in &repos {
        let tags = app.store.list_tags(repo).await.unwrap_or_default();
        let _ = writeln!(html, "<h2 id=\"{0}\">{0}</h2>", escape(repo.as_str()));
        if app.config.upstream_for(repo).is_some() {
            html.push_str("<p>Mirrored from upstream.</p>\n");
        }
        html.push_str("<table><tr><th>tag</th><th>digest</th><th>size</th><th>created</th><th>signed</th><th>pull</th></tr>\n");
        for tag in tags.iter().filter(|t| !t.ends_with(".sig")) {
            let Some(row) = tag_row(&app, repo, tag, &tags).await else {
                continue;
            };
            let reference = escape(&format!("{host}/{repo}:{}", row.tag));
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><code>podman pull {reference}</code><br><code>docker pull {reference}</code></td></tr>",
                escape(&row.tag),
                escape(&row.digest.to_string()),
                escape(&human(row.size)),
                escape(row.created.as_deref().unwrap_or("")),
                if row.signed { "yes" } else { "no" },
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
