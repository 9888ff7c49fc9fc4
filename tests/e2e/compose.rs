//! End-to-end tests of Atomic Host composes: the sample RPM repositories
//! and ready trees composed into an archive repository, checked with the
//! `ostree` CLI, pulled by a client that verifies the GPG signatures.
//!
//! They run the compose command group through
//! `crates/compose/examples/compose.rs` (`$CORRAL_COMPOSE_BIN`, or built
//! here with cargo). Once `corral compose` is wired into the CLI, point
//! [`compose`] at `corral_bin()` with a leading `compose` argument.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use corral_e2e::*;

const REF: &str = "corral-sample/43/x86_64/atomic-host";

/// `compose ARGS…` run from the checkout, signing with `gpg`'s key.
fn compose(repos: Option<&Path>, gpg: &Gpg) -> Command {
    let mut cmd = Command::new(corral_bin());
    cmd.arg("compose")
        .current_dir(repo_root())
        .env("GNUPGHOME", gpg.home.path())
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .env_remove("RUST_LOG");
    if let Some(repos) = repos {
        cmd.env("CORRAL_SAMPLE_REPOS", repos);
    }
    cmd
}

fn run_fails(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert_eq!(
        out.status.code(),
        Some(2),
        "{cmd:?} should fail with 2\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ostree(repo: &Path) -> Command {
    require_tool("ostree");
    let mut cmd = Command::new("ostree");
    cmd.arg(format!("--repo={}", repo.display()));
    cmd
}

fn rev_parse(repo: &Path, rev: &str) -> String {
    stdout(&run_ok(ostree(repo).args(["rev-parse", rev])))
        .trim()
        .to_string()
}

fn metadata(repo: &Path, rev: &str, key: &str) -> String {
    stdout(&run_ok(ostree(repo).args([
        "show",
        rev,
        &format!("--print-metadata-key={key}"),
    ])))
    .trim()
    .to_string()
}

/// Commits of `ostree log REF`, newest first.
fn log_commits(repo: &Path, rev: &str) -> Vec<String> {
    stdout(&run_ok(ostree(repo).args(["log", rev])))
        .lines()
        .filter_map(|l| l.strip_prefix("commit "))
        .map(str::to_string)
        .collect()
}

fn delta_list(repo: &Path) -> Vec<String> {
    stdout(&run_ok(ostree(repo).args(["static-delta", "list"])))
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with("(No"))
        .collect()
}

fn run_json(cmd: &mut Command) -> serde_json::Value {
    let out = run_ok(cmd.arg("--json"));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", stdout(&out)))
}

/// A client repository with a remote `r` that verifies commits and the
/// summary against `key`.
fn client(dir: &Path, server: &Path, key: &Path) -> PathBuf {
    let repo = dir.to_path_buf();
    run_ok(ostree(&repo).args(["init", "--mode=archive"]));
    run_ok(
        ostree(&repo)
            .args([
                "remote",
                "add",
                "--set=gpg-verify=true",
                "--set=gpg-verify-summary=true",
            ])
            .arg(format!("--gpg-import={}", key.display()))
            .arg("r")
            .arg(format!("file://{}", server.display())),
    );
    repo
}

