use super::*;
use clap::Parser;

#[derive(Parser, Debug)]
struct Top {
    #[command(subcommand)]
    cmd: DockerfilesCommand,
}

fn run_args(args: &[&str]) -> (anyhow::Result<u8>, String) {
    let (r, out, _) = run_args_err(args);
    (r, out)
}

/// Also returns what went to stderr.
fn run_args_err(args: &[&str]) -> (anyhow::Result<u8>, String, String) {
    let top =
        Top::try_parse_from(std::iter::once("dockerfiles").chain(args.iter().copied())).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let r = run_to(top.cmd, &mut out, &mut err);
    (
        r,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn parses_the_contract() {
    let t = Top::try_parse_from(["x", "lint"]).unwrap();
    let DockerfilesCommand::Lint(a) = t.cmd else {
        panic!()
    };
    assert_eq!(a.paths, vec![PathBuf::from("dockerfiles")]);
    assert_eq!(a.format, LintFormat::Text);
    assert!(Top::try_parse_from(["x", "lint", "--format", "sarif", "a", "b"]).is_ok());
    assert!(Top::try_parse_from(["x", "graph", "--format", "dot"]).is_ok());
    assert!(Top::try_parse_from(["x", "plan", "--all", "--since", "HEAD"]).is_err());
    assert!(Top::try_parse_from(["x", "plan", "--mark-built"]).is_err());
    assert!(
        Top::try_parse_from(["x", "plan", "--base-changed", "base", "--state", "s.json"]).is_ok()
    );
}

#[test]
fn lint_exit_codes() {
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("Dockerfile");
    std::fs::write(&bad, "FROM fedora\n").unwrap();
    let (r, out) = run_args(&["lint", bad.to_str().unwrap()]);
    assert_eq!(r.unwrap(), 1);
    assert!(out.contains("error[CR001]"), "{out}");
    let (r, out) = run_args(&["lint", "--format", "json", t.path().to_str().unwrap()]);
    assert_eq!(r.unwrap(), 1);
    assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
    let (r, _) = run_args(&["lint", t.path().join("missing").to_str().unwrap()]);
    assert!(r.is_err());
    let info_only = t.path().join("x.Dockerfile");
    std::fs::write(
        &info_only,
        "# corral-ignore-file: CR001 CR004 CR008 CR028 CR030\nFROM fedora:43\nEXPOSE 80\n",
    )
    .unwrap();
    let (r, out) = run_args(&["lint", info_only.to_str().unwrap()]);
    assert_eq!(r.unwrap(), 0, "{out}");
    assert!(out.contains("info[CR010]"));
}

#[test]
fn plan_mark_built_then_nothing() {
    let t = tempfile::tempdir().unwrap();
    let lib = t.path().join("lib");
    std::fs::create_dir_all(lib.join("base")).unwrap();
    std::fs::write(
        lib.join("library.toml"),
        "[library]\nregistry = \"quay.io/corral\"\n",
    )
    .unwrap();
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
    let state = t.path().join("state.json");
    let (l, s) = (lib.to_str().unwrap(), state.to_str().unwrap());
    let (r, out) = run_args(&["plan", "--library", l, "--state", s, "--mark-built"]);
    assert_eq!(r.unwrap(), 0);
    assert!(out.contains("1. base (not built)"), "{out}");
    let (r, out) = run_args(&["plan", "--library", l, "--state", s, "--format", "json"]);
    assert_eq!(r.unwrap(), 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["steps"],
        serde_json::json!([])
    );
    let (r, out) = run_args(&["graph", "--library", l, "--format", "json"]);
    assert_eq!(r.unwrap(), 0);
    assert!(out.contains("registry.fedoraproject.org/fedora:43"));
    let (r, _) = run_args(&["graph", "--library", t.path().to_str().unwrap()]);
    assert!(r.is_err());
}

#[test]
fn plan_since_git_revision() {
    let t = tempfile::tempdir().unwrap();
    let lib = t.path().join("dockerfiles");
    let img = |name: &str, from: &str| {
        std::fs::create_dir_all(lib.join(name)).unwrap();
        std::fs::write(lib.join(name).join("Dockerfile"), format!("FROM {from}\n")).unwrap();
        std::fs::write(
            lib.join(name).join("image.toml"),
            "[image]\nsummary = \"x\"\ntags = [\"43\"]\narchitectures = [\"x86_64\"]\n",
        )
        .unwrap();
    };
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(
        lib.join("library.toml"),
        "[library]\nregistry = \"quay.io/corral\"\n",
    )
    .unwrap();
    img("base", "registry.fedoraproject.org/fedora:43");
    img("python3", "quay.io/corral/base:43");
    img("nodejs", "quay.io/corral/base:43");
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(t.path())
            .args([
                "-c",
                "user.email=t@example.invalid",
                "-c",
                "user.name=t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "library"]);
    let l = lib.to_str().unwrap();
    let (r, out) = run_args(&["plan", "--library", l, "--since", "HEAD"]);
    assert_eq!(r.unwrap(), 0);
    assert_eq!(out, "nothing to rebuild\n");
    std::fs::write(
        lib.join("base/Dockerfile"),
        "FROM registry.fedoraproject.org/fedora:43\nRUN true\n",
    )
    .unwrap();
    std::fs::write(lib.join("nodejs/new.js"), "1\n").unwrap();
    let (r, out) = run_args(&[
        "plan",
        "--library",
        l,
        "--since",
        "HEAD",
        "--format",
        "json",
    ]);
    assert_eq!(r.unwrap(), 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<_> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["image"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["base", "nodejs", "python3"]);
    assert!(
        v["steps"][1]["reasons"]
            .to_string()
            .contains("nodejs/new.js changed"),
        "{out}"
    );
    let (r, _) = run_args(&["plan", "--library", l, "--since", "no-such-rev"]);
    assert!(r.unwrap_err().to_string().contains("no-such-rev"));
}

#[test]
fn parses_build_and_plan_engine_flags() {
    let t = Top::try_parse_from([
        "x",
        "build",
        "app",
        "other",
        "--jobs",
        "3",
        "--push",
        "127.0.0.1:5000",
        "--registry-map",
        "quay.io/corral=localhost/t",
        "--network",
        "host",
        "--engine",
        "unix:///x.sock",
    ])
    .unwrap();
    let DockerfilesCommand::Build(a) = t.cmd else {
        panic!()
    };
    assert_eq!(a.names, ["app", "other"]);
    assert_eq!((a.jobs, a.network), (3, BuildNetwork::Host));
    assert_eq!(a.push.as_deref(), Some("127.0.0.1:5000"));
    assert_eq!(a.registry_map[0].to, "localhost/t");
    assert_eq!(a.engine, "unix:///x.sock");
    assert!(!a.changed);
    assert!(Top::try_parse_from(["x", "build", "--jobs", "0"]).is_err());
    assert!(Top::try_parse_from(["x", "build", "--registry-map", "nope"]).is_err());
    assert!(Top::try_parse_from(["x", "build", "--network", "bridge"]).is_err());
    // plan reads the engine or a state file, not both
    assert!(Top::try_parse_from(["x", "plan", "--engine", "unix:///x", "--state", "s"]).is_err());
    assert!(Top::try_parse_from(["x", "plan", "--registry-map", "a=b"]).is_err());
    assert!(Top::try_parse_from([
        "x",
        "plan",
        "--engine",
        "unix:///x",
        "--registry-map",
        "a=b"
    ])
    .is_ok());
}

#[test]
fn lint_says_how_many_files_it_linted() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("Dockerfile"), "FROM fedora\n").unwrap();
    std::fs::create_dir(t.path().join("sub")).unwrap();
    std::fs::write(
        t.path().join("sub/x.Containerfile"),
        "FROM registry.fedoraproject.org/fedora:43\nUSER 1001\nMAINTAINER m\n",
    )
    .unwrap();
    let dir = t.path().to_str().unwrap();
    let (r, out, err) = run_args_err(&["lint", "--format", "json", dir]);
    assert_eq!(r.unwrap(), 1);
    assert!(serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .is_array());
    assert_eq!(
        err, "linted 2 files: 8 errors, 2 warnings, 0 info\n",
        "{out}"
    );
    let (r, out, err) = run_args_err(&["lint", "--format", "sarif", dir]);
    assert_eq!(r.unwrap(), 1);
    let sarif: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sarif["runs"][0]["artifacts"].as_array().unwrap().len(), 2);
    assert!(err.starts_with("linted 2 files:"), "{err}");
}

#[test]
fn lint_of_a_folder_without_dockerfiles_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_str().unwrap();
    let (r, out, _) = run_args_err(&["lint", dir]);
    let msg = format!("{:#}", r.unwrap_err());
    assert!(msg.contains("no Dockerfile in this folder"), "{msg}");
    assert!(msg.starts_with(dir), "{msg}");
    assert_eq!(out, "");
    // files named in a scheme the search does not know: an error, not `[]`
    let odd = t.path().join("web__Dockerfile");
    std::fs::write(&odd, "FROM fedora\n").unwrap();
    let (r, _, _) = run_args_err(&["lint", "--format", "json", dir]);
    assert!(r.is_err());
    // named on the command line, they are linted
    let (r, out, err) = run_args_err(&["lint", odd.to_str().unwrap()]);
    assert_eq!(r.unwrap(), 1);
    assert!(out.contains("web__Dockerfile:1:6: error[CR001]"), "{out}");
    assert!(err.starts_with("linted 1 file: "), "{err}");
}

#[test]
fn lint_of_an_empty_dockerfile_fails() {
    let t = tempfile::tempdir().unwrap();
    let empty = t.path().join("Dockerfile");
    std::fs::write(&empty, "").unwrap();
    let (r, out, _) = run_args_err(&["lint", empty.to_str().unwrap()]);
    assert_eq!(r.unwrap(), 1, "{out}");
    assert!(out.contains("Dockerfile:1:1: error[CR000]"), "{out}");
}

#[test]
fn lint_refuses_devices_and_names_them() {
    let (r, _, _) = run_args_err(&["lint", "/dev/zero"]);
    let msg = format!("{:#}", r.unwrap_err());
    assert_eq!(msg, "/dev/zero: is a character device, not a regular file");
}

#[test]
fn missing_lint_path_names_the_error_once() {
    let (r, _, _) = run_args_err(&["lint", "/nonexistent/Dockerfile"]);
    let msg = format!("{:#}", r.unwrap_err());
    assert_eq!(
        msg,
        "reading /nonexistent/Dockerfile: No such file or directory (os error 2)"
    );
}

#[test]
fn lint_of_many_files_keeps_their_order_and_reports_the_first_unreadable_one() {
    let t = tempfile::tempdir().unwrap();
    // enough files for several threads; each file's finding names it
    let mut paths = Vec::new();
    for i in 0..300 {
        let path = t.path().join(format!("{i:03}.Dockerfile"));
        std::fs::write(&path, format!("FROM fedora:{i}\n")).unwrap();
        paths.push(path.to_str().unwrap().to_owned());
    }
    let mut args = vec!["lint"];
    args.extend(paths.iter().map(String::as_str));
    let (r, out) = run_args(&args);
    assert_eq!(r.unwrap(), 1);
    let mut expected = String::new();
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        expected += &lint::output::text(&[FileReport {
            path: PathBuf::from(path),
            findings: lint::lint_bytes(&bytes),
        }]);
    }
    assert_eq!(out, expected);

    // a device early in the list and one late: the early one is the error
    // whichever thread reads it
    let mut args = args.clone();
    args[20] = "/dev/zero";
    args[280] = "/dev/null";
    let (r, _) = run_args(&args);
    let msg = format!("{:#}", r.unwrap_err());
    assert!(msg.starts_with("/dev/zero:"), "{msg}");
    args.swap(20, 280);
    let (r, _) = run_args(&args);
    let msg = format!("{:#}", r.unwrap_err());
    assert!(msg.starts_with("/dev/null:"), "{msg}");
}
