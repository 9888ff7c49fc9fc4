//! Small images for the tests: busybox built by corral, a payload-only
//! image, and decoding the PNGs the website serves.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{corral_bin, require_tool, run_ok, sha256_hex, write_layout_index};

/// Builds a tiny busybox image (`/bin/busybox`, `/bin/sh`) with
/// `corral image build --rootfs` into `oci:dir/layout:tag`; returns the
/// layout path.
pub fn busybox_image(dir: &Path, tag: &str) -> PathBuf {
    require_tool("busybox");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::copy(
        PathBuf::from(
            String::from_utf8(run_ok(Command::new("sh").args(["-c", "command -v busybox"])).stdout)
                .unwrap()
                .trim(),
        ),
        tree.join("bin/busybox"),
    )
    .expect("copying busybox");
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).unwrap();
    let layout = dir.join("layout");
    run_ok(
        Command::new(corral_bin())
            .env("SOURCE_DATE_EPOCH", "1767225600")
            .env_remove("RUST_LOG")
            .args(["image", "build", "--rootfs"])
            .arg(&tree)
            .arg("-o")
            .arg(format!("oci:{}:{tag}", layout.display())),
    );
    layout
}

/// Writes an OCI layout holding one artifact-like image whose single layer
/// is `payload` (used as a stand-in signature); returns the layout path.
pub fn payload_image(dir: &Path, tag: &str, payload: &[u8]) -> PathBuf {
    let layout = dir.join(format!("payload-{tag}"));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let hex = sha256_hex(data);
        std::fs::write(blobs.join(&hex), data).unwrap();
        (format!("sha256:{hex}"), data.len())
    };
    let (ld, ls) = put(payload);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [ld]},
    }))
    .unwrap();
    let (cd, cs) = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}],
    }))
    .unwrap();
    let (md, ms) = put(&manifest);
    write_layout_index(&layout, &md, ms, tag);
    layout
}

/// A PNG's width, height and 8-bit RGBA pixels, decoded with the `png` crate.
pub fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a valid PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a valid PNG frame");
    buf.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        other => panic!("unexpected PNG color type {other:?}"),
    };
    (info.width, info.height, rgba)
}
