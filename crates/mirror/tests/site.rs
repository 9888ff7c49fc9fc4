//! The website over a real mirror app, in process: pages read what was
//! pushed (labels, sizes, platforms, an SBOM artifact referring to the
//! image), the stream files beside the OSTree repository and the disk
//! images; every HTML page carries the Content-Security-Policy.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;
use corral_mirror::name::Digest;

async fn push_labelled(r: &Registry, repo: &str, tag: &str) -> (Vec<u8>, Digest) {
    let config = serde_json::json!({
        "architecture": "arm64", "os": "linux", "variant": "v8",
        "created": "2026-01-02T03:04:05Z",
        "config": {"Labels": {
            "org.opencontainers.image.description": "A <b>base</b> image",
            "usage": "podman run --rm -it IMAGE",
            "help": "# Help\n\n<script>alert(1)</script>\n\n[docs](javascript:alert(2)) [site](https://example.org/)",
        }},
        "rootfs": {"type": "layers", "diff_ids": []},
    })
    .to_string();
    let layer = vec![7u8; 3000];
    let cd = r.push_blob(repo, config.as_bytes()).await;
    let ld = r.push_blob(repo, &layer).await;
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let resp = r.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
    assert_eq!(resp.status, StatusCode::CREATED);
    let d = Digest::of_bytes(&m);
    (m, d)
}

async fn push_sbom(r: &Registry, repo: &str, subject: &Digest, size: usize) -> Digest {
    let spdx = br#"{"spdxVersion":"SPDX-2.3","packages":[{"name":"zlib","versionInfo":"1.3.1-1.fc43"},{"name":"bash","versionInfo":"5.2.37-1.fc43"}]}"#;
    let blob = r.push_blob(repo, spdx).await;
    let empty = r.push_blob(repo, b"{}").await;
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": blob.to_string(), "size": spdx.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.to_string(), "size": size},
    }))
    .unwrap();
    let d = Digest::of_bytes(&m);
    let resp = r.put_manifest(repo, &d.to_string(), OCI_MANIFEST, &m).await;
    assert_eq!(resp.status, StatusCode::CREATED);
    blob
}

async fn page(r: &Registry, uri: &str) -> (Resp, String) {
    let p = r.send_raw(Method::GET, uri, &[], Body::empty()).await;
    let text = String::from_utf8_lossy(&p.body).into_owned();
    (p, text)
}