#[test]
fn compose_sign_pull_and_update() {
    let repos = sample_repos();
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let stranger = Gpg::new("someone else <stranger@corral.invalid>");
    let work = scratch();
    let server = work.path().join("repo");

    let first = run_json(
        compose(Some(repos.path()), &gpg)
            .args(["run", "sample-atomic", "--repo"])
            .arg(&server),
    );
    let first = &first[0];
    assert_eq!(first["result"], "committed", "{first}");
    let c1 = first["checksum"].as_str().unwrap().to_string();
    let v1 = first["version"].as_str().unwrap().to_string();
    assert!(v1.starts_with("43.") && v1.ends_with(".0"), "{v1}");

    // What ostree sees.
    assert_eq!(rev_parse(&server, REF), c1);
    assert_eq!(log_commits(&server, REF), std::slice::from_ref(&c1));
    assert_eq!(metadata(&server, REF, "version"), format!("'{v1}'"));
    let inputhash = metadata(&server, REF, "corral.inputhash");
    assert_eq!(inputhash.len(), 66, "{inputhash}");
    assert_eq!(metadata(&server, REF, "rpmostree.inputhash"), inputhash);
    let packages = metadata(&server, REF, "corral.packages");
    for p in [
        "corral-kernel-6.1.0-1.noarch",
        "corral-hello-1.0-1.noarch",
        "corral-busybox-",
    ] {
        assert!(packages.contains(p), "{p} missing from {packages}");
    }
    assert_eq!(metadata(&server, REF, "ostree.linux"), "'6.1.0-corral'");
    let ls = stdout(&run_ok(ostree(&server).args(["ls", "-R", REF])));
    for want in [
        "/usr/lib/modules/6.1.0-corral/vmlinuz",
        "/usr/lib/modules/6.1.0-corral/initramfs.img",
        "/usr/etc/passwd",
        "/usr/etc/os-release -> ../usr/lib/os-release",
        "/usr/lib/os-release",
        "/usr/lib/sysimage/rpm/rpmdb.sqlite",
        "/usr/lib/tmpfiles.d/corral-var.conf",
        "/home -> var/home",
        "/root -> var/roothome",
        "/ostree -> sysroot/ostree",
        "/sysroot",
    ] {
        assert!(ls.contains(want), "`{want}` missing from\n{ls}");
    }
    assert!(
        !ls.lines().any(|l| l.ends_with(" /etc")),
        "/etc left in\n{ls}"
    );
    assert!(!ls.contains("/var/"), "/var is not empty:\n{ls}");
    let tmpfiles = stdout(&run_ok(ostree(&server).args([
        "cat",
        REF,
        "/usr/lib/tmpfiles.d/corral-var.conf",
    ])));
    assert!(tmpfiles.contains("d /var/home 0755 0 0 - -"), "{tmpfiles}");
    run_ok(ostree(&server).arg("fsck"));
    assert_eq!(
        delta_list(&server),
        std::slice::from_ref(&c1),
        "a from-scratch delta"
    );

    // A client trusting the key pulls; one trusting another key refuses.
    let good = client(&work.path().join("client"), &server, &gpg.public_key);
    run_ok(ostree(&good).args(["pull", "r", REF]));
    assert_eq!(rev_parse(&good, &format!("r:{REF}")), c1);
    let bad = client(&work.path().join("stranger"), &server, &stranger.public_key);
    let out = ostree(&bad).args(["pull", "r", REF]).output().unwrap();
    assert!(
        !out.status.success(),
        "a pull trusting another key succeeded"
    );
    assert!(
        stderr(&out).to_lowercase().contains("gpg") || stderr(&out).contains("signature"),
        "{}",
        stderr(&out)
    );

    // The same input again: no commit.
    let out = run_ok(
        compose(Some(repos.path()), &gpg)
            .args(["run", "sample-atomic", "--repo"])
            .arg(&server),
    );
    assert!(stdout(&out).contains("unchanged"), "{}", stdout(&out));
    assert_eq!(log_commits(&server, REF), std::slice::from_ref(&c1));

    // corral-hello 1.1 in a rebuilt repository: a child commit.
    let updated = scratch();
    run_ok(
        Command::new("bash")
            .arg(repo_root().join("tests/fixtures/rpms/build-repo.sh"))
            .arg(updated.path())
            .env("HELLO_VERSION", "1.1"),
    );
    let second = run_json(
        compose(Some(updated.path()), &gpg)
            .args(["run", "sample-atomic", "--repo"])
            .arg(&server),
    );
    let second = &second[0];
    assert_eq!(second["result"], "committed", "{second}");
    let c2 = second["checksum"].as_str().unwrap().to_string();
    assert_eq!(second["parent"], c1.as_str());
    let v2 = second["version"].as_str().unwrap();
    assert_eq!(v2, format!("{}.1", v1.strip_suffix(".0").unwrap()));
    assert_eq!(log_commits(&server, REF), [c2.clone(), c1.clone()]);
    assert!(metadata(&server, REF, "corral.packages").contains("corral-hello-1.1-1.noarch"));

    // Deltas: published exactly when smaller than a plain pull.
    let deltas = second["deltas"].as_array().unwrap();
    assert_eq!(deltas.len(), 2, "{second}");
    let listed = delta_list(&server);
    for d in deltas {
        let name = match d["from"].as_str() {
            Some(from) => format!("{from}-{c2}"),
            None => c2.clone(),
        };
        let smaller = d["delta_bytes"].as_u64() < d["pull_bytes"].as_u64();
        assert_eq!(d["published"], smaller, "{d}");
        assert_eq!(listed.contains(&name), smaller, "{name} in {listed:?}");
    }
    run_ok(ostree(&server).arg("fsck"));

    // The diff.
    let diff = run_json(
        compose(None, &gpg)
            .args(["diff", "--repo"])
            .arg(&server)
            .args([REF, &v1, v2]),
    );
    assert_eq!(diff["added"], serde_json::json!([]));
    assert_eq!(diff["removed"], serde_json::json!([]));
    assert_eq!(
        diff["changed"],
        serde_json::json!([{"name": "corral-hello", "arch": "noarch", "from": "1.0-1", "to": "1.1-1"}])
    );
    let text = stdout(&run_ok(
        compose(None, &gpg)
            .args(["diff", "--repo"])
            .arg(&server)
            .args([REF, &c1[..12], &c2]),
    ));
    assert_eq!(text, "changed  corral-hello.noarch 1.0-1 -> 1.1-1\n");

    // The client updates.
    run_ok(ostree(&good).args(["pull", "r", REF]));
    assert_eq!(rev_parse(&good, &format!("r:{REF}")), c2);
    run_ok(ostree(&good).arg("fsck"));
}

