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

use corral_test_support::*;

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
    assert!(
        !ls.lines().any(|l| l
            .split_whitespace()
            .nth(4)
            .is_some_and(|p| p.starts_with("/var/"))),
        "/var is not empty:\n{ls}"
    );
    assert!(ls.contains("/usr/local -> ../var/usrlocal"), "{ls}");
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

    // The stream file the website reads, rewritten by each compose.
    let file = server.join("streams/sample-atomic.json");
    assert_eq!(second["stream_file"], file.display().to_string());
    let published: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(published["name"], "sample-atomic");
    assert_eq!(published["ref"], REF);
    assert_eq!(published["description"], "corral sample Atomic Host 43");
    assert_eq!(published["key"].as_str().unwrap().len(), 40, "{published}");
    let versions = published["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{published}");
    assert_eq!(versions[0]["version"], v2);
    assert_eq!(versions[0]["commit"], c2.as_str());
    assert_eq!(versions[1]["version"], v1.as_str());
    assert_eq!(versions[1]["commit"], c1.as_str());
    assert_eq!(
        versions[0]["diff"],
        serde_json::json!({"added": [], "removed": [], "changed": [
            {"name": "corral-hello.noarch", "from": "1.0-1", "to": "1.1-1"}]})
    );
    assert!(
        versions[1]["diff"]["added"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "corral-hello-1.0-1.noarch"),
        "the first version adds every package: {published}"
    );
    assert!(versions[0]["date"].as_str().unwrap().ends_with('Z'));
    let names: Vec<_> = std::fs::read_dir(server.join("streams"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["sample-atomic.json"], "no temporary file left");

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

    // A repository with nothing composed yet: every stream is due.
    let fresh = work.path().join("fresh");
    init_archive_repo(&fresh);
    let plan = run_json(
        compose(None, &gpg)
            .arg("plan")
            .arg(&stream)
            .arg("--repo")
            .arg(&fresh),
    );
    assert_eq!(plan[0]["due"], true, "{plan}");
    assert_eq!(plan[0]["head"], serde_json::Value::Null);
}

/// `plan --repo` on something that is no repository is an error, not
/// "nothing composed yet, due".
#[test]
fn plan_refuses_what_is_not_a_repository() {
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let file = work.path().join("a-file");
    std::fs::write(&file, "not a repository").unwrap();
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let other = work.path().join("other");
    std::fs::create_dir_all(other.join("stuff")).unwrap();
    for (repo, want) in [
        (work.path().join("missing"), "no OSTree repository there"),
        (file, "is a file, not an OSTree repository"),
        (empty, "is an empty directory, not an OSTree repository"),
        (other, "is a directory, not an OSTree repository"),
    ] {
        let out = run_fails(
            compose(None, &gpg)
                .args(["plan", "sample-atomic", "--repo"])
                .arg(&repo)
                .arg("--json"),
        );
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&repo.display().to_string()) && err.contains(want),
            "{want}: {err}"
        );
    }
}

/// A stream for ready trees only: no `[tree]` table.
fn rootfs_only_stream(dir: &Path) -> PathBuf {
    let path = dir.join("rootfs-only.toml");
    std::fs::write(
        &path,
        format!(
            "ref = \"{REF}\"\nreleasever = \"43\"\n[cadence]\nevery-days = 14\nanchor = 2026-01-06\n[sign]\ngpg-key = \"compose@corral.invalid\"\n"
        ),
    )
    .unwrap();
    path
}

