//! Manifests as the registry understands them, below the HTTP routes: the
//! media types, the digests a manifest references, and storing a manifest
//! with its tag, blob links and referrer entry (the route's PUT and the
//! pull-through cache both store through [`store`]).

use bytes::Bytes;

use crate::app::App;
use crate::error::{ErrorCode, RegistryError, Result};
use crate::name::{Digest, RepoName};

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
        let desc = referrer_descriptor(media_type, &d, size, v);
        app.store.add_referrer(repo, s, &d, desc).await?;
    }
    Ok((d, subject))
}

/// The descriptor a referrers list holds for manifest `d` (`v`, `size`
/// bytes): media type, digest, size, artifact type and annotations.
pub fn referrer_descriptor(
    media_type: &str,
    d: &Digest,
    size: usize,
    v: &serde_json::Value,
) -> serde_json::Value {
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
    desc
}
