//! Publishing into an in-memory bucket: an OSTree repository made with the
//! `ostree` CLI is pulled back through a running mirror; failures injected
//! mid-publish leave nothing that points at missing content.

use std::process::Command;

use object_store::memory::InMemory;
use object_store::ObjectStore;

use super::*;
use crate::bucket_files::{BucketDir, FileSource, StaticFiles};
use crate::storage::FaultyNode;
use corral_test_support::patterned_bytes;

fn ostree(args: &[&str]) -> String {
    let out = Command::new("ostree")
        .args(args)
        .output()
        .expect("running ostree (is it installed?)");
    assert!(
        out.status.success(),
        "ostree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn arg(flag: &str, p: &Path) -> String {
    format!("{flag}={}", p.display())
}

/// An archive repository with one commit of `tree` on `corral/test`, and
/// its summary; returns the commit.
fn commit(repo: &Path, tree: &Path, subject: &str) -> String {
    ostree(&[
        "commit",
        &arg("--repo", repo),
        "-b",
        "corral/test",
        "-s",
        subject,
        &arg("--tree=dir", tree),
    ]);
    ostree(&["summary", &arg("--repo", repo), "-u"]);
    ostree(&["rev-parse", &arg("--repo", repo), "corral/test"])
}

async fn keys(store: &InMemory) -> Vec<String> {
    let mut k: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    k.sort();
    k
}

/// The phase of every uploaded key, in upload order, never goes back.
fn phases_in_order(report: &PublishReport, order: &[&str]) {
    let rank = |p: &str| order.iter().position(|o| *o == p).unwrap();
    let ranks: Vec<_> = report.uploaded.iter().map(|u| rank(u.phase)).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "out of order: {:?}",
        report.uploaded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ostree_repo_published_to_the_bucket_pulls_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, tree) = (dir.path().join("repo"), dir.path().join("tree"));
    ostree(&["init", "--mode=archive", &arg("--repo", &repo)]);
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    std::fs::write(tree.join("usr/bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    // Bigger than a part: published as a multipart upload.
    std::fs::write(tree.join("usr/big"), patterned_bytes(7, 9 << 20)).unwrap();
    let first = commit(&repo, &tree, "first");

    let store = Arc::new(InMemory::new());
    let report = publish_ostree(store.clone(), "ostree", &repo)
        .await
        .unwrap();
    phases_in_order(&report, &["content", "commit-metadata", "refs", "summary"]);
    let uploaded: Vec<&str> = report.uploaded.iter().map(|u| u.key.as_str()).collect();
    assert!(uploaded.contains(&"ostree/config"), "{uploaded:?}");
    assert!(uploaded
        .contains(&format!("ostree/objects/{}/{}.commit", &first[..2], &first[2..]).as_str()));
    assert_eq!(uploaded.last(), Some(&"ostree/summary"));
    assert!(report.bytes_uploaded > 9 << 20);
    let all = keys(&store).await;
    assert!(all.iter().all(|k| !k.starts_with("ostree/tmp")), "{all:?}");

    // Published again, nothing changed: nothing is uploaded.
    let again = publish_ostree(store.clone(), "ostree", &repo)
        .await
        .unwrap();
    assert_eq!(again.uploaded, vec![]);
    assert_eq!(again.skipped, report.uploaded.len());

    // A second commit uploads its new objects, the ref and the summary only.
    std::fs::write(tree.join("usr/bin/tool"), b"#!/bin/sh\necho changed\n").unwrap();
    let second = commit(&repo, &tree, "second");
    let update = publish_ostree(store.clone(), "ostree", &repo)
        .await
        .unwrap();
    phases_in_order(&update, &["content", "commit-metadata", "refs", "summary"]);
    assert!(
        update.bytes_uploaded < 1 << 20,
        "the big file is not sent again"
    );
    assert!(update
        .uploaded
        .iter()
        .any(|u| u.key == "ostree/refs/heads/corral/test"));

    // ostree pulls it through a mirror serving the bucket.
    let config = crate::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        storage: dir.path().join("storage"),
        ..Default::default()
    };
    let storage = Arc::new(crate::storage::FsStorage::open(&config.storage).unwrap());
    let mut app = crate::app::App::new(config, storage).unwrap();
    app.files = StaticFiles {
        ostree: Some(FileSource::Bucket(BucketDir::new(
            store.clone(),
            "ostree",
            dir.path().join("scratch"),
        ))),
        disk_images: None,
    };
    let server = crate::server::start_app(Arc::new(app)).await.unwrap();
    let url = format!("http://{}/ostree", server.addr);
    let client = dir.path().join("client");
    let pulled = tokio::task::spawn_blocking(move || {
        ostree(&["init", "--mode=archive", &arg("--repo", &client)]);
        ostree(&[
            "remote",
            "add",
            &arg("--repo", &client),
            "--no-gpg-verify",
            "origin",
            &url,
        ]);
        ostree(&["pull", &arg("--repo", &client), "origin", "corral/test"]);
        ostree(&["fsck", &arg("--repo", &client)]);
        let rev = ostree(&["rev-parse", &arg("--repo", &client), "origin:corral/test"]);
        // The first commit is there too (ostree pulls the parent chain
        // only with --depth; ask for it by checksum).
        ostree(&["pull", &arg("--repo", &client), "origin", &first]);
        ostree(&["fsck", &arg("--repo", &client)]);
        rev
    })
    .await
    .unwrap();
    assert_eq!(pulled, second);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_failed_publish_leaves_no_ref_to_missing_objects() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, tree) = (dir.path().join("repo"), dir.path().join("tree"));
    ostree(&["init", "--mode=archive", &arg("--repo", &repo)]);
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("f"), b"content").unwrap();
    commit(&repo, &tree, "one");

    let mem = Arc::new(InMemory::new());
    let node = FaultyNode::new(&mem);
    node.fail_puts_of(".dirtree");
    let e = publish_ostree(node.clone(), "ostree", &repo)
        .await
        .unwrap_err();
    assert!(e.to_string().contains(".dirtree"), "{e}");
    let left = keys(&mem).await;
    assert!(
        left.iter()
            .all(|k| !k.contains("/refs/") && !k.ends_with(".commit") && !k.contains("summary")),
        "a failed content phase exposed: {left:?}"
    );
    // The retry finishes the job.
    node.fail_puts_of("");
    publish_ostree(node, "ostree", &repo).await.unwrap();
    assert!(keys(&mem)
        .await
        .contains(&"ostree/refs/heads/corral/test".to_string()));
}

