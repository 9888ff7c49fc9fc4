//! `corral dockerfiles build` and `plan --engine` against a real Docker
//! Engine and corral's own registry mirror, on the test
//! library in tests/fixtures/dockerfiles/ built on the sample base image.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use corral_test_support::*;

/// The test library names its external base `quay.io/corral/base:43`; the
/// sample base is loaded as `quay.io/corral-test/base:43`.
const MAP: &str = "quay.io/corral=quay.io/corral-test";
const TEST_BASE: &str = "quay.io/corral-test/base:43";

/// Builds the sample base image into the OCI layout `dir` (tag 43).
fn build_base(repos: &Path, dir: &Path, extra: &[&str]) {
    run_ok(
        corral(repos)
            .args(["image", "build"])
            .args(extra)
            .arg(repo_root().join("recipes/sample-base.toml"))
            .arg("-o")
            .arg(format!("oci:{}:43", dir.display())),
    );
}

/// Loads the layout `dir` into the engine as [`TEST_BASE`].
fn load_base(engine: &Dockerd, dir: &Path) {
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-daemon-host"])
            .arg(engine.host())
            .arg(format!("oci:{}:43", dir.display()))
            .arg(format!("docker-daemon:{TEST_BASE}")),
    );
}

/// `corral dockerfiles SUB ARGS --library LIB --engine … --registry-map …`.
fn dockerfiles(repos: &Path, engine: &Dockerd, lib: &Path, sub: &str, args: &[&str]) -> Command {
    let mut cmd = corral(repos);
    cmd.args(["dockerfiles", sub])
        .args(args)
        .arg("--library")
        .arg(lib)
        .arg("--engine")
        .arg(engine.host())
        .args(["--registry-map", MAP]);
    cmd
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn git(dir: &Path, args: &[&str]) -> String {
    stdout(&run_ok(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=corral",
                "-c",
                "user.email=corral@example.invalid",
            ])
            .args(args),
    ))
    .trim()
    .to_string()
}

/// The test library copied into `dir/lib` and committed to a new git repository.
fn library_repo(dir: &Path) -> PathBuf {
    let lib = dir.join("lib");
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(repo_root().join("tests/fixtures/dockerfiles"))
            .arg(&lib),
    );
    git(&lib, &["init", "-q"]);
    git(&lib, &["add", "."]);
    git(&lib, &["commit", "-q", "-m", "test library"]);
    lib
}

fn inspect(engine: &Dockerd, reference: &str, format: &str) -> String {
    stdout(&run_ok(
        engine
            .docker()
            .args(["image", "inspect", "--format", format, reference]),
    ))
    .trim()
    .to_string()
}

fn labels(engine: &Dockerd, reference: &str) -> serde_json::Value {
    serde_json::from_str(&inspect(engine, reference, "{{json .Config.Labels}}")).unwrap()
}

fn image_id(engine: &Dockerd, reference: &str) -> String {
    inspect(engine, reference, "{{.Id}}")
}

