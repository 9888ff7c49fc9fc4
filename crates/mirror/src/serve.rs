//! Responses for content already in storage: a blob (whole or one byte
//! range) and a manifest. The `/v2/` routes and the pull-through cache
//! (once a fetch is committed) both answer with them.

use std::sync::atomic::Ordering::Relaxed;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::app::App;
use crate::error::{ErrorCode, RegistryError, Result};
use crate::http::parse_range;
use crate::name::Digest;
use crate::storage::StoredManifest;
use crate::zerocopy::ZeroCopy;

pub(crate) fn blob_unknown(d: &Digest) -> RegistryError {
    RegistryError::new(ErrorCode::BlobUnknown, "blob unknown to registry")
        .with_detail(serde_json::json!({"digest": d.to_string()}))
}

/// A stored blob, honouring a single `Range` header.
pub(crate) async fn stored_blob(
    app: &App,
    d: &Digest,
    headers: &HeaderMap,
    head: bool,
    zero_copy: Option<&ZeroCopy>,
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
        let file = match zero_copy {
            Some(_) => app.store.blob_file(d).await?,
            None => None,
        };
        let stream = match (zero_copy, file) {
            (Some(zc), Some(file)) => {
                app.metrics.bytes_sendfile.fetch_add(len, Relaxed);
                zc.body(file, start, len)
            }
            _ => match app.store.blob_stream(d, start, len).await? {
                Some(stream) => stream,
                None => return Err(blob_unknown(d)),
            },
        };
        app.metrics.bytes_sent.fetch_add(len, Relaxed);
        Body::from_stream(stream)
    };
    builder.body(body).map_err(RegistryError::internal)
}

/// A stored manifest as a GET or HEAD answer.
pub(crate) fn stored_manifest(m: &StoredManifest, d: &Digest, head: bool) -> Result<Response> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", m.media_type.as_str())
        .header("content-length", m.body.len())
        .header("docker-content-digest", d.to_string())
        .header("etag", format!("\"{d}\""))
        .body(if head {
            Body::empty()
        } else {
            Body::from(m.body.clone())
        })
        .map_err(RegistryError::internal)
}
