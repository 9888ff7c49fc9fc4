//! Helpers for the tests against real tools: hand-made OCI layouts,
//! skopeo run on the async runtime, and the `serve` example. skopeo itself,
//! docker-registry and ports come from corral-test-support.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use corral_mirror::name::Digest;
use corral_test_support::Skopeo;

/// A ustar archive holding one regular file.
pub fn tar_with_file(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn put_blob(layout: &Path, data: &[u8]) -> Digest {
    let d = Digest::of_bytes(data);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(d.hex()), data).unwrap();
    d
}

/// Writes an OCI image layout with one image (one file layer) tagged `tag`;
/// returns the manifest digest.
pub fn write_layout(layout: &Path, tag: &str, content: &str) -> Digest {
    std::fs::create_dir_all(layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let layer = tar_with_file("hello.txt", content.as_bytes());
    let ld = put_blob(layout, &layer);
    let config = serde_json::json!({
        "created": "2026-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [ld.to_string()]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let cd = put_blob(layout, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let md = put_blob(layout, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md.to_string(),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    md
}

/// skopeo's output, for the tests' assertions.
pub struct Output {
    pub ok: bool,
    pub stderr: String,
}

/// `skopeo copy` with TLS verification off (plain-HTTP loopback
/// registries), run on the runtime so the in-process registry it talks to
/// keeps serving.
pub async fn skopeo_copy(skopeo: &Skopeo, src: &str, dest: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--src-tls-verify=false", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    args.extend([src, dest]);
    let mut cmd = tokio::process::Command::from(skopeo.copy(None, &args));
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("skopeo timed out")
        .expect("running skopeo");
    Output {
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes a layout whose `tag` is an OCI index of two platform images
/// (linux/amd64 and linux/arm64); returns (index, amd64, arm64) digests.
pub fn write_multiarch_layout(layout: &Path, tag: &str) -> (Digest, Digest, Digest) {
    std::fs::create_dir_all(layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut descs = Vec::new();
    let mut digests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = tar_with_file("arch.txt", arch.as_bytes());
        let ld = put_blob(layout, &layer);
        let config = serde_json::to_vec(&serde_json::json!({
            "created": "2026-01-01T00:00:00Z", "architecture": arch, "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [ld.to_string()]},
        }))
        .unwrap();
        let cd = put_blob(layout, &config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": layer.len()}],
        }))
        .unwrap();
        let md = put_blob(layout, &manifest);
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md.to_string(), "size": manifest.len(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
        digests.push(md);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs,
    }))
    .unwrap();
    let id = put_blob(layout, &index);
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": id.to_string(), "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    (id, digests[0].clone(), digests[1].clone())
}

/// The `serve` example (`CORRAL_SERVE_BIN` when set), copied to `dir` so
/// another build replacing the shared target dir's copy cannot change it
/// under the test.
pub fn serve_binary(dir: &Path) -> PathBuf {
    let private = dir.join("serve");
    if let Some(bin) = std::env::var_os("CORRAL_SERVE_BIN") {
        std::fs::copy(&bin, &private).unwrap();
        return private;
    }
    let exe = std::env::current_exe().unwrap();
    let built = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/serve");
    if !built.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = std::process::Command::new(cargo)
            .args(["build", "-p", "corral-mirror", "--example", "serve"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(st.success(), "building the serve example");
    }
    std::fs::copy(&built, &private).unwrap();
    private
}
