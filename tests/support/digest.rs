//! sha256 of bytes and files, reading and writing OCI layout indexes, and
//! patterned test content.

use std::path::Path;

use sha2::Digest as _;

/// sha256 of `data`, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    let mut f =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

/// Reads an OCI layout's index and returns the manifest digest of `tag`.
pub fn layout_manifest_digest(layout: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no manifest tagged {tag} in {}", layout.display()))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Reads a blob of an OCI layout as JSON.
pub fn layout_json(layout: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).expect("blob"))
        .unwrap()
}

/// Makes `layout` an OCI image layout whose index names one manifest
/// (already in `blobs/`) as `tag`.
pub fn write_layout_index(layout: &Path, manifest_digest: &str, manifest_size: usize, tag: &str) {
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        }))
        .unwrap(),
    )
    .unwrap();
}

/// `len` bytes that differ from their neighbours (a xorshift stream from
/// `seed`): content whose every misplaced or repeated byte shows, and
/// that does not compress. `seed` must not be 0 (xorshift's one fixed
/// point: every byte would be 0).
pub fn patterned_bytes(seed: u32, len: usize) -> Vec<u8> {
    assert_ne!(seed, 0, "patterned_bytes: seed 0 gives only zeros");
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
