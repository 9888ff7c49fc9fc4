//! The S3 backend against a bucket that refuses writes (as a full or
//! read-only object store does): every failed write is an error answer,
//! never a 201/202, and never a 400 that blames the client's body.
//!
//! The bucket is a tiny in-process S3 stand-in that keeps upload-session
//! records (so a session can be opened) and refuses every other PUT.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use common::{Registry, OCI_INDEX};
use corral_mirror::api::{router, App};
use corral_mirror::config::{Config, S3Config};
use corral_mirror::name::Digest;

type Objects = Arc<Mutex<HashMap<String, Vec<u8>>>>;

const NO_SUCH_KEY: &str =
    "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>";
const DENIED: &str = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>bucket refuses writes</Message></Error>";

async fn bucket(State(objects): State<Objects>, req: Request) -> Response {
    let key = req.uri().path().to_string();
    let method = req.method().clone();
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap();
    let found = objects.lock().unwrap().get(&key).cloned();
    match (method, found) {
        (Method::PUT, _) if key.ends_with("/session.json") => {
            objects.lock().unwrap().insert(key, body.to_vec());
            ([("etag", "\"1\"")], "").into_response()
        }
        (Method::GET | Method::HEAD, Some(data)) => (
            [
                ("etag", "\"1\"".to_string()),
                ("last-modified", "Mon, 05 Jan 2026 10:00:00 GMT".to_string()),
                ("content-length", data.len().to_string()),
            ],
            data,
        )
            .into_response(),
        (Method::GET | Method::HEAD, None) => (StatusCode::NOT_FOUND, NO_SUCH_KEY).into_response(),
        // 403 is not retried by the client, so the test does not wait out
        // the backoff a 5xx would get.
        _ => (StatusCode::FORBIDDEN, DENIED).into_response(),
    }
}

async fn registry_on_refusing_bucket() -> (Registry, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .fallback(bucket)
        .with_state(Objects::default());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let mut reg = Registry::new();
    let mut config: Config = reg.app.config.clone();
    let s3: S3Config = toml::from_str(&format!(
        "endpoint = \"http://127.0.0.1:{port}\"\nbucket = \"b\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\nscratch = \"{}\"\n",
        reg.dir.path().join("scratch").display()
    ))
    .unwrap();
    config.s3 = Some(s3);
    let store = corral_mirror::storage::open(&config).unwrap();
    let app = Arc::new(App::new(config, store).unwrap());
    reg.router = router(app.clone());
    reg.app = app;
    (reg, server)
}

fn assert_server_error(r: &common::Resp, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{what}: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.code(), "UNKNOWN", "{what}");
}

#[tokio::test]
async fn refused_object_writes_are_errors_not_acknowledgements() {
    let (reg, server) = registry_on_refusing_bucket().await;

    // A session opens (its record is allowed), but its data cannot be
    // stored: the PATCH fails as the server's error, not the client's.
    let r = reg
        .send(Method::POST, "/v2/app/blobs/uploads/", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let loc = r.header("location").unwrap().to_string();
    let r = reg
        .send(Method::PATCH, &loc, &[], b"some layer bytes".to_vec())
        .await;
    assert_server_error(&r, "PATCH");

    // Monolithic upload: not 201.
    let data = b"another layer";
    let d = Digest::of_bytes(data);
    let r = reg
        .send(
            Method::POST,
            &format!("/v2/app/blobs/uploads/?digest={d}"),
            &[],
            data.to_vec(),
        )
        .await;
    assert_server_error(&r, "monolithic upload");

    // A manifest (an empty index needs no blobs): not 201, and not there.
    let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let r = reg.put_manifest("app", "v1", OCI_INDEX, index).await;
    assert_server_error(&r, "manifest");
    let r = reg.get("/v2/app/manifests/v1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A lookaside signature: not 201.
    let hex = "a".repeat(64);
    let r = reg
        .send(
            Method::PUT,
            &format!("/sigstore/app@sha256={hex}/signature-1"),
            &[],
            b"sig".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "signature");
    server.abort();
}
