//! Reading an OCI image layout back: the descriptor a tag names in its
//! `index.json`, and blobs checked against their digests. What pushes a
//! layout to a registry (the release's images, the portal's tree
//! recipes) reads it through these.

use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::OciError;

fn layout_error(path: &Path, reason: String) -> OciError {
    OciError::Layout {
        path: path.to_path_buf(),
        reason,
    }
}

/// The digest and media type of the descriptor `tag` names (its
/// `org.opencontainers.image.ref.name` annotation) in `layout`'s
/// `index.json`. A descriptor without a media type is an image manifest.
pub fn tagged_descriptor(layout: &Path, tag: &str) -> Result<(String, String), OciError> {
    let index_path = layout.join("index.json");
    let bytes = std::fs::read(&index_path).map_err(|source| OciError::Read {
        path: index_path.clone(),
        source,
    })?;
    let index: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| layout_error(&index_path, format!("not JSON: {e}")))?;
    let entry = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .ok_or_else(|| layout_error(layout, format!("no manifest tagged {tag}")))?;
    let digest = entry["digest"]
        .as_str()
        .ok_or_else(|| layout_error(layout, format!("the entry tagged {tag} has no digest")))?;
    let media_type = entry["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json");
    Ok((digest.to_string(), media_type.to_string()))
}

/// The blob `digest` (`sha256:HEX`) of `layout`, checked against it.
pub fn read_blob(layout: &Path, digest: &str) -> Result<Vec<u8>, OciError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| layout_error(layout, format!("{digest:?} is not a sha256 digest")))?;
    let path = layout.join("blobs/sha256").join(hex);
    let data = std::fs::read(&path).map_err(|source| OciError::Read {
        path: path.clone(),
        source,
    })?;
    if hex::encode(Sha256::digest(&data)) != hex.to_ascii_lowercase() {
        return Err(layout_error(&path, "does not match its digest".into()));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_with(
        blob: &[u8],
        tag: &str,
        media_type: Option<&str>,
    ) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let hex = hex::encode(Sha256::digest(blob));
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        std::fs::write(dir.path().join("blobs/sha256").join(&hex), blob).unwrap();
        let mut entry = serde_json::json!({
            "digest": format!("sha256:{hex}"),
            "size": blob.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        });
        if let Some(m) = media_type {
            entry["mediaType"] = m.into();
        }
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [entry]});
        std::fs::write(dir.path().join("index.json"), index.to_string()).unwrap();
        (dir, format!("sha256:{hex}"))
    }

    #[test]
    fn a_tag_names_its_descriptor_and_blobs_come_back_checked() {
        let index_type = "application/vnd.oci.image.index.v1+json";
        let (dir, digest) = layout_with(b"{}", "43", Some(index_type));
        assert_eq!(
            tagged_descriptor(dir.path(), "43").unwrap(),
            (digest.clone(), index_type.to_string())
        );
        assert_eq!(read_blob(dir.path(), &digest).unwrap(), b"{}");
        let err = tagged_descriptor(dir.path(), "44").unwrap_err().to_string();
        assert!(err.contains("no manifest tagged 44"), "{err}");
        // without a media type: an image manifest
        let (dir, _) = layout_with(b"{}", "43", None);
        assert_eq!(
            tagged_descriptor(dir.path(), "43").unwrap().1,
            "application/vnd.oci.image.manifest.v1+json"
        );
    }

    #[test]
    fn a_blob_that_does_not_match_its_digest_or_a_bad_digest_is_refused() {
        let (dir, digest) = layout_with(b"{}", "43", None);
        let hex = digest.strip_prefix("sha256:").unwrap();
        std::fs::write(dir.path().join("blobs/sha256").join(hex), b"{ }").unwrap();
        let err = read_blob(dir.path(), &digest).unwrap_err().to_string();
        assert!(err.contains("does not match its digest"), "{err}");
        let err = read_blob(dir.path(), "sha256:../../etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a sha256 digest"), "{err}");
    }
}
