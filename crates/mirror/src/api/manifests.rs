//! `GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>`: OCI and Docker
//! schema2 manifests, OCI indexes and Docker manifest lists.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use super::{empty, read_limited, App};
use crate::error::{ErrorCode, RegistryError, Result};
use crate::name::{Digest, Reference, RepoName};
use crate::storage::StoredManifest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// The media type of a manifest: the request's Content-Type, else its
/// `mediaType` field, else guessed from its shape.
pub fn media_type_of(content_type: Option<&str>, v: &serde_json::Value) -> String {
    if let Some(ct) = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty())
    {
        if ct != "application/json" && ct != "application/octet-stream" {
            return ct.to_string();
        }
    }
    if let Some(m) = v.get("mediaType").and_then(|m| m.as_str()) {
        return m.to_string();
    }
    if v.get("manifests").is_some() {
        OCI_INDEX.to_string()
    } else {
        OCI_MANIFEST.to_string()
    }
}

/// Digests a manifest refers to: (blobs, child manifests, subject).
pub fn references(v: &serde_json::Value) -> (Vec<Digest>, Vec<Digest>, Option<Digest>) {
    let digest_of = |d: &serde_json::Value| {
        d.get("digest")
            .and_then(|x| x.as_str())
            .and_then(|x| x.parse().ok())
    };
    let mut blobs = Vec::new();
    if let Some(c) = v.get("config") {
        blobs.extend(digest_of(c));
    }
    if let Some(layers) = v.get("layers").and_then(|l| l.as_array()) {
        // Foreign layers (with `urls`) need not be in the registry.
        blobs.extend(
            layers
                .iter()
                .filter(|l| l.get("urls").is_none())
                .filter_map(digest_of),
        );
    }
    let children = v
        .get("manifests")
        .and_then(|m| m.as_array())
        .map(|m| m.iter().filter_map(digest_of).collect())
        .unwrap_or_default();
    let subject = v.get("subject").and_then(digest_of);
    (blobs, children, subject)
}

fn manifest_unknown(r: &Reference) -> RegistryError {
    RegistryError::new(ErrorCode::ManifestUnknown, "manifest unknown to registry")
        .with_detail(serde_json::json!({"reference": r.to_string()}))
}

pub(crate) fn manifest_response(m: &StoredManifest, d: &Digest, head: bool) -> Result<Response> {
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
    manifest_response(&m, &d, head)
}

/// Stores a manifest whose references were checked (or, for the mirror,
/// fetched lazily), records its tag and its referrer entry.
pub(crate) async fn store(
    app: &App,
    repo: &RepoName,
    tag: Option<&str>,
    media_type: &str,
    body: Bytes,
    v: &serde_json::Value,
) -> Result<(Digest, Option<Digest>)> {
    let (blobs, _, subject) = references(v);
    let size = body.len();
    let d = app.store.put_manifest(repo, media_type, body).await?;
    for b in &blobs {
        if app.store.blob_size(b).await?.is_some() {
            app.store.link_blob(repo, b).await?;
        }
    }
    if let Some(t) = tag {
        app.store.set_tag(repo, t, &d).await?;
    }
    if let Some(s) = &subject {
        let mut desc =
            serde_json::json!({"mediaType": media_type, "digest": d.to_string(), "size": size});
        let artifact_type = v.get("artifactType").and_then(|a| a.as_str()).or_else(|| {
            v.get("config")
                .and_then(|c| c.get("mediaType"))
                .and_then(|m| m.as_str())
        });
        if let Some(a) = artifact_type {
            desc["artifactType"] = a.into();
        }
        if let Some(a) = v.get("annotations") {
            desc["annotations"] = a.clone();
        }
        app.store.add_referrer(repo, s, &d, desc).await?;
    }
    Ok((d, subject))
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
    let (blobs, children, _) = references(&v);
    if is_index(&media_type) {
        if v.get("manifests").and_then(|m| m.as_array()).is_none() {
            return Err(invalid("index has no manifests array"));
        }
        for c in &children {
            if app.store.get_manifest(repo, c).await?.is_none() {
                return Err(RegistryError::new(
                    ErrorCode::ManifestBlobUnknown,
                    "manifest references an unknown manifest",
                )
                .with_detail(serde_json::json!({"digest": c.to_string()})));
            }
        }
    } else {
        if v.get("config").is_none() {
            return Err(invalid("manifest has no config"));
        }
        for b in &blobs {
            // Repository-scoped: knowing a digest from another repository is
            // not enough (that is what a mount, with its pull check, is for).
            let known = app.store.has_blob_link(repo, b).await?;
            if !known {
                return Err(RegistryError::new(
                    ErrorCode::ManifestBlobUnknown,
                    "manifest references an unknown blob",
                )
                .with_detail(serde_json::json!({"digest": b.to_string()})));
            }
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
