//! `/readyz` tells a load balancer the truth: it fails when the storage
//! cannot be written and read, while `/healthz` (liveness) stays cheap.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;
use corral_mirror::api::{router, App};
use corral_mirror::config::Config;
use tower::ServiceExt;

async fn get(r: &Registry, uri: &str) -> Resp {
    r.send_raw(Method::GET, uri, &[], Body::empty()).await
}

#[tokio::test]
async fn readyz_fails_when_the_storage_root_is_gone() {
    let r = Registry::new();
    let ok = get(&r, "/readyz").await;
    assert_eq!(ok.status, StatusCode::OK);
    let storage = r.app.config.storage.clone();
    // The probe leaves nothing behind.
    assert_eq!(std::fs::read_dir(storage.join("tmp")).unwrap().count(), 0);

    std::fs::remove_dir_all(&storage).unwrap();
    let gone = get(&r, "/readyz").await;
    assert_eq!(gone.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = String::from_utf8_lossy(&gone.body);
    assert!(
        body.starts_with("not ready: storage probe failed"),
        "{body}"
    );
    // Liveness does not look at the storage.
    assert_eq!(get(&r, "/healthz").await.status, StatusCode::OK);

    // Where uploads write is a file now, not a directory: still not ready.
    std::fs::create_dir_all(&storage).unwrap();
    std::fs::write(storage.join("tmp"), b"not a directory").unwrap();
    assert_eq!(
        get(&r, "/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    std::fs::remove_file(storage.join("tmp")).unwrap();
    std::fs::create_dir(storage.join("tmp")).unwrap();
    assert_eq!(get(&r, "/readyz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn readyz_fails_when_the_s3_endpoint_refuses_connections() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let scratch = tempfile::tempdir().unwrap();
    let config = Config::parse(&format!(
        "[s3]\nendpoint = \"http://127.0.0.1:{port}\"\nbucket = \"b\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\nscratch = \"{}\"\n",
        scratch.path().display()
    ))
    .unwrap();
    let store = corral_mirror::storage::open(&config).unwrap();
    let mut app = App::new(config, store).unwrap();
    app.readiness_timeout = Duration::from_secs(2);
    let router = router(Arc::new(app));
    let send = |uri: &'static str| {
        let router = router.clone();
        async move {
            let resp = router
                .oneshot(
                    axum::http::Request::get(uri)
                        .header("host", "registry.test")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let started = std::time::Instant::now();
    let (status, body) = send("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.starts_with("not ready: storage probe"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout bounds the probe"
    );
    assert_eq!(send("/healthz").await.0, StatusCode::OK);
}
