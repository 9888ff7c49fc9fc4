//! `corral image` against the real skopeo, umoci and Docker Engine.

use std::path::{Path, PathBuf};
use std::process::Command;

use corral_test_support::*;

const TAG: &str = "43";

/// Builds the sample tree once into `dir/rootfs`.
fn sample_tree(repos: &Path, dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    run_ok(
        corral(repos)
            .args(["tree", "build", "--rootfs"])
            .arg(&rootfs)
            .arg(repo_root().join("recipes/sample-base.toml")),
    );
    rootfs
}

fn build_from_rootfs(
    repos: &Path,
    rootfs: &Path,
    layout: &Path,
    compression: &str,
) -> serde_json::Value {
    let out = run_ok(
        corral(repos)
            .args([
                "image",
                "build",
                "--json",
                "--compression",
                compression,
                "--rootfs",
            ])
            .arg(rootfs)
            .arg("-o")
            .arg(format!("oci:{}:{TAG}", layout.display())),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_image_from_the_recipe_runs_in_docker_and_reads_in_skopeo() {
    require_tool("skopeo");
    let repos = sample_repos();
    let work = scratch();
    let layout = work.path().join("base");
    let out = run_ok(
        corral(repos.path())
            .args(["image", "build", "--json"])
            .arg(repo_root().join("recipes/sample-base.toml"))
            .arg("-o")
            .arg(format!("oci:{}:{TAG}", layout.display())),
    );
    let built: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest_digest = layout_manifest_digest(&layout, TAG);
    assert_eq!(built["manifest_digest"], manifest_digest.as_str());
    assert!(layout.join("oci-layout").is_file());

    // One layer; config from the recipe; the SBOM is referenced and stored.
    let manifest = layout_json(&layout, &manifest_digest);
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let config = layout_json(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["config"]["Labels"]["name"], "sample/base");
    assert_eq!(
        config["config"]["Labels"]["com.redhat.component"],
        "sample-base-container"
    );
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(config["created"], "2026-01-01T00:00:00Z");
    assert_eq!(config["architecture"], "amd64");
    let sbom_digest = manifest["annotations"]["dev.corral.sbom.digest"]
        .as_str()
        .expect("sbom annotation");
    let sbom = layout_json(&layout, sbom_digest);
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
    let names: Vec<&str> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"corral-hello") && names.contains(&"corral-busybox"),
        "{names:?}"
    );
    let beside: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("base.spdx.json")).unwrap())
            .unwrap();
    assert_eq!(beside, sbom);
    let index = layout_json_file(&layout.join("index.json"));
    let ann = &index["manifests"][0]["annotations"];
    assert_eq!(ann["org.opencontainers.image.ref.name"], TAG);
    assert_eq!(
        ann["org.opencontainers.image.created"],
        "2026-01-01T00:00:00Z"
    );

    // skopeo reads it.
    let insp = run_ok(
        Command::new("skopeo")
            .args(["inspect"])
            .arg(format!("oci:{}:{TAG}", layout.display())),
    );
    let insp: serde_json::Value = serde_json::from_slice(&insp.stdout).unwrap();
    assert_eq!(insp["Labels"]["version"], "43");
    assert_eq!(insp["Digest"], manifest_digest.as_str());

    // corral's own inspect goes through skopeo's image proxy.
    let ours = run_ok(
        Command::new(corral_bin())
            .args(["image", "inspect", "--json"])
            .arg(format!("oci:{}:{TAG}", layout.display())),
    );
    let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    assert_eq!(ours["manifest_digest"], manifest_digest.as_str());
    assert_eq!(ours["layers"].as_array().unwrap().len(), 1);
    assert_eq!(ours["config"]["config"]["Labels"]["name"], "sample/base");

    // The engine loads it (skopeo copy to docker-daemon:) and runs it
    // with no network.
    let engine = Dockerd::start();
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-daemon-host"])
            .arg(engine.host())
            .arg(format!("oci:{}:{TAG}", layout.display()))
            .arg("docker-daemon:sample/base:43"),
    );
    let run = run_ok(engine.docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        "sample/base:43",
        "corral-hello",
    ]));
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "Hello from corral-hello 1.0"
    );
    let run = run_ok(engine.docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        "sample/base:43",
        "sh",
        "-c",
        "cat /usr/share/corral-libcore/VERSION; ls /usr/share/locale",
    ]));
    assert_eq!(String::from_utf8_lossy(&run.stdout), "core 1.0\nen_US\n");
    // What the engine saves, corral reads back (docker-archive: through
    // skopeo's proxy), with the same layer content.
    let saved = work.path().join("saved.tar");
    run_ok(
        engine
            .docker()
            .args(["save", "-o"])
            .arg(&saved)
            .arg("sample/base:43"),
    );
    let archive = run_ok(
        Command::new(corral_bin())
            .args(["image", "inspect", "--json"])
            .arg(format!("docker-archive:{}", saved.display())),
    );
    let archive: serde_json::Value = serde_json::from_slice(&archive.stdout).unwrap();
    assert_eq!(archive["config"]["config"]["Labels"]["name"], "sample/base");
    assert_eq!(
        archive["config"]["rootfs"]["diff_ids"],
        config["rootfs"]["diff_ids"]
    );
}