#[tokio::test]
async fn pages_show_what_was_pushed() {
    let files = tempfile::tempdir().unwrap();
    let ostree = files.path().join("ostree");
    std::fs::create_dir_all(ostree.join("streams")).unwrap();
    std::fs::create_dir_all(ostree.join("objects")).unwrap();
    std::fs::write(
        ostree.join("config"),
        "[core]\nrepo_version=1\nmode=archive-z2\n",
    )
    .unwrap();
    std::fs::write(
        ostree.join("streams/atomic-43.json"),
        r#"{"name":"atomic-43","ref":"corral/43/x86_64/atomic","key":"0123ABCD","versions":[{"version":"43.20260102.1","commit":"aaaa","date":"2026-01-02T00:00:00Z","diff":{"changed":[{"name":"kernel","from":"6.8.1","to":"6.8.2"}]}}],"disk_images":["atomic-43.qcow2"]}"#,
    )
    .unwrap();
    std::fs::write(ostree.join("streams/broken.json"), "{").unwrap();
    let disk = files.path().join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    std::fs::write(disk.join("atomic-43.qcow2"), b"QFI\xfbimage").unwrap();
    let (o, d2) = (ostree.clone(), disk.clone());
    let r = Registry::with(move |c| {
        c.ostree_repo = Some(o);
        c.disk_images.dir = Some(d2);
    });
    let (m, d) = push_labelled(&r, "fedora/base", "43").await;
    let blob = push_sbom(&r, "fedora/base", &d, m.len()).await;

    let (home, html) = page(&r, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    let csp = home.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(home.header("x-content-type-options"), Some("nosniff"));
    assert!(
        html.contains("<a href=\"/repositories/fedora/base\">fedora/base</a>"),
        "{html}"
    );
    assert!(
        html.contains("<p>A &lt;b&gt;base&lt;/b&gt; image</p>"),
        "{html}"
    );
    assert!(html.contains("linux/arm64/v8"), "{html}");
    assert!(
        html.contains("<a href=\"/atomic-host/atomic-43\">atomic-43</a>"),
        "{html}"
    );
    assert!(html.contains("1 image for"), "{html}");

    let (repo, html) = page(&r, "/repositories/fedora/base").await;
    assert_eq!(repo.status, StatusCode::OK);
    assert!(repo.header("content-security-policy").is_some());
    assert!(
        html.contains(
            "<code>podman pull --tls-verify=false registry.test:5000/fedora/base:43</code>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<dd class=\"sig unsigned\">unsigned</dd>"),
        "{html}"
    );
    // An uncompressed layer: its size is the unpacked size.
    assert!(html.contains(" compressed, 2.9 KiB unpacked"), "{html}");
    assert!(html.contains("2 packages."), "{html}");
    assert!(
        html.contains(&format!("href=\"/v2/fedora/base/blobs/{blob}\" download")),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://example.org/\">site</a>"),
        "{html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains("javascript:"),
        "{html}"
    );
    // The SBOM link downloads the SPDX document.
    let (sbom, text) = page(&r, &format!("/v2/fedora/base/blobs/{blob}")).await;
    assert_eq!(sbom.status, StatusCode::OK);
    assert!(text.contains("SPDX-2.3"));

    let (json, text) = page(&r, "/repositories/fedora/base?format=json").await;
    assert_eq!(json.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["tags"][0]["digest"], d.to_string());
    assert_eq!(v["tags"][0]["uncompressed_size"], 3000);
    assert_eq!(v["tags"][0]["platforms"][0], "linux/arm64/v8");
    assert_eq!(v["sbom"]["packages"][1]["name"], "zlib");

    let (stream, html) = page(&r, "/atomic-host/atomic-43").await;
    assert_eq!(stream.status, StatusCode::OK);
    assert!(html.contains("kernel 6.8.1 → 6.8.2"), "{html}");
    assert!(html.contains("corral host remote add corral http://registry.test:5000/ostree --gpg-key corral-signing.gpg"), "{html}");
    assert!(html.contains("ostree remote add --set=gpg-verify=true corral http://registry.test:5000/ostree corral/43/x86_64/atomic"), "{html}");
    assert!(
        html.contains("<a href=\"/disk-images/atomic-43.qcow2\">atomic-43.qcow2</a>"),
        "{html}"
    );
    // The stream file is served too.
    let (file, _) = page(&r, "/ostree/streams/atomic-43.json").await;
    assert_eq!(file.status, StatusCode::OK);

    let (dl, html) = page(&r, "/downloads").await;
    assert_eq!(dl.status, StatusCode::OK);
    assert!(
        html.contains("OpenStack, CloudStack, OpenNebula, plain KVM"),
        "{html}"
    );
    assert!(html.contains("cloud-init"), "{html}");

    let (css, _) = page(&r, "/site/site.css").await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    let (missing, _) = page(&r, "/repositories/nothing/here").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let (missing, _) = page(&r, "/site/other.js").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Pushes `repo:tag` with gzip layers of 100 and 200 bytes; `annotated`
/// gives each the unpacked size corral records at build time.
async fn push_gzip_layers(r: &Registry, repo: &str, tag: &str, annotated: &[Option<u64>]) {
    let config =
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = r.push_blob(repo, config.as_bytes()).await;
    let mut layers = Vec::new();
    for (i, unpacked) in annotated.iter().enumerate() {
        let data = vec![i as u8; 100 * (i + 1)];
        let d = r.push_blob(repo, &data).await;
        let mut desc = serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d.to_string(), "size": data.len(),
        });
        if let Some(u) = unpacked {
            desc["annotations"] =
                serde_json::json!({ corral_oci::ANNOTATION_UNPACKED_SIZE: u.to_string() });
        }
        layers.push(desc);
    }
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": layers,
    }))
    .unwrap();
    let resp = r.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
    assert_eq!(resp.status, StatusCode::CREATED);
}

