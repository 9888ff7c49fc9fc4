//! Layer blobs are valid gzip/zstd streams, and the digests, diff_id and
//! size reported equal what the system tools compute from the files.

mod common;

use std::fs;
use std::io::Read;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use corral_oci::{build_image_layout, Compression, PackOptions};

#[test]
fn blobs_match_reported_digests_and_sizes() {
    let dir = tempdir();
    let src = dir.path().join("src");
    make_tree(&src, false);
    for compression in [Compression::Gzip, Compression::Zstd] {
        let progress_seen = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&progress_seen);
        let opts = PackOptions {
            progress: Some(Arc::new(move |bytes: u64| {
                seen.fetch_max(bytes, Ordering::Relaxed);
            })),
            ..options(compression)
        };
        let layout = dir.path().join(format!("layout-{compression}"));
        let image = build_image_layout(&src, &layout, "t", &config(), &[], &opts).unwrap();
        let blob = blob_path(&layout, &image.layer.digest);

        let tool = if compression == Compression::Gzip {
            "gzip"
        } else {
            "zstd"
        };
        run_ok(Command::new(tool).arg("-t").arg(&blob));
        assert_eq!(fs::metadata(&blob).unwrap().len(), image.layer.size);
        assert_eq!(format!("sha256:{}", sha256_file(&blob)), image.layer.digest);

        let tar = dir.path().join(format!("layer-{compression}.tar"));
        decompress(&blob, compression, &tar);
        assert_eq!(format!("sha256:{}", sha256_file(&tar)), image.layer.diff_id);
        assert_eq!(
            fs::metadata(&tar).unwrap().len(),
            image.layer.uncompressed_size
        );
        assert_eq!(
            progress_seen.load(Ordering::Relaxed),
            image.layer.uncompressed_size
        );

        if compression == Compression::Gzip {
            // Members of 1 MiB of tar each: a single-member decoder stops
            // after the first, a multi-member one reads the whole tar.
            let mut first = Vec::new();
            flate2::read::GzDecoder::new(fs::File::open(&blob).unwrap())
                .read_to_end(&mut first)
                .unwrap();
            assert_eq!(
                first.len() as u64,
                image.layer.uncompressed_size.min(1024 * 1024)
            );
            let mut data = Vec::new();
            flate2::read::MultiGzDecoder::new(fs::File::open(&blob).unwrap())
                .read_to_end(&mut data)
                .unwrap();
            assert_eq!(data.len() as u64, image.layer.uncompressed_size);
            let header = &fs::read(&blob).unwrap()[..10];
            assert_eq!(
                header,
                [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255],
                "fixed gzip header"
            );
        }
        assert_eq!(image.layer.media_type, compression.layer_media_type());
    }
}

#[test]
fn layout_references_config_layer_and_sbom() {
    let dir = tempdir();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let sbom = corral_oci::ExtraBlob {
        media_type: "application/spdx+json".into(),
        data: br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
        annotation_prefix: "dev.corral.sbom".into(),
    };
    let layout = dir.path().join("layout");
    let image = build_image_layout(
        &src,
        &layout,
        "1.2.3",
        &config(),
        std::slice::from_ref(&sbom),
        &options(Compression::Zstd),
    )
    .unwrap();

    let read_json = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
    };
    assert_eq!(
        fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index = read_json(layout.join("index.json"));
    let desc = &index["manifests"][0];
    assert_eq!(desc["digest"], image.manifest_digest.as_str());
    assert_eq!(
        desc["annotations"]["org.opencontainers.image.ref.name"],
        "1.2.3"
    );
    assert_eq!(
        desc["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );

    let manifest = read_json(blob_path(&layout, &image.manifest_digest));
    assert_eq!(manifest["config"]["digest"], image.config_digest.as_str());
    assert_eq!(manifest["layers"][0]["digest"], image.layer.digest.as_str());
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    // the unpacked size the website shows, which the compressed blob
    // does not tell: the tar's size, as decompressing the layer gives it
    let tar =
        zstd::decode_all(&fs::read(blob_path(&layout, &image.layer.digest)).unwrap()[..]).unwrap();
    assert_eq!(
        manifest["layers"][0]["annotations"][corral_oci::ANNOTATION_UNPACKED_SIZE],
        tar.len().to_string()
    );
    let (sbom_digest, sbom_media) = &image.extra[0];
    assert_eq!(
        manifest["annotations"]["dev.corral.sbom.digest"],
        sbom_digest.as_str()
    );
    assert_eq!(
        manifest["annotations"]["dev.corral.sbom.mediatype"],
        sbom_media.as_str()
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        "1.0"
    );
    assert_eq!(
        fs::read(blob_path(&layout, sbom_digest)).unwrap(),
        sbom.data
    );

    let config = read_json(blob_path(&layout, &image.config_digest));
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        image.layer.diff_id.as_str()
    );
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(config["config"]["Labels"]["org.example.team"], "release");
    assert_eq!(config["config"]["Cmd"][0], "/bin/sh");
    assert_eq!(config["config"]["WorkingDir"], "/");

    // Every blob is named by its digest; no temporary files are left.
    for entry in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(sha256_file(&path), name);
    }
}
