//! `corral release` end to end: the real binary, dnf and rpm, skopeo, a
//! Docker Engine, ostree, gpg and `corral mirror serve`, all started here
//! on the loopback. The plan, a full release, a rerun that does nothing, a
//! failed step resumed without redoing the ones before it, and the respin
//! a security advisory triggers (`corral image outdated`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use corral_test_support::*;
// The helpers' module before they moved to corral-test-support.
use corral_test_support as mirror_support;
use serde_json::Value;

const PASSWORD: &str = "release-test";
const PUSH_USER: &str = "releaser";
const PUSH_PASSWORD: &str = "push-secret";
const GPG_UID: &str = "corral release <release@corral.invalid>";

/// A release's surroundings: sample repositories, keys, a mirror serving
/// an OSTree repository, and the directory the configuration lives in.
struct Setup {
    repos: tempfile::TempDir,
    dir: tempfile::TempDir,
    mirror: Mirror,
}

impl Setup {
    fn new() -> Setup {
        for tool in ["skopeo", "ostree", "gpg", "gpgv", "dnf", "rpm"] {
            require_tool(tool);
        }
        let repos = sample_repos();
        let dir = scratch();
        let keys = dir.path().join("keys");
        run_ok(
            Command::new(corral_bin())
                .args(["key", "generate", "--type", "cosign", "--out"])
                .arg(&keys)
                .env("CORRAL_KEY_PASSWORD", PASSWORD),
        );
        let gnupg = keys.join("gnupg");
        std::fs::create_dir_all(&gnupg).unwrap();
        std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        run_ok(
            Command::new(corral_bin())
                .args(["key", "generate", "--type", "gpg", "--out"])
                .arg(&keys)
                .arg("--gpg-homedir")
                .arg(&gnupg)
                .args(["--gpg-uid", GPG_UID]),
        );
        let ostree = dir.path().join("ostree");
        run_ok(
            Command::new("ostree")
                .args(["init", "--mode=archive"])
                .arg(format!("--repo={}", ostree.display())),
        );
        // pushes need credentials; pulls are anonymous
        require_tool("htpasswd");
        let htpasswd = run_ok(Command::new("htpasswd").args(["-Bbn", PUSH_USER, PUSH_PASSWORD]));
        let htpasswd_file = dir.path().join("htpasswd");
        std::fs::write(&htpasswd_file, htpasswd.stdout).unwrap();
        let mirror = Mirror::start(&[
            "--ostree-repo",
            &ostree.display().to_string(),
            "--htpasswd",
            &htpasswd_file.display().to_string(),
        ]);
        Setup { repos, dir, mirror }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn work(&self) -> PathBuf {
        self.path("work")
    }

    /// Writes `release.toml` with the given sections after the common ones.
    fn config(&self, sections: &str) -> PathBuf {
        let root = repo_root();
        let text = format!(
            r#"[release]
work = "{work}"

[mirror]
registry = "{registry}"
plain-http = true
ostree-repo = "{ostree}"

[sign]
cosign-key = "{keys}/cosign.key"
gpg-key = "release@corral.invalid"
gpg-homedir = "{keys}/gnupg"

[[base]]
recipe = "{root}/recipes/sample-base.toml"
image = "sample/base"
tag = "43"
provides = "quay.io/corral/base:43"
{sections}"#,
            work = self.work().display(),
            registry = self.mirror.host(),
            ostree = self.path("ostree").display(),
            keys = self.path("keys").display(),
            root = root.display(),
        );
        let path = self.path("release.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `corral release --config CONFIG ARGS…`.
    fn release(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = corral(self.repos.path());
        cmd.arg("release")
            .arg("--config")
            .arg(config)
            .args(args)
            .env("CORRAL_KEY_PASSWORD", PASSWORD)
            .env(
                "CORRAL_REGISTRY_CREDS",
                format!("{PUSH_USER}:{PUSH_PASSWORD}"),
            )
            .env("CORRAL_MCS_DIR", self.path("mcs"));
        cmd
    }

    fn report(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.work().join("release.json")).unwrap()).unwrap()
    }

    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.work().join("state.json")).unwrap()).unwrap()
    }

    /// `corral verify image REF --gpg-keyring …` (exit 0 when verified).
    fn verify_gpg(&self, reference: &str) -> Output {
        Command::new(corral_bin())
            .args([
                "verify",
                "image",
                reference,
                "--plain-http",
                "--gpg-keyring",
            ])
            .arg(self.path("keys/corral-signing.gpg"))
            .output()
            .unwrap()
    }

    fn verify_cosign(&self, reference: &str) -> Output {
        Command::new(corral_bin())
            .args(["verify", "image", reference, "--plain-http", "--key"])
            .arg(self.path("keys/cosign.pub"))
            .output()
            .unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.path("keys/gnupg"))
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// A stream file like the sample's, with `packages` in its tree.
fn stream_file(dir: &Path, packages: &str) -> PathBuf {
    let sample =
        std::fs::read_to_string(repo_root().join("ostree-refs/sample-atomic.toml")).unwrap();
    let line = sample
        .lines()
        .find(|l| l.starts_with("packages = "))
        .unwrap()
        .to_string();
    let path = dir.join("sample-atomic.toml");
    std::fs::write(
        &path,
        sample.replace(&line, &format!("packages = {packages}")),
    )
    .unwrap();
    path
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The report's item `name` of step `step`.
fn item<'a>(report: &'a Value, step: &str, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .and_then(|s| {
            s["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["name"] == name)
        })
        .unwrap_or_else(|| panic!("no {step}/{name} in {report:#}"))
}

/// The manifest digest of `reference` in the mirror, through skopeo.
fn mirror_digest(reference: &str) -> String {
    let out = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{reference}"),
    ]));
    stdout(&out).trim().to_string()
}

