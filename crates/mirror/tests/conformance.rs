//! In-process conformance tests, written from the distribution-spec v1.1
//! text: every endpoint, its status codes, headers and error codes.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;
use corral_mirror::name::Digest;

#[tokio::test]
async fn ping_and_challenge() {
    let r = Registry::new();
    let anon = r.send_raw(Method::GET, "/v2/", &[], Body::empty()).await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    let ch = anon.header("www-authenticate").unwrap();
    assert_eq!(
        ch,
        r#"Bearer realm="http://registry.test:5000/token",service="corral""#
    );
    assert_eq!(anon.code(), "UNAUTHORIZED");
    assert_eq!(r.get("/v2/").await.status, StatusCode::OK);
    let bad = r
        .send_raw(
            Method::GET,
            "/v2/",
            &[("authorization", &basic(USER, "nope"))],
            Body::empty(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    // Without users and with anonymous pull there is nothing to authenticate.
    let open = Registry::with(|c| c.auth.htpasswd = None);
    assert_eq!(
        open.send_raw(Method::GET, "/v2/", &[], Body::empty())
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn monolithic_push_get_head_range_delete() {
    let r = Registry::new();
    let data = b"0123456789abcdef";
    let d = r.push_blob("a/b", data).await;
    let g = r.get(&format!("/v2/a/b/blobs/{d}")).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(&g.body[..], data);
    assert_eq!(
        g.header("docker-content-digest"),
        Some(d.to_string().as_str())
    );
    assert_eq!(g.header("content-length"), Some("16"));

    let h = r
        .send(
            Method::HEAD,
            &format!("/v2/a/b/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.header("content-length"), Some("16"));
    assert!(h.body.is_empty());

    let p = r
        .send(
            Method::GET,
            &format!("/v2/a/b/blobs/{d}"),
            &[("range", "bytes=4-7")],
            Body::empty(),
        )
        .await;
    assert_eq!(p.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&p.body[..], b"4567");
    assert_eq!(p.header("content-range"), Some("bytes 4-7/16"));
    let bad = r
        .send(
            Method::GET,
            &format!("/v2/a/b/blobs/{d}"),
            &[("range", "bytes=20-")],
            Body::empty(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(bad.header("content-range"), Some("bytes */16"));

    // Per-repository: another repository does not see it.
    let other = r.get(&format!("/v2/other/blobs/{d}")).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.code(), "BLOB_UNKNOWN");

    let del = r
        .send(
            Method::DELETE,
            &format!("/v2/a/b/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    assert_eq!(
        r.get(&format!("/v2/a/b/blobs/{d}")).await.status,
        StatusCode::NOT_FOUND
    );
    let again = r
        .send(
            Method::DELETE,
            &format!("/v2/a/b/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(again.code(), "BLOB_UNKNOWN");
}

/// Blob bodies are read in 1 MiB chunks whose buffers are reused from
/// one GET to the next: blobs of several chunks read at the same time,
/// again and again, and ranges across a chunk's edge come back exact.
#[tokio::test]
async fn multi_chunk_blobs_read_together_stay_exact() {
    let r = Registry::new();
    // Two blobs of 2.5 MiB with different bytes (and a short last chunk).
    let make = |seed: u32| corral_test_support::patterned_bytes(seed, 5 << 19);
    let (a, b) = (make(1), make(2));
    assert_ne!(a, b);
    let da = r.push_blob("chunks/a", &a).await;
    let db = r.push_blob("chunks/b", &b).await;
    let (ua, ub) = (
        format!("/v2/chunks/a/blobs/{da}"),
        format!("/v2/chunks/b/blobs/{db}"),
    );
    for _ in 0..3 {
        let (ga, gb) = tokio::join!(r.get(&ua), r.get(&ub));
        assert_eq!(ga.status, StatusCode::OK);
        assert!(ga.body[..] == a[..], "blob a came back different");
        assert!(gb.body[..] == b[..], "blob b came back different");
    }
    // A range that starts inside the first chunk and ends in the third.
    let (start, end) = ((1 << 20) - 3, (2 << 20) + 7);
    let p = r
        .send(
            Method::GET,
            &format!("/v2/chunks/b/blobs/{db}"),
            &[("range", &format!("bytes={start}-{end}"))],
            Body::empty(),
        )
        .await;
    assert_eq!(p.status, StatusCode::PARTIAL_CONTENT);
    assert!(
        p.body[..] == b[start..=end],
        "the range came back different"
    );
}

#[tokio::test]
async fn monolithic_digest_mismatch() {
    let r = Registry::new();
    let wrong = Digest::of_bytes(b"other");
    let resp = r
        .send(
            Method::POST,
            &format!("/v2/a/blobs/uploads/?digest={wrong}"),
            &[],
            b"data".to_vec(),
        )
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert_eq!(resp.code(), "DIGEST_INVALID");
    assert_eq!(
        r.get(&format!("/v2/a/blobs/{wrong}")).await.status,
        StatusCode::NOT_FOUND
    );
    let bad = r
        .send(
            Method::POST,
            "/v2/a/blobs/uploads/?digest=sha256:xyz",
            &[],
            b"data".to_vec(),
        )
        .await;
    assert_eq!(bad.code(), "DIGEST_INVALID");
}

#[tokio::test]
async fn chunked_upload_status_out_of_order_finish() {
    let r = Registry::new();
    let start = r
        .send(Method::POST, "/v2/x/blobs/uploads/", &[], Body::empty())
        .await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    let loc = start.header("location").unwrap().to_string();
    assert!(loc.starts_with("/v2/x/blobs/uploads/"));
    let uuid = start.header("docker-upload-uuid").unwrap().to_string();
    assert!(loc.ends_with(&uuid));
    assert_eq!(start.header("range"), Some("0-0"));

    let c1 = r
        .send(
            Method::PATCH,
            &loc,
            &[
                ("content-range", "0-4"),
                ("content-length", "5"),
                ("content-type", "application/octet-stream"),
            ],
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(c1.status, StatusCode::ACCEPTED);
    assert_eq!(c1.header("range"), Some("0-4"));
    let loc = c1.header("location").unwrap().to_string();

    // Out of order: must be 416 with the current range.
    let ooo = r
        .send(
            Method::PATCH,
            &loc,
            &[("content-range", "10-14"), ("content-length", "5")],
            b"xxxxx".to_vec(),
        )
        .await;
    assert_eq!(ooo.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(ooo.header("range"), Some("0-4"));

    let st = r.get(&loc).await;
    assert_eq!(st.status, StatusCode::NO_CONTENT);
    assert_eq!(st.header("range"), Some("0-4"));
    assert_eq!(st.header("docker-upload-uuid"), Some(uuid.as_str()));

    let c2 = r
        .send(
            Method::PATCH,
            &loc,
            &[("content-range", "5-10"), ("content-length", "6")],
            b" world".to_vec(),
        )
        .await;
    assert_eq!(c2.status, StatusCode::ACCEPTED);
    assert_eq!(c2.header("range"), Some("0-10"));

    let wrong = Digest::of_bytes(b"nope");
    let bad = r
        .send(
            Method::PUT,
            &format!("{loc}?digest={wrong}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), "DIGEST_INVALID");

    // The final chunk may come with the PUT.
    let d = Digest::of_bytes(b"hello world!");
    let fin = r
        .send(
            Method::PUT,
            &format!("{loc}?digest={d}"),
            &[("content-range", "11-11"), ("content-length", "1")],
            b"!".to_vec(),
        )
        .await;
    assert_eq!(fin.status, StatusCode::CREATED, "{:?}", fin.body);
    assert_eq!(
        fin.header("location"),
        Some(format!("/v2/x/blobs/{d}").as_str())
    );
    assert_eq!(
        fin.header("docker-content-digest"),
        Some(d.to_string().as_str())
    );
    assert_eq!(
        &r.get(&format!("/v2/x/blobs/{d}")).await.body[..],
        b"hello world!"
    );
    // The session is gone.
    let gone = r.get(&loc).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn streamed_patch_without_content_range() {
    let r = Registry::new();
    let loc = r
        .send(Method::POST, "/v2/x/blobs/uploads/", &[], Body::empty())
        .await
        .header("location")
        .unwrap()
        .to_string();
    let p = r.send(Method::PATCH, &loc, &[], b"abc".to_vec()).await;
    assert_eq!(p.header("range"), Some("0-2"));
    let d = Digest::of_bytes(b"abc");
    assert_eq!(
        r.send(
            Method::PUT,
            &format!("{loc}?digest={d}"),
            &[],
            Body::empty()
        )
        .await
        .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn cancel_upload_and_wrong_repo() {
    let r = Registry::new();
    let loc = r
        .send(Method::POST, "/v2/x/blobs/uploads/", &[], Body::empty())
        .await
        .header("location")
        .unwrap()
        .to_string();
    let id = loc.rsplit('/').next().unwrap().to_string();
    // A session belongs to its repository.
    assert_eq!(
        r.get(&format!("/v2/y/blobs/uploads/{id}")).await.code(),
        "BLOB_UPLOAD_UNKNOWN"
    );
    assert_eq!(
        r.send(Method::DELETE, &loc, &[], Body::empty())
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let after = r.get(&loc).await;
    assert_eq!(after.status, StatusCode::NOT_FOUND);
    assert_eq!(after.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(
        r.send(Method::DELETE, &loc, &[], Body::empty())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        r.get("/v2/x/blobs/uploads/not-a-session").await.code(),
        "BLOB_UPLOAD_UNKNOWN"
    );
}

#[tokio::test]
async fn cross_repository_mount() {
    let r = Registry::new();
    let d = r.push_blob("src/repo", b"shared layer").await;
    let m = r
        .send(
            Method::POST,
            &format!("/v2/dst/repo/blobs/uploads/?mount={d}&from=src/repo"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(m.status, StatusCode::CREATED);
    assert_eq!(
        m.header("location"),
        Some(format!("/v2/dst/repo/blobs/{d}").as_str())
    );
    assert_eq!(
        r.get(&format!("/v2/dst/repo/blobs/{d}")).await.status,
        StatusCode::OK
    );
    // Not in the source: fall back to a session.
    let other = Digest::of_bytes(b"unknown");
    let f = r
        .send(
            Method::POST,
            &format!("/v2/dst/repo/blobs/uploads/?mount={other}&from=src/repo"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(f.status, StatusCode::ACCEPTED);
    assert!(f
        .header("location")
        .unwrap()
        .starts_with("/v2/dst/repo/blobs/uploads/"));
}

#[tokio::test]
async fn manifests_by_tag_and_digest() {
    let r = Registry::new();
    // A blob of another repository does not count.
    let elsewhere = r.push_blob("elsewhere", b"foreign").await;
    let m = image_manifest(&elsewhere, 7, &elsewhere, 7, None);
    assert_eq!(
        r.put_manifest("img", "v0", OCI_MANIFEST, &m).await.code(),
        "MANIFEST_BLOB_UNKNOWN"
    );
    // Missing blobs are refused.
    let ghost = Digest::of_bytes(b"ghost");
    let m = image_manifest(&ghost, 5, &ghost, 5, None);
    let bad = r.put_manifest("img", "v1", OCI_MANIFEST, &m).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), "MANIFEST_BLOB_UNKNOWN");

    let (body, d) = r.push_image("img", "v1", "one").await;
    for reference in ["v1".to_string(), d.to_string()] {
        let g = r.get(&format!("/v2/img/manifests/{reference}")).await;
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(&g.body[..], &body[..]);
        assert_eq!(g.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(
            g.header("docker-content-digest"),
            Some(d.to_string().as_str())
        );
        let h = r
            .send(
                Method::HEAD,
                &format!("/v2/img/manifests/{reference}"),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(
            h.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        assert!(h.body.is_empty());
    }
    // PUT by digest is verified.
    let wrong = r
        .put_manifest(
            "img",
            &Digest::of_bytes(b"x").to_string(),
            OCI_MANIFEST,
            &body,
        )
        .await;
    assert_eq!(wrong.code(), "DIGEST_INVALID");
    let ok = r
        .put_manifest("img", &d.to_string(), OCI_MANIFEST, &body)
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    assert_eq!(
        ok.header("location"),
        Some(format!("/v2/img/manifests/{d}").as_str())
    );

    // Invalid manifests.
    assert_eq!(
        r.put_manifest("img", "bad", OCI_MANIFEST, b"{not json")
            .await
            .code(),
        "MANIFEST_INVALID"
    );
    assert_eq!(
        r.put_manifest("img", "bad", OCI_MANIFEST, br#"{"schemaVersion":1}"#)
            .await
            .code(),
        "MANIFEST_INVALID"
    );

    // Unknown references.
    let u = r.get("/v2/img/manifests/nope").await;
    assert_eq!(u.status, StatusCode::NOT_FOUND);
    assert_eq!(u.code(), "MANIFEST_UNKNOWN");

    // Delete the tag, then the manifest.
    assert_eq!(
        r.send(Method::DELETE, "/v2/img/manifests/v1", &[], Body::empty())
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        r.get("/v2/img/manifests/v1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        r.get(&format!("/v2/img/manifests/{d}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        r.send(
            Method::DELETE,
            &format!("/v2/img/manifests/{d}"),
            &[],
            Body::empty()
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        r.get(&format!("/v2/img/manifests/{d}")).await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        r.send(
            Method::DELETE,
            &format!("/v2/img/manifests/{d}"),
            &[],
            Body::empty()
        )
        .await
        .code(),
        "MANIFEST_UNKNOWN"
    );
}

#[tokio::test]
async fn index_and_docker_types() {
    let r = Registry::new();
    let (m1, d1) = r.push_image("multi", "amd64", "a").await;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d1.to_string(), "size": m1.len(), "platform": {"architecture": "amd64", "os": "linux"}}],
        "annotations": {"org.opencontainers.image.created": "2026-05-06T07:08:09Z"},
    }))
    .unwrap();
    let put = r.put_manifest("multi", "latest", OCI_INDEX, &index).await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(
        r.get("/v2/multi/manifests/latest")
            .await
            .header("content-type"),
        Some(OCI_INDEX)
    );

    // An index naming a manifest the repository lacks.
    let ghost = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": Digest::of_bytes(b"g").to_string(), "size": 1}],
    }))
    .unwrap();
    assert_eq!(
        r.put_manifest("multi", "ghost", OCI_INDEX, &ghost)
            .await
            .code(),
        "MANIFEST_BLOB_UNKNOWN"
    );

    // Docker schema2 manifest and manifest list.
    let cfg = r.push_blob("docker", b"{}").await;
    let layer = r.push_blob("docker", b"layer").await;
    let dm = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cfg.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer.to_string(), "size": 5}],
    }))
    .unwrap();
    let dmt = "application/vnd.docker.distribution.manifest.v2+json";
    assert_eq!(
        r.put_manifest("docker", "v2", dmt, &dm).await.status,
        StatusCode::CREATED
    );
    let dd = Digest::of_bytes(&dm);
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{"mediaType": dmt, "digest": dd.to_string(), "size": dm.len(), "platform": {"architecture": "arm64", "os": "linux"}}],
    }))
    .unwrap();
    let lt = "application/vnd.docker.distribution.manifest.list.v2+json";
    assert_eq!(
        r.put_manifest("docker", "list", lt, &list).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        r.get("/v2/docker/manifests/list")
            .await
            .header("content-type"),
        Some(lt)
    );
    assert_eq!(
        r.get("/v2/docker/manifests/v2")
            .await
            .header("content-type"),
        Some(dmt)
    );
    // Content-Type must agree with mediaType.
    assert_eq!(
        r.put_manifest("docker", "x", OCI_MANIFEST, &dm)
            .await
            .code(),
        "MANIFEST_INVALID"
    );
}

#[tokio::test]
async fn manifest_size_limit() {
    let r = Registry::with(|c| c.limits.max_manifest_bytes = 1024);
    let big = format!(r#"{{"schemaVersion":2,"pad":"{}"}}"#, "x".repeat(2000));
    let resp = r
        .put_manifest("a", "big", OCI_MANIFEST, big.as_bytes())
        .await;
    assert_eq!(resp.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.code(), "SIZE_INVALID");
}

#[tokio::test]
async fn upload_size_limit() {
    let r = Registry::with(|c| c.limits.max_upload_bytes = 10);
    let d = Digest::of_bytes(&[0u8; 20]);
    let resp = r
        .send(
            Method::POST,
            &format!("/v2/a/blobs/uploads/?digest={d}"),
            &[],
            vec![0u8; 20],
        )
        .await;
    assert_eq!(resp.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.code(), "SIZE_INVALID");
}

#[tokio::test]
async fn tags_list_pagination() {
    let r = Registry::new();
    let (m, _) = r.push_image("t", "a", "s").await;
    for tag in ["b", "c", "d", "e"] {
        assert_eq!(
            r.put_manifest("t", tag, OCI_MANIFEST, &m).await.status,
            StatusCode::CREATED
        );
    }
    let all = r.get("/v2/t/tags/list").await;
    assert_eq!(
        all.json(),
        serde_json::json!({"name": "t", "tags": ["a", "b", "c", "d", "e"]})
    );
    assert!(all.header("link").is_none());

    let p1 = r.get("/v2/t/tags/list?n=2").await;
    assert_eq!(p1.json()["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(
        p1.header("link"),
        Some(r#"</v2/t/tags/list?n=2&last=b>; rel="next""#)
    );
    let p2 = r.get("/v2/t/tags/list?n=2&last=b").await;
    assert_eq!(p2.json()["tags"], serde_json::json!(["c", "d"]));
    let p3 = r.get("/v2/t/tags/list?n=2&last=d").await;
    assert_eq!(p3.json()["tags"], serde_json::json!(["e"]));
    assert!(p3.header("link").is_none());
    assert_eq!(
        r.get("/v2/t/tags/list?n=0").await.json()["tags"],
        serde_json::json!([])
    );

    let unknown = r.get("/v2/nothing/here/tags/list").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "NAME_UNKNOWN");
}

#[tokio::test]
async fn catalog_pagination() {
    let r = Registry::new();
    for repo in ["r1", "r2/sub", "r3"] {
        r.push_image(repo, "latest", repo).await;
    }
    assert_eq!(
        r.get("/v2/_catalog").await.json(),
        serde_json::json!({"repositories": ["r1", "r2/sub", "r3"]})
    );
    let p1 = r.get("/v2/_catalog?n=1").await;
    assert_eq!(p1.json()["repositories"], serde_json::json!(["r1"]));
    assert_eq!(
        p1.header("link"),
        Some(r#"</v2/_catalog?n=1&last=r1>; rel="next""#)
    );
    let p2 = r.get("/v2/_catalog?n=1&last=r2%2Fsub").await;
    assert_eq!(p2.json()["repositories"], serde_json::json!(["r3"]));
    assert!(p2.header("link").is_none());
}

#[tokio::test]
async fn catalog_leaves_out_unlisted_repositories_and_pages_stay_full() {
    let r = Registry::new();
    for repo in [
        "a",
        "community/gone",
        "community/kept",
        "community/old",
        "z",
    ] {
        r.push_image(repo, "latest", repo).await;
    }
    // What the portal does when templates are withdrawn.
    r.app.listings.unlist("community/gone", "withdrawn");
    r.app.listings.unlist("community/old", "withdrawn");
    assert_eq!(
        r.get("/v2/_catalog").await.json(),
        serde_json::json!({"repositories": ["a", "community/kept", "z"]})
    );
    // A page of 2 skips the hidden names and is still full.
    let p1 = r.get("/v2/_catalog?n=2").await;
    assert_eq!(
        p1.json()["repositories"],
        serde_json::json!(["a", "community/kept"])
    );
    assert_eq!(
        p1.header("link"),
        Some(r#"</v2/_catalog?n=2&last=community%2Fkept>; rel="next""#)
    );
    let p2 = r.get("/v2/_catalog?n=2&last=community%2Fkept").await;
    assert_eq!(p2.json()["repositories"], serde_json::json!(["z"]));
    assert!(p2.header("link").is_none());
    // Nothing listed after the page: no Link, though hidden names follow.
    let tail = r.get("/v2/_catalog?n=2&last=a").await;
    assert_eq!(
        tail.json()["repositories"],
        serde_json::json!(["community/kept", "z"])
    );
    assert!(tail.header("link").is_none(), "{:?}", tail.header("link"));
    r.app.listings.unlist("z", "withdrawn");
    let p = r.get("/v2/_catalog?n=1&last=a").await;
    assert_eq!(
        p.json()["repositories"],
        serde_json::json!(["community/kept"])
    );
    assert!(p.header("link").is_none());
    // Walking n=1 pages gives exactly the listed repositories.
    let (repos, _) = walk_pages(&r, "/v2/_catalog?n=1", "repositories").await;
    assert_eq!(repos, ["a", "community/kept"]);
    // Tags and pulls by tag and digest still answer.
    let tags = r.get("/v2/community/gone/tags/list").await;
    assert_eq!(tags.json()["tags"], serde_json::json!(["latest"]));
    let by_tag = r.get("/v2/community/gone/manifests/latest").await;
    assert_eq!(by_tag.status, StatusCode::OK);
    let digest = by_tag.header("docker-content-digest").unwrap().to_string();
    let by_digest = r
        .get(&format!("/v2/community/gone/manifests/{digest}"))
        .await;
    assert_eq!(by_digest.status, StatusCode::OK);
    // Listed again, it is back.
    r.app.listings.relist("community/gone");
    assert_eq!(
        r.get("/v2/_catalog?n=2").await.json()["repositories"],
        serde_json::json!(["a", "community/gone"])
    );
}

#[tokio::test]
async fn referrers_and_artifact_type_filter() {
    let r = Registry::new();
    let (m, d) = r.push_image("signed", "v1", "s").await;
    let empty = r.push_blob("signed", b"{}").await;
    let sig = r.push_blob("signed", b"signature bytes").await;
    let art = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sig.to_string(), "size": 15}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": m.len()},
        "annotations": {"org.example": "yes"},
    }))
    .unwrap();
    let ad = Digest::of_bytes(&art);
    let put = r
        .put_manifest("signed", &ad.to_string(), OCI_MANIFEST, &art)
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(put.header("oci-subject"), Some(d.to_string().as_str()));

    let list = r.get(&format!("/v2/signed/referrers/{d}")).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.header("content-type"), Some(OCI_INDEX));
    let v = list.json();
    assert_eq!(v["mediaType"], OCI_INDEX);
    assert_eq!(v["manifests"][0]["digest"], ad.to_string());
    assert_eq!(
        v["manifests"][0]["artifactType"],
        "application/vnd.dev.cosign.artifact.sig.v1+json"
    );
    assert_eq!(v["manifests"][0]["annotations"]["org.example"], "yes");
    assert_eq!(v["manifests"][0]["size"], art.len());

    let f = r.get(&format!("/v2/signed/referrers/{d}?artifactType=application/vnd.dev.cosign.artifact.sig.v1%2Bjson")).await;
    assert_eq!(f.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(f.json()["manifests"].as_array().unwrap().len(), 1);
    let none = r
        .get(&format!("/v2/signed/referrers/{d}?artifactType=text/plain"))
        .await;
    assert_eq!(none.json()["manifests"], serde_json::json!([]));

    // Deleting the referrer removes it from the list.
    r.send(
        Method::DELETE,
        &format!("/v2/signed/manifests/{ad}"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(
        r.get(&format!("/v2/signed/referrers/{d}")).await.json()["manifests"],
        serde_json::json!([])
    );
    // Unknown subjects give an empty index, not 404.
    let unknown = r
        .get(&format!("/v2/signed/referrers/{}", Digest::of_bytes(b"u")))
        .await;
    assert_eq!(unknown.status, StatusCode::OK);
}

#[tokio::test]
async fn name_and_reference_validation() {
    let r = Registry::new();
    for uri in [
        "/v2/UPPER/tags/list",
        "/v2/a..b/manifests/latest",
        "/v2/-x/blobs/uploads/",
    ] {
        let resp = r.send(Method::GET, uri, &[], Body::empty()).await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(resp.code(), "NAME_INVALID", "{uri}");
    }
    assert_eq!(
        r.get("/v2/a/blobs/sha256:nothex").await.code(),
        "DIGEST_INVALID"
    );
    // A reference that cannot exist is not found (tests/strict.rs has more).
    assert_eq!(
        r.get("/v2/a/manifests/.bad").await.code(),
        "MANIFEST_UNKNOWN"
    );
    let e = r.get("/v2/a/unknown-endpoint").await;
    assert_eq!(e.status, StatusCode::NOT_FOUND);
    // Error bodies have the spec's shape.
    let v = e.json();
    assert!(v["errors"][0]["code"].is_string() && v["errors"][0]["message"].is_string());
    // Unsupported methods.
    let u = r
        .send(Method::POST, "/v2/a/tags/list", &[], Body::empty())
        .await;
    assert_eq!(u.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(u.code(), "UNSUPPORTED");
}

#[tokio::test]
async fn auth_rules_and_token_flow() {
    let r = Registry::new();
    let (_, d) = r.push_image("acme/app", "v1", "x").await;

    // Anonymous pull is allowed by default; anonymous push is challenged.
    assert_eq!(
        r.send_raw(Method::GET, "/v2/acme/app/manifests/v1", &[], Body::empty())
            .await
            .status,
        StatusCode::OK
    );
    let push = r
        .send_raw(
            Method::POST,
            "/v2/acme/app/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(push.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        push.header("www-authenticate"),
        Some(
            r#"Bearer realm="http://registry.test:5000/token",service="corral",scope="repository:acme/app:pull,push""#
        )
    );
    let del = r
        .send_raw(
            Method::DELETE,
            &format!("/v2/acme/app/manifests/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(del.status, StatusCode::UNAUTHORIZED);
    assert!(del
        .header("www-authenticate")
        .unwrap()
        .ends_with(r#"scope="repository:acme/app:delete""#));

    // Token with basic credentials.
    let auth = basic(USER, PASSWORD);
    let t = r
        .send_raw(
            Method::GET,
            "/token?service=corral&scope=repository:acme/app:pull,push",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK);
    let token = t.json()["token"].as_str().unwrap().to_string();
    assert_eq!(t.json()["access_token"], token.as_str());
    let bearer = format!("Bearer {token}");
    let s = r
        .send_raw(
            Method::POST,
            "/v2/acme/app/blobs/uploads/",
            &[("authorization", &bearer)],
            Body::empty(),
        )
        .await;
    assert_eq!(s.status, StatusCode::ACCEPTED);
    // Scoped per repository.
    let other = r
        .send_raw(
            Method::POST,
            "/v2/acme/other/blobs/uploads/",
            &[("authorization", &bearer)],
            Body::empty(),
        )
        .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);

    // Anonymous tokens only carry pull.
    let at = r
        .send_raw(
            Method::GET,
            "/token?service=corral&scope=repository:acme/app:pull,push",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(at.status, StatusCode::OK);
    let anon_bearer = format!("Bearer {}", at.json()["token"].as_str().unwrap());
    assert_eq!(
        r.send_raw(
            Method::GET,
            "/v2/acme/app/manifests/v1",
            &[("authorization", &anon_bearer)],
            Body::empty()
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        r.send_raw(
            Method::POST,
            "/v2/acme/app/blobs/uploads/",
            &[("authorization", &anon_bearer)],
            Body::empty()
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );

    // Wrong password at the token endpoint, forged token.
    assert_eq!(
        r.send_raw(
            Method::GET,
            "/token?scope=repository:acme/app:pull",
            &[("authorization", &basic(USER, "x"))],
            Body::empty()
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        r.send_raw(
            Method::GET,
            "/v2/acme/app/manifests/v1",
            &[("authorization", "Bearer abc.def")],
            Body::empty()
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn authenticated_pull_policy() {
    let r = Registry::with(|c| c.auth.anonymous_pull = false);
    r.push_image("private", "v1", "p").await;
    let anon = r
        .send_raw(Method::GET, "/v2/private/manifests/v1", &[], Body::empty())
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert!(anon
        .header("www-authenticate")
        .unwrap()
        .contains(r#"scope="repository:private:pull""#));
    // An anonymous token carries no pull access here.
    let t = r
        .send_raw(
            Method::GET,
            "/token?scope=repository:private:pull",
            &[],
            Body::empty(),
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {t}");
    let with = r
        .send_raw(
            Method::GET,
            "/v2/private/manifests/v1",
            &[("authorization", &bearer)],
            Body::empty(),
        )
        .await;
    assert_eq!(with.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.send_raw(Method::GET, "/v2/_catalog", &[], Body::empty())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        r.get("/v2/private/manifests/v1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        r.send_raw(Method::GET, "/", &[], Body::empty())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn no_htpasswd_means_no_push() {
    let r = Registry::with(|c| c.auth.htpasswd = None);
    let p = r
        .send_raw(Method::POST, "/v2/a/blobs/uploads/", &[], Body::empty())
        .await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    let p = r
        .send(Method::POST, "/v2/a/blobs/uploads/", &[], Body::empty())
        .await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn mirrored_repositories_are_read_only() {
    let r = Registry::with(|c| c.add_upstream_flag("library=http://127.0.0.1:9").unwrap());
    let p = r
        .send(
            Method::POST,
            "/v2/library/alpine/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(p.code(), "DENIED");
    // Upstream down and nothing cached: a spec error, 503.
    let g = r.get("/v2/library/alpine/manifests/latest").await;
    assert_eq!(g.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(g.json()["errors"].is_array());
    let b = r
        .get(&format!(
            "/v2/library/alpine/blobs/{}",
            Digest::of_bytes(b"z")
        ))
        .await;
    assert_eq!(b.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn metrics_healthz_and_catalog_page() {
    let r = Registry::new();
    let (_, d) = r.push_image("web/app", "v1", "w").await;
    // A cosign-style signature tag marks it signed (not verified: no keys).
    let (m, _) = r.push_image("web/app", "other", "o").await;
    r.put_manifest(
        "web/app",
        &format!("sha256-{}.sig", d.hex()),
        OCI_MANIFEST,
        &m,
    )
    .await;
    r.get("/v2/web/app/manifests/v1").await;

    let h = r
        .send_raw(Method::GET, "/healthz", &[], Body::empty())
        .await;
    assert_eq!(h.status, StatusCode::OK);
    let m = r
        .send_raw(Method::GET, "/metrics", &[], Body::empty())
        .await;
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    assert!(
        text.contains("corral_mirror_requests_total{route=\"manifest\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("corral_mirror_requests_total{route=\"upload\",status=\"201\"}"),
        "{text}"
    );
    assert!(text.contains("corral_mirror_upload_sessions_completed_total"));
    assert!(text.contains("corral_mirror_cache_hits_total 0"));

    let page = r
        .send_raw(
            Method::GET,
            "/catalog",
            &[("host", "mirror.example:5000")],
            Body::empty(),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(html.contains("<h2 id=\"web/app\">web/app</h2>"), "{html}");
    assert!(html.contains(&d.to_string()));
    assert!(
        html.contains("podman pull registry.test:5000/web/app:v1")
            || html.contains("podman pull mirror.example:5000/web/app:v1"),
        "{html}"
    );
    assert!(html.contains("docker pull"));
    assert!(
        html.contains("2026-01-02T03:04:05Z"),
        "created date from the config: {html}"
    );
    assert!(
        html.contains("<td class=\"unverified\">signed, not verified: no trusted keys"),
        "signature detected: {html}"
    );
    assert!(!html.contains("<script"));
}

#[tokio::test]
async fn token_only_takes_basic_credentials_at_the_token_endpoint_only() {
    let r = Registry::with(|c| c.auth.token_only = true);
    let auth = basic(USER, PASSWORD);
    // Basic credentials count for nothing on /v2/ and /sigstore/: a push is
    // challenged with the scope it needs.
    let push = r
        .send(
            Method::POST,
            "/v2/acme/app/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(push.status, StatusCode::UNAUTHORIZED);
    assert!(push
        .header("www-authenticate")
        .unwrap()
        .ends_with(r#"scope="repository:acme/app:pull,push""#));
    let sig = format!("/sigstore/acme/app@sha256={}/signature-1", "a".repeat(64));
    let put = r.send(Method::PUT, &sig, &[], "sig").await;
    assert_eq!(put.status, StatusCode::UNAUTHORIZED);
    assert!(put
        .header("www-authenticate")
        .unwrap()
        .ends_with(r#"scope="repository:acme/app:pull,push""#));
    // /token still takes them, and its token pushes.
    let t = r
        .send_raw(
            Method::GET,
            "/token?service=corral&scope=repository:acme/app:pull,push",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK);
    let bearer = format!("Bearer {}", t.json()["token"].as_str().unwrap());
    let s = r
        .send_raw(
            Method::POST,
            "/v2/acme/app/blobs/uploads/",
            &[("authorization", &bearer)],
            Body::empty(),
        )
        .await;
    assert_eq!(s.status, StatusCode::ACCEPTED);
    let put = r
        .send_raw(Method::PUT, &sig, &[("authorization", &bearer)], "sig")
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    // Anonymous pulls are unaffected.
    let got = r.send_raw(Method::GET, &sig, &[], Body::empty()).await;
    assert_eq!((got.status, &got.body[..]), (StatusCode::OK, &b"sig"[..]));
}

/// Follows `Link: <...>; rel="next"` from `first`, collecting `field`.
async fn walk_pages(r: &Registry, first: &str, field: &str) -> (Vec<String>, usize) {
    let (mut all, mut pages, mut next) = (Vec::new(), 0, Some(first.to_string()));
    while let Some(uri) = next.take() {
        let page = r.get(&uri).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        for v in page.json()[field].as_array().unwrap() {
            all.push(v.as_str().unwrap().to_string());
        }
        pages += 1;
        next = page.header("link").map(|l| {
            let uri = l.strip_prefix('<').unwrap().split_once('>').unwrap().0;
            assert!(l.ends_with(r#"rel="next""#), "{l}");
            uri.to_string()
        });
        assert!(pages < 1000, "pagination does not end");
    }
    (all, pages)
}

#[tokio::test]
async fn tags_list_pages_add_up_and_follow_writes() {
    let r = Registry::new();
    let (m, d) = r.push_image("many", "latest", "m").await;
    let mut want = vec!["latest".to_string()];
    for i in 0..240 {
        // Mixed case, digits, `.`, `-` and `_`: lexical byte order.
        let tag = match i % 4 {
            0 => format!("v{i}"),
            1 => format!("V_{i}"),
            2 => format!("{i}.x-rc"),
            _ => format!("z-{i}"),
        };
        r.put_manifest("many", &tag, OCI_MANIFEST, &m).await;
        want.push(tag);
    }
    want.sort();
    let (all, pages) = walk_pages(&r, "/v2/many/tags/list?n=37", "tags").await;
    assert_eq!(all, want);
    assert_eq!(pages, want.len().div_ceil(37));
    let full = r.get("/v2/many/tags/list").await.json()["tags"].clone();
    assert_eq!(full, serde_json::json!(want));

    // A listing right after a write shows it, and a deleted tag is gone at
    // once: nothing is served from a stale index.
    r.put_manifest("many", "aaa-new", OCI_MANIFEST, &m).await;
    let full = r.get("/v2/many/tags/list").await.json()["tags"].clone();
    assert_eq!(full.as_array().unwrap().len(), want.len() + 1);
    let page = r.get("/v2/many/tags/list?n=3&last=a").await.json();
    assert_eq!(page["tags"][0], "aaa-new");
    let del = r
        .send(
            Method::DELETE,
            &format!("/v2/many/manifests/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    // Deleting the manifest took every tag pointing at it, and with it the
    // repository's last content.
    let after = r.get("/v2/many/tags/list").await;
    assert_eq!(after.code(), "NAME_UNKNOWN");
}

#[tokio::test]
async fn catalog_pages_add_up_across_repositories() {
    let r = Registry::new();
    let mut want = Vec::new();
    for (repo, tags) in [("a", 3), ("a/b", 1), ("a-c", 4), ("z", 2)] {
        for t in 0..tags {
            r.push_image(repo, &format!("t{t}"), repo).await;
            want.push(format!("{repo}:t{t}"));
        }
    }
    // `_catalog`, paginated.
    let (repos, _) = walk_pages(&r, "/v2/_catalog?n=1", "repositories").await;
    assert_eq!(repos, ["a", "a-c", "a/b", "z"]);

    // catalog.json, 3 rows a page: every tag once, in order, and the
    // `next` field agrees with the Link header.
    let mut rows = Vec::new();
    let mut next = Some("/catalog.json?n=3".to_string());
    let mut pages = 0;
    while let Some(uri) = next.take() {
        let page = r.send_raw(Method::GET, &uri, &[], Body::empty()).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        let v = page.json();
        for repo in v["repositories"].as_array().unwrap() {
            for t in repo["tags"].as_array().unwrap() {
                rows.push(format!(
                    "{}:{}",
                    repo["name"].as_str().unwrap(),
                    t["tag"].as_str().unwrap()
                ));
            }
        }
        next = v["next"].as_str().map(str::to_string);
        assert_eq!(
            page.header("link").map(str::to_string),
            next.as_ref().map(|n| format!("<{n}>; rel=\"next\"")),
        );
        pages += 1;
    }
    want.sort_by(|a, b| {
        let (ra, ta) = a.split_once(':').unwrap();
        let (rb, tb) = b.split_once(':').unwrap();
        (ra, ta).cmp(&(rb, tb))
    });
    assert_eq!(rows, want);
    assert_eq!(pages, 4, "10 rows, 3 a page");

    // The HTML page links to the next one and shows only its rows.
    let html = r
        .send_raw(Method::GET, "/catalog?n=2", &[], Body::empty())
        .await;
    let text = String::from_utf8(html.body.to_vec()).unwrap();
    assert!(
        text.contains(r#"<a rel="next" href="/catalog?n=2&amp;last=a%3At1">next page</a>"#),
        "{text}"
    );
    assert!(!text.contains("a-c"), "{text}");
    let last = r
        .send_raw(
            Method::GET,
            "/catalog?n=100&last=z%3At0",
            &[],
            Body::empty(),
        )
        .await;
    let text = String::from_utf8(last.body.to_vec()).unwrap();
    assert!(text.contains(">t1<") && !text.contains(">t0<"), "{text}");
    assert!(!text.contains("next page") && last.header("link").is_none());
}
