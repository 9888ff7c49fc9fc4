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

/// Digests a stored manifest refers to: (blobs, child manifests, subject).
/// Lenient (digests that do not parse are skipped): it reads what is
/// already stored, for GC and the pull-through cache; what clients push
/// goes through [`checked_references`] first.
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
    for field in ["layers", "blobs"] {
        if let Some(layers) = v.get(field).and_then(|l| l.as_array()) {
            // Foreign layers (with `urls`) need not be in the registry.
            blobs.extend(
                layers
                    .iter()
                    .filter(|l| l.get("urls").is_none())
                    .filter_map(digest_of),
            );
        }
    }
    let children = v
        .get("manifests")
        .and_then(|m| m.as_array())
        .map(|m| m.iter().filter_map(digest_of).collect())
        .unwrap_or_default();
    let subject = v.get("subject").and_then(digest_of);
    (blobs, children, subject)
}

/// The digests a pushed manifest names, each parsed strictly.
#[derive(Debug, Default, PartialEq)]
pub struct ManifestRefs {
    /// Config, layers and `blobs`, except foreign layers (with `urls`),
    /// which need not be in the registry.
    pub blobs: Vec<Digest>,
    /// An index's `manifests[]`.
    pub children: Vec<Digest>,
    pub subject: Option<Digest>,
}

fn descriptor_digest(desc: &serde_json::Value, field: &str) -> Result<Digest> {
    let invalid = |m: String| {
        RegistryError::new(ErrorCode::ManifestInvalid, m)
            .with_detail(serde_json::json!({ "field": field }))
    };
    if !desc.is_object() {
        return Err(invalid(format!("{field} is not a descriptor object")));
    }
    let Some(raw) = desc.get("digest") else {
        return Err(invalid(format!("{field} has no digest")));
    };
    let Some(raw) = raw.as_str() else {
        return Err(invalid(format!("{field}.digest is not a string")));
    };
    Digest::parse(raw).map_err(|e| {
        RegistryError::new(ErrorCode::DigestInvalid, format!("{field}.digest: {e}"))
            .with_detail(serde_json::json!({"field": format!("{field}.digest"), "digest": raw}))
    })
}

/// The digests of a manifest a client pushes: config, `layers[]`,
/// `blobs[]`, an index's `manifests[]` and `subject`. A digest that does not
/// parse is DIGEST_INVALID, a descriptor that is not one MANIFEST_INVALID,
/// both naming the field.
pub fn checked_references(v: &serde_json::Value) -> Result<ManifestRefs> {
    let mut refs = ManifestRefs::default();
    if let Some(c) = v.get("config") {
        refs.blobs.push(descriptor_digest(c, "config")?);
    }
    for field in ["layers", "blobs"] {
        let Some(list) = v.get(field) else { continue };
        let list = list.as_array().ok_or_else(|| {
            RegistryError::new(
                ErrorCode::ManifestInvalid,
                format!("{field} is not an array"),
            )
        })?;
        for (i, desc) in list.iter().enumerate() {
            let d = descriptor_digest(desc, &format!("{field}[{i}]"))?;
            if desc.get("urls").is_none() {
                refs.blobs.push(d);
            }
        }
    }
    if let Some(list) = v.get("manifests") {
        let list = list.as_array().ok_or_else(|| {
            RegistryError::new(ErrorCode::ManifestInvalid, "manifests is not an array")
        })?;
        for (i, desc) in list.iter().enumerate() {
            refs.children
                .push(descriptor_digest(desc, &format!("manifests[{i}]"))?);
        }
    }
    if let Some(s) = v.get("subject") {
        refs.subject = Some(descriptor_digest(s, "subject")?);
    }
    Ok(refs)
}

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