#[tokio::test]
async fn gzip_layers_show_the_unpacked_size_recorded_at_build_time() {
    let r = Registry::new();
    push_gzip_layers(
        &r,
        "corral/base",
        "annotated",
        &[Some(40_960), Some(1_048_576)],
    )
    .await;
    push_gzip_layers(&r, "corral/base", "partly", &[Some(40_960), None]).await;

    let (_, text) = page(&r, "/repositories/corral/base?format=json").await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tag = |name: &str| {
        v["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tag"] == name)
            .unwrap_or_else(|| panic!("no tag {name} in {v}"))
            .clone()
    };
    assert_eq!(tag("annotated")["uncompressed_size"], 40_960 + 1_048_576);
    // one layer's size unknown: no total rather than a wrong one
    assert_eq!(tag("partly")["uncompressed_size"], serde_json::Value::Null);

    let (_, html) = page(&r, "/repositories/corral/base").await;
    assert!(html.contains("1.0 MiB unpacked"), "{html}");
}

/// A P-256 public key as `cosign public-key` writes it.
const COSIGN_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEPPz45Ox8QGDNwwokcCNvmfj7OdVT
w2xFM02qcugvogfIounZsCvWfVlJpDdJuvWt+fq8ONPHcuuVJhWvleYg2w==
-----END PUBLIC KEY-----
";

#[tokio::test]
async fn trusted_keys_are_served_and_linked_from_the_pages() {
    let files = tempfile::tempdir().unwrap();
    let cosign = files.path().join("release.pub");
    std::fs::write(&cosign, COSIGN_PUB).unwrap();
    // A keyring's bytes are served as they are, binary included.
    let keyring = files.path().join("atomic.gpg");
    let keyring_bytes: Vec<u8> = (0..=255u8).collect();
    std::fs::write(&keyring, &keyring_bytes).unwrap();
    let ostree = files.path().join("ostree");
    std::fs::create_dir_all(ostree.join("streams")).unwrap();
    std::fs::create_dir_all(ostree.join("objects")).unwrap();
    std::fs::write(
        ostree.join("config"),
        "[core]\nrepo_version=1\nmode=archive-z2\n",
    )
    .unwrap();
    std::fs::write(
        ostree.join("streams/atomic-43.json"),
        r#"{"name":"atomic-43","ref":"corral/43/x86_64/atomic","key":"0123ABCD"}"#,
    )
    .unwrap();
    let (c, k, o) = (cosign.clone(), keyring.clone(), ostree.clone());
    let r = Registry::with(move |cfg| {
        cfg.trust.cosign_keys = vec![c];
        cfg.trust.gpg_keyrings = vec![k];
        cfg.ostree_repo = Some(o);
    });
    r.push_image("fedora/base", "43", "a").await;

    let (pem, text) = page(&r, "/keys/release.pub").await;
    assert_eq!(pem.status, StatusCode::OK);
    assert_eq!(pem.header("content-type"), Some("application/x-pem-file"));
    assert_eq!(text, COSIGN_PUB);
    let (ring, _) = page(&r, "/keys/atomic.gpg").await;
    assert_eq!(ring.status, StatusCode::OK);
    assert_eq!(ring.header("content-type"), Some("application/pgp-keys"));
    assert_eq!(ring.body, keyring_bytes);
    // Only the trusted keys: not other files, not paths.
    for other in ["/keys/other.pub", "/keys/..%2Fatomic.gpg", "/keys/"] {
        let (p, _) = page(&r, other).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{other}");
    }

    let (_, html) = page(&r, "/repositories/fedora/base").await;
    let base = "http://registry.test:5000";
    for needle in [
        format!("<a href=\"{base}/keys/release.pub\">release.pub</a> (cosign)"),
        format!("<a href=\"{base}/keys/atomic.gpg\">atomic.gpg</a> (gpg)"),
        format!("<code>curl -fsSL -o release.pub {base}/keys/release.pub &amp;&amp; corral verify image registry.test:5000/fedora/base:43 --plain-http --key release.pub</code>"),
        format!("<code>curl -fsSL -o atomic.gpg {base}/keys/atomic.gpg &amp;&amp; corral verify image registry.test:5000/fedora/base:43 --plain-http --gpg-keyring atomic.gpg</code>"),
    ] {
        assert!(html.contains(&needle), "{needle}\n{html}");
    }
    let (_, html) = page(&r, "/atomic-host/atomic-43").await;
    for needle in [
        format!("<a href=\"{base}/keys/atomic.gpg\">atomic.gpg</a> (gpg)"),
        format!("<code>curl -fsSL -o atomic.gpg {base}/keys/atomic.gpg</code>"),
        format!("<code>corral host remote add corral {base}/ostree --gpg-key atomic.gpg</code>"),
        "<code>ostree remote gpg-import corral -k atomic.gpg</code>".to_string(),
    ] {
        assert!(html.contains(&needle), "{needle}\n{html}");
    }
}

