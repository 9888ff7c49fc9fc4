//! Listings: `/v2/_catalog`, `/v2/<name>/tags/list` (both paginated with
//! `n`/`last` and a `Link` header) and the referrers API.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{percent_encode, query_param, App};
use crate::error::{ErrorCode, RegistryError, Result};
use crate::name::{Digest, RepoName};

/// The `n` and `last` of the next page's link.
type NextPage = Option<(usize, String)>;

/// Entries after `last`, at most `n` of them, and whether more remain.
fn paginate(all: Vec<String>, query: &str) -> Result<(Vec<String>, NextPage)> {
    let n = match query_param(query, "n") {
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            RegistryError::new(ErrorCode::Unsupported, "invalid n")
                .with_status(StatusCode::BAD_REQUEST)
        })?),
        None => None,
    };
    let last = query_param(query, "last");
    let mut items: Vec<String> = match &last {
        Some(l) => all
            .into_iter()
            .filter(|t| t.as_str() > l.as_str())
            .collect(),
        None => all,
    };
    let mut next = None;
    if let Some(n) = n {
        if items.len() > n {
            items.truncate(n);
            if let Some(l) = items.last() {
                next = Some((n, l.clone()));
            }
        }
    }
    Ok((items, next))
}

fn json_with_link(body: serde_json::Value, link: Option<String>) -> Response {
    let mut r = axum::Json(body).into_response();
    if let Some(l) = link {
        if let Ok(v) = l.parse() {
            r.headers_mut().insert("link", v);
        }
    }
    r
}

pub(super) async fn catalog(app: &Arc<App>, query: &str) -> Result<Response> {
    let all: Vec<String> = app
        .store
        .list_repos()
        .await?
        .into_iter()
        .map(|r| r.to_string())
        .collect();
    let (repos, next) = paginate(all, query)?;
    let link = next.map(|(n, last)| {
        format!(
            "</v2/_catalog?n={n}&last={}>; rel=\"next\"",
            percent_encode(&last)
        )
    });
    Ok(json_with_link(
        serde_json::json!({ "repositories": repos }),
        link,
    ))
}

pub(super) async fn tags(app: &Arc<App>, repo: &RepoName, query: &str) -> Result<Response> {
    let remote = match app.config.upstream_for(repo) {
        Some(up) => crate::upstream::remote_tags(app, up, repo).await,
        None => None,
    };
    let from_upstream = remote.is_some();
    let all = match remote {
        Some(tags) => tags,
        None => app.store.list_tags(repo).await?,
    };
    if !from_upstream && all.is_empty() && app.store.list_manifests(repo).await?.is_empty() {
        return Err(RegistryError::new(
            ErrorCode::NameUnknown,
            "repository name not known to registry",
        )
        .with_detail(serde_json::json!({"name": repo.to_string()})));
    }
    let (tags, next) = paginate(all, query)?;
    let link = next.map(|(n, last)| {
        format!(
            "</v2/{repo}/tags/list?n={n}&last={}>; rel=\"next\"",
            percent_encode(&last)
        )
    });
    Ok(json_with_link(
        serde_json::json!({ "name": repo.to_string(), "tags": tags }),
        link,
    ))
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
        "mediaType": super::manifests::OCI_INDEX,
        "manifests": list,
    });
    let mut r = (
        [("content-type", super::manifests::OCI_INDEX)],
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
