//! `GET/HEAD/DELETE /v2/<name>/blobs/<digest>`, with single byte ranges.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{empty, App};
use crate::error::{ErrorCode, RegistryError, Result};
use crate::name::{Digest, RepoName};

/// Parses a single `bytes=` range against `size`; `Err` is unsatisfiable.
pub(crate) fn parse_range(header: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multiple ranges: answer the whole blob
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return Some(Err(()));
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>().ok()?.min(size.saturating_sub(1))
        };
        (start, end)
    };
    if size == 0 || start >= size || end < start {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

fn blob_unknown(d: &Digest) -> RegistryError {
    RegistryError::new(ErrorCode::BlobUnknown, "blob unknown to registry")
        .with_detail(serde_json::json!({"digest": d.to_string()}))
}

pub(super) async fn get(
    app: &Arc<App>,
    repo: &RepoName,
    d: &Digest,
    headers: &HeaderMap,
    head: bool,
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
    serve_local(app, d, headers, head).await
}

pub(crate) async fn serve_local(
    app: &App,
    d: &Digest,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response> {
    let Some(size) = app.store.blob_size(d).await? else {
        return Err(blob_unknown(d));
    };
    let range = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|r| parse_range(r, size));
    let (status, start, len) = match range {
        None => (StatusCode::OK, 0, size),
        Some(Ok((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        Some(Err(())) => {
            return Err(RegistryError::new(
                ErrorCode::RangeInvalid,
                "requested range not satisfiable",
            )
            .with_header("content-range", format!("bytes */{size}")));
        }
    };
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/octet-stream")
        .header("content-length", len)
        .header("docker-content-digest", d.to_string())
        .header("etag", format!("\"{d}\""))
        .header("accept-ranges", "bytes");
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            "content-range",
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    let body = if head {
        Body::empty()
    } else {
        let Some(stream) = app.store.blob_stream(d, start, len).await? else {
            return Err(blob_unknown(d));
        };
        app.metrics.bytes_sent.fetch_add(len, Relaxed);
        Body::from_stream(stream)
    };
    builder.body(body).map_err(RegistryError::internal)
}

pub(super) async fn delete(app: &Arc<App>, repo: &RepoName, d: &Digest) -> Result<Response> {
    let _guard = app.store.lock_shared().await?;
    if !app.store.unlink_blob(repo, d).await? {
        return Err(blob_unknown(d));
    }
    tracing::info!(repo = %repo, digest = %d, "blob unlinked");
    Ok(empty(StatusCode::ACCEPTED))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=95-200", 100), Some(Ok((95, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=5-1", 100), Some(Err(())));
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), None);
    }
}