/// The images a plan lists, in order.
fn planned(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once(". ").map(|(_, rest)| rest))
        .map(|rest| rest.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

/// corral's own mirror on a free loopback port, storing under its own
/// folder, with push credentials `maint:secret`; stopped on drop.
struct Registry {
    child: Child,
    port: u16,
}

const PUSH_USER: &str = "maint";
const PUSH_PASSWORD: &str = "secret";

impl Registry {
    fn start(dir: &Path) -> Registry {
        require_tool("htpasswd");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let htpasswd = run_ok(Command::new("htpasswd").args(["-Bbn", PUSH_USER, PUSH_PASSWORD]));
        std::fs::write(dir.join("htpasswd"), htpasswd.stdout).unwrap();
        let log = std::fs::File::create(dir.join("mirror.log")).unwrap();
        let child = Command::new(corral_bin())
            .args([
                "mirror",
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--storage",
            ])
            .arg(dir.join("mirror"))
            .arg("--htpasswd")
            .arg(dir.join("htpasswd"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting corral mirror serve");
        let r = Registry { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "corral mirror serve did not listen in 30 s; its log:\n{}",
                std::fs::read_to_string(dir.join("mirror.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn builds_pushes_and_plans_the_test_library_against_the_engine() {
    require_tool("skopeo");
    require_tool("git");
    let repos = sample_repos();
    let work = scratch();
    let base_v1 = work.path().join("base-v1");
    build_base(repos.path(), &base_v1, &[]);
    let engine = Dockerd::start();
    load_base(&engine, &base_v1);
    let lib = library_repo(work.path());
    let registry = Registry::start(work.path());
    let lib_ref = |name: &str| format!("quay.io/corral-fixtures/{name}:43");

    // Nothing is built yet: the plan lists everything, bases first.
    let out = run_ok(&mut dockerfiles(repos.path(), &engine, &lib, "plan", &[]));
    assert_eq!(
        planned(&stdout(&out)),
        ["base2", "app", "other"],
        "{}",
        stdout(&out)
    );

    // A full build, two at a time, pushed to corral's mirror with credentials.
    let out = run_ok(
        dockerfiles(
            repos.path(),
            &engine,
            &lib,
            "build",
            &["--jobs", "2", "--push", &registry.host()],
        )
        .env("CORRAL_REGISTRY_USER", PUSH_USER)
        .env("CORRAL_REGISTRY_PASSWORD", PUSH_PASSWORD),
    );
    let text = stdout(&out);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        text.contains("failed: -\n") && text.contains("skipped: -\n"),
        "{text}"
    );
    let built_line = text.lines().find(|l| l.starts_with("built: ")).unwrap();
    for name in ["base2", "app", "other"] {
        assert!(built_line.contains(name), "{text}");
    }
    // build output is streamed per image, and app starts after base2 is built
    assert!(log.contains("[base2] Step 1/"), "{log}");
    let base2_done = log.find("[base2] built").expect("base2 built line");
    let app_start = log.find("[app] building").expect("app building line");
    assert!(base2_done < app_start, "{log}");

    // Provenance labels.
    let head = git(&lib, &["rev-parse", "HEAD"]);
    let app = labels(&engine, &lib_ref("app"));
    assert_eq!(app["dev.corral.source-revision"], head.as_str());
    assert_eq!(
        app["dev.corral.base-digest"],
        format!("base2={}", image_id(&engine, &lib_ref("base2"))).as_str()
    );
    let app_hash = app["dev.corral.context-hash"].as_str().unwrap().to_string();
    assert!(
        app_hash.starts_with("sha256:") && app_hash.len() == 71,
        "{app}"
    );
    // The architecture label is the platform the engine built for (CR029),
    // not a fixed x86_64.
    let arch = run_ok(
        engine
            .docker()
            .args(["version", "--format", "{{.Server.Arch}}"]),
    );
    let arch = stdout(&arch).trim().to_string();
    assert!(!arch.is_empty());
    assert_eq!(
        labels(&engine, &lib_ref("other"))["architecture"],
        arch.as_str()
    );
    let base2 = labels(&engine, &lib_ref("base2"));
    assert_eq!(
        base2["dev.corral.base-digest"],
        format!("quay.io/corral/base:43={}", image_id(&engine, TEST_BASE)).as_str()
    );
    assert_ne!(base2["dev.corral.context-hash"], app_hash.as_str());
    assert_eq!(app["name"], "corral-fixtures/app");
    // the moving tag is the same image
    assert_eq!(
        image_id(&engine, "quay.io/corral-fixtures/app:43-stable"),
        image_id(&engine, &lib_ref("app"))
    );

    // The images run, with no network.
    let run = run_ok(
        engine
            .docker()
            .args(["run", "--rm", "--network", "none", &lib_ref("app")]),
    );
    assert_eq!(stdout(&run), "hello from app\nbase2 layer\n");
    let run = run_ok(engine.docker().args([
        "run",
        "--rm",
        "--network",
        "none",
        &lib_ref("other"),
        "cat",
        "/other.txt",
        "/built-as.txt",
    ]));
    assert_eq!(stdout(&run), "other\n0\n");

    // Every tag is in the registry, with the labels.
    for (name, tag) in [
        ("app", "43"),
        ("app", "43-stable"),
        ("base2", "43"),
        ("other", "43"),
    ] {
        let out = run_ok(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/{name}:{tag}", registry.host()),
        ]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v["Labels"]["dev.corral.context-hash"]
                .as_str()
                .is_some_and(|h| h.starts_with("sha256:")),
            "{name}:{tag}: {v}"
        );
        if name == "app" {
            assert_eq!(v["Labels"]["dev.corral.context-hash"], app_hash.as_str());
        }
    }

    // After a full build, nothing to rebuild.
    let plan = |lib: &Path| {
        stdout(&run_ok(&mut dockerfiles(
            repos.path(),
            &engine,
            lib,
            "plan",
            &[],
        )))
    };
    assert_eq!(plan(&lib), "nothing to rebuild\n");

    // A changed file in base2's folder: base2 and its dependent app.
    std::fs::write(
        lib.join("base2/help.md"),
        "# corral-fixtures/base2\n\nChanged.\n",
    )
    .unwrap();
    let text = plan(&lib);
    assert_eq!(planned(&text), ["base2", "app"], "{text}");
    assert!(text.contains("base2 (build context changed)"), "{text}");
    assert!(text.contains("app (base base2 is rebuilt)"), "{text}");
    let out = run_ok(&mut dockerfiles(
        repos.path(),
        &engine,
        &lib,
        "build",
        &["--changed"],
    ));
    assert!(
        stdout(&out).starts_with("built: base2, app\n"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        labels(&engine, &lib_ref("base2"))["dev.corral.source-revision"],
        format!("{head}-dirty").as_str()
    );
    assert_eq!(plan(&lib), "nothing to rebuild\n");

    // A new base image under the same tag: every image on it, and app.
    let base_v2 = work.path().join("base-v2");
    build_base(repos.path(), &base_v2, &["--label", "x=y"]);
    let old_base = image_id(&engine, TEST_BASE);
    load_base(&engine, &base_v2);
    assert_ne!(image_id(&engine, TEST_BASE), old_base);
    let text = plan(&lib);
    assert_eq!(planned(&text), ["base2", "app", "other"], "{text}");
    assert!(text.contains("other (a base was rebuilt since)"), "{text}");
    let out = run_ok(&mut dockerfiles(
        repos.path(),
        &engine,
        &lib,
        "build",
        &["--changed"],
    ));
    assert!(stdout(&out).contains("failed: -\n"), "{}", stdout(&out));
    assert_eq!(plan(&lib), "nothing to rebuild\n");

    // A failing Dockerfile: it fails, its dependent is skipped, the other
    // image builds, and the exit code is 1.
    let df = lib.join("base2/Dockerfile");
    let mut text = std::fs::read_to_string(&df).unwrap();
    text.push_str("RUN false\n");
    std::fs::write(&df, text).unwrap();
    let out = dockerfiles(repos.path(), &engine, &lib, "build", &[])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("built: other\n"), "{text}");
    assert!(text.contains("failed: base2\n"), "{text}");
    assert!(
        text.contains("skipped: app (base base2 failed)\n"),
        "{text}"
    );
    assert!(text.contains("returned a non-zero code: 1"), "{text}");
}

#[test]
fn build_reports_an_unreachable_engine() {
    let work = scratch();
    let out = Command::new(corral_bin())
        .args(["dockerfiles", "build", "--library"])
        .arg(repo_root().join("tests/fixtures/dockerfiles"))
        .arg("--engine")
        .arg(format!(
            "unix://{}",
            work.path().join("none.sock").display()
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the engine at unix://"), "{err}");
}
