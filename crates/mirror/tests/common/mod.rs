//! Shared helpers: an in-process registry on a temp dir, driven with
//! `tower::ServiceExt::oneshot`, plus tiny OCI content builders.
#![allow(dead_code)]

pub mod tmpfs;
pub mod tools;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use corral_mirror::api::{router, App};
use corral_mirror::config::Config;
use corral_mirror::name::Digest;
use corral_mirror::storage::FsStorage;
use tower::ServiceExt;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "wonderland";

pub struct Registry {
    pub app: Arc<App>,
    pub router: Router,
    pub dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not json: {:?}", String::from_utf8_lossy(&self.body)))
    }
    /// The first error code of a spec error body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .expect("error body")
            .to_string()
    }
}

pub fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// Writes an htpasswd with alice (bcrypt, as `htpasswd -B` writes `$2y$`).
pub fn write_htpasswd(dir: &std::path::Path) -> std::path::PathBuf {
    let hash = bcrypt::hash(PASSWORD, 4)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    let p = dir.join("htpasswd");
    std::fs::write(&p, format!("{USER}:{hash}\n")).unwrap();
    p
}

/// A configuration for a real server on a free loopback port, with its
/// storage under `dir` and no credentials asked.
pub fn server_config(dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        storage: dir.join("storage"),
        ..Default::default()
    }
}

/// As [`server_config`], with alice's htpasswd in `dir`.
pub fn server_config_with_auth(dir: &std::path::Path) -> Config {
    let mut config = server_config(dir);
    config.auth.htpasswd = Some(write_htpasswd(dir));
    config
}

impl Registry {
    pub fn new() -> Registry {
        Self::with(|_| {})
    }

    pub fn with(edit: impl FnOnce(&mut Config)) -> Registry {
        Self::with_storage(None, edit)
    }

    /// A registry whose storage root is `storage` (a temp dir when `None`).
    pub fn with_storage(
        storage: Option<&std::path::Path>,
        edit: impl FnOnce(&mut Config),
    ) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:5000".parse().unwrap(),
            storage: storage
                .map(|s| s.to_path_buf())
                .unwrap_or_else(|| dir.path().join("storage")),
            ..Default::default()
        };
        config.auth.htpasswd = Some(write_htpasswd(dir.path()));
        edit(&mut config);
        let store = FsStorage::open(&config.storage).unwrap();
        let app = Arc::new(App::new(config, Arc::new(store)).unwrap());
        Registry {
            router: router(app.clone()),
            app,
            dir,
        }
    }

    /// A request with alice's basic credentials.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        let auth = basic(USER, PASSWORD);
        let mut h: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
        h.extend_from_slice(headers);
        self.send_raw(method, uri, &h, body).await
    }

    /// A request with exactly these headers (anonymous unless given).
    pub async fn send_raw(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "registry.test:5000");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .router
            .clone()
            .oneshot(b.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.send(Method::GET, uri, &[], Body::empty()).await
    }

    /// Monolithic upload; asserts 201.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::of_bytes(data);
        let r = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[],
                data.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        d
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Resp {
        self.send(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type)],
            body.to_vec(),
        )
        .await
    }

    /// Pushes a one-layer image and returns (manifest bytes, manifest digest).
    pub async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (Vec<u8>, Digest) {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2026-01-02T03:04:05Z","rootfs":{{"type":"layers","diff_ids":[]}},"seed":"{seed}"}}"#
        );
        let layer = format!("layer of {seed}");
        let cd = self.push_blob(repo, config.as_bytes()).await;
        let ld = self.push_blob(repo, layer.as_bytes()).await;
        let m = image_manifest(&cd, config.len(), &ld, layer.len(), None);
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let d = Digest::of_bytes(&m);
        assert_eq!(
            r.header("docker-content-digest"),
            Some(d.to_string().as_str())
        );
        (m, d)
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn image_manifest(
    cd: &Digest,
    csize: usize,
    ld: &Digest,
    lsize: usize,
    subject: Option<(&Digest, usize)>,
) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": csize},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": lsize}],
    });
    if let Some((s, size)) = subject {
        m["subject"] =
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": s.to_string(), "size": size});
    }
    serde_json::to_vec(&m).unwrap()
}
