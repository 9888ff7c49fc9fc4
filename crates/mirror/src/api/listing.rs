//! Listings: `/v2/_catalog`, `/v2/<name>/tags/list` (both paginated with
//! `n`/`last` and a `Link` header) and the referrers API.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::error::{ErrorCode, RegistryError, Result};
use crate::http::{percent_encode, query_param};
use crate::name::{Digest, RepoName};
use crate::storage::Page;

/// The `n` and `last` of a listing request.
fn page_query(query: &str) -> Result<(Option<usize>, Option<String>)> {
    let n = match query_param(query, "n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            RegistryError::new(ErrorCode::Unsupported, "invalid n")
                .with_status(StatusCode::BAD_REQUEST)
        })?),
        None => None,
    };
    Ok((n, query_param(query, "last")))
}

/// The `Link` to the page after `page`, when there is one.
fn next_link<T: AsRef<str>>(page: &Page<T>, n: Option<usize>, path: &str) -> Option<String> {
    let (n, last) = (n?, page.items.last()?);
    page.more.then(|| {
        format!(
            "<{path}?n={n}&last={}>; rel=\"next\"",
            percent_encode(last.as_ref())
        )
    })
}

/// Serialized straight from the page (a 10,000-tag listing builds no
/// intermediate JSON tree).
fn json_with_link(body: &impl serde::Serialize, link: Option<String>) -> Result<Response> {
    let body = serde_json::to_vec(body).map_err(RegistryError::internal)?;
    let mut r = ([("content-type", "application/json")], body).into_response();
    if let Some(l) = link {
        if let Ok(v) = l.parse() {
            r.headers_mut().insert("link", v);
        }
    }
    Ok(r)
}

pub(super) async fn catalog(app: &Arc<App>, query: &str) -> Result<Response> {
    let (n, last) = page_query(query)?;
    let page = listed_repos_page(app, last.as_deref(), n).await?;
    let link = next_link(&page, n, "/v2/_catalog");
    #[derive(serde::Serialize)]
    struct Catalog<'a> {
        repositories: Vec<&'a str>,
    }
    let repositories = page.items.iter().map(|r| r.as_str()).collect();
    json_with_link(&Catalog { repositories }, link)
}

/// A `_catalog` page without the repositories the listings leave out
/// (`App::listings`, which whoever serves beside the mirror sets, as for
/// the website): `n` listed names after `last` when that many follow, and
/// `more` only when a listed one follows them. Their tags and manifests
/// still answer; only the catalog skips them.
async fn listed_repos_page(
    app: &Arc<App>,
    last: Option<&str>,
    n: Option<usize>,
) -> Result<Page<RepoName>> {
    let mut page = Page {
        items: Vec::new(),
        more: false,
    };
    let mut cursor = last.map(str::to_string);
    // Batches of the page's size: with nothing left out, one read as before.
    let batch = n.map(|n| n.max(1));
    loop {
        let read = app.store.repos_page(cursor.as_deref(), batch).await?;
        for repo in read.items {
            cursor = Some(repo.as_str().to_string());
            if !app.listings.is_listed(repo.as_str()) {
                continue;
            }
            if n.is_some_and(|n| page.items.len() == n) {
                page.more = true;
                return Ok(page);
            }
            page.items.push(repo);
        }
        if !read.more {
            return Ok(page);
        }
    }
}

pub(super) async fn tags(app: &Arc<App>, repo: &RepoName, query: &str) -> Result<Response> {
    let (n, last) = page_query(query)?;
    let remote = match app.config.upstream_for(repo) {
        Some(up) => crate::upstream::remote_tags(app, up, repo).await,
        None => None,
    };
    let from_upstream = remote.is_some();
    let page = match remote {
        Some(tags) => Page::of_sorted(&tags, last.as_deref(), n),
        None => app.store.tags_page(repo, last.as_deref(), n).await?,
    };
    if !from_upstream
        && page.items.is_empty()
        && !page.more
        && (last.is_none()
            || app
                .store
                .tags_page(repo, None, Some(1))
                .await?
                .items
                .is_empty())
        && app.store.list_manifests(repo).await?.is_empty()
    {
        return Err(RegistryError::new(
            ErrorCode::NameUnknown,
            "repository name not known to registry",
        )
        .with_detail(serde_json::json!({"name": repo.to_string()})));
    }
    let link = next_link(&page, n, &format!("/v2/{repo}/tags/list"));
    #[derive(serde::Serialize)]
    struct TagList<'a> {
        name: &'a str,
        tags: &'a [String],
    }
    json_with_link(
        &TagList {
            name: repo.as_str(),
            tags: &page.items,
        },
        link,
    )
}

pub(super) async fn referrers(
    app: &Arc<App>,
    repo: &RepoName,
    subject: &Digest,
    query: &str,
) -> Result<Response> {
    let mut list = app.store.list_referrers(repo, subject).await?;
    let filter = query_param(query, "artifactType");
    if let Some(f) = &filter {
        list.retain(|d| d.get("artifactType").and_then(|a| a.as_str()) == Some(f.as_str()));
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::manifest::OCI_INDEX,
        "manifests": list,
    });
    let mut r = (
        [("content-type", crate::manifest::OCI_INDEX)],
        serde_json::to_vec(&body).map_err(RegistryError::internal)?,
    )
        .into_response();
    if filter.is_some() {
        r.headers_mut().insert(
            "oci-filters-applied",
            axum::http::HeaderValue::from_static("artifactType"),
        );
    }
    Ok(r)
}