/// A ready tree with a stand-in kernel.
fn ready_tree(dir: &Path, marker: &str) {
    for d in [
        "usr/bin",
        "usr/lib/modules/6.9.0-t",
        "etc",
        "var/lib/app",
        "home",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("usr/lib/modules/6.9.0-t/vmlinuz"), "kernel").unwrap();
    std::fs::write(
        dir.join("usr/lib/modules/6.9.0-t/initramfs.img"),
        "initramfs",
    )
    .unwrap();
    std::fs::write(dir.join("etc/os-release"), "ID=corral\nVERSION_ID=43\n").unwrap();
    std::fs::write(dir.join("var/lib/app/state"), "seed").unwrap();
    std::fs::write(dir.join("usr/bin/marker"), marker).unwrap();
}

/// A stream file like sample-atomic but keeping `keep` commits.
fn stream_file(dir: &Path, keep: u32) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("ostree-refs/sample-atomic.toml"))
        .unwrap()
        .replace("keep = 3", &format!("keep = {keep}"));
    let path = dir.join("retained.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn ready_trees_retention_force_and_reason() {
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let server = work.path().join("repo");
    let stream = stream_file(work.path(), 2);
    let tree = work.path().join("tree");
    ready_tree(&tree, "one");
    let before = tree_facts(&tree);

    let run = |extra: &[&str]| -> serde_json::Value {
        let v = run_json(
            compose(Some(Path::new("/nonexistent")), &gpg)
                .arg("run")
                .arg(&stream)
                .arg("--repo")
                .arg(&server)
                .arg("--rootfs")
                .arg(&tree)
                .args(extra),
        );
        v[0].clone()
    };
    let first = run(&["--zlib-level", "1"]);
    assert_eq!(first["result"], "committed", "{first}");
    assert_eq!(tree_facts(&tree), before, "the given tree was modified");
    let config = std::fs::read_to_string(server.join("config")).unwrap();
    assert!(config.contains("zlib-level=1"), "{config}");
    let c1 = first["checksum"].as_str().unwrap().to_string();
    let ls = stdout(&run_ok(ostree(&server).args(["ls", "-R", REF])));
    assert!(ls.contains("/usr/lib/modules/6.9.0-t/vmlinuz"), "{ls}");
    assert!(ls.contains("/usr/share/factory/var/lib/app/state"), "{ls}");
    assert_eq!(metadata(&server, REF, "corral.packages"), "@as []");

    // Same tree: unchanged; --force commits anyway, with the reason.
    assert_eq!(run(&[])["result"], "unchanged");
    let forced = run(&["--force", "--reason", "CVE-2026-0001: rebuild"]);
    assert_eq!(forced["result"], "committed", "{forced}");
    let c2 = forced["checksum"].as_str().unwrap().to_string();
    assert_eq!(
        metadata(&server, REF, "corral.reason"),
        "'CVE-2026-0001: rebuild'"
    );

    // Changed trees: retention keeps exactly the last two.
    std::fs::write(tree.join("usr/bin/marker"), "three").unwrap();
    let c3 = run(&[])["checksum"].as_str().unwrap().to_string();
    std::fs::write(tree.join("usr/bin/marker"), "four").unwrap();
    let fourth = run(&[]);
    let c4 = fourth["checksum"].as_str().unwrap().to_string();
    assert_eq!(
        fourth["pruned"],
        serde_json::json!([c2.clone()]),
        "{fourth}"
    );
    assert_eq!(log_commits(&server, REF), [c4.clone(), c3.clone()]);
    for gone in [&c1, &c2] {
        let out = ostree(&server).args(["show", gone]).output().unwrap();
        assert!(!out.status.success(), "{gone} was kept");
    }
    let versions: Vec<String> = [&c4, &c3]
        .iter()
        .map(|c| metadata(&server, c, "version"))
        .collect();
    assert!(versions[0].ends_with(".3'"), "{versions:?}");
    assert!(versions[1].ends_with(".2'"), "{versions:?}");
    for delta in delta_list(&server) {
        assert!(
            !delta.contains(&c1) && !delta.contains(&c2),
            "delta {delta} of a pruned commit"
        );
    }
    run_ok(ostree(&server).arg("fsck"));
    let client_repo = client(&work.path().join("client"), &server, &gpg.public_key);
    run_ok(ostree(&client_repo).args(["pull", "r", REF]));
    assert_eq!(rev_parse(&client_repo, &format!("r:{REF}")), c4);

    // A tree without a kernel: a clear error, and the ref stays.
    let bare = work.path().join("bare");
    std::fs::create_dir_all(bare.join("etc")).unwrap();
    let out = run_fails(
        compose(None, &gpg)
            .arg("run")
            .arg(&stream)
            .arg("--repo")
            .arg(&server)
            .arg("--rootfs")
            .arg(&bare),
    );
    assert!(stderr(&out).contains("no kernel"), "{}", stderr(&out));
    assert_eq!(rev_parse(&server, REF), c4);

    // Plan: composed today, so not due; --due composes nothing.
    let plan = run_json(
        compose(None, &gpg)
            .arg("plan")
            .arg(&stream)
            .arg("--repo")
            .arg(&server),
    );
    assert_eq!(plan[0]["ref"], REF);
    assert_eq!(plan[0]["due"], false, "{plan}");
    assert_eq!(plan[0]["head"]["checksum"], c4.as_str());
    assert!(plan[0]["next_release_day"].as_str().unwrap().len() == 10);
    std::fs::write(tree.join("usr/bin/marker"), "five").unwrap();
    let due = run(&["--due"]);
    assert_eq!(due["result"], "not-due", "{due}");
    assert_eq!(rev_parse(&server, REF), c4);

    // An empty repository: every stream is due.
    let plan = run_json(
        compose(None, &gpg)
            .arg("plan")
            .arg(&stream)
            .arg("--repo")
            .arg(work.path().join("empty")),
    );
    assert_eq!(plan[0]["due"], true, "{plan}");
    assert_eq!(plan[0]["head"], serde_json::Value::Null);
}

