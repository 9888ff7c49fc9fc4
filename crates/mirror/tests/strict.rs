//! Strict references: every digest a client sends (path, query, mount,
//! manifest body) goes through one grammar, references that cannot exist
//! are not found, and a mount's 401 names the scope of its source.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;
use corral_mirror::name::Digest;
use serde_json::json;

/// Digests that must never be stored or served, with why.
fn bad_digests() -> Vec<(&'static str, String)> {
    let hex = Digest::of_bytes(b"x").hex().to_string();
    vec![
        ("md5", "md5:d41d8cd98f00b204e9800998ecf8427e".to_string()),
        ("short", "sha256:xyz".to_string()),
        ("upper-case hex", format!("sha256:{}", hex.to_uppercase())),
        ("traversal", "sha256:../../../etc/passwd".to_string()),
        ("empty", String::new()),
        ("sha512", format!("sha512:{}", "ab".repeat(64))),
    ]
}

/// Pushes a config and a layer to `repo`; returns an image manifest whose
/// `field` has `bad` spliced in.
async fn manifest_with(r: &Registry, repo: &str, field: &str, bad: &str) -> serde_json::Value {
    let cd = r.push_blob(repo, b"{}").await;
    let ld = r.push_blob(repo, b"a layer").await;
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": 7}],
    });
    match field {
        "config" => m["config"]["digest"] = bad.into(),
        "layers[1]" => m["layers"].as_array_mut().unwrap().push(
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": bad, "size": 1}),
        ),
        // A foreign layer need not be in the registry, but its digest
        // must still be one.
        "foreign layers[1]" => m["layers"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": bad, "size": 1, "urls": ["https://example.com/layer"],
        })),
        "subject" => {
            m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": bad, "size": 1})
        }
        other => panic!("no field {other}"),
    }
    m
}

#[tokio::test]
async fn manifests_whose_digests_do_not_parse_are_refused_naming_the_field() {
    let r = Registry::new();
    for field in ["config", "layers[1]", "foreign layers[1]", "subject"] {
        for (why, bad) in bad_digests() {
            let m = manifest_with(&r, "img", field, &bad).await;
            let put = r
                .put_manifest("img", "v1", OCI_MANIFEST, &serde_json::to_vec(&m).unwrap())
                .await;
            assert_eq!(put.status, StatusCode::BAD_REQUEST, "{field} {why}");
            assert_eq!(put.code(), "DIGEST_INVALID", "{field} {why}");
            let err = &put.json()["errors"][0];
            let name = field.trim_start_matches("foreign ");
            assert!(
                err["message"].as_str().unwrap().starts_with(name),
                "{field} {why}: {err}"
            );
            assert_eq!(err["detail"]["digest"], bad.as_str(), "{field} {why}");
            assert_eq!(
                r.get("/v2/img/manifests/v1").await.status,
                StatusCode::NOT_FOUND,
                "{field} {why}: nothing stored"
            );
        }
    }
}

#[tokio::test]
async fn index_children_whose_digests_do_not_parse_are_refused() {
    let r = Registry::new();
    let (m1, d1) = r.push_image("multi", "amd64", "a").await;
    for (why, bad) in bad_digests() {
        let index = json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": d1.to_string(), "size": m1.len()},
                {"mediaType": OCI_MANIFEST, "digest": bad, "size": 1},
            ],
        });
        let put = r
            .put_manifest(
                "multi",
                "latest",
                OCI_INDEX,
                &serde_json::to_vec(&index).unwrap(),
            )
            .await;
        assert_eq!(put.status, StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(put.code(), "DIGEST_INVALID", "{why}");
        assert!(put.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("manifests[1].digest"));
    }
    // An index child the repository does not have is MANIFEST_BLOB_UNKNOWN,
    // naming it.
    let ghost = Digest::of_bytes(b"ghost");
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": ghost.to_string(), "size": 1}],
    });
    let put = r
        .put_manifest(
            "multi",
            "latest",
            OCI_INDEX,
            &serde_json::to_vec(&index).unwrap(),
        )
        .await;
    assert_eq!(put.code(), "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(
        put.json()["errors"][0]["detail"]["digest"],
        ghost.to_string()
    );
}

