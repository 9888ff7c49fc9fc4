//! `corral test` against a real Docker Engine: the test library's base2
//! image (built on the sample base) runs its image.toml tests in
//! containers labelled with their own MCS pair.

use std::path::Path;
use std::process::{Command, Output};

use corral_test_support::*;

const BASE2: &str = "quay.io/corral-fixtures/base2:43";

/// `corral test ARGS` against `engine`, allocating in `work/mcs`.
fn corral_test(engine: &Dockerd, work: &Path, args: &[&str]) -> Output {
    Command::new(corral_bin())
        .arg("test")
        .args(args)
        .arg("--engine")
        .arg(engine.host())
        .arg("--mcs-dir")
        .arg(work.join("mcs"))
        .arg("--scratch")
        .arg(work)
        .env_remove("RUST_LOG")
        .output()
        .expect("running corral test")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The sample base loaded as the library's FROM image, and base2 built on it.
fn engine_with_base2(work: &Path) -> Dockerd {
    require_tool("skopeo");
    let repos = sample_repos();
    let layout = work.join("base");
    run_ok(
        corral(repos.path())
            .args(["image", "build"])
            .arg(repo_root().join("recipes/sample-base.toml"))
            .arg("-o")
            .arg(format!("oci:{}:43", layout.display())),
    );
    let engine = Dockerd::start();
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-daemon-host"])
            .arg(engine.host())
            .arg(format!("oci:{}:43", layout.display()))
            .arg("docker-daemon:quay.io/corral/base:43"),
    );
    run_ok(
        engine
            .docker()
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "--network", "none", "-t", BASE2])
            .arg(repo_root().join("tests/fixtures/dockerfiles/base2")),
    );
    engine
}

