//! Multi-platform layouts: the tag names an image index with one manifest
//! per platform, each entry carrying its platform, and the same trees give
//! the same digests.

mod common;

use std::fs;

use common::*;
use corral_oci::{build_index_layout, Compression, ImageConfigSpec, PlatformImage};
use serde_json::Value;

fn platform_config(arch: &str) -> ImageConfigSpec {
    ImageConfigSpec {
        architecture: arch.into(),
        ..config()
    }
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_tag_names_an_index_of_one_manifest_per_platform() {
    let dir = tempdir();
    let (amd, arm) = (dir.path().join("amd64"), dir.path().join("arm64"));
    make_tree(&amd, false);
    make_tree(&arm, false);
    fs::write(arm.join("only-on-arm"), b"aarch64\n").unwrap();
    let (amd_cfg, arm_cfg) = (platform_config("amd64"), platform_config("arm64"));
    let images = [
        PlatformImage {
            rootfs: &amd,
            config: &amd_cfg,
            extra: &[],
        },
        PlatformImage {
            rootfs: &arm,
            config: &arm_cfg,
            extra: &[],
        },
    ];
    let opts = options(Compression::Gzip);
    let out = dir.path().join("layout");
    let built = build_index_layout(&out, "multi", &images, &opts).unwrap();

    let top = read_json(&out.join("index.json"));
    let entries = top["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{top}");
    assert_eq!(
        entries[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.ref.name"],
        "multi"
    );
    assert_eq!(entries[0]["digest"], built.index_digest.as_str());

    let index = read_json(&blob_path(&out, &built.index_digest));
    let platforms: Vec<(String, String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["os"].as_str().unwrap().to_string(),
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            (
                "linux".to_string(),
                "amd64".to_string(),
                built.images[0].manifest_digest.clone()
            ),
            (
                "linux".to_string(),
                "arm64".to_string(),
                built.images[1].manifest_digest.clone()
            ),
        ]
    );
    assert_ne!(built.images[0].layer.digest, built.images[1].layer.digest);
    // each manifest's config names its own platform
    for (image, arch) in built.images.iter().zip(["amd64", "arm64"]) {
        let config = read_json(&blob_path(&out, &image.config_digest));
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["os"], "linux");
    }

    // Reproducible: the same trees give the same index.
    let again = build_index_layout(&dir.path().join("again"), "multi", &images, &opts).unwrap();
    assert_eq!(again.index_digest, built.index_digest);
}

#[test]
fn a_platform_given_twice_is_refused_before_anything_is_written() {
    let dir = tempdir();
    let tree = dir.path().join("tree");
    make_tree(&tree, false);
    let cfg = platform_config("arm64");
    let image = PlatformImage {
        rootfs: &tree,
        config: &cfg,
        extra: &[],
    };
    let out = dir.path().join("layout");
    let err =
        build_index_layout(&out, "t", &[image, image], &options(Compression::Gzip)).unwrap_err();
    assert!(
        err.to_string().contains("linux/arm64 is given twice"),
        "{err}"
    );
    assert!(!out.exists());
    let err = build_index_layout(&out, "t", &[], &options(Compression::Gzip)).unwrap_err();
    assert!(err.to_string().contains("no platform"), "{err}");
}
