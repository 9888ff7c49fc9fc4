//! aarch64 trees and multi-platform images on this x86_64 machine, against
//! the real dnf, rpm, skopeo, docker-registry and Docker Engine, with the
//! sample repositories' aarch64 corral-busybox (Debian's arm64
//! busybox-static, fetched by scripts/setup.sh) and the host's qemu-user
//! binfmt_misc handler.

use std::path::{Path, PathBuf};
use std::process::Command;

use corral_test_support::*;
use serde_json::Value;

/// The sample packages, for whichever `$basearch` dnf is asked for: the
/// noarch ones from main, the architecture's own from its directory.
const RECIPE: &str = r#"
name = "sample-multi"
releasever = "43"
arch = "x86_64"
packages = ["corral-busybox", "corral-hello", "corral-svc"]

[[repo]]
id = "sample"
baseurl = "${CORRAL_SAMPLE_REPOS}/main"
gpgcheck = false

[[repo]]
id = "sample-arch"
baseurl = "${CORRAL_SAMPLE_REPOS}/$basearch"
gpgcheck = false

[[file]]
path = "/etc/os-release"
content = "NAME=\"corral sample\"\nID=corral\nVERSION_ID=43\n"

[labels]
name = "sample/multi"
version = "43"
architecture = "x86_64"

[image]
cmd = ["/bin/sh"]
"#;

/// The sample repositories with their aarch64 directory, which needs the
/// arm64 busybox scripts/setup.sh fetches, and the binfmt handler.
fn aarch64_repos() -> tempfile::TempDir {
    let handler = Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    assert!(
        std::fs::read_to_string(handler).is_ok_and(|s| s.starts_with("enabled")),
        "{} is not registered and enabled: scripts/setup.sh installs \
         qemu-user-static and binfmt-support and enables it",
        handler.display()
    );
    let repos = sample_repos();
    assert!(
        repos.path().join("aarch64/repodata/repomd.xml").is_file(),
        "build-repo.sh made no aarch64 repository: scripts/setup.sh fetches \
         Debian's arm64 busybox-static into /var/tmp/corral-tools/arm64/busybox"
    );
    repos
}

fn write_recipe(dir: &Path) -> PathBuf {
    let path = dir.join("sample-multi.toml");
    std::fs::write(&path, RECIPE).unwrap();
    path
}

/// e_machine of an ELF file (EM_AARCH64 = 183, EM_X86_64 = 62).
fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(bytes[5], 1, "little-endian");
    u16::from_le_bytes([bytes[18], bytes[19]])
}

const EM_AARCH64: u16 = 183;
const EM_X86_64: u16 = 62;

#[test]
fn an_aarch64_tree_has_aarch64_programs_and_its_scriptlets_ran() {
    let repos = aarch64_repos();
    let work = scratch();
    let recipe = write_recipe(work.path());
    let rootfs = work.path().join("rootfs");
    let out = run_ok(
        corral(repos.path())
            .args(["tree", "build", "--json", "--arch", "aarch64", "--rootfs"])
            .arg(&rootfs)
            .arg(&recipe),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let arches: Vec<(String, String)> = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["arch"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        arches.contains(&("corral-busybox".into(), "aarch64".into())),
        "{arches:?}"
    );
    assert!(
        arches.iter().all(|(_, a)| a == "aarch64" || a == "noarch"),
        "an x86_64 package in an aarch64 tree: {arches:?}"
    );

    // The program is an aarch64 ELF (read from its header), and the real
    // rpm reads the tree's database with the .aarch64 package in it.
    assert_eq!(elf_machine(&rootfs.join("usr/bin/busybox")), EM_AARCH64);
    let q = run_ok(
        Command::new("rpm")
            .arg("--root")
            .arg(&rootfs)
            .args(["--dbpath", "/usr/lib/sysimage/rpm", "-qa"])
            .env("HOME", work.path()),
    );
    let q = String::from_utf8_lossy(&q.stdout);
    assert!(q.contains("corral-busybox-1.35.0-1.aarch64"), "{q}");

    // corral-svc's %pre ran inside the tree, with the tree's aarch64
    // /bin/sh, through qemu: the user it adds is there.
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("corral-svc:x:"), "{passwd}");
    // And the tree's shell runs here, as an aarch64 machine.
    let uname = run_ok(
        Command::new("chroot")
            .arg(&rootfs)
            .args(["/bin/sh", "-c", "uname -m"]),
    );
    assert_eq!(String::from_utf8_lossy(&uname.stdout).trim(), "aarch64");
}

