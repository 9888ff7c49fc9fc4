//! Helpers for the end-to-end tests against real tools: hand-made OCI
//! layouts, skopeo, and Debian's docker-registry (distribution).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use corral_mirror::name::Digest;

/// Fails loudly when a tool the test needs is missing.
pub fn require(tool: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(tool);
        if p.is_file() {
            return p;
        }
    }
    panic!("{tool} is required for this test but is not installed (apt-get install {tool})");
}

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

/// The manifest digest an OCI layout's index.json names first.
pub fn layout_manifest_digest(layout: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    v["manifests"][0]["digest"].as_str().unwrap().to_string()
}

pub struct Skopeo {
    policy: PathBuf,
    _dir: tempfile::TempDir,
}

pub struct Output {
    pub ok: bool,
    pub stderr: String,
}

impl Skopeo {
    pub fn new() -> Skopeo {
        require("skopeo");
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.json");
        std::fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        Skopeo { policy, _dir: dir }
    }

    /// `skopeo copy` with TLS verification off (plain-HTTP loopback registries).
    pub async fn copy(&self, src: &str, dest: &str, extra: &[&str]) -> Output {
        let mut cmd = tokio::process::Command::new("skopeo");
        cmd.arg("--policy")
            .arg(&self.policy)
            .args(["--registries-conf", "/dev/null"]);
        cmd.args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--retry-times",
            "0",
        ]);
        cmd.args(extra).arg(src).arg(dest);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
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
}

/// Debian's docker-registry (distribution 2.8) on a loopback port.
pub struct Distribution {
    pub port: u16,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Distribution {
    pub async fn start() -> Distribution {
        let bin = require("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = tokio::process::Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting docker-registry");
        let url = format!("http://127.0.0.1:{port}/v2/");
        for _ in 0..100 {
            if reqwest::get(&url).await.is_ok() {
                return Distribution {
                    port,
                    child,
                    _dir: dir,
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("docker-registry did not start on port {port}");
    }

    pub async fn stop(&mut self) {
        self.child.kill().await.unwrap();
        let _ = self.child.wait().await;
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
