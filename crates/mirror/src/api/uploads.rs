//! Blob uploads: monolithic POST, resumable sessions (POST, PATCH, PUT, GET
//! status, DELETE) and cross-repository mounts.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::body::{Body, HttpBody as _};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;

use super::route::invalid_digest;
use crate::app::App;
use crate::auth::{Action, Identity};
use crate::error::{ErrorCode, RegistryError, Result};
use crate::http::{empty, query_param};
use crate::name::{Digest, RepoName};
use crate::storage::{ByteStream, StorageError};

fn upload_unknown() -> RegistryError {
    RegistryError::new(
        ErrorCode::BlobUploadUnknown,
        "blob upload unknown to registry",
    )
}

fn body_stream(app: &Arc<App>, body: Body) -> ByteStream {
    let app = app.clone();
    body.into_data_stream()
        .map(move |r| {
            if let Ok(b) = &r {
                app.metrics
                    .bytes_received
                    .fetch_add(b.len() as u64, Relaxed);
            }
            r.map_err(std::io::Error::other)
        })
        .boxed()
}

/// `Range` header value for `offset` bytes received (distribution's convention:
/// `0-0` for none).
fn range_value(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn session_response(
    status: StatusCode,
    repo: &RepoName,
    id: &str,
    offset: u64,
) -> Result<Response> {
    Response::builder()
        .status(status)
        .header("location", format!("/v2/{repo}/blobs/uploads/{id}"))
        .header("docker-upload-uuid", id)
        .header("range", range_value(offset))
        .header("content-length", "0")
        .body(Body::empty())
        .map_err(RegistryError::internal)
}

fn created(repo: &RepoName, d: &Digest) -> Result<Response> {
    Response::builder()
        .status(StatusCode::CREATED)
        .header("location", format!("/v2/{repo}/blobs/{d}"))
        .header("docker-content-digest", d.to_string())
        .header("content-length", "0")
        .body(Body::empty())
        .map_err(RegistryError::internal)
}

fn parse_digest_param(query: &str) -> Result<Option<Digest>> {
    match query_param(query, "digest") {
        None => Ok(None),
        Some(s) => Digest::parse(&s)
            .map(Some)
            .map_err(|e| invalid_digest("invalid digest parameter", e)),
    }
}

/// Session must exist and belong to `repo`.
async fn check_session(app: &Arc<App>, repo: &RepoName, id: &str) -> Result<u64> {
    match app.store.upload_status(id).await {
        Ok(s) if &s.repo == repo => Ok(s.offset),
        Ok(_) | Err(StorageError::UploadUnknown) => Err(upload_unknown()),
        Err(e) => Err(e.into()),
    }
}

/// Refuses new blob data when free space is below `[limits] min_free_bytes`
/// (507), before the disk is actually full.
async fn check_floor(app: &App) -> Result<()> {
    if let Some(space) = app.store.free_space().await? {
        crate::storage::space::check_floor(
            space,
            app.config.limits.min_free_bytes,
            &app.config.storage,
        )?;
    }
    Ok(())
}

/// Whether a request body may carry data (a bodiless final PUT commits what
/// is there and needs no new space).
fn has_data(body: &Body) -> bool {
    body.size_hint().upper() != Some(0)
}

/// A session that ran out of space ends: its partial data would otherwise
/// keep the disk full, and a 507 is not something a client resumes from.
async fn end_if_out_of_space(app: &App, id: &str, e: RegistryError) -> RegistryError {
    if e.code == ErrorCode::InsufficientStorage {
        match app.store.upload_cancel(id).await {
            Ok(()) => {
                app.metrics.uploads_active.fetch_sub(1, Relaxed);
                tracing::info!(upload = id, "upload session ended: out of space");
            }
            Err(StorageError::UploadUnknown) => {}
            Err(c) => {
                tracing::error!(upload = id, error = %c, "removing a session that ran out of space")
            }
        }
    }
    e
}

pub(super) async fn start(
    app: &Arc<App>,
    repo: &RepoName,
    query: &str,
    who: &Identity,
    body: Body,
) -> Result<Response> {
    if let Some(mount) = query_param(query, "mount") {
        let d = Digest::parse(&mount).map_err(|e| invalid_digest("invalid mount digest", e))?;
        let from = match query_param(query, "from") {
            None => None,
            Some(f) => Some(RepoName::parse(&f).ok_or_else(|| {
                RegistryError::new(
                    ErrorCode::NameInvalid,
                    format!("invalid mount source repository {f:?}"),
                )
                .with_detail(serde_json::json!({ "from": f }))
            })?),
        };
        if let Some(from) = from {
            let _guard = app.store.lock_shared().await?;
            if app.auth.allowed(who, from.as_str(), Action::Pull)
                && app.store.has_blob_link(&from, &d).await?
            {
                app.store.link_blob(repo, &d).await?;
                tracing::info!(repo = %repo, from = %from, digest = %d, "blob mounted");
                return created(repo, &d);
            }
        }
        // Not mountable: fall back to a fresh session (202).
    }
    let digest = parse_digest_param(query)?;
    check_floor(app).await?;
    let id = app.store.upload_start(repo).await?;
    app.metrics.uploads_started.fetch_add(1, Relaxed);
    let Some(d) = digest else {
        app.metrics.uploads_active.fetch_add(1, Relaxed);
        return session_response(StatusCode::ACCEPTED, repo, &id, 0);
    };
    // Monolithic upload: the whole blob in this request.
    let result = async {
        app.store
            .upload_append(
                &id,
                Some(0),
                body_stream(app, body),
                app.config.limits.max_upload_bytes,
            )
            .await?
            .map_err(|_| RegistryError::internal("fresh upload session not at offset 0"))?;
        // Finishing onto an existing blob refreshes it: under the guard.
        let guard = app.store.lock_shared().await?;
        app.store.upload_finish(&id, &d).await?;
        Ok::<_, RegistryError>(guard)
    }
    .await;
    let _guard = match result {
        Ok(g) => g,
        Err(e) => {
            let _ = app.store.upload_cancel(&id).await;
            return Err(e);
        }
    };
    app.store.link_blob(repo, &d).await?;
    app.metrics.uploads_completed.fetch_add(1, Relaxed);
    tracing::info!(repo = %repo, digest = %d, "blob committed");
    created(repo, &d)
}

/// The start offset of a `Content-Range: <start>-<end>` header.
fn content_range_start(headers: &HeaderMap) -> Result<Option<(u64, u64)>> {
    let Some(v) = headers.get("content-range") else {
        return Ok(None);
    };
    let v = v.to_str().unwrap_or("");
    let v = v.strip_prefix("bytes ").unwrap_or(v);
    let v = v.split('/').next().unwrap_or(v);
    let parsed = v
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    match parsed {
        Some((a, b)) if b >= a => Ok(Some((a, b))),
        _ => Err(RegistryError::new(
            ErrorCode::RangeInvalid,
            "invalid content-range",
        )),
    }
}

async fn append(
    app: &Arc<App>,
    repo: &RepoName,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<u64> {
    let offset = check_session(app, repo, id).await?;
    let range = content_range_start(headers)?;
    if let Some((a, b)) = range {
        let len = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if len.is_some_and(|l| l != b - a + 1) {
            return Err(RegistryError::new(
                ErrorCode::RangeInvalid,
                "content-range does not match content-length",
            )
            .with_header("range", range_value(offset))
            .with_header("location", format!("/v2/{repo}/blobs/uploads/{id}")));
        }
    }
    let start = range.map(|(a, _)| a);
    if has_data(&body) {
        check_floor(app).await?;
    }
    match app
        .store
        .upload_append(
            id,
            start,
            body_stream(app, body),
            app.config.limits.max_upload_bytes,
        )
        .await?
    {
        Ok(o) => Ok(o),
        Err(expected) => Err(
            RegistryError::new(ErrorCode::RangeInvalid, "chunk out of order")
                .with_detail(serde_json::json!({"expected_offset": expected}))
                .with_header("range", range_value(expected))
                .with_header("location", format!("/v2/{repo}/blobs/uploads/{id}")),
        ),
    }
}

pub(super) async fn patch(
    app: &Arc<App>,
    repo: &RepoName,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let offset = match append(app, repo, id, headers, body).await {
        Ok(o) => o,
        Err(e) => return Err(end_if_out_of_space(app, id, e).await),
    };
    session_response(StatusCode::ACCEPTED, repo, id, offset)
}

pub(super) async fn finish(
    app: &Arc<App>,
    repo: &RepoName,
    id: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let d = parse_digest_param(query)?
        .ok_or_else(|| RegistryError::new(ErrorCode::DigestInvalid, "digest parameter required"))?;
    // A final chunk may come with the PUT.
    let committed = async {
        append(app, repo, id, headers, body).await?;
        // Finishing onto an existing blob refreshes it: under the guard.
        let _guard = app.store.lock_shared().await?;
        app.store.upload_finish(id, &d).await?;
        Ok::<_, RegistryError>(())
    }
    .await;
    if let Err(e) = committed {
        return Err(end_if_out_of_space(app, id, e).await);
    }
    app.store.link_blob(repo, &d).await?;
    app.metrics.uploads_completed.fetch_add(1, Relaxed);
    app.metrics.uploads_active.fetch_sub(1, Relaxed);
    tracing::info!(repo = %repo, digest = %d, "blob committed");
    created(repo, &d)
}

pub(super) async fn status(app: &Arc<App>, repo: &RepoName, id: &str) -> Result<Response> {
    let offset = check_session(app, repo, id).await?;
    session_response(StatusCode::NO_CONTENT, repo, id, offset)
}

pub(super) async fn cancel(app: &Arc<App>, repo: &RepoName, id: &str) -> Result<Response> {
    check_session(app, repo, id).await?;
    app.store.upload_cancel(id).await?;
    app.metrics.uploads_active.fetch_sub(1, Relaxed);
    Ok(empty(StatusCode::NO_CONTENT))
}
