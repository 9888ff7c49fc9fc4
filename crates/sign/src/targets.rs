//! What a signature of a tag covers. A single-platform tag names one
//! manifest; a multi-platform tag names an image index, and a client
//! (skopeo `copy --all`, podman on an ARM machine) checks the policy for
//! the index and again for each platform manifest it copies, each by its
//! own digest. So corral signs, and verifies, the index and every manifest
//! it lists.

use anyhow::Context;
use serde_json::Value;

use corral_registry::{Client, ImageRef};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// One manifest a signature is made for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    pub digest: String,
    #[serde(skip)]
    pub media_type: String,
    #[serde(skip)]
    pub size: usize,
    /// `os/architecture[/variant]` of a platform manifest of an index;
    /// `None` for the manifest the reference names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

impl Target {
    /// How messages name it: the image, and the platform when it is one.
    pub fn describe(&self, image: &ImageRef) -> String {
        match &self.platform {
            Some(p) => format!("{image} (platform {p}, {})", self.digest),
            None => image.to_string(),
        }
    }
}

/// Whether `media_type` (or the manifest's own `mediaType`) is an index.
pub fn is_index(media_type: &str, manifest: &Value) -> bool {
    [media_type, manifest["mediaType"].as_str().unwrap_or("")]
        .iter()
        .any(|t| *t == OCI_INDEX || *t == DOCKER_LIST)
}

/// The platform manifests an index lists, in its order. Entries without a
/// digest are skipped (the registry would not serve them either).
pub fn platform_manifests(index: &Value) -> Vec<Target> {
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let digest = m["digest"].as_str()?.to_string();
            let p = &m["platform"];
            let mut platform = format!(
                "{}/{}",
                p["os"].as_str().unwrap_or("unknown"),
                p["architecture"].as_str().unwrap_or("unknown")
            );
            if let Some(v) = p["variant"].as_str() {
                platform = format!("{platform}/{v}");
            }
            Some(Target {
                digest,
                media_type: m["mediaType"].as_str().unwrap_or("").to_string(),
                size: m["size"].as_u64().unwrap_or(0) as usize,
                platform: Some(platform),
            })
        })
        .collect()
}

/// The manifest `image` names first, then (for an index) each platform
/// manifest.
pub async fn resolve_all(client: &Client, image: &ImageRef) -> anyhow::Result<Vec<Target>> {
    let m = client
        .manifest(image, image.reference())
        .await?
        .with_context(|| format!("image {image} not found"))?;
    let parsed: Value = serde_json::from_slice(&m.bytes)
        .with_context(|| format!("parsing manifest {} of {image}", m.digest))?;
    let mut out = vec![Target {
        digest: m.digest.clone(),
        media_type: m.media_type.clone(),
        size: m.bytes.len(),
        platform: None,
    }];
    if is_index(&m.media_type, &parsed) {
        out.extend(platform_manifests(&parsed));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_lists_its_platforms_and_a_manifest_none() {
        let index = serde_json::json!({
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:aa", "size": 7,
                 "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:bb", "size": 8,
                 "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 9},
            ]
        });
        assert!(is_index("", &index));
        let p = platform_manifests(&index);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].platform.as_deref(), Some("linux/amd64"));
        assert_eq!((p[1].digest.as_str(), p[1].size), ("sha256:bb", 8));
        assert_eq!(p[1].platform.as_deref(), Some("linux/arm64/v8"));
        let image = ImageRef::parse("h:1/a/b:t").unwrap();
        assert_eq!(
            p[1].describe(&image),
            "h:1/a/b:t (platform linux/arm64/v8, sha256:bb)"
        );
        let single = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json"});
        assert!(!is_index(
            "application/vnd.oci.image.manifest.v1+json",
            &single
        ));
        assert!(is_index(DOCKER_LIST, &serde_json::json!({})));
    }
}
