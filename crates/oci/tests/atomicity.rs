//! A layout appears complete or not at all, and never replaces anything.

mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use corral_oci::{build_image_layout, pack_layer, Compression, OciError, PackOptions};

/// Names in `dir` other than `keep`: leftovers such as temporary layouts.
fn leftovers(dir: &std::path::Path, keep: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

fn big_sparse_file(path: &std::path::Path) {
    fs::File::create(path).unwrap().set_len(64 << 20).unwrap();
}

#[test]
fn existing_destination_is_an_error_and_untouched() {
    let dir = tempdir();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let dest = dir.path().join("image");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("keep"), b"precious").unwrap();

    let err = build_image_layout(
        &src,
        &dest,
        "t",
        &config(),
        &[],
        &options(Compression::Gzip),
    )
    .unwrap_err();
    assert!(matches!(err, OciError::DestinationExists { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("destination {} already exists", dest.display())
    );
    assert_eq!(fs::read(dest.join("keep")).unwrap(), b"precious");
    assert_eq!(leftovers(&dest, &[]), ["keep"]);
    assert!(leftovers(dir.path(), &["src", "image"]).is_empty());
}

#[test]
fn failure_mid_pack_leaves_nothing_behind() {
    let dir = tempdir();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    // A 64 MiB file first: the progress hook (every 4 MiB, called on the
    // walking thread) removes "b-gone" before the walk reaches it.
    big_sparse_file(&src.join("a-big"));
    fs::write(src.join("b-gone"), b"soon deleted").unwrap();
    let victim = src.join("b-gone");
    let opts = PackOptions {
        progress: Some(Arc::new(move |_bytes: u64| {
            let _ = fs::remove_file(&victim);
        })),
        ..options(Compression::Gzip)
    };
    let dest = dir.path().join("image");

    let err = build_image_layout(&src, &dest, "t", &config(), &[], &opts).unwrap_err();
    match &err {
        OciError::Read { path, source } => {
            assert_eq!(path, &src.join("b-gone"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("reading {}", src.join("b-gone").display())
    );
    assert!(!dest.exists());
    assert!(
        leftovers(dir.path(), &["src"]).is_empty(),
        "{:?}",
        leftovers(dir.path(), &["src"])
    );
}

#[test]
fn failed_pack_layer_leaves_no_temporary_blob() {
    let dir = tempdir();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    big_sparse_file(&src.join("a-big"));
    fs::write(src.join("b-gone"), b"x").unwrap();
    let victim = src.join("b-gone");
    let opts = PackOptions {
        progress: Some(Arc::new(move |_bytes: u64| {
            let _ = fs::remove_file(&victim);
        })),
        ..options(Compression::Zstd)
    };
    let blobs = dir.path().join("blobs");
    fs::create_dir(&blobs).unwrap();
    assert!(pack_layer(&src, &blobs, &opts).is_err());
    assert!(leftovers(&blobs, &[]).is_empty());
}

#[test]
fn rootfs_must_be_a_directory() {
    let dir = tempdir();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let dest = dir.path().join("image");
    let err = build_image_layout(
        &file,
        &dest,
        "t",
        &config(),
        &[],
        &options(Compression::Gzip),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("rootfs {} is not a directory", file.display())
    );
    assert!(!dest.exists());
    assert!(leftovers(dir.path(), &["not-a-dir"]).is_empty());

    let missing = dir.path().join("missing");
    let err = build_image_layout(
        &missing,
        &dest,
        "t",
        &config(),
        &[],
        &options(Compression::Gzip),
    )
    .unwrap_err();
    assert!(matches!(err, OciError::Read { .. }), "{err:?}");
}

#[test]
fn bad_options_are_errors() {
    assert!("bzip2".parse::<Compression>().is_err());
    assert_eq!("zstd".parse::<Compression>().unwrap(), Compression::Zstd);
    assert_eq!(Compression::Gzip.to_string(), "gzip");
    let dir = tempdir();
    let opts = PackOptions {
        level: Some(42),
        ..options(Compression::Gzip)
    };
    let err = pack_layer(dir.path(), dir.path(), &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        "compression level 42 is out of range for gzip (1..=12)"
    );
}
