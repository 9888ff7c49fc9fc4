//! A full disk (a 10 MiB tmpfs) under the in-process registry: every write
//! either becomes durable and is acknowledged, or answers 507 and changes
//! nothing. Acknowledged tags pull back byte-identical, fsck stays clean,
//! a failed upload gives its space back, and reads keep working below the
//! free-space floor.

mod common;

use std::path::Path;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::tmpfs::Tmpfs;
use common::{image_manifest, Registry, Resp, OCI_MANIFEST};
use corral_mirror::name::Digest;
use corral_mirror::storage::FsStorage;
use corral_test_support::patterned_bytes;

const TMPFS_SIZE: u64 = 10 << 20;

/// A registry whose storage root is on `fs`, with the given floor.
fn registry(fs: &Tmpfs, floor: u64) -> Registry {
    Registry::with_storage(Some(&fs.path().join("storage")), |c| {
        c.limits.min_free_bytes = Some(floor);
    })
}

fn assert_507(r: &Resp, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::INSUFFICIENT_STORAGE,
        "{what}: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    let message = r.json()["errors"][0]["message"]
        .as_str()
        .expect("a spec error body")
        .to_string();
    assert!(!r.code().is_empty(), "{what}: error code");
    assert!(
        message.contains("storage"),
        "{what}: message {message:?} says what is wrong"
    );
}

/// Files under `dir` (recursively) that are empty, skipping `_blobs` link
/// directories whose files are empty by design.
fn empty_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let e = e.unwrap();
        let p = e.path();
        let m = e.metadata().unwrap();
        if m.is_dir() {
            // Blob links, the repository index's markers and the store
            // lock's files are empty by design.
            if !["_blobs", "_index", "locks"].contains(&e.file_name().to_str().unwrap_or("")) {
                out.extend(empty_files(&p));
            }
        } else if m.len() == 0 {
            out.push(p.display().to_string());
        }
    }
    out
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Pulls `repo:reference` and checks it is exactly `body` with its media type.
async fn assert_pulls(reg: &Registry, repo: &str, reference: &str, body: &[u8]) {
    let r = reg.get(&format!("/v2/{repo}/manifests/{reference}")).await;
    assert_eq!(r.status, StatusCode::OK, "{repo}:{reference}");
    assert_eq!(
        r.header("content-type"),
        Some(OCI_MANIFEST),
        "{repo}:{reference} media type"
    );
    assert!(r.body == body, "{repo}:{reference} body differs");
}

async fn assert_fsck_clean(storage: &Path) {
    let store = FsStorage::open(storage).unwrap();
    let report = corral_mirror::fsck::check(&store).await.unwrap();
    assert!(!report.damaged(), "{report:?}");
    assert!(report.temp_files.is_empty(), "{report:?}");
}

/// Pushes config and layer blobs for a new image; returns its manifest.
async fn image_blobs(reg: &Registry, repo: &str, seed: u32, layer_len: usize) -> Vec<u8> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#);
    let layer = patterned_bytes(seed, layer_len);
    let cd = reg.push_blob(repo, config.as_bytes()).await;
    let ld = reg.push_blob(repo, &layer).await;
    image_manifest(&cd, config.len(), &ld, layer.len(), None)
}

