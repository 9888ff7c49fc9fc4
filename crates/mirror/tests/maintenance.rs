//! GC, fsck and the OSTree file server, in-process.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;
use corral_mirror::name::{Digest, RepoName};

#[tokio::test]
async fn gc_keeps_reachable_and_sweeps_the_rest() {
    let r = Registry::new();
    let store = r.app.store.clone();
    let (m1, d1) = r.push_image("app", "v1", "kept").await;
    // An index and a referrer keep their targets alive.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d1.to_string(), "size": m1.len()}],
    }))
    .unwrap();
    assert_eq!(
        r.put_manifest("app", "multi", OCI_INDEX, &index)
            .await
            .status,
        StatusCode::CREATED
    );
    let empty = r.push_blob("app", b"{}").await;
    let sig = r.push_blob("app", b"sig").await;
    let art = image_manifest(&empty, 2, &sig, 3, Some((&d1, m1.len())));
    let ad = Digest::of_bytes(&art);
    assert_eq!(
        r.put_manifest("app", &ad.to_string(), OCI_MANIFEST, &art)
            .await
            .status,
        StatusCode::CREATED
    );
    // Untagged image and a stray blob: garbage once old.
    let (_, gone) = r.push_image("app", "tmp", "garbage").await;
    r.send(Method::DELETE, "/v2/app/manifests/tmp", &[], Body::empty())
        .await;
    let stray = r.push_blob("app", b"stray").await;
    // An abandoned upload session.
    let abandoned = r
        .send(Method::POST, "/v2/app/blobs/uploads/", &[], Body::empty())
        .await;
    let abandoned = abandoned.header("location").unwrap().to_string();
    // The tagged v1 is also reachable through "multi"; drop the v1 tag.
    r.send(Method::DELETE, "/v2/app/manifests/v1", &[], Body::empty())
        .await;

    // Everything is young: a GC with the default grace period keeps all.
    let young = corral_mirror::gc::collect(store.as_ref(), Duration::from_secs(3600), false)
        .await
        .unwrap();
    assert!(
        young.blobs.is_empty() && young.manifests.is_empty(),
        "{young:?}"
    );
    assert!(young.young_kept >= 1, "the stray blob is young");

    std::thread::sleep(Duration::from_millis(20));
    let dry = corral_mirror::gc::collect(store.as_ref(), Duration::ZERO, true)
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.manifests, vec![format!("app@{gone}")]);
    assert!(dry.blobs.contains(&stray.to_string()));
    assert!(dry.blobs.contains(&gone.to_string()));
    // The link that kept the stray blob goes too, and says so.
    assert!(
        dry.blob_links.contains(&format!("app@{stray}")),
        "{:?}",
        dry.blob_links
    );
    assert_eq!(
        store.blob_size(&stray).await.unwrap(),
        Some(5),
        "dry run deletes nothing"
    );

    assert_eq!(dry.idle.len(), 1, "{dry:?}");
    let real = corral_mirror::gc::collect(store.as_ref(), Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(real.blobs, dry.blobs);
    assert_eq!(real.blob_links, dry.blob_links);
    assert!(!store
        .has_blob_link(&RepoName::parse("app").unwrap(), &stray)
        .await
        .unwrap());
    assert_eq!(store.blob_size(&stray).await.unwrap(), None);
    assert_eq!(r.get(&abandoned).await.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(
        r.get(&format!("/v2/app/manifests/{gone}")).await.status,
        StatusCode::NOT_FOUND
    );
    // Reachable content survived: the index, its child, the referrer and blobs.
    assert_eq!(
        r.get("/v2/app/manifests/multi").await.status,
        StatusCode::OK
    );
    assert_eq!(
        r.get(&format!("/v2/app/manifests/{d1}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        r.get(&format!("/v2/app/manifests/{ad}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        r.get(&format!("/v2/app/blobs/{sig}")).await.status,
        StatusCode::OK
    );
    let report = corral_mirror::fsck::check(store.as_ref()).await.unwrap();
    assert!(!report.damaged(), "{report:?}");
}

#[tokio::test]
async fn fsck_finds_corruption_and_leftovers() {
    let r = Registry::new();
    let (_, d) = r.push_image("f", "v1", "x").await;
    let store = r.app.store.clone();
    assert!(!corral_mirror::fsck::check(store.as_ref())
        .await
        .unwrap()
        .damaged());

    let root = r.app.config.storage.clone();
    let layer = Digest::of_bytes(b"layer of x");
    std::fs::write(
        root.join("blobs/sha256")
            .join(&layer.hex()[..2])
            .join(layer.hex()),
        b"bit rot!!!",
    )
    .unwrap();
    std::fs::write(root.join("tmp/partial"), b"half a blob").unwrap();
    // A tag pointing at a manifest whose data is gone.
    std::fs::remove_file(root.join("blobs/sha256").join(&d.hex()[..2]).join(d.hex())).unwrap();

    let report = corral_mirror::fsck::check(store.as_ref()).await.unwrap();
    assert!(report.damaged());
    assert_eq!(report.corrupt_blobs.len(), 1, "{report:?}");
    assert_eq!(report.corrupt_blobs[0].digest, layer.to_string());
    assert_eq!(report.temp_files.len(), 1);
    assert!(
        report
            .unresolved_tags
            .iter()
            .any(|t| t.repo == "f" && t.tag == "v1"),
        "{report:?}"
    );
    // Name checks keep traversal out of the storage.
    assert!(RepoName::parse("../../etc").is_none());
}

#[tokio::test]
async fn ostree_files_with_ranges() {
    let ostree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ostree.path().join("objects/ab")).unwrap();
    std::fs::write(
        ostree.path().join("config"),
        "[core]\nrepo_version=1\nmode=archive-z2\n",
    )
    .unwrap();
    std::fs::write(ostree.path().join("objects/ab/cdef.filez"), b"0123456789").unwrap();
    let path = ostree.path().to_path_buf();
    let r = Registry::with(move |c| c.ostree_repo = Some(path));
    let cfg = r
        .send_raw(Method::GET, "/ostree/config", &[], Body::empty())
        .await;
    assert_eq!(cfg.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&cfg.body).contains("archive-z2"));
    let part = r
        .send_raw(
            Method::GET,
            "/ostree/objects/ab/cdef.filez",
            &[("range", "bytes=2-4")],
            Body::empty(),
        )
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&part.body[..], b"234");
    assert_eq!(part.header("content-range"), Some("bytes 2-4/10"));
    assert_eq!(
        r.send_raw(
            Method::GET,
            "/ostree/objects/ab/cdef.filez",
            &[("range", "bytes=50-")],
            Body::empty()
        )
        .await
        .status,
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    assert_eq!(
        r.send_raw(Method::GET, "/ostree/../../etc/passwd", &[], Body::empty())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        r.send_raw(Method::GET, "/ostree/objects", &[], Body::empty())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        r.send_raw(Method::PUT, "/ostree/config", &[], Body::empty())
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn disk_images_served_with_ranges_and_listed_with_their_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("atomic.qcow2");
    std::fs::write(&image, b"QFI\xfb disk image").unwrap();
    let sum = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&image).unwrap()))
    };
    std::fs::write(
        dir.path().join("atomic.qcow2.sha256"),
        format!("{sum}  atomic.qcow2\n"),
    )
    .unwrap();
    // a build in progress: hidden, neither served in the list nor checked
    std::fs::write(dir.path().join(".atomic.raw.xz.corral-tmp-1"), b"partial").unwrap();
    let path = dir.path().to_path_buf();
    let r = Registry::with(move |c| c.disk_images.dir = Some(path));

    let part = r
        .send_raw(
            Method::GET,
            "/disk-images/atomic.qcow2",
            &[("range", "bytes=0-3")],
            Body::empty(),
        )
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&part.body[..], b"QFI\xfb");
    for (method, path, status) in [
        (
            Method::PUT,
            "/disk-images/atomic.qcow2",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/disk-images/../../etc/passwd",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/disk-images/missing.qcow2",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let got = r.send_raw(method.clone(), path, &[], Body::empty()).await;
        assert_eq!(got.status, status, "{method} {path}");
    }

    let catalog = r
        .send_raw(Method::GET, "/catalog.json", &[], Body::empty())
        .await;
    assert_eq!(catalog.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&catalog.body).unwrap();
    let images = v["disk_images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{v}");
    assert_eq!(images[0]["name"], "atomic.qcow2");
    assert_eq!(images[0]["url"], "/disk-images/atomic.qcow2");
    assert_eq!(images[0]["size"], 15);
    assert_eq!(images[0]["sha256"], sum.as_str());
    assert_eq!(images[0]["checksum_matches"], true);
    assert_eq!(images[0]["signature"]["state"], "unsigned");

    let page = r
        .send_raw(Method::GET, "/catalog", &[], Body::empty())
        .await;
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        html.contains("<h2 id=\"disk-images\">Disk images</h2>"),
        "{html}"
    );
    assert!(html.contains(&format!("<code>{sum}</code>")), "{html}");
}
