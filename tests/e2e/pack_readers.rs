//! A gzip layer is a stream of 1 MiB members (docs/base-images.md, "How a
//! layer is packed"). Every reader a layer meets must read all of them and
//! give back exactly the tar that was hashed as the diff_id: GNU gzip, pigz,
//! Python's gzip, umoci, skopeo (containers/image) and the Docker Engine
//! (Go's compress/gzip, with its unpigz shortcut turned off).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use corral_test_support::*;

const TAG: &str = "readers";

/// A layout built by `corral image build --rootfs` from a tree whose tar
/// spans several members, with what the config says about the layer.
struct Packed {
    _work: tempfile::TempDir,
    rootfs: PathBuf,
    layout: PathBuf,
    /// Path of the gzip layer blob.
    layer: PathBuf,
    /// The config's `rootfs.diff_ids[0]`, `sha256:…`.
    diff_id: String,
    config_digest: String,
}

/// Deterministic content that is part text, part noise, so the members
/// compress unevenly and a tar entry straddles member boundaries.
fn content(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            if (i / 4096) % 3 == 0 {
                state as u8
            } else {
                b"packed by corral, read by everyone\n"[i % 35]
            }
        })
        .collect()
}

fn pack() -> Packed {
    let work = scratch();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("usr/lib")).unwrap();
    std::fs::write(
        rootfs.join("usr/lib/big"),
        content(3 * 1024 * 1024 + 777, 7),
    )
    .unwrap();
    std::fs::write(rootfs.join("usr/lib/medium"), content(1024 * 1024 - 3, 11)).unwrap();
    std::fs::write(rootfs.join("empty"), b"").unwrap();
    // Real machine code, a few MiB of it.
    let exe = std::fs::read(corral_bin()).unwrap();
    std::fs::write(
        rootfs.join("usr/lib/code"),
        &exe[..exe.len().min(2 * 1024 * 1024)],
    )
    .unwrap();

    let layout = work.path().join("layout");
    let out = run_ok(
        Command::new(corral_bin())
            .args([
                "image",
                "build",
                "--json",
                "--compression",
                "gzip",
                "--rootfs",
            ])
            .arg(&rootfs)
            .arg("-o")
            .arg(format!("oci:{}:{TAG}", layout.display()))
            .env("SOURCE_DATE_EPOCH", "1767225600")
            .env_remove("RUST_LOG"),
    );
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = layout_json(&layout, built["manifest_digest"].as_str().unwrap());
    let layer_desc = &manifest["layers"][0];
    assert_eq!(
        layer_desc["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let config = layout_json(&layout, &config_digest);
    let diff_id = config["rootfs"]["diff_ids"][0].as_str().unwrap().to_owned();
    let hex = layer_desc["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap();
    Packed {
        layer: layout.join("blobs/sha256").join(hex),
        _work: work,
        rootfs,
        layout,
        diff_id,
        config_digest,
    }
}

/// sha256 of what `cmd` prints, as `sha256:…`.
fn sha256_of_stdout(cmd: &mut Command) -> String {
    let out = run_ok(cmd);
    format!("sha256:{}", sha256_hex(&out.stdout))
}

#[test]
fn gzip_pigz_and_python_read_every_member() {
    require_tool("gzip");
    require_tool("pigz");
    require_tool("python3");
    let packed = pack();

    // The point of the test: the layer really has several members, each
    // with the fixed header. Python walks them one at a time.
    let script = r#"
import sys, zlib
data = open(sys.argv[1], "rb").read()
sizes = []
while data:
    assert data[:10] == bytes([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]), data[:10]
    d = zlib.decompressobj(31)
    sizes.append(len(d.decompress(data)))
    assert d.eof
    data = d.unused_data
print(" ".join(map(str, sizes)))
"#;
    let out = run_ok(
        Command::new("python3")
            .args(["-c", script])
            .arg(&packed.layer),
    );
    let sizes: Vec<u64> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(sizes.len() >= 6, "expected several members, got {sizes:?}");
    let (last, full) = sizes.split_last().unwrap();
    assert!(
        full.iter().all(|&s| s == 1024 * 1024),
        "members are cut at 1 MiB: {sizes:?}"
    );
    assert!(*last > 0 && *last <= 1024 * 1024, "{sizes:?}");

    run_ok(Command::new("gzip").arg("-t").arg(&packed.layer));
    run_ok(Command::new("pigz").arg("-t").arg(&packed.layer));
    for (tool, args) in [
        ("gzip", vec!["-dc"]),
        ("pigz", vec!["-dc"]),
        (
            "python3",
            vec![
                "-c",
                "import gzip, sys; sys.stdout.buffer.write(gzip.open(sys.argv[1]).read())",
            ],
        ),
    ] {
        let got = sha256_of_stdout(Command::new(tool).args(&args).arg(&packed.layer));
        assert_eq!(got, packed.diff_id, "{tool} read a different tar");
    }
}

#[test]
fn umoci_and_skopeo_read_it() {
    require_tool("umoci");
    require_tool("skopeo");
    let packed = pack();
    let work = scratch();

    // umoci (Go, pgzip reader) unpacks the whole tree.
    let rootfs = work.path().join("umoci-rootfs");
    run_ok(
        Command::new("umoci")
            .args(["raw", "unpack", "--image"])
            .arg(format!("{}:{TAG}", packed.layout.display()))
            .arg(&rootfs),
    );
    let want = tree_facts(&packed.rootfs);
    let got = tree_facts(&rootfs);
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (path, facts) in &want {
        if facts.kind == "file" {
            assert_eq!(
                facts.content_sha256, got[path].content_sha256,
                "{path} differs after umoci"
            );
        }
    }

    // skopeo (containers/image) decompresses the layer into a dir: layout,
    // where the blob is named by the digest of what it decompressed.
    let dir = work.path().join("skopeo-dir");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--dest-decompress"])
            .arg(format!("oci:{}:{TAG}", packed.layout.display()))
            .arg(format!("dir:{}", dir.display())),
    );
    let hex = packed.diff_id.strip_prefix("sha256:").unwrap();
    let tar = dir.join(hex);
    assert!(
        tar.exists(),
        "skopeo wrote no blob named by the diff_id {}",
        packed.diff_id
    );
    assert_eq!(sha256_file(&tar), hex, "skopeo read a different tar");
}

#[test]
fn docker_load_reads_it_with_go_gzip() {
    require_tool("docker");
    let packed = pack();
    let work = scratch();

    // A docker-archive that carries the gzip blob as it is, so the engine
    // decompresses it itself (no skopeo in between).
    let archive_dir = work.path().join("archive");
    std::fs::create_dir(&archive_dir).unwrap();
    let config_hex = packed.config_digest.strip_prefix("sha256:").unwrap();
    std::fs::copy(
        packed.layout.join("blobs/sha256").join(config_hex),
        archive_dir.join("config.json"),
    )
    .unwrap();
    std::fs::copy(&packed.layer, archive_dir.join("layer.tar.gz")).unwrap();
    let image = "corral/pack-readers:t";
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": [image],
        "Layers": ["layer.tar.gz"],
    }]);
    std::fs::write(
        archive_dir.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let archive = work.path().join("image.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&archive_dir)
            .arg("-cf")
            .arg(&archive)
            .args(["manifest.json", "config.json", "layer.tar.gz"]),
    );

    // Without this the engine pipes gzip layers through unpigz (tested
    // above) instead of Go's compress/gzip. Only this test in this binary
    // starts an engine.
    std::env::set_var("MOBY_DISABLE_PIGZ", "true");
    let dockerd = Dockerd::start();
    let mut load = dockerd
        .docker()
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    load.stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&archive).unwrap())
        .unwrap();
    let out = load.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker load failed: {}\n{}\nengine log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        dockerd.log()
    );
    // The engine checks the decompressed tar against the config's diff_id
    // while loading; the layer it recorded is that diff_id.
    let out = run_ok(dockerd.docker().args([
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        image,
    ]));
    let layers: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(layers, vec![packed.diff_id.clone()]);

    // And `docker save` gives the same tar back, byte for byte.
    let saved = work.path().join("saved.tar");
    run_ok(dockerd.docker().args(["save", "-o"]).arg(&saved).arg(image));
    let listing = run_ok(Command::new("tar").arg("-tf").arg(&saved));
    let layer_tar = String::from_utf8(listing.stdout)
        .unwrap()
        .lines()
        .find(|l| l.ends_with("/layer.tar"))
        .expect("a layer.tar in docker save's output")
        .to_owned();
    let got = sha256_of_stdout(Command::new("tar").arg("-xOf").arg(&saved).arg(&layer_tar));
    assert_eq!(got, packed.diff_id, "docker saved a different tar");
}