#[tokio::test]
async fn full_disk_blob_uploads_answer_507_and_give_the_space_back() {
    let Some(fs) = Tmpfs::mount(TMPFS_SIZE) else {
        return;
    };
    let reg = registry(&fs, 0);
    let storage = fs.path().join("storage");
    let (m1, _) = reg.push_image("app", "v1", "one").await;
    fs.fill(512 << 10);
    let before = fs.available();
    let big = patterned_bytes(7, 2 << 20);
    let d = Digest::of_bytes(&big);

    // Monolithic: the whole blob in the POST.
    let r = reg
        .send(
            Method::POST,
            &format!("/v2/app/blobs/uploads/?digest={d}"),
            &[],
            big.clone(),
        )
        .await;
    assert_507(&r, "monolithic upload");
    assert!(entries(&storage.join("uploads")).is_empty(), "session kept");
    assert!(entries(&storage.join("tmp")).is_empty(), "temp file kept");
    assert!(fs.available() >= before, "space not given back");

    // Chunked: the PATCH runs out of space; the server's disk is not the
    // client's fault, so never 400.
    let r = reg
        .send(Method::POST, "/v2/app/blobs/uploads/", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.header("location").unwrap().to_string();
    let r = reg
        .send(
            Method::PATCH,
            &loc,
            &[("content-range", &format!("0-{}", big.len() - 1))],
            big.clone(),
        )
        .await;
    assert_507(&r, "chunk");
    let r = reg.get(&loc).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "the failed session is gone"
    );
    assert!(entries(&storage.join("uploads")).is_empty(), "session kept");
    assert!(fs.available() >= before, "space not given back");

    let r = reg
        .send(
            Method::HEAD,
            &format!("/v2/app/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "no partial blob");
    assert_pulls(&reg, "app", "v1", &m1).await;

    // Once there is room again the same push goes through.
    fs.free();
    assert_eq!(reg.push_blob("app", &big).await, d);
    let r = reg.get(&format!("/v2/app/blobs/{d}")).await;
    assert!(r.body == big, "blob differs");
    assert_fsck_clean(&storage).await;
}

#[tokio::test]
async fn full_disk_manifest_and_tag_writes_change_nothing() {
    let Some(fs) = Tmpfs::mount(TMPFS_SIZE) else {
        return;
    };
    let reg = registry(&fs, 0);
    let storage = fs.path().join("storage");
    let (m1, d1) = reg.push_image("app", "v1", "one").await;
    let m2 = image_blobs(&reg, "app", 2, 1000).await;
    let d2 = Digest::of_bytes(&m2);
    fs.fill(0);

    // Re-pushing what is there: 201 or 507, but v1 stays whole.
    let r = reg.put_manifest("app", "v1", OCI_MANIFEST, &m1).await;
    assert!(
        r.status == StatusCode::CREATED || r.status == StatusCode::INSUFFICIENT_STORAGE,
        "re-push: {} {:?}",
        r.status,
        r.body
    );
    assert_pulls(&reg, "app", "v1", &m1).await;
    assert_pulls(&reg, "app", &d1.to_string(), &m1).await;

    // A new tag for it: acknowledged and pullable, or refused and absent.
    let r = reg.put_manifest("app", "v2", OCI_MANIFEST, &m1).await;
    let tags = reg.get("/v2/app/tags/list").await.json()["tags"].clone();
    if r.status == StatusCode::CREATED {
        assert_pulls(&reg, "app", "v2", &m1).await;
    } else {
        assert_507(&r, "new tag");
        assert!(!tags.to_string().contains("\"v2\""), "refused tag listed");
    }

    // A new manifest needs space for its bytes: refused, and no trace of it.
    let r = reg.put_manifest("app", "v3", OCI_MANIFEST, &m2).await;
    assert_507(&r, "new manifest");
    let r = reg.get(&format!("/v2/app/manifests/{d2}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = reg.get("/v2/app/manifests/v3").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(empty_files(&storage), Vec::<String>::new());

    // After space is freed the same push stores it whole.
    fs.free();
    let r = reg.put_manifest("app", "v3", OCI_MANIFEST, &m2).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_pulls(&reg, "app", "v3", &m2).await;
    assert_pulls(&reg, "app", "v1", &m1).await;
    assert_eq!(empty_files(&storage), Vec::<String>::new());
    assert_fsck_clean(&storage).await;
}

/// Many small pushes until the disk is full: whatever was acknowledged pulls
/// back byte-identical, and nothing empty is left in the metadata.
#[tokio::test]
async fn pushes_until_full_keep_every_acknowledged_tag() {
    let Some(fs) = Tmpfs::mount(TMPFS_SIZE) else {
        return;
    };
    let reg = registry(&fs, 0);
    let storage = fs.path().join("storage");
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..40u32 {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{i}}}"#);
        let layer = patterned_bytes(100 + i, 700 << 10);
        let (cd, ld) = (
            Digest::of_bytes(config.as_bytes()),
            Digest::of_bytes(&layer),
        );
        let mut ok = true;
        for (d, data) in [(&cd, config.as_bytes()), (&ld, &layer[..])] {
            let r = reg
                .send(
                    Method::POST,
                    &format!("/v2/fill/blobs/uploads/?digest={d}"),
                    &[],
                    data.to_vec(),
                )
                .await;
            match r.status {
                StatusCode::CREATED => {}
                StatusCode::INSUFFICIENT_STORAGE => ok = false,
                s => panic!("blob push: {s} {:?}", r.body),
            }
        }
        if !ok {
            refused += 1;
            continue;
        }
        let m = image_manifest(&cd, config.len(), &ld, layer.len(), None);
        let tag = format!("t{i}");
        let r = reg.put_manifest("fill", &tag, OCI_MANIFEST, &m).await;
        match r.status {
            StatusCode::CREATED => acked.push((tag, m, ld, layer)),
            StatusCode::INSUFFICIENT_STORAGE => refused += 1,
            s => panic!("manifest push: {s} {:?}", r.body),
        }
    }
    assert!(refused > 0, "the disk never filled up");
    assert!(!acked.is_empty(), "nothing fit");
    for (tag, m, ld, layer) in &acked {
        assert_pulls(&reg, "fill", tag, m).await;
        let r = reg.get(&format!("/v2/fill/blobs/{ld}")).await;
        assert!(r.body == *layer, "fill:{tag} layer differs");
    }
    assert_eq!(empty_files(&storage), Vec::<String>::new());
    assert!(entries(&storage.join("uploads")).is_empty());
    assert_fsck_clean(&storage).await;
}

#[tokio::test]
async fn below_the_floor_uploads_are_refused_and_reads_work() {
    let Some(fs) = Tmpfs::mount(TMPFS_SIZE) else {
        return;
    };
    let reg = registry(&fs, 6 << 20);
    let storage = fs.path().join("storage");
    let (m1, _) = reg.push_image("app", "v1", "one").await;
    let m2 = image_blobs(&reg, "app", 2, 1000).await;
    let r = reg
        .send(Method::POST, "/v2/app/blobs/uploads/", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let open_session = r.header("location").unwrap().to_string();
    fs.fill(3 << 20);

    let blob = patterned_bytes(9, 4096);
    let d = Digest::of_bytes(&blob);
    let r = reg
        .send(
            Method::POST,
            &format!("/v2/app/blobs/uploads/?digest={d}"),
            &[],
            blob.clone(),
        )
        .await;
    assert_507(&r, "upload below the floor");
    let r = reg
        .send(Method::POST, "/v2/app/blobs/uploads/", &[], Body::empty())
        .await;
    assert_507(&r, "session below the floor");
    let r = reg
        .send(Method::PATCH, &open_session, &[], blob.clone())
        .await;
    assert_507(&r, "chunk below the floor");
    assert!(entries(&storage.join("uploads")).is_empty());

    // Reads are not affected.
    assert_pulls(&reg, "app", "v1", &m1).await;
    let r = reg
        .send(Method::HEAD, "/v2/app/manifests/v1", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(reg.get("/v2/app/tags/list").await.status, StatusCode::OK);
    assert_eq!(reg.get("/v2/_catalog").await.status, StatusCode::OK);
    // The reserve is for the manifests of pushes already under way.
    let r = reg.put_manifest("app", "v2", OCI_MANIFEST, &m2).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_pulls(&reg, "app", "v2", &m2).await;

    fs.free();
    assert_eq!(reg.push_blob("app", &blob).await, d);
    assert_fsck_clean(&storage).await;
}

/// What an earlier version left on a full disk: a manifest stored as 0
/// bytes under its digest, a blob cut short. Pushing them again repairs them
/// instead of trusting what is there.
#[tokio::test]
async fn re_push_repairs_damaged_content() {
    let reg = Registry::new();
    let storage = reg.app.config.storage.clone();
    let (m1, d1) = reg.push_image("app", "v1", "one").await;
    let layer = patterned_bytes(3, 100_000);
    let ld = reg.push_blob("app", &layer).await;
    let path = |d: &Digest| {
        let hex = d.hex();
        storage.join("blobs/sha256").join(&hex[..2]).join(hex)
    };
    std::fs::write(path(&d1), b"").unwrap();
    std::fs::write(path(&ld), &layer[..10]).unwrap();

    let r = reg.put_manifest("app", "v1", OCI_MANIFEST, &m1).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_pulls(&reg, "app", "v1", &m1).await;
    assert_eq!(reg.push_blob("app", &layer).await, ld);
    let r = reg.get(&format!("/v2/app/blobs/{ld}")).await;
    assert!(r.body == layer, "blob not repaired");
    assert_fsck_clean(&storage).await;
}
