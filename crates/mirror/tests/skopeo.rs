//! End-to-end: skopeo pushes to and pulls from the mirror served on a
//! loopback port, with and without credentials.

mod common;

use common::tools::{skopeo_copy, write_layout};
use common::{server_config_with_auth, PASSWORD, USER};
use corral_test_support::{layout_manifest_digest, Skopeo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_push_and_pull_with_auth() {
    let skopeo = Skopeo::new();
    let dir = tempfile::tempdir().unwrap();
    let config = server_config_with_auth(dir.path());
    let server = corral_mirror::server::start(config).await.unwrap();
    let host = format!("127.0.0.1:{}", server.addr.port());

    let layout = dir.path().join("layout");
    let want = write_layout(&layout, "v1", "hello from corral");
    let src = format!("oci:{}:v1", layout.display());
    let dest = format!("docker://{host}/release/base:v1");

    // No credentials: refused.
    let refused = skopeo_copy(&skopeo, &src, &dest, &[]).await;
    assert!(!refused.ok, "push without credentials must fail");
    assert!(
        refused.stderr.contains("authentication required")
            || refused.stderr.contains("unauthorized"),
        "{}",
        refused.stderr
    );
    // Wrong credentials: refused.
    assert!(
        !skopeo_copy(&skopeo, &src, &dest, &["--dest-creds", "alice:wrong"])
            .await
            .ok
    );

    let creds = format!("{USER}:{PASSWORD}");
    // Preserve digests so the pushed manifest is byte-identical to the layout's.
    let pushed = skopeo_copy(
        &skopeo,
        &src,
        &dest,
        &["--dest-creds", &creds, "--preserve-digests"],
    )
    .await;
    assert!(pushed.ok, "push failed: {}", pushed.stderr);

    // Anonymous pull back into a fresh layout.
    let out = dir.path().join("out");
    let pulled = skopeo_copy(
        &skopeo,
        &dest,
        &format!("oci:{}:v1", out.display()),
        &["--preserve-digests"],
    )
    .await;
    assert!(pulled.ok, "pull failed: {}", pulled.stderr);
    let repo = corral_mirror::name::RepoName::parse("release/base").unwrap();
    let (tagged, _) = server
        .app
        .store
        .get_tag(&repo, "v1")
        .await
        .unwrap()
        .unwrap();
    let stored = server
        .app
        .store
        .get_manifest(&repo, &tagged)
        .await
        .unwrap()
        .unwrap();
    let orig = std::fs::read(layout.join("blobs/sha256").join(want.hex())).unwrap();
    assert_eq!(
        tagged,
        want,
        "stored {:?} original {:?} {}",
        stored.body,
        String::from_utf8_lossy(&orig),
        pushed.stderr
    );
    let got = layout_manifest_digest(&out, "v1");
    let got_body = std::fs::read(
        out.join("blobs/sha256")
            .join(got.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert_eq!(
        got,
        want.to_string(),
        "pulled {}",
        String::from_utf8_lossy(&got_body)
    );
    let layer_files = std::fs::read_dir(out.join("blobs/sha256")).unwrap().count();
    assert_eq!(layer_files, 3, "manifest, config and layer");

    // Fsck over the pushed content is clean.
    let report = corral_mirror::fsck::check(server.app.store.as_ref())
        .await
        .unwrap();
    assert!(!report.damaged(), "{report:?}");
    assert_eq!(report.blobs_checked, 3);
    server.stop().await.unwrap();
}