#[tokio::test]
async fn descriptors_without_a_digest_are_invalid_manifests() {
    let r = Registry::new();
    let mut m = manifest_with(&r, "img", "config", "x").await;
    m["config"] = json!({"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2});
    let put = r
        .put_manifest("img", "v1", OCI_MANIFEST, &serde_json::to_vec(&m).unwrap())
        .await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    assert_eq!(put.code(), "MANIFEST_INVALID");
    assert_eq!(put.json()["errors"][0]["message"], "config has no digest");
    m["config"] = json!("sha256:abc");
    let put = r
        .put_manifest("img", "v1", OCI_MANIFEST, &serde_json::to_vec(&m).unwrap())
        .await;
    assert_eq!(put.code(), "MANIFEST_INVALID");
}

#[tokio::test]
async fn unknown_blobs_are_named_and_a_missing_subject_is_fine() {
    let r = Registry::new();
    let ghost = Digest::of_bytes(b"never pushed");
    let m = manifest_with(&r, "img", "layers[1]", &ghost.to_string()).await;
    let put = r
        .put_manifest("img", "v1", OCI_MANIFEST, &serde_json::to_vec(&m).unwrap())
        .await;
    assert_eq!(put.code(), "MANIFEST_BLOB_UNKNOWN");
    let err = &put.json()["errors"][0];
    assert_eq!(err["detail"]["digest"], ghost.to_string());
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains(&ghost.to_string()));

    // OCI 1.1: a referrer may come before its subject.
    let absent = Digest::of_bytes(b"subject pushed later");
    let m = manifest_with(&r, "img", "subject", &absent.to_string()).await;
    let put = r
        .put_manifest("img", "sig", OCI_MANIFEST, &serde_json::to_vec(&m).unwrap())
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    assert_eq!(put.header("oci-subject"), Some(absent.to_string().as_str()));
}

#[tokio::test]
async fn references_that_cannot_exist_are_not_found() {
    let r = Registry::new();
    r.push_image("img", "v1", "one").await;
    let hex = Digest::of_bytes(b"x").hex().to_string();
    let upper = format!("sha256:{}", hex.to_uppercase());
    for reference in [
        ".bad",
        "-dash",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:xyz",
        upper.as_str(),
    ] {
        let uri = format!("/v2/img/manifests/{reference}");
        for method in [Method::GET, Method::HEAD, Method::DELETE] {
            let resp = r.send(method.clone(), &uri, &[], Body::empty()).await;
            assert_eq!(resp.status, StatusCode::NOT_FOUND, "{method} {uri}");
            if method != Method::HEAD {
                assert_eq!(resp.code(), "MANIFEST_UNKNOWN", "{method} {uri}");
            }
        }
        // Nothing can be created under it.
        let put = r.put_manifest("img", reference, OCI_MANIFEST, b"{}").await;
        assert_eq!(put.status, StatusCode::BAD_REQUEST, "PUT {uri}");
        let want = if reference.contains(':') {
            "DIGEST_INVALID"
        } else {
            "MANIFEST_INVALID"
        };
        assert_eq!(put.code(), want, "PUT {uri}");
    }
    // Anonymous pulls see the same.
    let anon = r
        .send_raw(Method::GET, "/v2/img/manifests/.bad", &[], Body::empty())
        .await;
    assert_eq!(anon.code(), "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn digests_in_paths_queries_and_mounts_go_through_the_grammar() {
    let r = Registry::new();
    let d = r.push_blob("src/repo", b"shared layer").await;
    let upper = format!("sha256:{}", d.hex().to_uppercase());
    for (why, bad) in bad_digests() {
        if bad.is_empty() || bad.contains('/') {
            continue; // another endpoint (or none)
        }
        for uri in [
            format!("/v2/src/repo/blobs/{bad}"),
            format!("/v2/src/repo/referrers/{bad}"),
        ] {
            let resp = r.get(&uri).await;
            assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{why} {uri}");
            assert_eq!(resp.code(), "DIGEST_INVALID", "{why} {uri}");
        }
    }
    for (why, bad) in bad_digests() {
        let bad = percent_encode(&bad);
        for uri in [
            format!("/v2/dst/repo/blobs/uploads/?digest={bad}"),
            format!("/v2/dst/repo/blobs/uploads/?mount={bad}&from=src/repo"),
        ] {
            let resp = r
                .send(Method::POST, &uri, &[], b"shared layer".to_vec())
                .await;
            assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{why} {uri}");
            assert_eq!(resp.code(), "DIGEST_INVALID", "{why} {uri}");
        }
    }
    // The upper-case spelling of a stored digest mounts nothing.
    let m = r
        .send(
            Method::POST,
            &format!("/v2/dst/repo/blobs/uploads/?mount={upper}&from=src/repo"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(m.code(), "DIGEST_INVALID");
    // A mount source that is not a repository name is named.
    let m = r
        .send(
            Method::POST,
            &format!("/v2/dst/repo/blobs/uploads/?mount={d}&from=../src"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(m.status, StatusCode::BAD_REQUEST);
    assert_eq!(m.code(), "NAME_INVALID");
    assert!(m.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("../src"));
    assert_eq!(
        r.get(&format!("/v2/dst/repo/blobs/{d}")).await.status,
        StatusCode::NOT_FOUND,
        "nothing was mounted"
    );
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|c| {
            if c.is_ascii_alphanumeric() || b"-._~:".contains(&c) {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn mount_challenge_names_the_source_scope_and_tokens_without_it_upload() {
    let r = Registry::new();
    let d = r.push_blob("src/repo", b"shared layer").await;
    let uri = format!("/v2/dst/repo/blobs/uploads/?mount={d}&from=src/repo");
    let anon = r.send_raw(Method::POST, &uri, &[], Body::empty()).await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anon.header("www-authenticate"),
        Some(
            r#"Bearer realm="http://registry.test:5000/token",service="corral",scope="repository:dst/repo:pull,push repository:src/repo:pull""#
        )
    );
    // Without a mount the challenge names the target only.
    let plain = r
        .send_raw(
            Method::POST,
            "/v2/dst/repo/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    assert!(plain
        .header("www-authenticate")
        .unwrap()
        .ends_with(r#"scope="repository:dst/repo:pull,push""#));

    let token = |scope: &'static str| {
        let r = &r;
        async move {
            let t = r
                .send_raw(
                    Method::GET,
                    &format!("/token?service=corral&scope={scope}"),
                    &[("authorization", &basic(USER, PASSWORD))],
                    Body::empty(),
                )
                .await;
            assert_eq!(t.status, StatusCode::OK);
            format!("Bearer {}", t.json()["token"].as_str().unwrap())
        }
    };
    // Push on the target but no pull on the source: an upload, never a mount.
    let push_only = token("repository:dst/repo:pull,push").await;
    let m = r
        .send_raw(
            Method::POST,
            &uri,
            &[("authorization", &push_only)],
            Body::empty(),
        )
        .await;
    assert_eq!(m.status, StatusCode::ACCEPTED);
    assert!(m
        .header("location")
        .unwrap()
        .starts_with("/v2/dst/repo/blobs/uploads/"));
    assert_eq!(
        r.get(&format!("/v2/dst/repo/blobs/{d}")).await.status,
        StatusCode::NOT_FOUND
    );
    // Both scopes, as the challenge asked: mounted.
    let both = token("repository:dst/repo:pull,push%20repository:src/repo:pull").await;
    let m = r
        .send_raw(
            Method::POST,
            &uri,
            &[("authorization", &both)],
            Body::empty(),
        )
        .await;
    assert_eq!(m.status, StatusCode::CREATED, "{:?}", m.body);
    assert_eq!(
        r.get(&format!("/v2/dst/repo/blobs/{d}")).await.status,
        StatusCode::OK
    );
}