fn ostree_ref(repo: &Path, r: &str) -> String {
    stdout(&run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args(["rev-parse", r]),
    ))
    .trim()
    .to_string()
}

const STREAM_REF: &str = "corral-sample/43/x86_64/atomic-host";

#[test]
fn dry_run_prints_the_plan_and_does_nothing() {
    let s = Setup::new();
    let config = s.config(&format!(
        "\n[library]\npath = \"{}\"\nnamespace = \"sample\"\n\n[[stream]]\nfile = \"{}\"\n",
        repo_root().join("tests/fixtures/dockerfiles").display(),
        repo_root().join("ostree-refs/sample-atomic.toml").display()
    ));
    let out = run_ok(&mut s.release(&config, &["--dry-run"]));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "1. base images\n   build    sample/base:43: not built yet\n2. curated library\n"
        ),
        "{text}"
    );
    for image in ["base2", "app", "other"] {
        assert!(
            text.contains(&format!("   build    {image}: not built yet\n")),
            "{text}"
        );
    }
    assert!(
        text.contains("3. Atomic Host\n   compose  sample-atomic: due (release day "),
        "{text}"
    );
    // and the OS image that follows the compose
    assert!(
        text.contains(&format!(
            "); then the new head as the OS image {}/os/sample-atomic:43, signed\n",
            s.mirror.host()
        )),
        "{text}"
    );
    assert!(!s.work().exists(), "a dry run wrote {}", s.work().display());

    let json: Value = serde_json::from_slice(
        &run_ok(&mut s.release(&config, &["--dry-run", "--json", "--only", "host"])).stdout,
    )
    .unwrap();
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{json:#}");
    assert_eq!(steps[0]["step"], "host");
    assert_eq!(steps[0]["items"][0]["action"], "build");

    // a mistake in the file is named with its line
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("tag = ", "tga = "),
    )
    .unwrap();
    let out = s.release(&config, &["--dry-run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("release.toml:17:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn releases_everything_then_a_rerun_does_nothing() {
    let s = Setup::new();
    let engine = Dockerd::start();
    let config = s.config(&format!(
        "tests = \"{}\"\n\n[engine]\nurl = \"{}\"\n\n[library]\npath = \"{}\"\nnamespace = \"sample\"\n\n[[stream]]\nfile = \"{}\"\n",
        repo_root().join("recipes/sample-base.tests.toml").display(),
        engine.host(),
        repo_root().join("tests/fixtures/dockerfiles").display(),
        repo_root().join("ostree-refs/sample-atomic.toml").display()
    ));
    let out = run_ok(&mut s.release(&config, &[]));
    let err = stderr(&out);
    for step in [
        "==> 1/4 base images",
        "==> 2/4 curated library",
        "==> 3/4 Atomic Host",
        "==> 4/4 release report",
    ] {
        assert!(err.contains(step), "no progress line {step}:\n{err}");
    }
    let report = s.report();
    assert_eq!(report["success"], true);

    // the base image: built, tested, in the mirror with the digest the
    // report names, signed both ways
    let base = item(&report, "base", "sample/base:43");
    assert_eq!(base["action"], "build");
    assert_eq!(
        base["ran"],
        serde_json::json!(["build", "test", "push", "sign"])
    );
    let base_ref = format!("{}/sample/base:43", s.mirror.host());
    assert_eq!(base["published"], mirror_digest(&base_ref));
    assert!(base["tests"]["passed"].as_u64().unwrap() >= 4, "{base:#}");
    let added: Vec<&str> = base["packages"]["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(added.contains(&"corral-hello-1.0-1.noarch"), "{added:?}");
    assert!(s.verify_gpg(&base_ref).status.success());
    assert!(s.verify_cosign(&base_ref).status.success());

    // the library, built FROM that base, tested, pushed under every tag, signed
    for (name, tags) in [
        ("base2", &["43"][..]),
        ("other", &["43"]),
        ("app", &["43", "43-stable"]),
    ] {
        let i = item(&report, "library", name);
        assert_eq!(i["action"], "build", "{i:#}");
        assert_eq!(i["tests"]["failed"], 0, "{i:#}");
        assert!(i["tests"]["passed"].as_u64().unwrap() > 0, "{i:#}");
        for tag in tags {
            let reference = format!("{}/sample/{name}:{tag}", s.mirror.host());
            assert_eq!(i["published"], mirror_digest(&reference), "{reference}");
            let v = s.verify_gpg(&reference);
            assert!(v.status.success(), "{reference}: {}", stdout(&v));
        }
    }
    // base2 really is FROM the released base: the base's layer comes first
    let diff_ids = |reference: &str| -> Vec<Value> {
        let out = run_ok(Command::new("skopeo").args([
            "inspect",
            "--config",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ]));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .clone()
    };
    let base_layers = diff_ids(&base_ref);
    let base2_layers = diff_ids(&format!("{}/sample/base2:43", s.mirror.host()));
    assert_eq!(base_layers.len(), 1);
    assert_eq!(base2_layers[0], base_layers[0]);

    // the stream: a signed commit in the repository the mirror serves
    let host = item(&report, "host", "sample-atomic");
    assert_eq!(host["action"], "build");
    let head = ostree_ref(&s.path("ostree"), STREAM_REF);
    assert_eq!(host["published"], head);
    let served = mirror_support::http_get(&format!(
        "{}/ostree/refs/heads/{STREAM_REF}",
        s.mirror.url()
    ))
    .expect("the mirror serves the ref");
    assert_eq!(served.trim(), head);
    // a host pulls it through the mirror, checking commit and summary
    // signatures against the released public key
    let client = s.path("client-repo");
    let ostree = |args: &[&str]| {
        let mut cmd = Command::new("ostree");
        cmd.arg(format!("--repo={}", client.display())).args(args);
        cmd
    };
    run_ok(&mut ostree(&["init", "--mode=archive"]));
    run_ok(
        ostree(&[
            "remote",
            "add",
            "--set=gpg-verify=true",
            "--set=gpg-verify-summary=true",
        ])
        .arg(format!(
            "--gpg-import={}",
            s.path("keys/corral-signing.gpg").display()
        ))
        .arg("release")
        .arg(format!("{}/ostree", s.mirror.url())),
    );
    run_ok(&mut ostree(&["pull", "release", STREAM_REF]));
    assert_eq!(ostree_ref(&client, &format!("release:{STREAM_REF}")), head);

    // the same commit as an OS image beside the base images: tagged with
    // its version and the stream's moving tag, signed both ways, and
    // importing it gives the composed commit
    let os = &host["os_image"];
    let version = stdout(&run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", s.path("ostree").display()))
            .args(["show", "--print-metadata-key=version", &head]),
    ))
    .trim()
    .trim_matches('\'')
    .to_string();
    let os_repo = format!("{}/os/sample-atomic", s.mirror.host());
    assert_eq!(
        os["references"],
        serde_json::json!([format!("{os_repo}:{version}"), format!("{os_repo}:43")]),
        "{host:#}"
    );
    assert_eq!(os["commit"], head.as_str());
    assert!(os["layers"].as_u64().unwrap() > 1, "{os:#}");
    let os_digest = os["digest"].as_str().unwrap().to_string();
    for reference in os["references"].as_array().unwrap() {
        let reference = reference.as_str().unwrap();
        assert_eq!(mirror_digest(reference), os_digest, "{reference}");
        let v = s.verify_gpg(reference);
        assert!(v.status.success(), "{reference}: {}", stdout(&v));
        let v = s.verify_cosign(reference);
        assert!(v.status.success(), "{reference}: {}", stdout(&v));
    }
    let kinds: Vec<&str> = host["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|sig| sig["digest"] == os_digest.as_str())
        .map(|sig| sig["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["cosign", "gpg", "gpg"], "{host:#}");
    let pulled = s.path("os-image");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{os_repo}:43"))
            .arg(format!("oci:{}:os", pulled.display())),
    );
    let imported_repo = s.path("imported-repo");
    run_ok(
        Command::new("ostree")
            .args(["init", "--mode=archive"])
            .arg(format!("--repo={}", imported_repo.display())),
    );
    let imported: Value = serde_json::from_slice(
        &run_ok(
            Command::new(corral_bin())
                .args(["compose", "import", "--json", "--repo"])
                .arg(&imported_repo)
                .arg(format!("oci:{}:os", pulled.display())),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(imported["commit"], head.as_str(), "{imported:#}");
    assert_eq!(imported["manifest_digest"], os_digest.as_str());

    // the website shows what the release published beside the images
    // and the stream
    let page = |path: &str| -> Value {
        let text = mirror_support::http_get(&format!("{}{path}?format=json", s.mirror.url()))
            .unwrap_or_else(|| panic!("the mirror serves {path}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    };
    let app = page("/repositories/sample/app");
    let help = std::fs::read_to_string(repo_root().join("tests/fixtures/dockerfiles/app/help.md"))
        .unwrap();
    assert_eq!(app["help"], help.as_str(), "{app:#}");
    let dockerfile =
        std::fs::read_to_string(repo_root().join("tests/fixtures/dockerfiles/app/Dockerfile"))
            .unwrap();
    assert_eq!(app["build"]["dockerfile"], dockerfile.as_str(), "{app:#}");
    assert!(app["build"]["findings"].is_array(), "{app:#}");
    let base_page = page("/repositories/sample/base");
    // no advisory outstanding: an empty list, not an absent one
    assert_eq!(
        base_page["advisories"],
        serde_json::json!([]),
        "{base_page:#}"
    );
    assert!(base_page["sbom"]["total_packages"].as_u64().unwrap() > 0);
    // a gzip layer: the unpacked size recorded at build time
    let unpacked = base_page["featured"]["uncompressed_size"]
        .as_u64()
        .unwrap_or_else(|| panic!("no unpacked size: {base_page:#}"));
    assert!(
        unpacked > base_page["featured"]["compressed_size"].as_u64().unwrap(),
        "{base_page:#}"
    );
    let stream = page("/atomic-host/sample-atomic");
    assert_eq!(stream["ref"], STREAM_REF);
    // and the OS image, from the stream file the release wrote
    assert_eq!(
        stream["os_image"]["digest"],
        os_digest.as_str(),
        "{stream:#}"
    );
    assert_eq!(
        stream["os_image"]["reference"],
        format!("{os_repo}:43").as_str()
    );
    assert_eq!(
        stream["os_image"]["signatures"],
        serde_json::json!(["cosign", "gpg"])
    );
    assert_eq!(stream["versions"][0]["commit"], head.as_str(), "{stream:#}");
    assert!(
        stream["versions"][0]["diff"]["added"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "corral-hello-1.0-1.noarch"),
        "{stream:#}"
    );
    let md = std::fs::read_to_string(s.work().join("release.md")).unwrap();
    assert!(
        md.contains("| sample/base:43 | built, tested, pushed, signed | not built yet |"),
        "{md}"
    );

    // the rerun: everything kept, nothing pushed, composed or recorded anew
    let state_before = s.state();
    let out = run_ok(&mut s.release(&config, &[]));
    let plan = stdout(&out);
    assert!(
        !plan.contains("   build ") && !plan.contains("   compose "),
        "{plan}"
    );
    let report = s.report();
    for step in ["base", "library", "host"] {
        for i in report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|st| st["step"] == step)
            .flat_map(|st| st["items"].as_array().unwrap())
        {
            assert_eq!(i["action"], "keep", "{i:#}");
        }
    }
    assert_eq!(s.state(), state_before, "the rerun recorded something");
    assert_eq!(ostree_ref(&s.path("ostree"), STREAM_REF), head);
    assert_eq!(
        item(&report, "base", "sample/base:43")["published"],
        mirror_digest(&base_ref)
    );
}

#[test]
fn a_failed_step_is_resumed_without_redoing_the_steps_before_it() {
    let s = Setup::new();
    let stream = stream_file(
        s.dir.path(),
        r#"["corral-filesystem", "corral-kernel", "corral-no-such-package"]"#,
    );
    let config = s.config(&format!("\n[[stream]]\nfile = \"{}\"\n", stream.display()));
    let out = s.release(&config, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("composing sample-atomic"),
        "{}",
        stderr(&out)
    );
    let report = s.report();
    assert_eq!(report["success"], false);
    let host_step = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["step"] == "host")
        .unwrap();
    assert!(
        host_step["error"]
            .as_str()
            .unwrap()
            .contains("sample-atomic"),
        "{report:#}"
    );
    // the base image made it all the way before the failure
    let state = s.state();
    for sub in ["build", "push", "sign"] {
        assert!(
            state["items"][format!("base/sample/base:43/{sub}")].is_object(),
            "{state:#}"
        );
    }
    let layout_index = s.work().join("images/sample_base/index.json");
    let built_at = std::fs::metadata(&layout_index)
        .unwrap()
        .modified()
        .unwrap();
    let base_ref = format!("{}/sample/base:43", s.mirror.host());
    let digest = mirror_digest(&base_ref);

    // fixed; the rerun composes and redoes nothing of the base image
    stream_file(
        s.dir.path(),
        r#"["corral-filesystem", "corral-kernel", "corral-busybox"]"#,
    );
    let out = run_ok(&mut s.release(&config, &[]));
    assert!(
        !stderr(&out).contains("sample/base:43: building"),
        "{}",
        stderr(&out)
    );
    let report = s.report();
    assert_eq!(report["success"], true);
    let base = item(&report, "base", "sample/base:43");
    assert_eq!(base["action"], "keep");
    assert!(base["ran"].is_null(), "{base:#}");
    assert_eq!(item(&report, "host", "sample-atomic")["action"], "build");
    let after = s.state();
    for sub in ["build", "push", "sign"] {
        let key = format!("base/sample/base:43/{sub}");
        assert_eq!(
            after["items"][&key], state["items"][&key],
            "{key} was redone"
        );
    }
    assert_eq!(
        std::fs::metadata(&layout_index)
            .unwrap()
            .modified()
            .unwrap(),
        built_at
    );
    assert_eq!(mirror_digest(&base_ref), digest);
    let head = ostree_ref(&s.path("ostree"), STREAM_REF);
    assert_eq!(item(&report, "host", "sample-atomic")["published"], head);

    // out of band: a new commit now, whatever the cadence, with the reason
    let out = run_ok(&mut s.release(&config, &["--only", "host", "--out-of-band", "kernel fix"]));
    assert!(
        stdout(&out).contains(
            "   compose  sample-atomic: out of band: kernel fix; then the new head as the OS image "
        ),
        "{}",
        stdout(&out)
    );
    let report = s.report();
    let steps: Vec<&Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["step"])
        .collect();
    assert_eq!(steps, ["host"], "{report:#}");
    let oob = ostree_ref(&s.path("ostree"), STREAM_REF);
    assert_ne!(oob, head);
    assert_eq!(item(&report, "host", "sample-atomic")["published"], oob);
    let parent = ostree_ref(&s.path("ostree"), &format!("{STREAM_REF}^"));
    assert_eq!(parent, head);
    // the new commit went out as the OS image's moving tag
    let os_ref = format!("{}/os/sample-atomic:43", s.mirror.host());
    let host = item(&report, "host", "sample-atomic").clone();
    assert_eq!(host["os_image"]["commit"], oob.as_str(), "{host:#}");
    assert_eq!(host["ran"], serde_json::json!(["compose", "push", "sign"]));
    let os_digest = mirror_digest(&os_ref);
    assert_eq!(host["os_image"]["digest"], os_digest.as_str());

    // the OS image goes from the mirror: a kept stream pushes and signs it
    // again, without composing
    for dir in ["repos/os/sample-atomic", "sigstore/os/sample-atomic"] {
        std::fs::remove_dir_all(s.mirror.storage.join(dir)).unwrap();
    }
    let out = run_ok(&mut s.release(&config, &["--only", "host"]));
    assert!(
        stderr(&out).contains("sample-atomic: its OS image is not in the mirror any more"),
        "{}",
        stderr(&out)
    );
    let host = item(&s.report(), "host", "sample-atomic").clone();
    assert_eq!(host["action"], "keep", "{host:#}");
    assert_eq!(host["ran"], serde_json::json!(["push", "sign"]), "{host:#}");
    assert_eq!(host["resumed"], serde_json::json!(["compose"]));
    assert_eq!(mirror_digest(&os_ref), os_digest);
    assert!(s.verify_gpg(&os_ref).status.success());
    assert_eq!(ostree_ref(&s.path("ostree"), STREAM_REF), oob);

    // the repository and its signatures go from the mirror's storage: the
    // record of the push is not trusted, the image is pushed and signed
    // again, and not rebuilt
    for dir in ["repos/sample/base", "sigstore/sample/base"] {
        std::fs::remove_dir_all(s.mirror.storage.join(dir)).unwrap();
    }
    assert!(!Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{base_ref}"))
        .output()
        .unwrap()
        .status
        .success());
    let out = run_ok(&mut s.release(&config, &["--only", "base"]));
    assert!(
        stderr(&out).contains("sample/base:43: not in the mirror any more"),
        "{}",
        stderr(&out)
    );
    let base = item(&s.report(), "base", "sample/base:43").clone();
    assert_eq!(base["ran"], serde_json::json!(["push", "sign"]), "{base:#}");
    assert_eq!(base["resumed"], serde_json::json!(["build"]));
    assert_eq!(mirror_digest(&base_ref), digest);
    assert!(s.verify_gpg(&base_ref).status.success());
}

#[test]
fn an_advisory_makes_image_outdated_say_so_and_release_respin() {
    let s = Setup::new();
    let config = s.config("");
    let outdated = |json: bool| {
        let mut cmd = corral(s.repos.path());
        cmd.args(["image", "outdated", "--config"]).arg(&config);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    // nothing released yet: it cannot answer
    let out = outdated(false);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("sample/base:43 has not been released yet"),
        "{}",
        stderr(&out)
    );
    run_ok(&mut s.release(&config, &[]));
    let base_ref = format!("{}/sample/base:43", s.mirror.host());
    let first = mirror_digest(&base_ref);
    let out = outdated(false);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "sample/base:43: up to date\n");

    // a newer corral-hello with a bugfix advisory: outdated, but it waits
    // for the monthly respin
    let publish = |version: &str, id: &str, kind: &str| {
        run_ok(
            Command::new("bash")
                .arg(repo_root().join("tests/fixtures/rpms/publish-update.sh"))
                .arg(s.repos.path())
                .args([version, id, kind]),
        );
    };
    publish("1.1", "CORRAL-2026-0041", "bugfix");
    let out = outdated(false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(
            "sample/base:43: needs a respin at the next monthly respin: 1 package update\n"
        ),
        "{}",
        stdout(&out)
    );
    let plan = stdout(&run_ok(&mut s.release(&config, &["--dry-run"])));
    assert!(
        plan.contains("   keep     sample/base:43: 1 package update wait for the respin on "),
        "{plan}"
    );

    // a security advisory: respin now
    publish("1.2", "CORRAL-2026-0042", "security");
    let out = outdated(true);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["image"], "sample/base:43");
    assert_eq!(json[0]["advisories"][0]["id"], "CORRAL-2026-0042");
    assert_eq!(
        json[0]["advisories"][0]["fixed_in"][0],
        "corral-hello-1.2-1.noarch"
    );
    assert_eq!(json[0]["updates"][0]["installed"], "1.0-1");
    assert_eq!(json[0]["updates"][0]["available"], "1.2-1");
    assert!(stdout(&outdated(false)).contains("advisory CORRAL-2026-0042 (Important)"));

    let out = run_ok(&mut s.release(&config, &[]));
    assert!(
        stdout(&out).contains("   build    sample/base:43: security advisory CORRAL-2026-0042: respin now (1 package update)"),
        "{}",
        stdout(&out)
    );
    let report = s.report();
    let base = item(&report, "base", "sample/base:43");
    assert_eq!(base["action"], "build");
    assert_eq!(
        base["packages"]["changed"][0],
        "corral-hello.noarch: 1.0-1 → 1.2-1"
    );
    let md = std::fs::read_to_string(s.work().join("release.md")).unwrap();
    assert!(
        md.contains("| changed: corral-hello.noarch: 1.0-1 → 1.2-1 |"),
        "{md}"
    );
    let second = mirror_digest(&base_ref);
    assert_ne!(second, first);
    assert_eq!(base["published"], second);
    assert!(s.verify_gpg(&base_ref).status.success());
    // the respun image has the fix: outdated has nothing more to say
    let out = outdated(false);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // and the image really carries the new package
    let sbom: Value = serde_json::from_slice(
        &std::fs::read(s.work().join("images/sample_base.spdx.json")).unwrap(),
    )
    .unwrap();
    assert!(sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "corral-hello" && p["versionInfo"] == "1.2-1"));
}

#[test]
fn an_image_that_fails_its_tests_is_not_published() {
    let s = Setup::new();
    let engine = Dockerd::start();
    // the sample base's tests, expecting the wrong release
    let spec = s.path("base.tests.toml");
    let text = std::fs::read_to_string(repo_root().join("recipes/sample-base.tests.toml")).unwrap();
    assert!(text.contains("^corral 43\\n$"));
    std::fs::write(&spec, text.replace("^corral 43\\n$", "^corral 44\\n$")).unwrap();
    let config = s.config(&format!(
        "tests = \"{}\"\n\n[engine]\nurl = \"{}\"\n",
        spec.display(),
        engine.host()
    ));
    let out = s.release(&config, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sample/base:43 failed its tests ("),
        "{}",
        stderr(&out)
    );
    let report = s.report();
    assert_eq!(report["success"], false);
    let base = item(&report, "base", "sample/base:43");
    assert_eq!(base["tests"]["failed"], 1, "{base:#}");
    assert!(base["tests"]["passed"].as_u64().unwrap() > 0, "{base:#}");
    // built, but neither pushed nor signed
    let state = s.state();
    assert!(state["items"]["base/sample/base:43/build"].is_object());
    assert!(
        state["items"]["base/sample/base:43/push"].is_null(),
        "{state:#}"
    );
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{}/sample/base:43", s.mirror.host()))
        .output()
        .unwrap();
    assert!(!inspect.status.success(), "the image was pushed");

    // the tests fixed: the rerun tests, pushes and signs the image it built
    // before, without building it again
    std::fs::write(&spec, text).unwrap();
    let out = run_ok(&mut s.release(&config, &[]));
    assert!(!stderr(&out).contains("building"), "{}", stderr(&out));
    let report = s.report();
    let base = item(&report, "base", "sample/base:43");
    assert_eq!(base["action"], "keep");
    assert_eq!(base["ran"], serde_json::json!(["test", "push", "sign"]));
    assert_eq!(base["resumed"], serde_json::json!(["build"]));
    assert_eq!(
        s.state()["items"]["base/sample/base:43/build"],
        state["items"]["base/sample/base:43/build"]
    );
    let reference = format!("{}/sample/base:43", s.mirror.host());
    assert_eq!(base["published"], mirror_digest(&reference));
    assert!(s.verify_gpg(&reference).status.success());
}

/// A copy of the fixture library whose base2 expects the wrong content.
fn library_with_failing_base2(dir: &Path) -> (PathBuf, PathBuf, String) {
    let lib = dir.join("library");
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(repo_root().join("tests/fixtures/dockerfiles"))
            .arg(&lib),
    );
    // the respin below brings corral-hello 1.2: any 1.x greets correctly
    for image in ["base2", "app", "other"] {
        let path = lib.join(image).join("image.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("corral-hello 1\\\\.0", "corral-hello 1\\\\.[0-9]"),
        )
        .unwrap();
    }
    let spec = lib.join("base2/image.toml");
    let good = std::fs::read_to_string(&spec).unwrap();
    assert!(good.contains("^base2 layer\\n$"));
    std::fs::write(&spec, good.replace("^base2 layer\\n$", "^base3 layer\\n$")).unwrap();
    (lib, spec, good)
}

fn in_mirror(reference: &str) -> bool {
    Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap()
        .status
        .success()
}

/// The library step goes on past a failed image: only the images built
/// FROM it are skipped, and the report says per image what was done.
/// Then, after a security respin of the base, the dry run plans exactly
/// what the run does.
#[test]
fn a_failed_image_stops_only_its_dependents_and_the_dry_run_plans_the_respin() {
    let s = Setup::new();
    let engine = Dockerd::start();
    let (lib, spec, good) = library_with_failing_base2(s.dir.path());
    let config = s.config(&format!(
        "\n[engine]\nurl = \"{}\"\n\n[library]\npath = \"{}\"\nnamespace = \"sample\"\n",
        engine.host(),
        lib.display(),
    ));
    let out = s.release(&config, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("base2 failed its tests ("),
        "{}",
        stderr(&out)
    );
    let report = s.report();
    assert_eq!(report["success"], false);
    let host = s.mirror.host();
    // base2 failed, app (FROM base2) skipped: neither published
    let base2 = item(&report, "library", "base2");
    assert_eq!(base2["tests"]["failed"], 1, "{base2:#}");
    assert!(base2["failed"]
        .as_str()
        .unwrap()
        .contains("failed its tests"));
    let app = item(&report, "library", "app");
    assert_eq!(app["skipped"], "its base base2 failed its tests", "{app:#}");
    assert!(app["tests"].is_null(), "{app:#}");
    for name in ["base2", "app"] {
        assert!(
            !in_mirror(&format!("{host}/sample/{name}:43")),
            "{name} was pushed"
        );
    }
    // other, FROM the base image only, was tested, pushed and signed
    let other = item(&report, "library", "other");
    assert_eq!(
        other["ran"],
        serde_json::json!(["build", "test", "push", "sign"]),
        "{other:#}"
    );
    assert!(other["tests"]["passed"].as_u64().unwrap() > 0);
    assert!(
        !other["tests"]["level"].as_str().unwrap().is_empty(),
        "{other:#}"
    );
    assert!(other["tests"]["enforcement"].is_string(), "{other:#}");
    let other_ref = format!("{host}/sample/other:43");
    assert_eq!(other["published"], mirror_digest(&other_ref));
    assert!(s.verify_gpg(&other_ref).status.success());

    // the report is public, and says it all per image
    let md_path = s.work().join("release.md");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&md_path).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o644);
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(
        md.contains("| app | built; **skipped**: its base base2 failed its tests |"),
        "{md}"
    );
    assert!(md.contains("| base2 | built; **failed**: "), "{md}");
    assert!(
        md.contains("| other | built, tested, pushed, signed |"),
        "{md}"
    );
    // signatures: the digest, the key and a command that verifies it
    let digest = other["published"].as_str().unwrap();
    let sigs = &md[md.find("## Signatures").expect("a signatures section")..];
    let line = sigs
        .lines()
        .find(|l| l.starts_with("- **other** (cosign)"))
        .unwrap_or_else(|| panic!("{sigs}"));
    assert!(line.contains(digest) && line.contains("SHA256:"), "{line}");
    let verify = sigs
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("corral verify image {other_ref}")) && l.contains("--key"))
        .unwrap_or_else(|| panic!("{sigs}"));
    let args: Vec<&str> = verify.split_whitespace().skip(1).collect();
    let v = Command::new(corral_bin()).args(&args).output().unwrap();
    assert!(v.status.success(), "{verify}: {}", stderr(&v));

    // fixed, and a security advisory for the base: the dry run plans the
    // respin and everything FROM it, and the run does exactly that
    std::fs::write(&spec, good).unwrap();
    run_ok(
        Command::new("bash")
            .arg(repo_root().join("tests/fixtures/rpms/publish-update.sh"))
            .arg(s.repos.path())
            .args(["1.2", "CORRAL-2026-0042", "security"]),
    );
    let planned = stdout(&run_ok(&mut s.release(&config, &["--dry-run"])));
    assert!(
        planned.contains("   build    sample/base:43: security advisory CORRAL-2026-0042"),
        "{planned}"
    );
    // (base2's context changed too: its image.toml was fixed)
    for line in [
        "   build    base2: ",
        "   build    app: a base changed (base2)\n",
        "   build    other: a base changed (quay.io/corral/base:43)\n",
    ] {
        assert!(planned.contains(line), "{planned}");
    }
    let out = run_ok(&mut s.release(&config, &[]));
    let ran = stdout(&out);
    assert!(
        ran.starts_with(&planned),
        "dry run:\n{planned}\nrun:\n{ran}"
    );
    let report = s.report();
    assert_eq!(report["success"], true);
    for name in ["base2", "app", "other"] {
        let i = item(&report, "library", name);
        assert_eq!(i["action"], "build", "{i:#}");
        assert_eq!(
            i["ran"],
            serde_json::json!(["build", "test", "push", "sign"]),
            "{i:#}"
        );
        assert_eq!(
            i["published"],
            mirror_digest(&format!("{host}/sample/{name}:43"))
        );
    }
}

