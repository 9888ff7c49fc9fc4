//! End-to-end pull-through: Debian's docker-registry (distribution) as the
//! upstream, skopeo as the client; and a misbehaving upstream that serves
//! wrong bytes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::tools::{skopeo_copy, write_layout, write_multiarch_layout};
use corral_mirror::config::Config;
use corral_mirror::name::{Digest, RepoName};
use corral_test_support::{layout_manifest_digest, Skopeo, Upstream};

fn mirror_config(dir: &std::path::Path, upstream: &str, ttl: u64) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        storage: dir.join("storage"),
        ..Default::default()
    };
    config
        .add_upstream_flag(&format!("library={upstream}"))
        .unwrap();
    config.upstreams[0].ttl_secs = ttl;
    config.limits.upstream_timeout_secs = 5;
    config
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_through_distribution_then_upstream_down() {
    let skopeo = Skopeo::new();
    let mut upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let up = format!("127.0.0.1:{}", upstream.port);

    // Seed the upstream: a single image and a two-platform index.
    let layout = dir.path().join("layout");
    let want = write_layout(&layout, "v1", "mirrored content");
    let seeded = skopeo_copy(
        &skopeo,
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{up}/library/hello:v1"),
        &["--preserve-digests"],
    )
    .await;
    assert!(seeded.ok, "seeding upstream: {}", seeded.stderr);
    let multi = dir.path().join("multi");
    let (index, amd64, arm64) = write_multiarch_layout(&multi, "m");
    let seeded = skopeo_copy(
        &skopeo,
        &format!("oci:{}:m", multi.display()),
        &format!("docker://{up}/library/multi:m"),
        &["--all", "--preserve-digests"],
    )
    .await;
    assert!(seeded.ok, "seeding upstream: {}", seeded.stderr);

    // ttl 0: every tag pull revalidates, so the second pull meets a dead upstream.
    let server =
        corral_mirror::server::start(mirror_config(dir.path(), &format!("http://{up}"), 0))
            .await
            .unwrap();
    let mirror = format!("127.0.0.1:{}", server.addr.port());

    let out1 = dir.path().join("out1");
    let p = skopeo_copy(
        &skopeo,
        &format!("docker://{mirror}/library/hello:v1"),
        &format!("oci:{}:v1", out1.display()),
        &["--preserve-digests"],
    )
    .await;
    assert!(p.ok, "pull through the mirror: {}", p.stderr);
    assert_eq!(layout_manifest_digest(&out1, "v1"), want.to_string());

    // Only the platform asked for is fetched.
    let out_m = dir.path().join("outm");
    let p = skopeo_copy(
        &skopeo,
        &format!("docker://{mirror}/library/multi:m"),
        &format!("oci:{}:m", out_m.display()),
        &[
            "--preserve-digests",
            "--override-arch",
            "amd64",
            "--override-os",
            "linux",
        ],
    )
    .await;
    assert!(p.ok, "pull of one platform: {}", p.stderr);
    let repo = RepoName::parse("library/multi").unwrap();
    let store = server.app.store.clone();
    assert!(store.get_manifest(&repo, &index).await.unwrap().is_some());
    assert!(store.get_manifest(&repo, &amd64).await.unwrap().is_some());
    assert!(
        store.get_manifest(&repo, &arm64).await.unwrap().is_none(),
        "arm64 must not be prefetched"
    );

    // Upstream goes away: cached content is still served (stale-if-error).
    upstream.stop();
    let out2 = dir.path().join("out2");
    let p = skopeo_copy(
        &skopeo,
        &format!("docker://{mirror}/library/hello:v1"),
        &format!("oci:{}:v1", out2.display()),
        &["--preserve-digests"],
    )
    .await;
    assert!(p.ok, "pull from cache with upstream down: {}", p.stderr);
    assert_eq!(layout_manifest_digest(&out2, "v1"), want.to_string());

    // Uncached content with the upstream down: a spec error, 503.
    let resp = reqwest::get(format!("http://{mirror}/v2/library/hello/manifests/other"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");

    let text = reqwest::get(format!("http://{mirror}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metric(&text, "corral_mirror_cache_misses_total") >= 4,
        "{text}"
    );
    assert!(
        metric(&text, "corral_mirror_cache_hits_total") >= 1,
        "{text}"
    );
    assert!(
        metric(&text, "corral_mirror_upstream_errors_total") >= 1,
        "{text}"
    );
    // Mirrored content is fetched on demand: references not pulled yet
    // (the index's other platform) are not damage.
    let opts = corral_mirror::fsck::FsckOptions {
        mirrored_prefixes: vec!["library".into()],
        ..Default::default()
    };
    let report = corral_mirror::fsck::check_with(store.as_ref(), &opts)
        .await
        .unwrap();
    assert!(
        !report.damaged() && report.temp_files.is_empty(),
        "{report:?}"
    );
    server.stop().await.unwrap();
}

/// A tiny upstream: a good blob served slowly in chunks, and a blob whose
/// bytes do not match its digest.
struct BadUpstream {
    good: Vec<u8>,
    good_digest: Digest,
    bad_digest: Digest,
    good_requests: AtomicUsize,
}

async fn start_bad_upstream() -> (Arc<BadUpstream>, u16) {
    let good: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let state = Arc::new(BadUpstream {
        good_digest: Digest::of_bytes(&good),
        good,
        bad_digest: Digest::of_bytes(b"the real content"),
        good_requests: AtomicUsize::new(0),
    });
    let s = state.clone();
    let blob = move |Path((_repo, digest)): Path<(String, String)>| {
        let s = s.clone();
        async move {
            if digest == s.good_digest.to_string() {
                s.good_requests.fetch_add(1, Ordering::SeqCst);
                let chunks: Vec<Vec<u8>> = s.good.chunks(20_000).map(|c| c.to_vec()).collect();
                let stream =
                    futures_util::stream::unfold(chunks.into_iter(), |mut it| async move {
                        let c = it.next()?;
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        Some((Ok::<_, std::io::Error>(bytes::Bytes::from(c)), it))
                    });
                Response::builder()
                    .header("content-length", s.good.len())
                    .body(Body::from_stream(stream))
                    .unwrap()
            } else if digest == s.bad_digest.to_string() {
                // Same length, wrong bytes.
                b"the fake content".to_vec().into_response()
            } else {
                (axum::http::StatusCode::NOT_FOUND, "{}").into_response()
            }
        }
    };
    let app = axum::Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route("/v2/library/{repo}/blobs/{digest}", get(blob));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_upstream_caches_nothing_and_fetches_once() {
    let (up, port) = start_bad_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let server = corral_mirror::server::start(mirror_config(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        300,
    ))
    .await
    .unwrap();
    let mirror = format!("http://127.0.0.1:{}", server.addr.port());
    let store = server.app.store.clone();

    // Wrong bytes: the client gets an error, never the complete wrong blob.
    let resp = reqwest::get(format!("{mirror}/v2/library/bad/blobs/{}", up.bad_digest))
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.bytes().await;
    assert!(
        status != 200 || body.is_err(),
        "client must see an error, got {status} {body:?}"
    );
    assert_eq!(
        store.blob_size(&up.bad_digest).await.unwrap(),
        None,
        "a mismatch is never cached"
    );
    // Asked again: still an error (nothing poisoned).
    let resp = reqwest::get(format!("{mirror}/v2/library/bad/blobs/{}", up.bad_digest))
        .await
        .unwrap();
    let status = resp.status();
    assert!(status != 200 || resp.bytes().await.is_err());

    // Eight concurrent requests for one missing blob: one upstream fetch, and
    // every client gets the right bytes while it streams.
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, url) = (
            client.clone(),
            format!("{mirror}/v2/library/good/blobs/{}", up.good_digest),
        );
        tasks.push(tokio::spawn(async move {
            let r = client.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(&t.await.unwrap()[..], &up.good[..]);
    }
    assert_eq!(up.good_requests.load(Ordering::SeqCst), 1, "single flight");
    // The commit (sync and rename) runs while the clients get their last
    // bytes: it lands shortly after.
    let mut cached = None;
    for _ in 0..100 {
        cached = store.blob_size(&up.good_digest).await.unwrap();
        if cached.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(cached, Some(up.good.len() as u64));
    // Now cached: no further upstream request.
    let again = reqwest::get(format!("{mirror}/v2/library/good/blobs/{}", up.good_digest))
        .await
        .unwrap();
    assert_eq!(&again.bytes().await.unwrap()[..], &up.good[..]);
    assert_eq!(up.good_requests.load(Ordering::SeqCst), 1);

    // Unknown upstream blob: BLOB_UNKNOWN.
    let resp = reqwest::get(format!(
        "{mirror}/v2/library/bad/blobs/{}",
        Digest::of_bytes(b"nothing")
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 404);

    // Mirrored content is fetched on demand: references not pulled yet
    // (the index's other platform) are not damage.
    let opts = corral_mirror::fsck::FsckOptions {
        mirrored_prefixes: vec!["library".into()],
        ..Default::default()
    };
    let report = corral_mirror::fsck::check_with(store.as_ref(), &opts)
        .await
        .unwrap();
    assert!(
        !report.damaged() && report.temp_files.is_empty(),
        "{report:?}"
    );
    server.stop().await.unwrap();
}

/// An upstream with one tagged manifest that can be switched to answer 429.
struct FlakyUpstream {
    manifest: Vec<u8>,
    digest: Digest,
    gets: AtomicUsize,
    heads: AtomicUsize,
    rate_limited: std::sync::atomic::AtomicBool,
    /// Answer GETs only after 300 ms, so concurrent misses overlap.
    slow: std::sync::atomic::AtomicBool,
}

async fn start_flaky_upstream() -> (Arc<FlakyUpstream>, u16) {
    let manifest =
        common::image_manifest(&Digest::of_bytes(b"c"), 1, &Digest::of_bytes(b"l"), 1, None);
    let state = Arc::new(FlakyUpstream {
        digest: Digest::of_bytes(&manifest),
        manifest,
        gets: AtomicUsize::new(0),
        heads: AtomicUsize::new(0),
        rate_limited: std::sync::atomic::AtomicBool::new(false),
        slow: std::sync::atomic::AtomicBool::new(false),
    });
    let s = state.clone();
    let manifests = move |method: axum::http::Method,
                          Path((_repo, reference)): Path<(String, String)>| {
        let s = s.clone();
        async move {
            if s.rate_limited.load(Ordering::SeqCst) {
                return (axum::http::StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
            }
            if reference != "t" && reference != s.digest.to_string() {
                return (axum::http::StatusCode::NOT_FOUND, "{}").into_response();
            }
            if method == axum::http::Method::HEAD {
                s.heads.fetch_add(1, Ordering::SeqCst);
            } else {
                s.gets.fetch_add(1, Ordering::SeqCst);
                if s.slow.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
            Response::builder()
                .header("content-type", common::OCI_MANIFEST)
                .header("docker-content-digest", s.digest.to_string())
                .body(Body::from(s.manifest.clone()))
                .unwrap()
        }
    };
    let s = state.clone();
    let tags = move || {
        let s = s.clone();
        async move {
            if s.rate_limited.load(Ordering::SeqCst) {
                return (axum::http::StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
            }
            axum::Json(serde_json::json!({"name": "library/flaky", "tags": ["t", "u"]}))
                .into_response()
        }
    };
    let app = axum::Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route("/v2/library/{repo}/manifests/{reference}", get(manifests))
        .route("/v2/library/flaky/tags/list", get(tags));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_revalidation_tags_list_and_stale_on_429() {
    let (up, port) = start_flaky_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    // ttl 0: every pull of a tag revalidates.
    let server = corral_mirror::server::start(mirror_config(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        0,
    ))
    .await
    .unwrap();
    let mirror = format!("http://127.0.0.1:{}/v2/library/flaky", server.addr.port());
    let get_digest = |url: String| async move {
        let r = reqwest::get(url).await.unwrap();
        (
            r.status().as_u16(),
            r.headers()
                .get("docker-content-digest")
                .map(|v| v.to_str().unwrap().to_string()),
        )
    };
    assert_eq!(
        get_digest(format!("{mirror}/manifests/t")).await,
        (200, Some(up.digest.to_string()))
    );
    assert_eq!(up.gets.load(Ordering::SeqCst), 1);
    // Stale but unchanged: a HEAD, no second GET.
    assert_eq!(
        get_digest(format!("{mirror}/manifests/t")).await,
        (200, Some(up.digest.to_string()))
    );
    assert_eq!(up.gets.load(Ordering::SeqCst), 1);
    assert_eq!(up.heads.load(Ordering::SeqCst), 1);
    // Tags come from the upstream while it answers.
    let tags: serde_json::Value = reqwest::get(format!("{mirror}/tags/list"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["t", "u"]));

    // Rate-limited: cached content is served, cached tags listed, the rest is 429.
    up.rate_limited.store(true, Ordering::SeqCst);
    assert_eq!(
        get_digest(format!("{mirror}/manifests/t")).await,
        (200, Some(up.digest.to_string()))
    );
    let tags: serde_json::Value = reqwest::get(format!("{mirror}/tags/list"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["t"]));
    let r = reqwest::get(format!("{mirror}/manifests/u")).await.unwrap();
    assert_eq!(r.status(), 429);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_manifest_gets_make_one_upstream_get() {
    let (up, port) = start_flaky_upstream().await;
    up.slow.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let server = corral_mirror::server::start(mirror_config(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        300,
    ))
    .await
    .unwrap();
    let mirror = format!("http://127.0.0.1:{}/v2/library/flaky", server.addr.port());
    let client = reqwest::Client::new();
    let pull_all = |reference: String| {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (client, url) = (client.clone(), format!("{mirror}/manifests/{reference}"));
                tokio::spawn(async move {
                    let r = client.get(url).send().await.unwrap();
                    let status = r.status().as_u16();
                    let digest = r
                        .headers()
                        .get("docker-content-digest")
                        .map(|v| v.to_str().unwrap().to_string());
                    (status, digest, r.bytes().await.unwrap())
                })
            })
            .collect();
        async move {
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        }
    };
    for (status, digest, body) in pull_all("t".into()).await {
        assert_eq!(status, 200);
        assert_eq!(digest, Some(up.digest.to_string()));
        assert_eq!(&body[..], &up.manifest[..]);
    }
    assert_eq!(
        up.gets.load(Ordering::SeqCst),
        1,
        "one upstream GET for 8 clients"
    );
    assert_eq!(up.heads.load(Ordering::SeqCst), 0);
    // By digest: cached by the tag's fetch, no upstream request at all.
    for (status, _, body) in pull_all(up.digest.to_string()).await {
        assert_eq!(status, 200);
        assert_eq!(&body[..], &up.manifest[..]);
    }
    assert_eq!(up.gets.load(Ordering::SeqCst), 1);
    // An unknown manifest: every client gets 404 (a miss is not cached, so
    // each asks in turn, but none is answered by another's failure).
    for (status, _, _) in pull_all("missing".into()).await {
        assert_eq!(status, 404);
    }
    server.stop().await.unwrap();
}
