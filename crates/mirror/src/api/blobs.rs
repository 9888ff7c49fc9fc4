//! `GET/HEAD/DELETE /v2/<name>/blobs/<digest>`, with single byte ranges.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::app::App;
use crate::error::Result;
use crate::http::empty;
use crate::name::{Digest, RepoName};
use crate::serve::{blob_unknown, stored_blob};
use crate::zerocopy::ZeroCopy;

pub(super) async fn get(
    app: &Arc<App>,
    repo: &RepoName,
    d: &Digest,
    headers: &HeaderMap,
    head: bool,
    zero_copy: Option<&ZeroCopy>,
) -> Result<Response> {
    if app.config.upstream_for(repo).is_some() {
        let guard = app.store.lock_shared().await?;
        if app.store.blob_size(d).await?.is_some() {
            app.metrics.cache_hits.fetch_add(1, Relaxed);
            app.store.link_blob(repo, d).await?;
            drop(guard);
        } else {
            drop(guard);
            return crate::upstream::serve_blob(app, repo, d, head).await;
        }
    } else if !app.store.has_blob_link(repo, d).await? {
        return Err(blob_unknown(d));
    }
    stored_blob(app, d, headers, head, zero_copy).await
}

pub(super) async fn delete(app: &Arc<App>, repo: &RepoName, d: &Digest) -> Result<Response> {
    let _guard = app.store.lock_shared().await?;
    if !app.store.unlink_blob(repo, d).await? {
        return Err(blob_unknown(d));
    }
    tracing::info!(repo = %repo, digest = %d, "blob unlinked");
    Ok(empty(StatusCode::ACCEPTED))
}