#[tokio::test]
async fn disk_images_go_before_their_checksums_and_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(images.join("43")).unwrap();
    let a = b"image a".to_vec();
    std::fs::write(images.join("a.raw"), &a).unwrap();
    std::fs::write(
        images.join("a.raw.sha256"),
        format!("{}  a.raw\n", hex::encode(Sha256::digest(&a))),
    )
    .unwrap();
    std::fs::write(images.join("a.raw.asc"), b"sig").unwrap();
    std::fs::write(images.join("43/b.qcow2"), b"image b").unwrap();
    std::fs::write(images.join(".c.raw.corral-tmp-1"), b"partial").unwrap();

    let store = Arc::new(InMemory::new());
    let r = publish_disk_images(store.clone(), "images", &images)
        .await
        .unwrap();
    phases_in_order(&r, &["image", "checksum", "signature"]);
    let mut got: Vec<_> = r
        .uploaded
        .iter()
        .map(|u| (u.phase, u.key.as_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("checksum", "images/a.raw.sha256"),
            ("image", "images/43/b.qcow2"),
            ("image", "images/a.raw"),
            ("signature", "images/a.raw.asc"),
        ]
    );
    // Again: the checksummed image is skipped, the one without a checksum
    // cannot be told apart from a rebuild and is sent again.
    let r = publish_disk_images(store.clone(), "images", &images)
        .await
        .unwrap();
    let keys_sent: Vec<_> = r.uploaded.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(keys_sent, ["images/43/b.qcow2"]);
    assert_eq!(r.skipped, 3);
}

#[tokio::test]
async fn an_image_that_does_not_match_its_checksum_is_never_visible() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    // Big enough for a multipart upload, which is aborted.
    std::fs::write(images.join("big.raw"), patterned_bytes(3, 9 << 20)).unwrap();
    std::fs::write(
        images.join("big.raw.sha256"),
        format!(
            "{}  big.raw\n",
            hex::encode(Sha256::digest(b"something else"))
        ),
    )
    .unwrap();
    let store = Arc::new(InMemory::new());
    let e = publish_disk_images(store.clone(), "images", &images)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PublishError::ChecksumMismatch { path, .. } if path.ends_with("big.raw")),
        "{e}"
    );
    assert_eq!(keys(&store).await, Vec::<String>::new());
}

#[test]
fn a_bare_repository_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    ostree(&["init", "--mode=bare-user", &arg("--repo", dir.path())]);
    let e = ostree_phases(dir.path()).err().expect("refused");
    assert!(e.to_string().contains("bare-user"), "{e}");
}