#[test]
fn a_held_lock_names_its_holder() {
    require_tool("flock");
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let server = work.path().join("repo");
    std::fs::create_dir_all(&server).unwrap();
    let lock = server.join(".corral-compose.lock");
    let mut holder = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {0}; exec flock --no-fork {0} sleep 30",
            lock.display()
        ))
        .spawn()
        .unwrap();
    let pid = holder.id();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let tree = work.path().join("tree");
    ready_tree(&tree, "one");
    let out = run_fails(
        compose(None, &gpg)
            .args(["run", "sample-atomic", "--repo"])
            .arg(&server)
            .arg("--rootfs")
            .arg(&tree),
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        stderr(&out).contains(&format!("locked by pid {pid}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_stream_files_name_file_line_and_column() {
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let text = std::fs::read_to_string(repo_root().join("ostree-refs/sample-atomic.toml"))
        .unwrap()
        .replace("every-days = 14", "every-days = 14\nevery-weeks = 2");
    let path = work.path().join("bad.toml");
    std::fs::write(&path, &text).unwrap();
    let line = text.lines().position(|l| l == "every-weeks = 2").unwrap() + 1;
    for sub in ["run", "plan"] {
        let out = run_fails(
            compose(None, &gpg)
                .arg(sub)
                .arg(&path)
                .arg("--repo")
                .arg(work.path().join("repo")),
        );
        let want = format!("{}:{line}:1:", path.display());
        assert!(
            stderr(&out).contains(&want),
            "{sub}: want {want} in {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("every-weeks"), "{}", stderr(&out));
    }
    let fedora = run_json(
        compose(None, &gpg)
            .args(["plan", "fedora-atomic-host", "--repo"])
            .arg(work.path().join("repo")),
    );
    assert_eq!(fedora[0]["ref"], "fedora/43/x86_64/atomic-host");
}

/// The timer and service in docs/compose.md are the ones release
/// engineers copy: systemd itself must accept them.
#[test]
fn the_documented_systemd_units_verify() {
    verify_documented_units(
        "docs/compose.md",
        &["corral-compose.service", "corral-compose.timer"],
    );
}
