//! Static files from an in-memory bucket, through the router.

use axum::body::Body;
use axum::http::Request;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use tower::ServiceExt;

use super::*;
use crate::api::router;
use crate::app::App;

fn bucket() -> Arc<InMemory> {
    Arc::new(InMemory::new())
}

/// An app serving `/ostree/` from `ostree/` and `/disk-images/` from
/// `images/` of `store`, trusting `keyrings`.
fn app(store: &Arc<InMemory>, dir: &std::path::Path, keyrings: Vec<PathBuf>) -> Arc<App> {
    let mut config = Config {
        storage: dir.join("storage"),
        ..Default::default()
    };
    config.trust.gpg_keyrings = keyrings;
    let storage = Arc::new(crate::storage::FsStorage::open(&config.storage).unwrap());
    let mut app = App::new(config, storage).unwrap();
    app.files = StaticFiles {
        ostree: Some(FileSource::Bucket(BucketDir::new(
            store.clone(),
            "ostree",
            dir.join("scratch"),
        ))),
        disk_images: Some(FileSource::Bucket(BucketDir::new(
            store.clone(),
            "/images/",
            dir.join("scratch"),
        ))),
    };
    Arc::new(app)
}

async fn put(store: &InMemory, key: &str, data: impl Into<Bytes>) {
    store
        .put(&Key::from(key), PutPayload::from(data.into()))
        .await
        .unwrap();
}

async fn get(app: &Arc<App>, path: &str, range: Option<&str>) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::get(path);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let resp = router(app.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, body)
}

use object_store::PutPayload;

#[tokio::test]
async fn files_are_served_whole_and_by_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = bucket();
    let data: Vec<u8> = (0..=255u8).collect();
    put(&store, "ostree/objects/ab/cd.filez", data.clone()).await;
    put(&store, "elsewhere/secret", "not under the prefix").await;
    let app = app(&store, dir.path(), vec![]);

    let (s, h, body) = get(&app, "/ostree/objects/ab/cd.filez", None).await;
    assert_eq!((s, body.as_ref()), (StatusCode::OK, &data[..]));
    assert_eq!(h["content-length"], "256");
    assert_eq!(h["accept-ranges"], "bytes");

    let (s, h, body) = get(&app, "/ostree/objects/ab/cd.filez", Some("bytes=10-19")).await;
    assert_eq!(
        (s, body.as_ref()),
        (StatusCode::PARTIAL_CONTENT, &data[10..20])
    );
    assert_eq!(h["content-range"], "bytes 10-19/256");
    assert_eq!(h["content-length"], "10");

    let (s, h, body) = get(&app, "/ostree/objects/ab/cd.filez", Some("bytes=-6")).await;
    assert_eq!(
        (s, body.as_ref()),
        (StatusCode::PARTIAL_CONTENT, &data[250..])
    );
    assert_eq!(h["content-range"], "bytes 250-255/256");

    let (s, h, _) = get(&app, "/ostree/objects/ab/cd.filez", Some("bytes=300-")).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h["content-range"], "bytes */256");

    for missing in [
        "/ostree/objects/ab/none.filez",
        "/ostree/../elsewhere/secret",
        "/ostree/objects/../../elsewhere/secret",
        "/ostree/objects//ab/cd.filez",
        "/ostree/objects/./ab/cd.filez",
    ] {
        let (s, _, _) = get(&app, missing, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{missing}");
    }
}