fn layout_json_file(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_same_tree_packs_to_the_same_digest() {
    let repos = sample_repos();
    let work = scratch();
    let rootfs = sample_tree(repos.path(), work.path());

    // A copy has other inodes, ctimes and atimes, and its directories
    // were created in another order.
    let copy = work.path().join("copy");
    run_ok(Command::new("cp").arg("-a").arg(&rootfs).arg(&copy));
    run_ok(Command::new("sh").arg("-c").arg(format!(
        "find {} -type f -exec cat {{}} + >/dev/null",
        copy.display()
    )));

    // And as a tar archive, unpacked by corral.
    let tarball = work.path().join("rootfs.tar");
    run_ok(
        Command::new("tar")
            .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-cf"])
            .arg(&tarball)
            .arg("-C")
            .arg(&rootfs)
            .arg("."),
    );

    let before = tree_facts(&rootfs);
    for compression in ["gzip", "zstd"] {
        let pack = |name: &str, tree: &Path| {
            let layout = work.path().join(format!("{name}-{compression}"));
            build_from_rootfs(repos.path(), tree, &layout, compression)
        };
        let (a, b) = (pack("a", &rootfs), pack("b", &rootfs));
        let (c, t) = (pack("c", &copy), pack("t", &tarball));
        assert_eq!(
            a["manifest_digest"], b["manifest_digest"],
            "{compression}: two packs differ"
        );
        assert_eq!(
            a["manifest_digest"], c["manifest_digest"],
            "{compression}: a copy of the tree packs differently"
        );
        assert_eq!(
            a["manifest_digest"], t["manifest_digest"],
            "{compression}: the tarball packs differently"
        );
    }

    assert!(
        before == tree_facts(&rootfs),
        "packing modified the tree it was given"
    );

    // Two separate dnf installs of the recipe give the same image too.
    let again = scratch();
    let rootfs2 = sample_tree(repos.path(), again.path());
    let a = build_from_rootfs(repos.path(), &rootfs, &work.path().join("x"), "gzip");
    let b = build_from_rootfs(repos.path(), &rootfs2, &work.path().join("y"), "gzip");
    assert_eq!(
        a["manifest_digest"], b["manifest_digest"],
        "two dnf installs pack differently"
    );
}

#[test]
fn umoci_unpacks_what_was_packed() {
    require_tool("umoci");
    let repos = sample_repos();
    let work = scratch();
    let rootfs = sample_tree(repos.path(), work.path());
    // Entries a package tree rarely has but an image must keep.
    let extra = rootfs.join("srv-extra");
    std::fs::create_dir(&extra).unwrap();
    std::fs::write(extra.join("plain"), b"plain").unwrap();
    std::fs::hard_link(extra.join("plain"), extra.join("hardlink")).unwrap();
    run_ok(
        Command::new("mknod")
            .arg(extra.join("null"))
            .args(["c", "1", "3"]),
    );
    run_ok(Command::new("mkfifo").arg(extra.join("fifo")));
    run_ok(
        Command::new("chmod")
            .arg("4755")
            .arg(rootfs.join("usr/bin/busybox")),
    );
    run_ok(
        Command::new("setfattr")
            .args(["-n", "user.corral", "-v", "kept"])
            .arg(extra.join("plain")),
    );
    run_ok(
        Command::new("setcap")
            .arg("cap_net_raw+ep")
            .arg(rootfs.join("usr/bin/corral-hello")),
    );
    std::fs::write(extra.join("n\u{e4}me with space \u{2603}"), b"x").unwrap();
    run_ok(
        Command::new("touch")
            .args(["-h", "-d", "@1000000000"])
            .arg(&extra)
            .arg(extra.join("plain"))
            .arg(extra.join("fifo"))
            .arg(extra.join("null"))
            .arg(extra.join("n\u{e4}me with space \u{2603}")),
    );

    let layout = work.path().join("layout");
    build_from_rootfs(repos.path(), &rootfs, &layout, "gzip");
    let bundle = work.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{TAG}", layout.display()))
            .arg(&bundle),
    );
    let want = tree_facts(&rootfs);
    let got = tree_facts(&bundle.join("rootfs"));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (path, facts) in &want {
        assert_eq!(
            Some(facts),
            got.get(path),
            "{path} changed in the round trip"
        );
    }
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| {
        std::fs::metadata(bundle.join("rootfs/srv-extra").join(p))
            .unwrap()
            .ino()
    };
    assert_eq!(ino("plain"), ino("hardlink"), "the hardlink was not kept");
}