#[test]
fn runs_image_tests_in_labelled_containers() {
    let work = scratch();
    let engine = engine_with_base2(work.path());
    let lib = repo_root().join("tests/fixtures/dockerfiles");
    let lib = lib.to_str().unwrap();
    let junit = work.path().join("report.xml");

    // base2's image.toml tests pass, each run's containers kept for inspection
    let out = corral_test(
        &engine,
        work.path(),
        &[
            "base2",
            "--library",
            lib,
            "--json",
            "--keep",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["enforcement"], "disabled", "{report:#}");
    assert!(report["enforcement_note"]
        .as_str()
        .unwrap()
        .contains("labels were set but not enforced"));
    let img = &report["images"][0];
    let level = img["level"].as_str().unwrap().to_string();
    assert!(level.starts_with("s0:c"), "{img:#}");
    assert_eq!(
        img["security_opt"],
        serde_json::json!(["label=type:container_t", format!("label=level:{level}")])
    );
    let cases: Vec<&str> = img["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
        "mount /srv/data:Z",
        "user 1001",
        "command corral-hello",
        "file /usr/bin/corral-hello present",
        "file /usr/share/doc/corral-hello/README absent",
    ] {
        assert!(cases.contains(&want), "{want} missing from {cases:?}");
    }
    assert!(img["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["outcome"] == "passed"));

    // the engine has the label on the kept container
    let hello = img["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "command corral-hello")
        .unwrap();
    let id = hello["container"].as_str().unwrap();
    let opts = run_ok(engine.docker().args([
        "inspect",
        "--format",
        "{{json .HostConfig.SecurityOpt}}",
        id,
    ]));
    let opts: Vec<String> = serde_json::from_slice(&opts.stdout).unwrap();
    assert_eq!(
        opts,
        [
            "label=type:container_t".to_string(),
            format!("label=level:{level}")
        ]
    );
    // its :Z directory carries the run's file label
    let binds =
        run_ok(
            engine
                .docker()
                .args(["inspect", "--format", "{{json .HostConfig.Binds}}", id]),
        );
    let binds: Vec<String> = serde_json::from_slice(&binds.stdout).unwrap();
    let host = binds[0].strip_suffix(":/srv/data:Z").expect("a :Z bind");
    let xattr =
        run_ok(Command::new("getfattr").args(["--only-values", "-n", "security.selinux", host]));
    assert_eq!(
        text(&xattr.stdout).trim_end_matches('\0'),
        format!("system_u:object_r:container_file_t:{level}")
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite name=\"base2\""), "{xml}");
    assert!(xml.contains("failures=\"0\" errors=\"0\""), "{xml}");
    assert!(
        xml.contains(&format!("name=\"selinux.level\" value=\"{level}\"")),
        "{xml}"
    );

    // the pair was released: nothing is held once the run is over
    let held = std::fs::read_to_string(work.path().join("mcs/mcs.lock")).unwrap();
    assert_eq!(
        held.lines().filter(|l| !l.starts_with('#')).count(),
        0,
        "{held}"
    );

    // the kept containers are not running, so the next run may reuse the pair;
    // a running labelled container's pair is reserved
    run_ok(engine.docker().args([
        "run",
        "-d",
        "--network",
        "none",
        "--security-opt",
        "label=level:s0:c0,c1",
        BASE2,
        "sleep",
        "300",
    ]));
    let out = corral_test(&engine, work.path(), &["base2", "--library", lib, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(report["images"][0]["level"], "s0:c0,c1", "{report:#}");
}

#[test]
fn failing_tests_exit_1_and_unrunnable_exit_2() {
    let work = scratch();
    let engine = engine_with_base2(work.path());
    let spec = work.path().join("failing.toml");
    std::fs::write(
        &spec,
        r#"
[image]
summary = "failing"
tags = ["1"]
architectures = ["x86_64"]

[tests]
user = "0"
files-absent = ["/usr/bin/corral-hello"]

[[tests.commands]]
run = ["corral-hello"]
stdout = "^Goodbye"
"#,
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let junit = work.path().join("fail.xml");
    let out = corral_test(
        &engine,
        work.path(),
        &[BASE2, "--spec", spec, "--junit", junit.to_str().unwrap()],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("FAIL user 0"), "{stdout}");
    assert!(
        stdout.contains("FAIL file /usr/bin/corral-hello absent: exists"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL command corral-hello: stdout \"Hello from corral-hello 1.0\\n\" does not match /^Goodbye/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("labels were set but not enforced"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("failures=\"3\""), "{xml}");

    // an image the engine does not have cannot run
    let out = corral_test(
        &engine,
        work.path(),
        &["quay.io/nope/nope:1", "--spec", spec],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("error: inspecting quay.io/nope/nope:1 in the engine"));

    // an exhausted category range is reported, not papered over
    let out = corral_test(
        &engine,
        work.path(),
        &[BASE2, "--spec", spec, "--mcs-range", "0-1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    std::fs::write(
        work.path().join("mcs/mcs.lock"),
        format!("0 1 {}\n", std::process::id()),
    )
    .unwrap();
    let out = corral_test(
        &engine,
        work.path(),
        &[BASE2, "--spec", spec, "--mcs-range", "0-1"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("all 1 category pairs in c0-c1 are taken"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn probes_a_service_inside_its_network_namespace() {
    let work = scratch();
    let engine = engine_with_base2(work.path());
    let web = work.path().join("web");
    std::fs::create_dir(&web).unwrap();
    std::fs::write(
        web.join("Dockerfile"),
        format!("FROM {BASE2}\nCMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/opt/app-root\"]\n"),
    )
    .unwrap();
    run_ok(
        engine
            .docker()
            .env("DOCKER_BUILDKIT", "0")
            .args([
                "build",
                "-q",
                "--network",
                "none",
                "-t",
                "corral-test/web:1",
            ])
            .arg(&web),
    );
    let spec = |http: &str, status: u16| {
        let path = work.path().join(format!("web-{status}.toml"));
        std::fs::write(
            &path,
            format!(
                "[image]\nsummary = \"web\"\ntags = [\"1\"]\narchitectures = [\"x86_64\"]\n\n\
                 [tests.service]\nport = 8080\nhttp = \"{http}\"\nstatus = {status}\ntimeout-seconds = 5\n"
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    };
    let ok = spec("/base2.txt", 200);
    let out = corral_test(&engine, work.path(), &["corral-test/web:1", "--spec", &ok]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("ok   service port 8080 GET /base2.txt: GET /base2.txt answered 200"),
        "{stdout}"
    );

    let missing = spec("/missing", 200);
    let out = corral_test(
        &engine,
        work.path(),
        &["corral-test/web:1", "--spec", &missing],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("answered 404, want 200"), "{stdout}");
}
