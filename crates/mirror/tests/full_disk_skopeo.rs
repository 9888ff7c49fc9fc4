//! End-to-end: concurrent skopeo pushes into the `serve` example until its
//! storage (a 20 MiB tmpfs) is full. Every push skopeo saw succeed pulls
//! back byte-identical, every failure is the server's disk (never a client
//! error), and fsck finds nothing damaged.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::tmpfs::Tmpfs;
use common::tools::{serve_binary, skopeo_copy, write_layout};
use common::{write_htpasswd, PASSWORD, USER};
use corral_mirror::storage::FsStorage;
use corral_test_support::{free_port, layout_manifest_digest, Skopeo};

/// Hex text standing in for a layer: distinct per image, not compressible
/// to nothing.
fn content(i: usize, len: usize) -> String {
    let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len / 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{x:016x}")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_skopeo_pushes_onto_a_full_disk() {
    let skopeo = Skopeo::new();
    let Some(fs) = Tmpfs::mount(20 << 20) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = write_htpasswd(dir.path());
    let storage = fs.path().join("storage");
    let port = free_port();
    let mut server = tokio::process::Command::new(serve_binary(dir.path()))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--storage"])
        .arg(&storage)
        .arg("--htpasswd")
        .arg(&htpasswd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "serve example did not come up");

    // 10 images of ~3 MiB into 20 MiB: some must fail.
    let n = 10;
    let creds = format!("{USER}:{PASSWORD}");
    let mut pushes = Vec::new();
    for i in 0..n {
        let layout = dir.path().join(format!("in{i}"));
        let want = write_layout(&layout, "v1", &content(i, 3 << 20));
        let src = format!("oci:{}:v1", layout.display());
        let dest = format!("docker://127.0.0.1:{port}/full/img{i}:v1");
        let (skopeo_creds, skopeo) = (creds.clone(), &skopeo);
        pushes.push(async move {
            let out = skopeo_copy(
                skopeo,
                &src,
                &dest,
                &["--dest-creds", &skopeo_creds, "--preserve-digests"],
            )
            .await;
            (i, want, layout, dest, out)
        });
    }
    let results = futures_util::future::join_all(pushes).await;

    let mut acked = 0;
    for (i, want, layout, dest, out) in &results {
        if !out.ok {
            // The server's full disk, reported as such: never a 400.
            assert!(
                !out.stderr.contains("upload body interrupted") && !out.stderr.contains("400"),
                "img{i} failed as a client error: {}",
                out.stderr
            );
            assert!(
                out.stderr.contains("507") || out.stderr.contains("insufficient storage"),
                "img{i} failed for another reason: {}",
                out.stderr
            );
            continue;
        }
        acked += 1;
        let back = dir.path().join(format!("out{i}"));
        let pulled = skopeo_copy(
            &skopeo,
            dest,
            &format!("oci:{}:v1", back.display()),
            &["--preserve-digests"],
        )
        .await;
        assert!(
            pulled.ok,
            "img{i} acknowledged but not pullable: {}",
            pulled.stderr
        );
        assert_eq!(
            layout_manifest_digest(&back, "v1"),
            want.to_string(),
            "img{i}"
        );
        // Every blob of the image came back with the bytes pushed.
        for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            let got = std::fs::read(back.join("blobs/sha256").join(e.file_name()))
                .unwrap_or_else(|_| panic!("img{i}: blob {:?} missing", e.file_name()));
            assert!(
                got == std::fs::read(e.path()).unwrap(),
                "img{i}: blob differs"
            );
        }
    }
    let failed = results.len() - acked;
    eprintln!("{acked} pushes acknowledged, {failed} refused for lack of space");
    assert!(failed > 0, "the disk never filled up");
    assert!(acked > 0, "nothing fit");

    server.start_kill().unwrap();
    server.wait().await.unwrap();
    let store = FsStorage::open(&storage).unwrap();
    let report = corral_mirror::fsck::check(&store).await.unwrap();
    assert!(!report.damaged(), "{report:?}");
}