/// A base image whose `platforms` lists two is released as one image
/// index: both platforms' images in the mirror under the tag, the index
/// and each platform manifest signed both ways, and each platform's SBOM
/// an artifact referring to its manifest.
#[test]
fn a_base_image_with_platforms_is_released_as_an_index() {
    let s = Setup::new();
    assert!(
        s.repos.path().join("aarch64/repodata/repomd.xml").is_file(),
        "build-repo.sh made no aarch64 repository: scripts/setup.sh fetches \
         Debian's arm64 busybox-static"
    );
    let config = s.config("platforms = [\"linux/amd64\", \"linux/arm64\"]\n");
    run_ok(&mut s.release(&config, &[]));
    let report = s.report();
    assert_eq!(report["success"], true, "{report:#}");
    let base = item(&report, "base", "sample/base:43");
    assert_eq!(
        base["ran"],
        serde_json::json!(["build", "push", "sign"]),
        "{base:#}"
    );
    let base_ref = format!("{}/sample/base:43", s.mirror.host());
    let published = base["published"].as_str().unwrap();
    assert_eq!(published, mirror_digest(&base_ref));

    let raw = run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{base_ref}"),
    ]));
    let index: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let arches: Vec<&str> = platforms.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(arches, ["amd64", "arm64"]);

    // Signed: verify checks the index and both platform manifests.
    for v in [s.verify_gpg(&base_ref), s.verify_cosign(&base_ref)] {
        let out = stdout(&v);
        assert!(v.status.success(), "{out}{}", stderr(&v));
        for (arch, digest) in &platforms {
            assert!(
                out.contains(&format!("verified platform linux/{arch} ({digest})")),
                "{out}"
            );
        }
    }

    // Each platform's SBOM refers to its manifest, and lists its packages.
    for (arch, digest) in &platforms {
        let list = mirror_support::http_get(&format!(
            "{}/v2/sample/base/referrers/{digest}?artifactType=application/spdx%2Bjson",
            s.mirror.url()
        ));
        let list: Value = serde_json::from_str(&list.expect("the referrers API answers")).unwrap();
        let sboms = list["manifests"].as_array().unwrap();
        assert_eq!(sboms.len(), 1, "{arch}: {list}");
        let artifact = run_ok(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!(
                "docker://{}/sample/base@{}",
                s.mirror.host(),
                sboms[0]["digest"].as_str().unwrap()
            ),
        ]));
        let artifact: Value = serde_json::from_slice(&artifact.stdout).unwrap();
        let sbom = mirror_support::http_get(&format!(
            "{}/v2/sample/base/blobs/{}",
            s.mirror.url(),
            artifact["layers"][0]["digest"].as_str().unwrap()
        ));
        let rpm_arch = if arch == "arm64" { "aarch64" } else { "x86_64" };
        assert!(
            sbom.expect("the SBOM blob is there")
                .contains(&format!("corral-busybox@1.35.0-1?arch={rpm_arch}")),
            "{arch}"
        );
    }
}