/// The same ready tree composed into two repositories gives the same
/// commit: its timestamp is SOURCE_DATE_EPOCH or, without it, the start of
/// the version's day, never the wall clock. Streams need no `[tree]` to
/// commit ready trees.
#[test]
fn same_inputs_give_the_same_commit() {
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let stream = rootfs_only_stream(work.path());
    let tree = work.path().join("tree");
    ready_tree(&tree, "one");
    let run = |repo: &str, epoch: Option<&str>| -> serde_json::Value {
        let mut cmd = compose(None, &gpg);
        cmd.arg("run")
            .arg(&stream)
            .arg("--repo")
            .arg(work.path().join(repo))
            .arg("--rootfs")
            .arg(&tree)
            .arg("--no-deltas");
        match epoch {
            Some(e) => cmd.env("SOURCE_DATE_EPOCH", e),
            None => cmd.env_remove("SOURCE_DATE_EPOCH"),
        };
        let v = run_json(&mut cmd);
        assert_eq!(v[0]["result"], "committed", "{v}");
        v[0].clone()
    };

    let a = run("a", Some("1767225600"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = run("b", Some("1767225600"));
    assert_eq!(a["checksum"], b["checksum"], "{a}\n{b}");
    assert_eq!(a["timestamp"], 1767225600);
    assert_eq!(a["timestamp_source"], "source-date-epoch");
    assert_eq!(
        a["selinux_policy"],
        serde_json::Value::Null,
        "no policy: unlabelled"
    );
    let shown = stdout(&run_ok(ostree(&work.path().join("a")).args(["log", REF])));
    assert!(
        shown.contains("Date:  2026-01-01 00:00:00 +0000"),
        "{shown}"
    );

    // Without SOURCE_DATE_EPOCH: the version's day, 00:00 UTC.
    let c = run("c", None);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let d = run("d", None);
    assert_eq!(c["checksum"], d["checksum"], "{c}\n{d}");
    assert_ne!(c["checksum"], a["checksum"]);
    assert_eq!(c["timestamp_source"], "version-date");
    let ts = c["timestamp"].as_u64().unwrap();
    assert_eq!(ts % 86_400, 0, "{c}");
    let day = c["version"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    let out = run_ok(Command::new("date").args(["-u", "-d", &format!("@{ts}"), "+%Y%m%d"]));
    assert_eq!(stdout(&out).trim(), day);

    // A child never goes back in time, nor stays at its parent's time: an
    // older SOURCE_DATE_EPOCH gives the parent's timestamp plus a second.
    std::fs::write(tree.join("usr/bin/marker"), "two").unwrap();
    let child = run("c", Some("1000000000"));
    assert_eq!(child["parent"], c["checksum"]);
    assert_eq!(child["timestamp"], ts + 1);
    assert_eq!(child["timestamp_source"], "parent");

    // And a stream without [tree] says so when asked to build.
    let out = run_fails(
        compose(None, &gpg)
            .arg("run")
            .arg(&stream)
            .arg("--repo")
            .arg(work.path().join("e")),
    );
    assert!(
        stderr(&out).contains("has no [tree] table: pass --rootfs"),
        "{}",
        stderr(&out)
    );
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
    init_archive_repo(&work.path().join("repo"));
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

/// sample-atomic with `extra` spliced in before its `[tree]` table and
/// `packages` extended by `more`.
fn sample_variant(dir: &Path, name: &str, extra: &str, more: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("ostree-refs/sample-atomic.toml")).unwrap();
    let at = text.find("\n[tree]\n").unwrap();
    let mut text = format!("{}\n{extra}\n{}", &text[..at], &text[at..]);
    let list = "\"corral-hello\"]";
    assert!(text.contains(list));
    let extended: String = more.iter().map(|p| format!(", \"{p}\"")).collect();
    text = text.replace(list, &format!("\"corral-hello\"{extended}]"));
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `compose lock` writes the resolved builds; a locked compose installs
/// exactly those even when the repository has newer ones, and the same
/// stream, lock and parent give the same commit in two repositories.
#[test]
fn a_lockfile_pins_the_packages_and_composes_reproduce() {
    let repos = sample_repos();
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let lock = work.path().join("sample.lock.json");
    let out = run_ok(
        compose(Some(repos.path()), &gpg)
            .args(["lock", "sample-atomic", "-o"])
            .arg(&lock),
    );
    assert!(stdout(&out).contains("packages locked"), "{}", stdout(&out));
    let locked: serde_json::Value = serde_json::from_slice(&std::fs::read(&lock).unwrap()).unwrap();
    assert_eq!(locked["packages"]["corral-hello"]["evra"], "1.0-1.noarch");
    let digest = locked["packages"]["corral-hello"]["digest"]
        .as_str()
        .unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    // The header digest rpm reports for the package file.
    let rpm = run_ok(
        Command::new("rpm")
            .args(["-qp", "--qf", "%{SHA256HEADER}"])
            .arg(repos.path().join("main/corral-hello-1.0-1.noarch.rpm")),
    );
    assert_eq!(&digest[7..], stdout(&rpm).trim());

    // corral-hello 1.1 joins the same repository.
    run_ok(
        Command::new("bash")
            .arg(repo_root().join("tests/fixtures/rpms/build-repo.sh"))
            .arg(repos.path())
            .env("HELLO_VERSION", "1.1"),
    );
    let run = |repo: &str, lockfile: Option<&Path>| -> serde_json::Value {
        let mut cmd = compose(Some(repos.path()), &gpg);
        cmd.args(["run", "sample-atomic", "--no-deltas", "--repo"])
            .arg(work.path().join(repo));
        if let Some(l) = lockfile {
            cmd.arg("--lockfile").arg(l);
        }
        let v = run_json(&mut cmd);
        assert_eq!(v[0]["result"], "committed", "{v}");
        v[0].clone()
    };
    let a = run("a", Some(&lock));
    let packages = metadata(&work.path().join("a"), REF, "corral.packages");
    assert!(packages.contains("corral-hello-1.0-1.noarch"), "{packages}");
    let b = run("b", Some(&lock));
    assert_eq!(a["checksum"], b["checksum"], "two locked composes differ");
    let free = run("c", None);
    let packages = metadata(&work.path().join("c"), REF, "corral.packages");
    assert!(packages.contains("corral-hello-1.1-1.noarch"), "{packages}");
    assert_ne!(free["checksum"], a["checksum"]);

    // A lock naming a build the repository does not have fails, naming it.
    let mut text = locked.clone();
    text["packages"]["corral-hello"]["evra"] = "0.9-1.noarch".into();
    let stale = work.path().join("stale.lock.json");
    std::fs::write(&stale, text.to_string()).unwrap();
    let out = run_fails(
        compose(Some(repos.path()), &gpg)
            .args(["run", "sample-atomic", "--repo"])
            .arg(work.path().join("d"))
            .arg("--lockfile")
            .arg(&stale),
    );
    assert!(
        stderr(&out).contains("corral-hello-0.9-1.noarch"),
        "{}",
        stderr(&out)
    );
}

/// The `[postprocess]` table and the passwd split, on a tree whose
/// package creates a system user in %pre: scripts run in the tree without
/// network, units are enabled, files removed, system users move to
/// /usr/lib while /etc keeps root and the etc-group-members, and
/// /usr/local is the host's.
#[test]
fn postprocess_units_and_system_users() {
    let repos = sample_repos();
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let server = work.path().join("repo");
    // Something listening on the host's loopback: a script must not reach it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let extra = format!(
        r#"[postprocess]
scripts = [
  "echo \"composed at $SOURCE_DATE_EPOCH\" > /etc/motd",
  """
if echo hello | busybox nc -w 2 127.0.0.1 {port}; then echo reached > /etc/corral-net; else echo unreachable > /etc/corral-net; fi
""",
]
units = ["corral-svc.service"]
remove-files = ["usr/share/corral-svc/unwanted"]
etc-group-members = ["corral-svc"]
"#
    );
    // A tree with nss-altfiles (a stand-in) is one whose users can move.
    let before = sample_variant(work.path(), "before", "", &["corral-nss-altfiles"]);
    let with_svc = sample_variant(
        work.path(),
        "svc",
        &extra,
        &["corral-nss-altfiles", "corral-svc"],
    );
    let first = run_json(
        compose(Some(repos.path()), &gpg)
            .arg("run")
            .arg(&before)
            .arg("--repo")
            .arg(&server),
    );
    assert_eq!(first[0]["result"], "committed", "{first}");
    let c1 = first[0]["checksum"].as_str().unwrap().to_string();
    let second = run_json(
        compose(Some(repos.path()), &gpg)
            .arg("run")
            .arg(&with_svc)
            .arg("--repo")
            .arg(&server),
    );
    let second = &second[0];
    assert_eq!(second["result"], "committed", "{second}");
    assert_eq!(
        second["users"]["usr_lib_users"],
        serde_json::json!(["nobody", "corral-svc"])
    );
    assert_eq!(second["users"]["altfiles"], true);
    assert!(
        listener.accept().is_err(),
        "a postprocess script reached the network"
    );

    let cat = |rev: &str, path: &str| -> String {
        stdout(&run_ok(ostree(&server).args(["cat", rev, path])))
    };
    // the scripts' SOURCE_DATE_EPOCH is the commit's time: a second after
    // its parent's, which had SOURCE_DATE_EPOCH itself
    assert_eq!(second["timestamp"], 1767225601, "{second}");
    assert_eq!(cat(REF, "/usr/etc/motd"), "composed at 1767225601\n");
    assert_eq!(cat(REF, "/usr/etc/corral-net"), "unreachable\n");
    let ls = stdout(&run_ok(ostree(&server).args(["ls", "-R", REF])));
    assert!(
        ls.contains("/usr/etc/systemd/system/multi-user.target.wants/corral-svc.service ->"),
        "{ls}"
    );
    assert!(ls.contains("/usr/share/corral-svc"), "{ls}");
    assert!(!ls.contains("/usr/share/corral-svc/unwanted"), "{ls}");
    assert!(ls.contains("/usr/local -> ../var/usrlocal"), "{ls}");

    // Users: the update's new user is in /usr/lib, which every deployment
    // carries; /etc/passwd is root's alone in both commits, so a host's
    // edited /etc/passwd (kept by the /etc merge) does not hide it.
    for rev in [c1.as_str(), REF] {
        assert_eq!(
            cat(rev, "/usr/etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n"
        );
    }
    assert!(!cat(&c1, "/usr/lib/passwd").contains("corral-svc"));
    assert!(cat(REF, "/usr/lib/passwd")
        .contains("corral-svc:x:990:990:corral sample service:/var/lib/corral-svc:/sbin/nologin"));
    assert_eq!(cat(REF, "/usr/etc/group"), "root:x:0:\ncorral-svc:x:990:\n");
    assert_eq!(cat(REF, "/usr/lib/group"), "nobody:x:65534:\n");
    let tmpfiles = cat(REF, "/usr/lib/tmpfiles.d/corral-var.conf");
    assert!(
        tmpfiles.contains("d /var/lib/corral-svc 0750 990 990 - -"),
        "{tmpfiles}"
    );
    assert!(tmpfiles.contains("d /var/usrlocal "), "{tmpfiles}");

    // A failing script stops the compose, names the script, moves nothing.
    let failing = sample_variant(
        work.path(),
        "failing",
        "[postprocess]\nscripts = [\"echo about to fail; exit 3\"]\n",
        &[],
    );
    let out = run_fails(
        compose(Some(repos.path()), &gpg)
            .arg("run")
            .arg(&failing)
            .arg("--repo")
            .arg(&server),
    );
    let err = stderr(&out);
    assert!(
        err.contains("postprocess script 1 (`echo about to fail; exit 3`)")
            && err.contains("about to fail"),
        "{err}"
    );
    assert_eq!(
        rev_parse(&server, REF),
        second["checksum"].as_str().unwrap()
    );
}

/// A tree with an SELinux policy (Debian's selinux-policy-default, from
/// the cached enforcing VM image of scripts/vm-selinux.sh) is committed
/// labelled by that policy: each entry's `security.selinux` is what
/// `matchpathcon` reads from the policy's file_contexts, `/usr/etc` labelled
/// as the `/etc` it becomes on a host.
#[test]
fn a_tree_with_a_policy_is_committed_labelled() {
    for tool in ["debugfs", "matchpathcon"] {
        require_tool(tool);
    }
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let vm = run_ok(
        Command::new("bash")
            .arg(repo_root().join("scripts/vm-selinux.sh"))
            .arg("build"),
    );
    let vm = PathBuf::from(stdout(&vm).lines().last().unwrap().trim());
    let tree = work.path().join("tree");
    ready_tree(&tree, "one");
    std::fs::write(tree.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    run_ok(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("rdump /etc/selinux {}", tree.join("etc").display()))
            .arg(vm.join("root.img")),
    );
    let fc = tree.join("etc/selinux/default/contexts/files/file_contexts");
    assert!(fc.is_file(), "{} missing", fc.display());

    let stream = rootfs_only_stream(work.path());
    let server = work.path().join("repo");
    let run = run_ok(
        compose(None, &gpg)
            .arg("run")
            .arg(&stream)
            .arg("--repo")
            .arg(&server)
            .arg("--rootfs")
            .arg(&tree)
            .arg("--no-deltas")
            .arg("--json"),
    );
    let out: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(out[0]["selinux_policy"], "default", "{out}");
    // this tree has a policy but neither bwrap nor semodule, which
    // libostree runs to finish each upgrade: compose says so
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("no /usr/bin/bwrap and no semodule"),
        "no warning about the finalize:\n{err}"
    );

    let entries = [
        ("/usr/bin/marker", "/usr/bin/marker", "file"),
        ("/usr/etc/passwd", "/etc/passwd", "file"),
        (
            "/usr/lib/modules/6.9.0-t/vmlinuz",
            "/usr/lib/modules/6.9.0-t/vmlinuz",
            "file",
        ),
        ("/usr/bin", "/usr/bin", "dir"),
        ("/home", "/home", "lnk_file"),
    ];
    for (in_commit, on_host, kind) in entries {
        let want = stdout(&run_ok(
            Command::new("matchpathcon")
                .args(["-n", "-m", kind, "-f"])
                .arg(&fc)
                .arg(on_host),
        ))
        .trim()
        .to_string();
        assert!(want.starts_with("system_u:object_r:"), "{want}");
        let ls = stdout(&run_ok(
            ostree(&server).args(["ls", "-X", "-d", REF, in_commit]),
        ));
        assert!(
            ls.contains(&format!("b'security.selinux', b'{want}'")),
            "{in_commit}: want {want} in {ls}"
        );
    }
    run_ok(ostree(&server).arg("fsck"));
}

/// A tree whose kernel package ships no initramfs (the cached Debian boot
/// tree of tests/fixtures/boot, its initramfs removed) gets one from its
/// own dracut, with the ostree module, the same bytes in two composes: and
/// so the same commit.
#[test]
fn dracut_builds_a_missing_initramfs_reproducibly() {
    let boot =
        run_ok(Command::new("bash").arg(repo_root().join("tests/fixtures/boot/build-tree.sh")));
    let boot = PathBuf::from(stdout(&boot).lines().last().unwrap().trim());
    let kver = std::fs::read_to_string(boot.join("kver"))
        .unwrap()
        .trim()
        .to_string();
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    // Hardlinks: the cache is never written, only names are removed here.
    run_ok(
        Command::new("cp")
            .args(["-a", "--link"])
            .arg(boot.join("root/."))
            .arg(&tree),
    );
    for e in std::fs::read_dir(tree.join("boot")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("initramfs-") || name.starts_with("initrd") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let stream = rootfs_only_stream(work.path());
    let image = format!("/usr/lib/modules/{kver}/initramfs.img");
    let mut commits = Vec::new();
    for repo in ["a", "b"] {
        let out = run_json(
            compose(None, &gpg)
                .arg("run")
                .arg(&stream)
                .arg("--repo")
                .arg(work.path().join(repo))
                .arg("--rootfs")
                .arg(&tree)
                .args(["--no-deltas", "--zlib-level", "1"]),
        );
        assert_eq!(out[0]["initramfs"], "dracut", "{out}");
        let ls = stdout(&run_ok(
            ostree(&work.path().join(repo)).args(["ls", "-C", REF, &image]),
        ));
        commits.push((out[0]["checksum"].clone(), ls));
    }
    assert_eq!(commits[0].1, commits[1].1, "the initramfs differs");
    assert_eq!(commits[0].0, commits[1].0, "the commits differ");
    assert!(
        !tree.join(image.trim_start_matches('/')).exists(),
        "the given tree was written"
    );

    // The ostree module is in it: lsinitrd of the tree reads the image.
    let img = work.path().join("tree/tmp/corral-initramfs.img");
    let data = run_ok(ostree(&work.path().join("a")).args(["cat", REF, &image])).stdout;
    std::fs::write(&img, data).unwrap();
    let listing = stdout(&run_ok(
        Command::new("chroot")
            .arg(&tree)
            .args(["lsinitrd", "/tmp/corral-initramfs.img"]),
    ));
    assert!(listing.contains("ostree-prepare-root"), "{listing}");
}

/// `n` files of `size` distinct, incompressible bytes under `dir`.
fn noise_files(dir: &Path, n: usize, size: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut x = seed | 1;
    for i in 0..n {
        let mut data = Vec::with_capacity(size);
        while data.len() < size {
            // xorshift64: cheap bytes no compressor shrinks.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        std::fs::write(dir.join(format!("f{i:04}")), &data).unwrap();
    }
}

/// A compose killed with SIGKILL at any point while it writes objects
/// leaves the ref on the last whole commit and nothing `ostree fsck`
/// rejects; the next compose reuses what was published and its commit is
/// whole (a half-written object under its final name would be reused and
/// fail the check). The result, served over HTTP, pulls and checks out
/// equal to the tree.
#[test]
fn a_killed_compose_leaves_no_partial_object_or_ref() {
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let work = scratch();
    let stream = rootfs_only_stream(work.path());
    let tree = work.path().join("tree");
    let repo = work.path().join("repo");
    ready_tree(&tree, "one");
    let run = |cmd: &mut Command| {
        cmd.arg("run")
            .arg(&stream)
            .arg("--repo")
            .arg(&repo)
            .arg("--rootfs")
            .arg(&tree)
            .arg("--no-deltas");
    };
    let mut first = compose(None, &gpg);
    run(&mut first);
    run_ok(&mut first);
    let before = rev_parse(&repo, REF);

    noise_files(&tree.join("usr/share/noise"), 300, 256 << 10, 7);
    // Above the whole-file limit: compressed while it is written, the
    // longest window for a kill to cut an object short.
    noise_files(&tree.join("usr/share/noise/big"), 1, 65 << 20, 11);
    let work_dirs = || {
        std::fs::read_dir(work.path())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("corral-compose-")
            })
            .count()
    };
    // Killed runs that left a work directory behind (seen right after the
    // kill: each later compose removes them).
    let (mut killed, mut left_behind) = (0, 0);
    for delay_ms in [300u64, 800, 1300, 1800, 2400, 3000, 4000, 5000] {
        let mut cmd = compose(None, &gpg);
        run(&mut cmd);
        // A killed compose cannot remove its work directory: the next
        // compose does. Kept in the test's scratch directory to count them.
        cmd.env("TMPDIR", work.path());
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
            child.wait().unwrap();
            if work_dirs() > 0 {
                left_behind += 1;
            }
        }
        child.wait().unwrap();
        let now = rev_parse(&repo, REF);
        if now != before {
            // The run finished before the kill: a whole commit.
            break;
        }
        run_ok(ostree(&repo).arg("fsck"));
    }
    assert!(killed > 0, "no compose was killed mid-run");
    assert!(
        left_behind > 0,
        "no killed compose left a work directory: the sweep tests nothing"
    );

    let mut last = compose(None, &gpg);
    run(&mut last);
    last.env("TMPDIR", work.path());
    run_ok(&mut last);
    let after = rev_parse(&repo, REF);
    assert_ne!(after, before);
    run_ok(ostree(&repo).arg("fsck"));
    assert_eq!(
        work_dirs(),
        0,
        "the composes after the kills left the killed ones' work directories"
    );

    // Served over HTTP, pulled and checked out: the tree, byte for byte.
    require_tool("python3");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&repo)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pulled = work.path().join("pulled");
    run_ok(ostree(&pulled).args(["init", "--mode=archive"]));
    run_ok(ostree(&pulled).args([
        "remote",
        "add",
        "--no-gpg-verify",
        "web",
        &format!("http://127.0.0.1:{port}"),
    ]));
    let mut pulled_ok = false;
    for _ in 0..50 {
        if ostree(&pulled)
            .args(["pull", "web", REF])
            .output()
            .unwrap()
            .status
            .success()
        {
            pulled_ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(pulled_ok, "ostree pull over HTTP failed");
    assert_eq!(rev_parse(&pulled, REF), after);
    run_ok(ostree(&pulled).arg("fsck"));
    let out = work.path().join("checkout");
    run_ok(ostree(&pulled).args(["checkout", "-U", REF]).arg(&out));
    let diff = run_ok(
        Command::new("diff")
            .args(["-r", "--no-dereference"])
            .arg(tree.join("usr/share/noise"))
            .arg(out.join("usr/share/noise")),
    );
    assert!(diff.stdout.is_empty());
    assert_eq!(
        std::fs::read(out.join("usr/bin/marker")).unwrap(),
        b"one".to_vec()
    );
}