/// The shipped sample recipe builds for aarch64 too: its `$basearch`
/// repository gives the aarch64 corral-busybox, main the noarch rest.
#[test]
fn the_shipped_sample_recipe_builds_an_aarch64_tree() {
    let repos = aarch64_repos();
    let work = scratch();
    let rootfs = work.path().join("rootfs");
    let out = run_ok(
        corral(repos.path())
            .args(["tree", "build", "--json", "--arch", "aarch64", "--rootfs"])
            .arg(&rootfs)
            .arg(repo_root().join("recipes/sample-base.toml")),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages: Vec<String> = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}.{}",
                p["name"].as_str().unwrap(),
                p["arch"].as_str().unwrap()
            )
        })
        .collect();
    for wanted in [
        "corral-busybox.aarch64",
        "corral-hello.noarch",
        "corral-signed.noarch",
    ] {
        assert!(
            packages.iter().any(|p| p == wanted),
            "{wanted}: {packages:?}"
        );
    }
    assert_eq!(elf_machine(&rootfs.join("usr/bin/busybox")), EM_AARCH64);
}

fn skopeo_raw(reference: &str) -> Value {
    let out = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(reference),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (architecture, manifest digest) of each entry of an image index.
fn index_platforms(index: &Value) -> Vec<(String, String)> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["platform"]["os"], "linux", "{m}");
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_multi_platform_image_is_one_index_that_every_tool_reads() {
    let repos = aarch64_repos();
    let work = scratch();
    let recipe = write_recipe(work.path());
    let build = |name: &str| -> Value {
        let out = run_ok(
            corral(repos.path())
                .args([
                    "image",
                    "build",
                    "--json",
                    "--platform",
                    "linux/amd64,linux/arm64",
                ])
                .arg(&recipe)
                .arg("-o")
                .arg(format!("oci:{}:43", work.path().join(name).display())),
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let built = build("multi");
    let layout = work.path().join("multi");
    let oci = format!("oci:{}:43", layout.display());

    // Reproducible: a second build gives the same index and manifests.
    let again = build("again");
    assert_eq!(again["index_digest"], built["index_digest"]);
    for i in 0..2 {
        assert_eq!(
            again["platforms"][i]["manifest_digest"],
            built["platforms"][i]["manifest_digest"]
        );
    }

    // skopeo reads the tag as an index of one manifest per platform.
    let index = skopeo_raw(&oci);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms = index_platforms(&index);
    let digest_of = |arch: &str| {
        platforms
            .iter()
            .find(|(a, _)| a == arch)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("no {arch} in {platforms:?}"))
    };
    assert_eq!(platforms.len(), 2, "{platforms:?}");
    assert_eq!(digest_of("amd64"), built["platforms"][0]["manifest_digest"]);
    assert_eq!(digest_of("arm64"), built["platforms"][1]["manifest_digest"]);

    // skopeo picks each platform's own manifest, whose config and tree
    // are that platform's.
    let skopeo = Skopeo::new();
    for (arch, rpm_arch, machine) in [
        ("arm64", "aarch64", EM_AARCH64),
        ("amd64", "x86_64", EM_X86_64),
    ] {
        let one = work.path().join(format!("only-{arch}"));
        run_ok(&mut skopeo.copy(
            None,
            &[
                "--quiet",
                "--override-arch",
                arch,
                &oci,
                &format!("oci:{}:43", one.display()),
            ],
        ));
        let digest = layout_manifest_digest(&one, "43");
        assert_eq!(digest, digest_of(arch), "{arch}");
        let manifest = layout_json(&one, &digest);
        let config = layout_json(&one, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["os"], "linux");
        assert_eq!(config["config"]["Labels"]["architecture"], rpm_arch);

        // umoci unpacks the platform's image; its busybox is its own.
        let bundle = work.path().join(format!("bundle-{arch}"));
        run_ok(
            Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:43", one.display()))
                .arg(&bundle),
        );
        assert_eq!(
            elf_machine(&bundle.join("rootfs/usr/bin/busybox")),
            machine,
            "{arch}"
        );

        // One SBOM per platform, beside the layout and inside it (in the
        // built layout: skopeo copies only the blobs a manifest lists).
        let sbom_file = work.path().join(format!("multi.linux-{arch}.spdx.json"));
        let sbom = std::fs::read_to_string(&sbom_file).unwrap();
        assert!(
            sbom.contains(&format!("corral-busybox@1.35.0-1?arch={rpm_arch}")),
            "{}: {sbom}",
            sbom_file.display()
        );
        let inside = manifest["annotations"]["dev.corral.sbom.digest"]
            .as_str()
            .unwrap();
        assert_eq!(
            layout_json(&layout, inside),
            serde_json::from_str::<Value>(&sbom).unwrap()
        );
    }

    // skopeo copy --all publishes the whole index to a registry, which
    // serves it as one tag.
    let registry = Upstream::start();
    let host = registry.url().trim_start_matches("http://").to_string();
    let remote = format!("docker://{host}/sample/multi:43");
    run_ok(&mut skopeo.copy(
        None,
        &[
            "--quiet",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &oci,
            &remote,
        ],
    ));
    let served = skopeo_raw(&remote);
    assert_eq!(index_platforms(&served), platforms);

    // Through the mirror, a pull of one platform fetches only that
    // platform's blobs from the upstream: the index names both, the
    // client asks for one.
    let mirror = Mirror::start(&["--upstream", &format!("sample={}", registry.url())]);
    let through = format!(
        "docker://{}/sample/multi:43",
        mirror.url().trim_start_matches("http://")
    );
    let pulled = work.path().join("pulled-arm64");
    run_ok(&mut skopeo.copy(
        None,
        &[
            "--quiet",
            "--src-tls-verify=false",
            "--override-arch",
            "arm64",
            &through,
            &format!("oci:{}:43", pulled.display()),
        ],
    ));
    assert_eq!(layout_manifest_digest(&pulled, "43"), digest_of("arm64"));
    let blob_gets = |digest: &Value| {
        registry.requests_matching(&format!(
            "\"GET /v2/sample/multi/blobs/{} ",
            digest.as_str().unwrap()
        ))
    };
    let (amd64, arm64) = (&built["platforms"][0], &built["platforms"][1]);
    assert_eq!(blob_gets(&arm64["layer_digest"]), 1, "the arm64 layer");
    assert_eq!(blob_gets(&arm64["config_digest"]), 1, "the arm64 config");
    assert_eq!(blob_gets(&amd64["layer_digest"]), 0, "the amd64 layer");
    assert_eq!(blob_gets(&amd64["config_digest"]), 0, "the amd64 config");

    // The engine pulls each platform from it and runs the arm64 one
    // emulated, as an aarch64 machine.
    let engine = Dockerd::start();
    for (platform, want) in [("linux/arm64", "aarch64"), ("linux/amd64", "x86_64")] {
        let image = format!("{host}/sample/multi:43");
        run_ok(
            engine
                .docker()
                .args(["pull", "-q", "--platform", platform, &image]),
        );
        let run = run_ok(engine.docker().args([
            "run",
            "--rm",
            "--network",
            "none",
            "--platform",
            platform,
            &image,
            "busybox",
            "uname",
            "-m",
        ]));
        assert_eq!(
            String::from_utf8_lossy(&run.stdout).trim(),
            want,
            "{platform}"
        );
    }
}

/// The diff_ids of the config of `reference` (`--override-arch arch`).
fn diff_ids(reference: &str, arch: &str) -> Vec<Value> {
    let out = run_ok(
        Command::new("skopeo")
            .args([
                "inspect",
                "--config",
                "--tls-verify=false",
                "--override-arch",
            ])
            .arg(arch)
            .arg(reference),
    );
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    config["rootfs"]["diff_ids"].as_array().unwrap().clone()
}

/// The curated library's way to aarch64: `corral dockerfiles build
/// --all-platforms` builds a library image for each architecture its
/// image.toml lists, FROM the multi-platform base (each platform's own),
/// with the Docker Engine's classic builder emulating arm64, and pushes
/// one index per tag whose `architecture` labels are the platforms'.
#[test]
fn a_library_image_is_built_for_every_listed_platform_into_one_index() {
    let repos = aarch64_repos();
    let work = scratch();
    let registry = Upstream::start();
    let host = registry.url().trim_start_matches("http://").to_string();

    // The multi-platform base, in the registry the library's FROM maps to.
    let base = work.path().join("base");
    run_ok(
        corral(repos.path())
            .args(["image", "build", "--platform", "linux/amd64,linux/arm64"])
            .arg(repo_root().join("recipes/sample-base.toml"))
            .arg("-o")
            .arg(format!("oci:{}:43", base.display())),
    );
    let skopeo = Skopeo::new();
    let base_ref = format!("docker://{host}/sample/base:43");
    run_ok(&mut skopeo.copy(
        None,
        &[
            "--quiet",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &format!("oci:{}:43", base.display()),
            &base_ref,
        ],
    ));

    let engine = Dockerd::start();
    let out = run_ok(
        Command::new(corral_bin())
            .args([
                "dockerfiles",
                "build",
                "--all-platforms",
                "--format",
                "json",
            ])
            .arg("--library")
            .arg(repo_root().join("tests/fixtures/dockerfiles-multiarch"))
            .args(["--engine", &engine.host()])
            .args(["--registry-map", &format!("quay.io/corral={host}/sample")])
            .args(["--push", &format!("{host}/multiarch")]),
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["built"], serde_json::json!(["uname"]), "{summary}");
    let index_digest = summary["indexes"]["uname"].as_str().unwrap();

    // Both tags name one index of both platforms.
    let image = format!("docker://{host}/multiarch/uname:43");
    let index = skopeo_raw(&image);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms = index_platforms(&index);
    let arches: Vec<&str> = platforms.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(arches, ["amd64", "arm64"], "{index}");
    let raw = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{host}/multiarch/uname:43-multi")),
    );
    assert_eq!(
        format!("sha256:{}", sha256_hex(&raw.stdout)),
        index_digest,
        "the second tag"
    );

    for (arch, machine) in [("arm64", "aarch64"), ("amd64", "x86_64")] {
        // The label comes from the platform, and the image is FROM that
        // platform's base: the base's layer comes first.
        let out = run_ok(
            Command::new("skopeo")
                .args([
                    "inspect",
                    "--config",
                    "--tls-verify=false",
                    "--override-arch",
                ])
                .arg(arch)
                .arg(&image),
        );
        let config: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["config"]["Labels"]["architecture"], arch);
        let (ours, theirs) = (diff_ids(&image, arch), diff_ids(&base_ref, arch));
        assert_eq!(ours[0], theirs[0], "{arch}: FROM the {arch} base");

        // The engine runs it: uname, and what the build's RUN step saw.
        let name = format!("{host}/multiarch/uname:43");
        let platform = format!("linux/{arch}");
        run_ok(
            engine
                .docker()
                .args(["pull", "-q", "--platform", &platform, &name]),
        );
        for (cmd, want) in [
            (&["busybox", "uname", "-m"][..], machine),
            (&[][..], machine),
        ] {
            let run = run_ok(
                engine
                    .docker()
                    .args(["run", "--rm", "--network", "none", "--platform"])
                    .arg(&platform)
                    .arg(&name)
                    .args(cmd),
            );
            assert_eq!(
                String::from_utf8_lossy(&run.stdout).trim(),
                want,
                "{arch} {cmd:?}"
            );
        }

        // `corral test` runs its image.toml checks in SELinux-labelled
        // containers on the pulled platform's image, emulated for arm64.
        let spec = work.path().join(format!("{arch}.toml"));
        std::fs::write(
            &spec,
            format!(
                "[image]\nsummary = \"x\"\ntags = [\"43\"]\narchitectures = [\"x86_64\", \"aarch64\"]\n\n\
                 [tests]\nuser = \"1001\"\nfiles-present = [\"/help.md\"]\n\n\
                 [[tests.commands]]\nrun = [\"busybox\", \"uname\", \"-m\"]\nstdout = \"^{machine}\\n$\"\n"
            ),
        )
        .unwrap();
        let tested = Command::new(corral_bin())
            .arg("test")
            .arg("--spec")
            .arg(&spec)
            .arg(&name)
            .args(["--engine", &engine.host(), "--json"])
            .arg("--mcs-dir")
            .arg(work.path().join("mcs"))
            .arg("--scratch")
            .arg(work.path())
            .output()
            .unwrap();
        assert!(
            tested.status.success(),
            "{arch}: {}{}",
            String::from_utf8_lossy(&tested.stdout),
            String::from_utf8_lossy(&tested.stderr)
        );
    }
}