#[test]
fn keys_stay_under_the_prefix() {
    let b = BucketDir::new(bucket(), "/ostree/", "/tmp/unused");
    assert_eq!(
        b.key("refs/heads/x").unwrap().as_ref(),
        "ostree/refs/heads/x"
    );
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a//b",
        "a/./b",
        "a/",
    ] {
        assert!(b.key(bad).is_none(), "{bad:?}");
    }
    let root = BucketDir::new(bucket(), "", "/tmp/unused");
    assert_eq!(root.key("summary").unwrap().as_ref(), "summary");
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[tokio::test]
async fn disk_images_are_listed_with_checksum_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = bucket();
    let image = b"a disk image".to_vec();
    put(&store, "images/a.qcow2", image.clone()).await;
    put(
        &store,
        "images/a.qcow2.sha256",
        format!("{}  a.qcow2\n", sha256_hex(&image)),
    )
    .await;
    put(&store, "images/a.qcow2.asc", "a signature").await;
    put(&store, "images/43/c.raw.xz", "xz").await;
    put(
        &store,
        "images/43/c.raw.xz.sha256",
        format!("{}  c\n", sha256_hex(b"other")),
    )
    .await;
    put(&store, "images/.d.raw.corral-tmp-1", "partial").await;
    put(&store, "images/43/.hidden/e.raw", "hidden").await;
    let app = app(&store, dir.path(), vec![]);

    let list = crate::disk_images::collect(&app).await.unwrap();
    let names: Vec<_> = list.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["43/c.raw.xz", "a.qcow2"]);
    assert_eq!(list[1].size, image.len() as u64);
    assert_eq!(list[1].url, "/disk-images/a.qcow2");
    assert_eq!(list[1].sha256, Some(sha256_hex(&image)));
    assert_eq!(list[1].checksum_matches, Some(true));
    assert_eq!(
        list[1].signature,
        SignatureState::NotChecked {
            file: "a.qcow2.asc".into()
        }
    );
    assert_eq!(list[0].checksum_matches, Some(false));
    assert_eq!(list[0].signature, SignatureState::Unsigned);

    // A replaced image is checked again.
    put(&store, "images/a.qcow2", "a changed disk image").await;
    let list = crate::disk_images::collect(&app).await.unwrap();
    assert_eq!(list[1].checksum_matches, Some(false));

    // The catalog page lists them; the image itself is served by range.
    let (s, _, body) = get(&app, "/catalog.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["disk_images"][1]["name"], "a.qcow2", "{json}");
    let (s, _, body) = get(&app, "/disk-images/a.qcow2", Some("bytes=2-8")).await;
    assert_eq!(
        (s, body.as_ref()),
        (StatusCode::PARTIAL_CONTENT, &b"changed"[..])
    );
}

/// gpg signs an image in the bucket; the catalog reports it verified with
/// the trusted keyring, and a signature of other content as bad.
#[tokio::test]
async fn disk_image_signatures_are_checked_with_gpgv() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("gnupg");
    let (fpr, keyring) =
        corral_sign::gpg::generate(Some(&home), "Disk Images <disk@example.org>", dir.path())
            .expect("gpg makes a key (is gpg installed?)");
    let sign = |data: &[u8]| {
        let f = dir.path().join("to-sign");
        std::fs::write(&f, data).unwrap();
        let out = std::process::Command::new("gpg")
            .arg("--homedir")
            .arg(&home)
            .args(["--batch", "--yes", "--local-user", &fpr, "--armor"])
            .args(["--detach-sign", "--output", "-"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let store = bucket();
    put(&store, "images/good.raw", "good image").await;
    put(&store, "images/good.raw.asc", sign(b"good image")).await;
    put(&store, "images/bad.raw", "tampered image").await;
    put(&store, "images/bad.raw.asc", sign(b"original image")).await;
    let app = app(&store, dir.path(), vec![keyring]);
    let list = crate::disk_images::collect(&app).await.unwrap();
    assert_eq!(list[0].name, "bad.raw");
    assert!(
        matches!(&list[0].signature, SignatureState::Bad { file, .. } if file == "bad.raw.asc"),
        "{:?}",
        list[0].signature
    );
    assert_eq!(
        list[1].signature,
        SignatureState::Verified {
            key: fpr.clone(),
            file: "good.raw.asc".into()
        }
    );
    // Nothing is left in the scratch directory.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("scratch"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn an_unreachable_bucket_is_a_503_not_a_404() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("b")
        .with_region("garage")
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_access_key_id("k")
        .with_secret_access_key("s")
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .unwrap();
    let b = BucketDir::new(Arc::new(s3), "ostree", dir.path());
    let resp = b.serve("summary", &HeaderMap::new()).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
}
