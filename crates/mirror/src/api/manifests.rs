//! `GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>`: OCI and Docker
//! schema2 manifests, OCI indexes and Docker manifest lists.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::app::App;
use crate::error::{ErrorCode, RegistryError, Result};
use crate::http::{empty, read_limited};
use crate::manifest::{checked_references, is_index, media_type_of, store};
use crate::name::{Digest, Reference, RepoName};
use crate::serve::stored_manifest;
use crate::storage::StoredManifest;

/// GET, HEAD or DELETE of a reference that is neither a tag nor a digest:
/// nothing can exist under it.
pub(super) fn unknown_reference(r: &str) -> RegistryError {
    RegistryError::new(
        ErrorCode::ManifestUnknown,
        format!("manifest unknown: {r:?} is neither a tag nor a digest"),
    )
    .with_detail(serde_json::json!({ "reference": r }))
}

/// PUT to such a reference: 400, since nothing can be created there.
pub(super) fn invalid_reference(r: &str) -> RegistryError {
    if r.contains(':') {
        let e = Digest::parse(r).expect_err("a parsing digest makes a valid reference");
        super::route::invalid_digest("invalid manifest reference", e)
            .with_detail(serde_json::json!({ "reference": r }))
    } else {
        RegistryError::new(
            ErrorCode::ManifestInvalid,
            format!("invalid manifest reference: {r:?} is not a valid tag"),
        )
        .with_detail(serde_json::json!({ "reference": r }))
    }
}

fn manifest_unknown(r: &Reference) -> RegistryError {
    RegistryError::new(ErrorCode::ManifestUnknown, "manifest unknown to registry")
        .with_detail(serde_json::json!({"reference": r.to_string()}))
}

/// Resolves a reference in local storage.
pub(crate) async fn resolve_local(
    app: &App,
    repo: &RepoName,
    r: &Reference,
) -> Result<Option<(Digest, StoredManifest)>> {
    Ok(app
        .store
        .resolve_manifest(repo, r)
        .await?
        .map(|m| (m.digest, m.manifest)))
}

pub(super) async fn get(
    app: &Arc<App>,
    repo: &RepoName,
    r: &Reference,
    head: bool,
) -> Result<Response> {
    if let Some(up) = app.config.upstream_for(repo) {
        return crate::upstream::serve_manifest(app, up, repo, r, head).await;
    }
    let (d, m) = resolve_local(app, repo, r)
        .await?
        .ok_or_else(|| manifest_unknown(r))?;
    if !head {
        app.metrics
            .bytes_sent
            .fetch_add(m.body.len() as u64, Relaxed);
    }
    stored_manifest(&m, &d, head)
}

pub(super) async fn put(
    app: &Arc<App>,
    repo: &RepoName,
    r: &Reference,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let body = read_limited(body, app.config.limits.max_manifest_bytes, "manifest").await?;
    // From the reference checks until the manifest, tag and links are
    // written: GC cannot sweep what the checks found (docs/mirror.md).
    let _guard = app.store.lock_shared().await?;
    let invalid = |m: &str| RegistryError::new(ErrorCode::ManifestInvalid, m.to_string());
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| invalid("manifest is not valid JSON"))?;
    if !v.is_object() {
        return Err(invalid("manifest is not a JSON object"));
    }
    if v.get("schemaVersion").and_then(|s| s.as_i64()) != Some(2) {
        return Err(invalid("only schemaVersion 2 manifests are supported"));
    }
    let media_type = media_type_of(
        headers.get("content-type").and_then(|c| c.to_str().ok()),
        &v,
    );
    if let Some(inner) = v.get("mediaType").and_then(|m| m.as_str()) {
        if inner != media_type {
            return Err(invalid("mediaType does not match Content-Type"));
        }
    }
    // Check and write stay in this one function, so one lock around it
    // makes them atomic against a concurrent delete or GC.
    let refs = checked_references(&v)?;
    if is_index(&media_type) {
        if v.get("manifests").and_then(|m| m.as_array()).is_none() {
            return Err(invalid("index has no manifests array"));
        }
        for c in &refs.children {
            if app.store.get_manifest(repo, c).await?.is_none() {
                return Err(RegistryError::new(
                    ErrorCode::ManifestBlobUnknown,
                    format!("manifest references an unknown manifest {c}"),
                )
                .with_detail(serde_json::json!({"digest": c.to_string()})));
            }
        }
    } else if v.get("config").is_none() {
        return Err(invalid("manifest has no config"));
    }
    // A subject need not exist: OCI 1.1 lets referrers come first.
    for b in &refs.blobs {
        // Repository-scoped: knowing a digest from another repository is
        // not enough (that is what a mount, with its pull check, is for).
        if !app.store.has_blob_link(repo, b).await? {
            return Err(RegistryError::new(
                ErrorCode::ManifestBlobUnknown,
                format!("manifest references an unknown blob {b}"),
            )
            .with_detail(serde_json::json!({"digest": b.to_string()})));
        }
    }
    let computed = Digest::of_bytes(&body);
    if let Reference::Digest(want) = r {
        if *want != computed {
            return Err(RegistryError::new(
                ErrorCode::DigestInvalid,
                "manifest digest does not match content",
            )
            .with_detail(
                serde_json::json!({"expected": want.to_string(), "actual": computed.to_string()}),
            ));
        }
    }
    let tag = match r {
        Reference::Tag(t) => Some(t.as_str()),
        Reference::Digest(_) => None,
    };
    let (d, subject) = store(app, repo, tag, &media_type, body, &v).await?;
    tracing::info!(repo = %repo, digest = %d, reference = %r, "manifest stored");
    let mut b = Response::builder()
        .status(StatusCode::CREATED)
        .header("location", format!("/v2/{repo}/manifests/{d}"))
        .header("docker-content-digest", d.to_string())
        .header("content-length", "0");
    if let Some(s) = subject {
        b = b.header("oci-subject", s.to_string());
    }
    b.body(Body::empty()).map_err(RegistryError::internal)
}

pub(super) async fn delete(app: &Arc<App>, repo: &RepoName, r: &Reference) -> Result<Response> {
    let _guard = app.store.lock_shared().await?;
    let found = match r {
        Reference::Tag(t) => app.store.delete_tag(repo, t).await?,
        Reference::Digest(d) => app.store.delete_manifest(repo, d).await?,
    };
    if !found {
        return Err(manifest_unknown(r));
    }
    tracing::info!(repo = %repo, reference = %r, "manifest deleted");
    Ok(empty(StatusCode::ACCEPTED))
}
