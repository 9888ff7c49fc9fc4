//! The same tree gives the same manifest digest, whatever its inodes, ctimes,
//! atimes, creation order, thread count, or the run.

mod common;

use std::fs;
use std::process::Command;

use common::*;
use corral_oci::{build_image_layout, pack_layer, Compression, PackOptions};

fn manifest_digest(src: &std::path::Path, dest: &std::path::Path, opts: &PackOptions) -> String {
    build_image_layout(src, dest, "repro", &config(), &[], opts)
        .unwrap()
        .manifest_digest
}

#[test]
fn same_tree_copies_and_orders_give_the_same_digest() {
    let dir = tempdir();
    let a = dir.path().join("a");
    make_tree(&a, false);
    // cp -a: new inodes and ctimes, same content and metadata.
    let b = dir.path().join("b");
    run_ok(Command::new("cp").arg("-a").arg(&a).arg(&b));
    run_ok(
        Command::new("find")
            .arg(&b)
            .args(["-exec", "touch", "-a", "-h", "{}", "+"]),
    );
    // Created in a different order: other inode numbers and readdir order.
    let c = dir.path().join("c");
    make_tree(&c, true);

    for compression in [Compression::Gzip, Compression::Zstd] {
        let opts = options(compression);
        let out = |name: &str| dir.path().join(format!("{name}-{compression}"));
        let first = manifest_digest(&a, &out("a1"), &opts);
        assert_eq!(first, manifest_digest(&a, &out("a2"), &opts), "second run");
        assert_eq!(first, manifest_digest(&b, &out("b"), &opts), "cp -a copy");
        assert_eq!(
            first,
            manifest_digest(&c, &out("c"), &opts),
            "other creation order"
        );
        let one_thread = PackOptions {
            threads: 1,
            ..options(compression)
        };
        assert_eq!(
            first,
            manifest_digest(&a, &out("t1"), &one_thread),
            "1 thread"
        );
        let many_threads = PackOptions {
            threads: 5,
            ..options(compression)
        };
        assert_eq!(
            first,
            manifest_digest(&a, &out("t5"), &many_threads),
            "5 threads"
        );
    }
}

#[test]
fn metadata_changes_change_the_digest() {
    let dir = tempdir();
    let src = dir.path().join("src");
    make_tree(&src, false);
    let opts = options(Compression::Gzip);
    let before = manifest_digest(&src, &dir.path().join("l1"), &opts);
    chmod(&src.join("empty"), 0o600);
    let after = manifest_digest(&src, &dir.path().join("l2"), &opts);
    assert_ne!(before, after);
}

/// Pinned digests of a tiny fixed tree: a change of tar encoding, JSON or
/// compressor output shows up here (and must be deliberate).
#[test]
fn golden_layer_digests() {
    let dir = tempdir();
    let src = dir.path().join("golden");
    fs::create_dir_all(src.join("etc")).unwrap();
    fs::write(src.join("etc/os-release"), b"ID=corral\n").unwrap();
    fs::write(src.join("hello"), b"hello world\n").unwrap();
    std::os::unix::fs::symlink("hello", src.join("hi")).unwrap();
    chmod(&src.join("etc"), 0o755);
    chmod(&src.join("etc/os-release"), 0o644);
    chmod(&src.join("hello"), 0o755);
    run_ok(Command::new("find").arg(&src).args([
        "-exec",
        "touch",
        "-h",
        "-d",
        "@1000000000",
        "{}",
        "+",
    ]));
    let blobs = dir.path().join("blobs");
    fs::create_dir(&blobs).unwrap();

    let gzip = pack_layer(&src, &blobs, &options(Compression::Gzip)).unwrap();
    let zstd = pack_layer(&src, &blobs, &options(Compression::Zstd)).unwrap();
    assert_eq!(gzip.diff_id, zstd.diff_id);
    assert_eq!(gzip.entries, 4);
    // 4 headers, 2 data blocks, the 2-block end marker.
    assert_eq!(gzip.uncompressed_size, 4 * 512 + 2 * 512 + 1024);
    assert_eq!(
        gzip.diff_id,
        "sha256:2d6e752035cf8489ffd4a48c4dd47e4b7c6e8b00674a5a128426cdb530d20d1a"
    );
    assert_eq!(
        gzip.digest,
        "sha256:d48dc3cf49762430c47bfaaf2cbd8d07caf9bbc9ffaf2b1504ead40f7bb848a8"
    );
    assert_eq!(
        zstd.digest,
        "sha256:c31791650188cae6e92947883a58f8867a6074f94aaaacddb7c692e1960d9401"
    );
}
