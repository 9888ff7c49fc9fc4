//! Pack a tree with every kind of entry, then extract the layer with the real
//! tools (GNU tar, umoci) and compare the result with the source.

mod common;

use std::fs;
use std::process::Command;

use common::*;
use corral_oci::{build_image_layout, Compression, ExtraBlob};

fn all_xattrs(_: &[u8]) -> bool {
    true
}

#[test]
fn gnu_tar_extracts_the_tree_faithfully() {
    let dir = tempdir();
    let src = dir.path().join("src");
    make_tree(&src, false);
    for compression in [Compression::Gzip, Compression::Zstd] {
        let layout = dir.path().join(format!("layout-{compression}"));
        let image =
            build_image_layout(&src, &layout, "test", &config(), &[], &options(compression))
                .unwrap();
        let tar = dir.path().join(format!("layer-{compression}.tar"));
        decompress(&blob_path(&layout, &image.layer.digest), compression, &tar);

        let out = dir.path().join(format!("tar-{compression}"));
        fs::create_dir(&out).unwrap();
        run_ok(
            Command::new("tar")
                .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
                .arg(&tar)
                .arg("-C")
                .arg(&out),
        );
        assert_same_tree(&src, &out, &all_xattrs);
        assert_dir_mtimes(&src, &out);
        // The future mtime was clamped.
        let hostname = fs::metadata(out.join("etc/hostname")).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::mtime(&hostname), CLAMP);
        assert_eq!(image.layer.newest_mtime, CLAMP);
    }
}

#[test]
fn gnu_tar_lists_pax_names_as_utf8_and_binary() {
    let dir = tempdir();
    let src = dir.path().join("src");
    make_tree(&src, false);
    let layout = dir.path().join("layout");
    let image = build_image_layout(
        &src,
        &layout,
        "t",
        &config(),
        &[],
        &options(Compression::Gzip),
    )
    .unwrap();
    let out = Command::new("tar")
        .args(["--quoting-style=literal", "-tvzf"])
        .arg(blob_path(&layout, &image.layer.digest))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = out.stdout;
    let has = |needle: &[u8]| listing.windows(needle.len()).any(|w| w == needle);
    assert!(has("données/café.txt".as_bytes()));
    assert!(has(b"latin1-\xe9t\xe9"));
    assert!(has(format!(
        "deep/{}/{}/{}",
        "a".repeat(100),
        "b".repeat(100),
        "c".repeat(100)
    )
    .as_bytes()));
    // Numeric owners only.
    assert!(has(b"1234/5678"));
    assert!(!has(b"root/root"));
}

/// umoci is the reference OCI unpacker. Fails (does not skip) without it.
#[test]
fn umoci_unpacks_the_image_faithfully() {
    let version = Command::new("umoci")
        .arg("--version")
        .output()
        .expect("umoci must be installed for this test (apt-get install umoci); it is not skipped");
    assert!(version.status.success());

    let dir = tempdir();
    let src = dir.path().join("src");
    make_tree(&src, false);
    let sbom = ExtraBlob {
        media_type: "application/spdx+json".into(),
        data: br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
        annotation_prefix: "dev.corral.sbom".into(),
    };
    for compression in [Compression::Gzip, Compression::Zstd] {
        let layout = dir.path().join(format!("layout-{compression}"));
        let image = build_image_layout(
            &src,
            &layout,
            "v1",
            &config(),
            std::slice::from_ref(&sbom),
            &options(compression),
        )
        .unwrap();
        let bundle = dir.path().join(format!("bundle-{compression}"));
        let image_ref = format!("{}:v1", layout.display());
        let out = Command::new("umoci")
            .args(["unpack", "--image", &image_ref])
            .arg(&bundle)
            .output()
            .unwrap();
        if compression == Compression::Zstd && !out.status.success() {
            // umoci 0.4.7 predates zstd layers; it must say so rather than misread them.
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("zstd") || stderr.contains("media"),
                "{stderr}"
            );
            eprintln!("umoci cannot unpack zstd layers: {stderr}");
            continue;
        }
        assert!(
            out.status.success(),
            "umoci unpack: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // umoci deliberately drops security.selinux on unpack (the runtime relabels);
        // the GNU tar test checks that the layer carries it. An empty PAX value
        // means "unset" to Go's archive/tar, so an empty xattr does not reach umoci.
        let filter = |name: &[u8]| name != b"security.selinux" && name != b"user.empty";
        assert_same_tree(&src, &bundle.join("rootfs"), &filter);
        assert_dir_mtimes(&src, &bundle.join("rootfs"));

        // umoci reads the config we wrote.
        let config: serde_json::Value =
            serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["process"]["args"], serde_json::json!(["/bin/sh"]));
        assert!(image.manifest_digest.starts_with("sha256:"));
        assert_eq!(image.extra.len(), 1);
    }
}