/// A multi-platform index (as `corral image build --platform
/// linux/amd64,linux/arm64` pushes it): the repository page and its JSON
/// twin list both platforms, the labels come from the first platform's
/// image and the size counts both images' layers.
#[tokio::test]
async fn an_index_tag_shows_every_platform() {
    let r = Registry::new();
    let repo = "corral/multi";
    let mut children = Vec::new();
    for (arch, layer_len) in [("amd64", 1000usize), ("arm64", 2000)] {
        let config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "created": "2026-01-02T03:04:05Z",
            "config": {"Labels": {"org.opencontainers.image.description": format!("built for {arch}")}},
            "rootfs": {"type": "layers", "diff_ids": []},
        })
        .to_string();
        let layer = vec![arch.as_bytes()[1]; layer_len];
        let cd = r.push_blob(repo, config.as_bytes()).await;
        let ld = r.push_blob(repo, &layer).await;
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": layer.len()}],
        }))
        .unwrap();
        let d = Digest::of_bytes(&m);
        let resp = r.put_manifest(repo, &d.to_string(), OCI_MANIFEST, &m).await;
        assert_eq!(resp.status, StatusCode::CREATED);
        children.push(serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": m.len(),
            "platform": {"os": "linux", "architecture": arch},
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children,
    }))
    .unwrap();
    let resp = r.put_manifest(repo, "43", OCI_INDEX, &index).await;
    assert_eq!(resp.status, StatusCode::CREATED);

    let (resp, html) = page(&r, "/repositories/corral/multi").await;
    assert_eq!(resp.status, StatusCode::OK);
    assert!(
        html.contains("<dt>platforms</dt><dd>linux/amd64, linux/arm64</dd>"),
        "{html}"
    );
    assert!(
        html.contains("<p class=\"lead\">built for amd64</p>"),
        "{html}"
    );
    let (_, text) = page(&r, "/repositories/corral/multi?format=json").await;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tag = &v["tags"][0];
    assert_eq!(
        tag["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"]),
        "{tag}"
    );
    assert_eq!(tag["uncompressed_size"], 3000, "{tag}");
    assert!(tag["compressed_size"].as_u64().unwrap() > 3000, "{tag}");
    assert_eq!(tag["created"], "2026-01-02T03:04:05Z", "{tag}");
    // the home page's card too
    let (_, html) = page(&r, "/").await;
    assert!(html.contains("linux/amd64, linux/arm64"), "{html}");
}