#[test]
fn bad_input_is_refused_and_nothing_is_half_written() {
    let work = scratch();
    let pack = |rootfs: &Path, dest: &Path| {
        Command::new(corral_bin())
            .args(["image", "build", "--rootfs"])
            .arg(rootfs)
            .arg("-o")
            .arg(format!("oci:{}:1", dest.display()))
            .output()
            .unwrap()
    };
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("f"), b"x").unwrap();

    // An output that exists is left alone.
    let layout = work.path().join("exists");
    std::fs::create_dir(&layout).unwrap();
    std::fs::write(layout.join("keep"), b"mine").unwrap();
    let out = pack(&tree, &layout);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read(layout.join("keep")).unwrap(), b"mine");

    // A rootfs that is neither a directory nor an archive.
    let notatree = work.path().join("notes.txt");
    std::fs::write(&notatree, b"just text, not a tar archive\n").unwrap();
    let dest = work.path().join("out");
    let out = pack(&notatree, &dest);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.txt: not a directory or a tar archive"),
        "{err}"
    );
    assert!(!dest.exists());

    // A rootfs that does not exist.
    let out = pack(&work.path().join("missing"), &dest);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    assert!(!dest.exists());
    let names: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "temporary files left behind: {names:?}"
    );
}

#[test]
fn a_full_disk_is_a_clear_error_and_leaves_nothing() {
    let repos = sample_repos();
    let work = scratch();
    let rootfs = sample_tree(repos.path(), work.path());
    // A 512 KiB file system: the ~1 MiB layer cannot fit.
    let small = work.path().join("small");
    std::fs::create_dir(&small).unwrap();
    run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(&small),
    );
    let dest = small.join("layout");
    let out = corral(repos.path())
        .args(["image", "build", "--rootfs"])
        .arg(&rootfs)
        .arg("-o")
        .arg(format!("oci:{}:{TAG}", dest.display()))
        .output()
        .unwrap();
    let left: Vec<String> = std::fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let _ = Command::new("umount").arg(&small).status();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(left.is_empty(), "a full disk left {left:?} behind");
}

