//! The built `corral` binary on hostile or unusual input: a stdout that is
//! closed, configuration paths that are devices, missing files, recipes
//! that try to smuggle options into dnf. The binary is the one cargo built
//! for this run (`CARGO_BIN_EXE_corral`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn corral() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_corral"));
    cmd.env_remove("RUST_LOG").env_remove("RUST_BACKTRACE");
    cmd
}

/// Runs `cmd` with its stdout a pipe whose read end is closed as soon as
/// the child is started, as `corral … | true` does.
fn with_closed_stdout(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const RECIPE: &str = r#"
name = "t"
releasever = "43"
packages = ["bash", "coreutils"]

[[repo]]
id = "base"
baseurl = "repo"
gpgcheck = false
"#;

fn recipe(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("r.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn assert_quiet_success(what: &str, out: &Output) {
    assert_eq!(
        (out.status.code(), stderr(out).as_str()),
        (Some(0), ""),
        "{what}: a closed stdout should end the command quietly"
    );
}

#[test]
fn closed_stdout_ends_tree_plan_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let r = recipe(dir.path(), RECIPE);
    for json in [false, true] {
        let mut cmd = corral();
        cmd.args(["tree", "plan"]).arg(&r);
        if json {
            cmd.arg("--json");
        }
        assert_quiet_success("tree plan", &with_closed_stdout(cmd));
    }
}

#[test]
fn closed_stdout_ends_image_build_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hello"), "hi\n").unwrap();
    let mut cmd = corral();
    cmd.args(["image", "build", "--rootfs"])
        .arg(&rootfs)
        .arg("-o")
        .arg(format!("oci:{}:1", dir.path().join("out").display()))
        .env("SOURCE_DATE_EPOCH", "0");
    let out = with_closed_stdout(cmd);
    assert_quiet_success("image build", &out);
    // the work was done; only the report had nowhere to go
    assert!(dir.path().join("out/index.json").is_file());
}

#[test]
fn closed_stdout_ends_dockerfiles_graph_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path();
    std::fs::write(
        lib.join("library.toml"),
        "[library]\nregistry = \"quay.io/corral\"\n",
    )
    .unwrap();
    std::fs::create_dir(lib.join("base")).unwrap();
    std::fs::write(
        lib.join("base/Dockerfile"),
        "FROM registry.fedoraproject.org/fedora:43\n",
    )
    .unwrap();
    std::fs::write(
        lib.join("base/image.toml"),
        "[image]\nsummary = \"b\"\ntags = [\"43\"]\narchitectures = [\"x86_64\"]\n",
    )
    .unwrap();
    let mut cmd = corral();
    cmd.args(["dockerfiles", "graph", "--library"]).arg(lib);
    assert_quiet_success("dockerfiles graph", &with_closed_stdout(cmd));
}

/// Commands of other crates still print with `println!`, which panics on
/// a closed stdout; the binary catches that panic.
#[test]
fn closed_stdout_ends_println_commands_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("k.gpg");
    std::fs::write(&keyring, b"").unwrap();
    let mut cmd = corral();
    cmd.args([
        "policy",
        "--mirror",
        "http://127.0.0.1:5000",
        "--gpg-keyring",
    ])
    .arg(&keyring)
    .arg("--out")
    .arg(dir.path().join("policy"));
    assert_quiet_success("policy", &with_closed_stdout(cmd));
}

#[test]
fn closed_stdout_after_help_is_quiet() {
    let mut cmd = corral();
    cmd.arg("--help");
    assert_quiet_success("--help", &with_closed_stdout(cmd));
}

/// Runs `cmd`, killing it if it has not ended within `limit`: a binary
/// that reads /dev/zero would otherwise fill memory until it is killed.
fn output_within(mut cmd: Command, limit: std::time::Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{cmd:?} still ran after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn tree_plan_refuses_dev_zero_by_name() {
    let mut cmd = corral();
    cmd.args(["tree", "plan", "/dev/zero"]);
    let out = output_within(cmd, std::time::Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: /dev/zero: is a character device, not a regular file\n"
    );
}

#[test]
fn missing_recipe_names_the_error_once() {
    let out = corral()
        .args(["tree", "plan", "/nonexistent/r.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: reading /nonexistent/r.toml: No such file or directory (os error 2)\n"
    );
}

#[test]
fn tree_plan_refuses_values_that_would_reach_dnf() {
    let dir = tempfile::tempdir().unwrap();
    for (from, to, want) in [
        (
            "\"coreutils\"",
            "\"--installroot=/\"",
            "package `--installroot=/` starts with `-`",
        ),
        (
            "id = \"base\"",
            "id = \"main]\\n[evil\"",
            "repository id `main]\\n[evil`",
        ),
        (
            "id = \"base\"",
            "id = \"main\"",
            "r.toml:7:6: repository id `main` is reserved",
        ),
        (
            "releasever = \"43\"",
            "releasever = \"43\"\narch = \"../../etc\"",
            "arch `../../etc` is not one of",
        ),
    ] {
        let r = recipe(dir.path(), &RECIPE.replace(from, to));
        let out = corral().args(["tree", "plan"]).arg(&r).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{to}");
        assert!(stderr(&out).contains(want), "{to}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    // a valid recipe: packages come after `--`
    let r = recipe(dir.path(), RECIPE);
    let out = corral()
        .args(["tree", "plan", "--json"])
        .arg(&r)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let argv: Vec<&str> = plan["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        &argv[argv.len() - 4..],
        ["install", "--", "bash", "coreutils"]
    );
}

#[test]
fn dockerfiles_lint_refuses_to_lint_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = corral()
        .args(["dockerfiles", "lint", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no Dockerfile in this folder"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    let empty = dir.path().join("Dockerfile");
    std::fs::write(&empty, "").unwrap();
    let out = corral()
        .args(["dockerfiles", "lint"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an empty Dockerfile has no FROM"
    );
    assert_eq!(stderr(&out), "linted 1 file: 1 error, 0 warnings, 0 info\n");
}

#[test]
fn mcs_range_error_says_why() {
    let out = corral()
        .args(["test", "--mcs-range", "5-5", "x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("LOW must be below HIGH"), "{err}");
}