#[test]
fn inspect_reads_an_image_from_a_registry() {
    require_tool("skopeo");
    let repos = sample_repos();
    let work = scratch();
    let layout = work.path().join("base");
    run_ok(
        corral(repos.path())
            .args(["image", "build"])
            .arg(repo_root().join("recipes/sample-base.toml"))
            .arg("-o")
            .arg(format!("oci:{}:{TAG}", layout.display())),
    );
    // corral's own mirror, anonymous and read-write for this test.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(
        work.path().join("htpasswd"),
        run_ok(Command::new("htpasswd").args(["-Bbn", "t", "t"])).stdout,
    )
    .unwrap();
    let mut mirror = Command::new(corral_bin())
        .args([
            "mirror",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--storage",
        ])
        .arg(work.path().join("storage"))
        .arg("--htpasswd")
        .arg(work.path().join("htpasswd"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let result = std::panic::catch_unwind(|| {
        assert!(up, "corral mirror serve did not listen");
        run_ok(
            Command::new("skopeo")
                .args([
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                    "--dest-creds",
                    "t:t",
                ])
                .arg(format!("oci:{}:{TAG}", layout.display()))
                .arg(format!("docker://127.0.0.1:{port}/sample/base:{TAG}")),
        );
        let out = run_ok(
            Command::new(corral_bin())
                .args(["image", "inspect", "--json", "--tls-verify=false"])
                .arg(format!("docker://127.0.0.1:{port}/sample/base:{TAG}")),
        );
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            info["manifest_digest"],
            layout_manifest_digest(&layout, TAG).as_str()
        );
        assert_eq!(info["config"]["config"]["Labels"]["name"], "sample/base");
    });
    let _ = mirror.kill();
    let _ = mirror.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Without SOURCE_DATE_EPOCH the image's time comes from its inputs (the
/// newest build time of the packages it installs), so two builds of a
/// recipe give one digest; the tar headers are clamped to the same time,
/// and the build says where the time came from and what the footprint
/// policy saved.
#[test]
fn a_recipe_builds_to_the_same_digest_without_source_date_epoch() {
    require_tool("tar");
    let repos = sample_repos();
    let work = scratch();
    let recipe = repo_root().join("recipes/sample-base.toml");
    let build = |name: &str, json: bool| {
        let layout = work.path().join(name);
        let mut cmd = corral(repos.path());
        cmd.env_remove("SOURCE_DATE_EPOCH")
            .args(["image", "build"])
            .arg(&recipe)
            .arg("-o")
            .arg(format!("oci:{}:{TAG}", layout.display()));
        if json {
            cmd.arg("--json");
        }
        (layout, run_ok(&mut cmd))
    };
    let (a_layout, a) = build("a", true);
    let (_, b) = build("b", true);
    let a: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(
        a["manifest_digest"], b["manifest_digest"],
        "two builds without SOURCE_DATE_EPOCH differ"
    );
    assert_eq!(a["created_from"], "newest package build time");
    let created = a["created"].as_str().unwrap().to_string();
    // the newest build time of the sample packages, as rpm reads it (the
    // recipe installs the newest of each)
    let rpms = run_ok(
        Command::new("find")
            .arg(repos.path())
            .args(["-name", "*.rpm"]),
    );
    let rpms: Vec<String> = String::from_utf8_lossy(&rpms.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!rpms.is_empty());
    let times = run_ok(
        Command::new("rpm")
            .args(["-qp", "--nosignature", "--qf", "%{BUILDTIME}\\n"])
            .args(&rpms),
    );
    let newest: i64 = String::from_utf8_lossy(&times.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .max()
        .unwrap();
    let date = run_ok(
        Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%SZ", "-d"])
            .arg(format!("@{newest}")),
    );
    assert_eq!(created, String::from_utf8_lossy(&date.stdout).trim());
    let manifest = layout_json(&a_layout, a["manifest_digest"].as_str().unwrap());
    let config = layout_json(&a_layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["created"], created.as_str());

    // every tar header is at or before that time
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = a_layout
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let listing = run_ok(
        Command::new("tar")
            .args(["-tvzf"])
            .arg(&blob)
            .arg("--full-time")
            .env("TZ", "UTC"),
    );
    let clamp = created.replace('T', " ").trim_end_matches('Z').to_string();
    let mut entries = 0;
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let when = format!("{} {}", f[3], f[4]);
        assert!(when <= clamp, "{line} is newer than {clamp}");
        entries += 1;
    }
    assert!(entries > 10, "{entries} entries");

    // the footprint report, in JSON and in text
    let items: Vec<&str> = a["footprint"]
        .as_array()
        .expect("a footprint report")
        .iter()
        .map(|s| s["item"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["docs", "locales", "caches", "logs"]);
    assert!(a["footprint"][0]["bytes"].as_u64().unwrap() > 0, "{a:#}");
    let (_, c) = build("c", false);
    let text = String::from_utf8_lossy(&c.stdout);
    assert!(
        text.contains(&format!(
            "  created   {created} (newest package build time)\n"
        )),
        "{text}"
    );
    assert!(text.contains("footprint policy saved:\n  docs "), "{text}");
}
