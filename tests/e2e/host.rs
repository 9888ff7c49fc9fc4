//! Atomic hosts end to end: sysroots made in temp dirs with `ostree admin
//! init-fs` and `os-init`, commits from `corral compose` signed with a
//! throwaway GPG key, served over HTTP by `corral mirror serve
//! --ostree-repo`, and `corral host` keeping the deployments. What corral
//! reports is checked against `ostree admin status` and the files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use corral_test_support::*;

const REF: &str = "corral-sample/43/x86_64/atomic-host";
const OS: &str = "corral";

/// A compose server: an archive repository, its signing key and the
/// mirror that serves it.
struct Server {
    work: tempfile::TempDir,
    gpg: Gpg,
    repo: PathBuf,
    stream: PathBuf,
    mirror: Mirror,
    composes: u32,
}

impl Server {
    fn start() -> Server {
        require_tool("ostree");
        let work = scratch();
        let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
        let repo = work.path().join("repo");
        // the sample stream, keeping enough history to deploy old versions
        let text = std::fs::read_to_string(repo_root().join("ostree-refs/sample-atomic.toml"))
            .unwrap()
            .replace("keep = 3", "keep = 10");
        let stream = work.path().join("stream.toml");
        std::fs::write(&stream, text).unwrap();
        init_archive_repo(&repo);
        let mirror = Mirror::start(&["--ostree-repo", repo.to_str().unwrap()]);
        Server {
            work,
            gpg,
            repo,
            stream,
            mirror,
            composes: 0,
        }
    }

    fn url(&self) -> String {
        format!("{}/ostree", self.mirror.url())
    }

    /// Composes a ready tree: a stand-in kernel of `kernel_bytes`, the
    /// marker, `/etc/app.conf` and whatever `extra` adds. Returns the
    /// checksum and version.
    fn compose(
        &mut self,
        marker: &str,
        kernel_bytes: usize,
        extra: impl Fn(&Path),
    ) -> (String, String) {
        self.composes += 1;
        let tree = self.work.path().join(format!("tree-{}", self.composes));
        for d in [
            "usr/bin",
            "usr/lib/modules/6.9.0-t",
            "etc/corral",
            "var/lib",
        ] {
            std::fs::create_dir_all(tree.join(d)).unwrap();
        }
        std::fs::write(
            tree.join("usr/lib/modules/6.9.0-t/vmlinuz"),
            vec![b'k'; kernel_bytes],
        )
        .unwrap();
        std::fs::write(
            tree.join("usr/lib/modules/6.9.0-t/initramfs.img"),
            "initramfs",
        )
        .unwrap();
        std::fs::write(
            tree.join("usr/lib/os-release"),
            "ID=corral\nVERSION_ID=43\n",
        )
        .unwrap();
        std::fs::write(tree.join("usr/bin/marker"), marker).unwrap();
        std::fs::write(tree.join("etc/app.conf"), format!("app={marker}\n")).unwrap();
        std::fs::write(tree.join("etc/motd"), format!("welcome to {marker}\n")).unwrap();
        extra(&tree);
        self.run_compose(|c| {
            c.arg("--rootfs")
                .arg(&tree)
                .args(["--force", "--reason", marker]);
        })
    }

    /// `corral compose run` of the stream into the server's repository,
    /// signed with its key; returns the new commit's checksum and version.
    fn run_compose(&self, extra: impl FnOnce(&mut Command)) -> (String, String) {
        let mut cmd = compose_run(&self.stream, &self.repo, self.gpg.home.path());
        extra(&mut cmd);
        let out = run_ok(&mut cmd);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v[0]["result"], "committed", "{v}");
        (
            v[0]["checksum"].as_str().unwrap().to_string(),
            v[0]["version"].as_str().unwrap().to_string(),
        )
    }

    /// Re-signs the summary after the repository was changed by hand.
    fn resign_summary(&self, gpg: &Gpg) {
        run_ok(
            Command::new("ostree")
                .arg(format!("--repo={}", self.repo.display()))
                .args(["summary", "-u", "--gpg-sign=compose@corral.invalid"])
                .arg(format!("--gpg-homedir={}", gpg.home.path().display())),
        );
    }
}

/// A sysroot in a temp dir with the stateroot `corral` and remote
/// `corral` pointing at `server`.
struct Sysroot {
    dir: tempfile::TempDir,
}

impl Sysroot {
    fn new(server: &Server) -> Sysroot {
        let dir = scratch();
        run_ok(
            Command::new("ostree")
                .args(["admin", "init-fs"])
                .arg(dir.path()),
        );
        run_ok(
            Command::new("ostree")
                .args(["admin", "os-init", OS])
                .arg(format!("--sysroot={}", dir.path().display())),
        );
        let s = Sysroot { dir };
        let out = run_ok(
            s.host()
                .args(["remote", "add", "corral", &server.url(), "--gpg-key"])
                .arg(&server.gpg.public_key),
        );
        assert!(stdout(&out).contains("with 1 key(s)"), "{}", stdout(&out));
        s
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn host(&self) -> Command {
        let mut c = Command::new(corral_bin());
        c.arg("host")
            .arg("--sysroot")
            .arg(self.path())
            .env_remove("RUST_LOG");
        c
    }

    fn status(&self) -> serde_json::Value {
        let out = run_ok(self.host().args(["status", "--json"]));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// (checksum, serial) in boot order, as corral reports them.
    fn order(&self) -> Vec<String> {
        self.status()["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["checksum"].as_str().unwrap().to_string())
            .collect()
    }

    /// The checksums in boot order, as `ostree admin status` reports them.
    fn ostree_order(&self) -> Vec<String> {
        let out = run_ok(
            Command::new("ostree")
                .args(["admin", "status"])
                .arg(format!("--sysroot={}", self.path().display())),
        );
        stdout(&out)
            .lines()
            .filter_map(|l| l.trim().strip_prefix(&format!("{OS} ")))
            .map(|c| c.split('.').next().unwrap().trim().to_string())
            .collect()
    }

    fn deployment_dir(&self, index: usize) -> PathBuf {
        let s = self.status();
        let d = &s["deployments"][index];
        self.path().join(format!(
            "ostree/deploy/{OS}/deploy/{}.{}",
            d["checksum"].as_str().unwrap(),
            d["serial"]
        ))
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = run_ok(self.host().args(args).arg("--json"));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
    }

    /// `json` for a command that exits `code`.
    fn json_code(&self, code: i32, args: &[&str]) -> serde_json::Value {
        json_exit(self.host().args(args).arg("--json"), code)
    }

    /// `json` as if run in boot `boot_id` (a sysroot in a directory has
    /// no boot of its own).
    fn json_in_boot(&self, boot_id: &str, args: &[&str]) -> serde_json::Value {
        let out = run_ok(
            self.host()
                .args(args)
                .arg("--json")
                .env("CORRAL_BOOT_ID", boot_id),
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
    }

    /// A failing `check --json` in boot `boot_id`, rolling back after
    /// `max` failed boots.
    fn failed_check(&self, boot_id: &str, max: u32) -> serde_json::Value {
        json_exit(
            self.host()
                .args(["check", "--json", "--max-failed-boots", &max.to_string()])
                .env("CORRAL_BOOT_ID", boot_id),
            1,
        )
    }
}

/// Runs `cmd`, expecting exit `code`; returns its stdout as JSON.
fn json_exit(cmd: &mut Command, code: i32) -> serde_json::Value {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}:\n{}{err}",
        stdout(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{err}", stdout(&out)))
}

impl Drop for Sysroot {
    /// libostree makes deployment roots immutable; without this the temp
    /// dir could not be removed.
    fn drop(&mut self) {
        let deploy = self.path().join(format!("ostree/deploy/{OS}/deploy"));
        for e in std::fs::read_dir(deploy).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                let _ = Command::new("chattr").arg("-i").arg(e.path()).status();
            }
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd`, expecting exit `code`; returns stdout + stderr.
fn run_code(cmd: &mut Command, code: i32) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(code), "{cmd:?}:\n{text}");
    text
}

fn origin() -> String {
    format!("corral:{REF}")
}

#[test]
fn upgrades_rollbacks_deploys_and_status() {
    let mut server = Server::start();
    let (a, va) = server.compose("a", 64, |_| {});
    let sys = Sysroot::new(&server);
    assert_eq!(sys.status()["deployments"], serde_json::json!([]));

    // The first deployment names its origin.
    let first = sys.json(&["deploy", "--origin", &origin()]);
    assert_eq!(first["result"], "deployed", "{first}");
    assert_eq!(first["to"]["checksum"], a.as_str());
    assert_eq!(first["signature"]["state"], "valid");
    assert_eq!(sys.order(), vec![a.clone()]);
    assert_eq!(sys.ostree_order(), sys.order());

    // Up to date: --check answers no with exit 1.
    let text = run_code(sys.host().args(["upgrade", "--check"]), 1);
    assert!(text.contains(&format!("no update: {va}")), "{text}");

    // A local edit in /etc, upstream changing the same file and another.
    std::fs::write(sys.deployment_dir(0).join("etc/app.conf"), "app=mine\n").unwrap();
    std::fs::write(sys.deployment_dir(0).join("etc/local.conf"), "only here\n").unwrap();
    let (b, vb) = server.compose("b", 64, |_| {});
    let text = run_code(sys.host().args(["upgrade", "--check"]), 0);
    assert!(
        text.contains(&format!("update available: {va}")) && text.contains(&vb),
        "{text}"
    );
    assert_eq!(sys.order(), vec![a.clone()], "--check changes nothing");

    let up = sys.json(&["upgrade"]);
    assert_eq!(up["result"], "deployed", "{up}");
    assert_eq!(up["from"]["checksum"], a.as_str());
    assert_eq!(up["to"]["checksum"], b.as_str());
    assert_eq!(
        up["etc"]["conflicts"],
        serde_json::json!(["app.conf"]),
        "{up}"
    );
    assert_eq!(
        up["etc"]["local"],
        serde_json::json!(["app.conf", "local.conf"]),
        "{up}"
    );
    assert_eq!(sys.order(), vec![b.clone(), a.clone()]);
    assert_eq!(sys.ostree_order(), sys.order());
    let new_root = sys.deployment_dir(0);
    assert_eq!(
        std::fs::read_to_string(new_root.join("etc/app.conf")).unwrap(),
        "app=mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(new_root.join("etc/local.conf")).unwrap(),
        "only here\n"
    );
    assert_eq!(
        std::fs::read_to_string(new_root.join("etc/motd")).unwrap(),
        "welcome to b\n",
        "upstream change taken"
    );
    assert_eq!(
        std::fs::read_to_string(new_root.join("usr/bin/marker")).unwrap(),
        "b"
    );

    // Status JSON against the sysroot.
    let st = sys.status();
    assert_eq!(st["booted"], false);
    let d0 = &st["deployments"][0];
    assert_eq!(
        (d0["role"].as_str(), d0["version"].as_str()),
        (Some("default"), Some(vb.as_str()))
    );
    assert_eq!(d0["origin"], origin().as_str());
    assert_eq!(
        d0["signature"]["signer"],
        "corral compose test <compose@corral.invalid>"
    );
    assert_eq!(st["deployments"][1]["role"], "rollback");
    assert_eq!(
        (st["changes"]["from"].as_u64(), st["changes"]["to"].as_u64()),
        (Some(1), Some(0))
    );

    // Rollback and roll forward, twice.
    for _ in 0..2 {
        run_ok(sys.host().arg("rollback"));
        assert_eq!(sys.order(), vec![a.clone(), b.clone()]);
        assert_eq!(sys.ostree_order(), sys.order());
        run_ok(sys.host().arg("rollback"));
        assert_eq!(sys.order(), vec![b.clone(), a.clone()]);
    }

    // C, then an older version by name; pins survive retention.
    let (c, _vc) = server.compose("c", 64, |_| {});
    let up = sys.json(&["upgrade"]);
    assert_eq!(up["to"]["checksum"], c.as_str());
    assert_eq!(sys.order(), vec![c.clone(), b.clone(), a.clone()]);
    let text = run_ok(sys.host().args(["pin", "2"]));
    assert!(stdout(&text).contains("pinned"));
    assert_eq!(sys.status()["deployments"][2]["pinned"], true);
    let old = sys.json(&["deploy", &va, "--keep", "2"]);
    assert_eq!(old["to"]["checksum"], a.as_str(), "{old}");
    // keep 2: the new one and the merge deployment (c); the pinned a stays,
    // b goes.
    assert_eq!(sys.order(), vec![a.clone(), c.clone(), a.clone()]);
    assert_eq!(sys.ostree_order(), sys.order());
    assert_eq!(old["dropped"].as_array().unwrap().len(), 1, "{old}");
    assert!(old["dropped"][0].as_str().unwrap().starts_with(&b));

    // A version that is not in the history is named with the ones that are.
    let text = run_code(sys.host().args(["deploy", "43.19990101.0"]), 2);
    assert!(
        text.contains("has no version or commit `43.19990101.0`") && text.contains(&va),
        "{text}"
    );

    // Newest again; then the server goes back in time: refused unless asked.
    let up = sys.json(&["upgrade"]);
    assert_eq!(up["to"]["checksum"], c.as_str(), "{up}");
    run_ok(sys.host().args(["unpin", "2"]));
    run_ok(sys.host().args(["cleanup", "--rollback"]));
    assert_eq!(sys.order(), vec![c.clone()]);
    run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", server.repo.display()))
            .args(["reset", REF, &b]),
    );
    server.resign_summary(&server.gpg);
    let text = run_code(sys.host().args(["upgrade"]), 2);
    assert!(
        text.contains("older than the deployed") && text.contains("--allow-downgrade"),
        "{text}"
    );
    assert_eq!(sys.order(), vec![c.clone()]);
    let down = sys.json(&["upgrade", "--allow-downgrade"]);
    assert_eq!(down["to"]["checksum"], b.as_str(), "{down}");
    assert_eq!(sys.order(), vec![b, c]);
}

#[test]
fn unsigned_and_foreign_commits_are_refused() {
    let mut server = Server::start();
    let (a, _) = server.compose("a", 64, |_| {});
    let sys = Sysroot::new(&server);
    sys.json(&["deploy", "--origin", &origin()]);
    let stranger = Gpg::new("someone else <stranger@corral.invalid>");
    let repo_arg = format!("--repo={}", server.repo.display());
    let tree = server.work.path().join("plain");
    std::fs::create_dir_all(tree.join("usr/lib/modules/6.9.0-t")).unwrap();
    std::fs::write(tree.join("usr/lib/modules/6.9.0-t/vmlinuz"), "k").unwrap();

    // An unsigned commit on the ref, the summary still signed by the
    // right key.
    run_ok(
        Command::new("ostree")
            .arg(&repo_arg)
            .args(["commit", "-b", REF, "-s", "unsigned"])
            .arg(format!("--tree=dir={}", tree.display())),
    );
    server.resign_summary(&server.gpg);
    let text = run_code(sys.host().arg("upgrade"), 2);
    assert!(
        text.contains("GPG verification enabled, but no signatures found"),
        "{text}"
    );
    assert_eq!(sys.order(), vec![a.clone()]);

    // A commit signed by another key.
    run_ok(
        Command::new("ostree")
            .arg(&repo_arg)
            .args([
                "commit",
                "-b",
                REF,
                "-s",
                "foreign",
                "--gpg-sign=stranger@corral.invalid",
            ])
            .arg(format!("--gpg-homedir={}", stranger.home.path().display()))
            .arg(format!("--tree=dir={}", tree.display())),
    );
    server.resign_summary(&server.gpg);
    let text = run_code(sys.host().arg("upgrade"), 2);
    assert!(
        text.contains("Can't check signature: public key not found"),
        "{text}"
    );
    assert_eq!(sys.order(), vec![a.clone()]);

    // A summary signed by another key is not read at all.
    run_ok(
        Command::new("ostree")
            .arg(&repo_arg)
            .args(["summary", "-u", "--gpg-sign=stranger@corral.invalid"])
            .arg(format!("--gpg-homedir={}", stranger.home.path().display())),
    );
    let text = run_code(sys.host().args(["upgrade", "--check"]), 2);
    assert!(text.contains("the summary of remote corral"), "{text}");
    assert_eq!(sys.order(), vec![a]);
    // The remote itself verifies both, as `remote list` says.
    let remotes = sys.json(&["remote", "list"]);
    assert_eq!(remotes[0]["gpg_verify"], true);
    assert_eq!(remotes[0]["gpg_verify_summary"], true);
}

/// Regular files of random content, so that a pull takes a while.
fn bulk(root: &Path, files: usize) {
    let dir = root.join("usr/share/bulk");
    std::fs::create_dir_all(&dir).unwrap();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for i in 0..files {
        let mut data = vec![0u8; 8192];
        for b in data.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        std::fs::write(dir.join(format!("f{i:05}")), data).unwrap();
    }
}

fn staged_objects(sysroot: &Path) -> usize {
    let tmp = sysroot.join("ostree/repo/tmp");
    let mut n = 0;
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("staging-") {
            n += walk_files(&e.path()).len();
        }
    }
    n
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        // not through symlinks: a sysroot's /boot/boot points at itself
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_killed_pull_changes_nothing_and_resumes() {
    let mut server = Server::start();
    let (a, _) = server.compose("a", 64, |_| {});
    let sys = Sysroot::new(&server);
    sys.json(&["deploy", "--origin", &origin()]);
    let (b, _) = server.compose("b", 64, |t| bulk(t, 1500));

    let mut child = sys
        .host()
        .args(["upgrade", "--no-static-deltas", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if staged_objects(sys.path()) >= 150 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the upgrade finished before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no objects were staged"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        sys.order(),
        vec![a.clone()],
        "the booted deployment is untouched"
    );
    assert_eq!(sys.ostree_order(), vec![a.clone()]);
    let staged = staged_objects(sys.path());
    assert!(staged >= 150, "the fetched objects are kept ({staged})");

    let up = sys.json(&["upgrade", "--no-static-deltas"]);
    assert_eq!(up["to"]["checksum"], b.as_str(), "{up}");
    let fetched = up["pull"]["objects"].as_u64().unwrap();
    assert!(
        fetched + 120 <= 1500,
        "the second pull fetched {fetched} objects; the {staged} staged ones were not reused"
    );
    run_ok(
        Command::new("ostree")
            .arg(format!(
                "--repo={}",
                sys.path().join("ostree/repo").display()
            ))
            .arg("fsck"),
    );
}

#[test]
fn a_corrupt_object_is_found_and_not_deployed() {
    let mut server = Server::start();
    let (a, _) = server.compose("a", 64, |_| {});
    let sys = Sysroot::new(&server);
    sys.json(&["deploy", "--origin", &origin()]);
    let (_b, _) = server.compose("b", 64, |t| {
        std::fs::write(t.join("usr/bin/only-in-b"), "this content is only in b\n").unwrap();
    });
    // find the content object of usr/bin/only-in-b and flip a byte
    let out = run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", server.repo.display()))
            .args(["rev-parse", REF]),
    );
    let rev = stdout(&out).trim().to_string();
    let out = run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", server.repo.display()))
            .args(["ls", "-C", &rev, "/usr/bin/only-in-b"]),
    );
    let csum = stdout(&out)
        .split_whitespace()
        .find(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap()
        .to_string();
    let object = server
        .repo
        .join(format!("objects/{}/{}.filez", &csum[..2], &csum[2..]));
    let mut bytes = std::fs::read(&object).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    std::fs::write(&object, bytes).unwrap();

    let text = run_code(sys.host().args(["upgrade", "--no-static-deltas"]), 2);
    assert!(
        text.contains("Corrupted file object")
            && text.contains(&format!("checksum expected='{csum}'")),
        "{text}"
    );
    assert_eq!(sys.order(), vec![a]);
}

#[test]
fn a_stalled_server_times_out() {
    let mut server = Server::start();
    server.compose("a", 64, |_| {});
    let sys = Sysroot::new(&server);
    sys.json(&["deploy", "--origin", &origin()]);
    // a server that accepts connections and never answers
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    run_ok(
        sys.host()
            .args([
                "remote",
                "add",
                "silent",
                &format!("http://127.0.0.1:{port}/ostree"),
                "--gpg-key",
            ])
            .arg(&server.gpg.public_key),
    );
    let started = Instant::now();
    let text = run_code(
        sys.host().args([
            "deploy",
            "--origin",
            &format!("silent:{REF}"),
            "--stall-timeout",
            "2",
        ]),
        2,
    );
    assert!(text.contains("no progress for 2 s"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// Root only: mounts a small tmpfs as the sysroot's /boot.
struct SmallBoot(PathBuf);

impl SmallBoot {
    fn mount(boot: &Path, size: &str) -> SmallBoot {
        run_ok(
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size}"),
                    "corral-test-boot",
                ])
                .arg(boot),
        );
        SmallBoot(boot.to_path_buf())
    }
}

impl Drop for SmallBoot {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_boot_partition_is_found_before_deploying() {
    let mut server = Server::start();
    server.compose("a", 64, |_| {});
    let sys = Sysroot::new(&server);
    let _boot = SmallBoot::mount(&sys.path().join("boot"), "512k");
    let first = sys.json(&["deploy", "--origin", &origin()]);
    assert_eq!(first["result"], "deployed");
    let (a, _) = (sys.order()[0].clone(), ());
    let entries = walk_files(&sys.path().join("boot"));
    let (b, vb) = server.compose("b", 2 << 20, |_| {});
    let text = run_code(sys.host().arg("upgrade"), 2);
    assert!(
        text.contains("not enough space on") && text.contains("boot") && text.contains(&vb),
        "{text}"
    );
    assert_eq!(sys.order(), vec![a.clone()]);
    assert_eq!(
        walk_files(&sys.path().join("boot")),
        entries,
        "/boot is untouched"
    );
    // the commit was fetched and verified: a later attempt needs no download
    let dl = sys.json(&["upgrade", "--download-only"]);
    assert_eq!(dl["result"], "downloaded", "{dl}");
    assert_eq!(dl["to"]["checksum"], b.as_str());
    // (the commit and its signature are fetched again, not the 2 MiB kernel)
    assert!(dl["pull"]["bytes"].as_u64().unwrap() < 64 << 10, "{dl}");
}

fn health_script(root: &Path, name: &str, body: &str) {
    let dir = root.join("etc/corral/health.d/required.d");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn failed_health_checks_roll_back_after_n_boots() {
    let mut server = Server::start();
    let (a, _) = server.compose("a", 64, |t| {
        health_script(t, "10-marker", "test -f usr/bin/marker")
    });
    let sys = Sysroot::new(&server);
    sys.json(&["deploy", "--origin", &origin()]);
    let ok = sys.json(&["check"]);
    assert_eq!(ok["healthy"], true, "{ok}");
    assert_eq!(ok["scripts"][0]["name"], "required.d/10-marker");

    let (b, _) = server.compose("b", 64, |t| {
        health_script(t, "10-marker", "test -f usr/bin/marker");
        health_script(t, "20-service", "echo 'service did not start' >&2; exit 4");
    });
    sys.json(&["upgrade"]);
    assert_eq!(sys.order(), vec![b.clone(), a.clone()]);
    std::fs::write(
        sys.deployment_dir(0).join("etc/corral/host.toml"),
        "max-failed-boots = 2\n",
    )
    .unwrap();

    let text = run_code(sys.host().arg("check").env("CORRAL_BOOT_ID", "boot-1"), 1);
    assert!(
        text.contains("failed boot 1 of 2") && text.contains("required.d/20-service (exit 4)"),
        "{text}"
    );
    assert_eq!(
        sys.order(),
        vec![b.clone(), a.clone()],
        "one failed boot is not enough"
    );
    let text = run_code(sys.host().arg("check").env("CORRAL_BOOT_ID", "boot-2"), 1);
    assert!(text.contains("rolled back to"), "{text}");
    assert_eq!(sys.order(), vec![a.clone(), b.clone()]);
    assert_eq!(sys.ostree_order(), sys.order());

    let st = sys.status();
    let rb = &st["last_rollback"];
    assert!(rb["from"].as_str().unwrap().starts_with(&b), "{st}");
    assert!(
        rb["reason"].as_str().unwrap().contains("2 failed boots"),
        "{st}"
    );
    assert_eq!(st["deployments"][1]["health"]["failed_boots"], 2);
    let state = sys
        .path()
        .join(format!("ostree/deploy/{OS}/var/lib/corral/health.json"));
    assert!(state.is_file());
    // The previous deployment boots and is healthy.
    let ok = sys.json_in_boot("boot-3", &["check"]);
    assert_eq!(ok["healthy"], true, "{ok}");
    assert_eq!(sys.order(), vec![a, b]);
}

/// Issue 17, point 3: manual checks in one boot are one failed boot.
#[test]
fn checks_count_boots_not_runs() {
    let mut server = Server::start();
    let (a, _) = server.compose("a", 64, |_| {});
    let sys = Sysroot::new(&server);
    sys.json(&["deploy", "--origin", &origin()]);
    let (b, _) = server.compose("b", 64, |t| {
        health_script(t, "20-service", "echo 'service did not start' >&2; exit 4")
    });
    sys.json(&["upgrade"]);
    assert_eq!(sys.order(), vec![b.clone(), a.clone()]);

    // Three checks in one boot: one failed boot, no rollback.
    let mut counted = Vec::new();
    for run in 0..3 {
        let out = sys.failed_check("boot-1", 3);
        assert_eq!(sys.order(), vec![b.clone(), a.clone()], "run {run}: {out}");
        assert!(out["rolled_back"].is_null(), "run {run}: {out}");
        assert_eq!(out["failed_boots"], 1, "run {run}: {out}");
        counted.push((out["counted"].clone(), out["boot_id"].clone()));
    }
    assert_eq!(
        counted,
        [(true, "boot-1"), (false, "boot-1"), (false, "boot-1")].map(|(c, b)| (c.into(), b.into()))
    );
    // The text says it was counted already.
    let text = run_code(
        sys.host()
            .args(["check", "--max-failed-boots", "3"])
            .env("CORRAL_BOOT_ID", "boot-1"),
        1,
    );
    assert!(
        text.contains("again in boot boot-1, counted already: failed boot 1 of 3"),
        "{text}"
    );
    let st = sys.status();
    assert_eq!(st["deployments"][0]["health"]["failed_boots"], 1, "{st}");
    assert_eq!(
        st["deployments"][0]["health"]["last_failed_boot"], "boot-1",
        "{st}"
    );

    // Three boots: rolled back on the third.
    let out = sys.failed_check("boot-2", 3);
    assert_eq!(out["failed_boots"], 2, "{out}");
    assert_eq!(sys.order(), vec![b.clone(), a.clone()]);
    let out = sys.failed_check("boot-3", 3);
    assert_eq!(out["failed_boots"], 3, "{out}");
    assert!(
        out["rolled_back"]["reason"]
            .as_str()
            .unwrap()
            .contains("3 failed boots (limit 3)"),
        "{out}"
    );
    assert_eq!(sys.order(), vec![a.clone(), b.clone()]);
    assert_eq!(sys.ostree_order(), sys.order());
    // The previous deployment, checked in the same boot, is healthy, and
    // nothing rolls back twice.
    let ok = sys.json_in_boot("boot-3", &["check"]);
    assert_eq!(ok["healthy"], true, "{ok}");
    assert_eq!(sys.order(), vec![a, b]);
}

/// Issue 17, point 1: a rolled-back commit is not deployed again by
/// `upgrade`; a newer one is, and an explicit `deploy` tries it again.
#[test]
fn a_rolled_back_commit_is_not_upgraded_to_again() {
    let mut server = Server::start();
    let (a, va) = server.compose("a", 64, |_| {});
    let sys = Sysroot::new(&server);
    sys.json(&["deploy", "--origin", &origin()]);
    let (b, vb) = server.compose("b", 64, |t| {
        health_script(t, "20-service", "echo 'service did not start' >&2; exit 4")
    });
    sys.json(&["upgrade"]);
    sys.failed_check("boot-1", 2);
    let out = sys.failed_check("boot-2", 2);
    assert_eq!(sys.order(), vec![a.clone(), b.clone()], "{out}");

    // The timer's next runs: no update, and b is not deployed again.
    let text = run_code(sys.host().args(["upgrade", "--check"]), 1);
    assert!(
        text.contains(&format!("no update: commit {vb}"))
            && text.contains("was rolled back on")
            && text.contains("2 failed boots (limit 2): required.d/20-service (exit 4)")
            && text.contains(&format!("`corral host deploy {b}` to try it again")),
        "{text}"
    );
    for _ in 0..2 {
        let up = sys.json(&["upgrade"]);
        assert_eq!(up["result"], "denied", "{up}");
        assert_eq!(up["commit"]["checksum"], b.as_str(), "{up}");
        assert_eq!(sys.order(), vec![a.clone(), b.clone()]);
    }
    assert_eq!(out["denied"]["checksum"], b.as_str(), "{out}");
    let st = sys.status();
    let denied = st["denied"].as_array().unwrap();
    assert_eq!(denied.len(), 1, "{st}");
    assert_eq!(denied[0]["checksum"], b.as_str());
    assert_eq!(denied[0]["version"], vb.as_str());
    assert!(denied[0]["deployment"].as_str().unwrap().starts_with(&b));
    assert!(denied[0]["reason"]
        .as_str()
        .unwrap()
        .contains("2 failed boots"));
    let text = stdout(&run_ok(sys.host().arg("status")));
    assert!(
        text.contains("denied to upgrades") && text.contains(&format!("{b} {vb}: rolled back on")),
        "{text}"
    );
    let file = sys
        .path()
        .join(format!("ostree/deploy/{OS}/var/lib/corral/denied.json"));
    assert!(file.is_file());

    // An explicit deploy takes it off the list and tries it again; it
    // fails again and is denied again.
    let again = sys.json(&["deploy", &b]);
    assert_eq!(again["to"]["checksum"], b.as_str(), "{again}");
    assert_eq!(again["undenied"], serde_json::json!([b.as_str()]));
    assert_eq!(sys.status()["denied"], serde_json::json!([]));
    assert_eq!(sys.order()[0], b);
    sys.failed_check("boot-3", 2);
    let out = sys.failed_check("boot-4", 2);
    assert_eq!(out["denied"]["checksum"], b.as_str(), "{out}");
    assert_eq!(sys.order()[0], a);
    assert_eq!(
        sys.json_code(1, &["upgrade", "--check"])["result"],
        "denied"
    );

    // A newer commit is offered and deployed, and supersedes the entry.
    let (c, vc) = server.compose("c", 64, |_| {});
    let text = run_code(sys.host().args(["upgrade", "--check"]), 0);
    assert!(
        text.contains(&format!("update available: {va}")) && text.contains(&vc),
        "{text}"
    );
    let up = sys.json(&["upgrade"]);
    assert_eq!(up["to"]["checksum"], c.as_str(), "{up}");
    assert_eq!(up["undenied"], serde_json::json!([b.as_str()]), "{up}");
    assert_eq!(sys.status()["denied"], serde_json::json!([]));
    let ok = sys.json_in_boot("boot-5", &["check"]);
    assert_eq!(ok["healthy"], true, "{ok}");
    // A rollback by hand denies nothing.
    run_ok(sys.host().arg("rollback"));
    assert_eq!(sys.status()["denied"], serde_json::json!([]));
    assert_eq!(
        sys.json_code(0, &["upgrade", "--check"])["result"],
        "available"
    );
}

/// A staged deployment libostree did not finalize at shutdown is found in
/// the next boot, reported with libostree's words, and its commit is not
/// staged again until a newer one comes. A sysroot in a directory cannot
/// stage (libostree stages only on a booted host; the VM test in
/// disk_boot.rs does it for real), so the test writes the two notes a
/// booted host leaves: corral's `staged.json` and libostree's stamp.
#[test]
fn a_staged_commit_that_was_not_finalized_is_reported_and_denied() {
    let mut server = Server::start();
    let (a, _) = server.compose("a", 64, |_| {});
    let sys = Sysroot::new(&server);
    sys.json(&["deploy", "--origin", &origin()]);
    let (b, vb) = server.compose("b", 64, |_| {});
    let dl = sys.json(&["upgrade", "--download-only"]);
    assert_eq!(dl["to"]["checksum"], b.as_str(), "{dl}");
    let var = sys
        .path()
        .join(format!("ostree/deploy/{OS}/var/lib/corral"));
    let note = var.join("staged.json");
    std::fs::create_dir_all(&var).unwrap();
    std::fs::write(
        &note,
        serde_json::json!({"deployment": format!("{b}.0"), "checksum": b, "boot_id": "boot-1", "at": 1_767_225_600u64})
            .to_string(),
    )
    .unwrap();
    let stamp = sys.path().join("boot/ostree/finalize-failure.stamp");
    std::fs::create_dir_all(stamp.parent().unwrap()).unwrap();
    let words = "Writing bootloader config: mkdirat(loader.1): Operation not permitted";
    std::fs::write(&stamp, format!("{words}\n")).unwrap();

    // Still the boot that staged it: finalized at its shutdown.
    let out = sys.json_in_boot("boot-1", &["finalize-check"]);
    assert_eq!(out["result"], "waiting", "{out}");
    let st = sys.json_in_boot("boot-1", &["status"]);
    assert!(st["last_finalize_failure"].is_null(), "{st}");

    // The next boot: status sees it before anybody recorded it, and
    // changes nothing.
    let st = sys.json_in_boot("boot-2", &["status"]);
    assert_eq!(st["last_finalize_failure"]["checksum"], b.as_str(), "{st}");
    assert_eq!(st["last_finalize_failure"]["message"], words, "{st}");
    assert!(note.is_file());
    // finalize-check (the drop-in for ostree-boot-complete.service)
    // records it with libostree's words and denies the commit.
    let out = sys.json_in_boot("boot-2", &["finalize-check"]);
    assert_eq!(out["result"], "failed", "{out}");
    assert_eq!(out["checksum"], b.as_str(), "{out}");
    assert_eq!(out["version"], vb.as_str(), "{out}");
    assert_eq!(out["message"], words, "{out}");
    assert!(!note.exists(), "the note outlived its verdict");
    let st = sys.json_in_boot("boot-2", &["status"]);
    assert_eq!(st["last_finalize_failure"]["checksum"], b.as_str(), "{st}");
    let denied = st["denied"].as_array().unwrap();
    assert_eq!(denied.len(), 1, "{st}");
    assert_eq!(denied[0]["checksum"], b.as_str());
    assert_eq!(denied[0]["cause"], "not-finalized", "{st}");
    assert_eq!(denied[0]["reason"], words, "{st}");
    let text = stdout(&run_ok(
        sys.host().arg("status").env("CORRAL_BOOT_ID", "boot-2"),
    ));
    assert!(
        text.contains(&format!("{b} {vb}: not finalized at shutdown on"))
            && text.contains(&format!(
                "not applied: {b} {vb} was staged on 2026-01-01T00:00:00Z and not finalized at shutdown: {words}"
            )),
        "{text}"
    );
    // A second verdict finds nothing to judge.
    let out = sys.json_in_boot("boot-2", &["finalize-check"]);
    assert_eq!(out["result"], "nothing-staged", "{out}");

    // auto's and the timer's upgrades do not stage it again.
    let text = run_code(
        sys.host()
            .args(["upgrade", "--check"])
            .env("CORRAL_BOOT_ID", "boot-2"),
        1,
    );
    assert!(
        text.contains(&format!("no update: commit {vb}"))
            && text.contains("was not finalized at shutdown on")
            && text.contains(words),
        "{text}"
    );
    let up = sys.json_in_boot("boot-2", &["upgrade"]);
    assert_eq!(up["result"], "denied", "{up}");
    assert_eq!(sys.order().len(), 1);
    assert!(sys.order()[0].starts_with(&a));

    // A commit that was finalized: the note goes, nothing is recorded.
    let (c, _) = server.compose("c", 64, |_| {});
    let up = sys.json_in_boot("boot-2", &["upgrade"]);
    assert_eq!(up["to"]["checksum"], c.as_str(), "{up}");
    assert_eq!(up["undenied"], serde_json::json!([b.as_str()]), "{up}");
    std::fs::write(
        &note,
        serde_json::json!({"deployment": format!("{c}.0"), "checksum": c, "boot_id": "boot-2", "at": 1_767_225_600u64})
            .to_string(),
    )
    .unwrap();
    let out = sys.json_in_boot("boot-3", &["finalize-check"]);
    assert_eq!(out["result"], "finalized", "{out}");
    assert!(!note.exists());
    let st = sys.json_in_boot("boot-3", &["status"]);
    assert_eq!(st["denied"], serde_json::json!([]), "{st}");
    // the last failure stays on record for status
    assert_eq!(st["last_finalize_failure"]["checksum"], b.as_str(), "{st}");
}

/// Issue 17, point 7: remotes can be deleted and pointed elsewhere.
#[test]
fn remotes_can_be_deleted_and_repointed() {
    let mut server = Server::start();
    let (a, _) = server.compose("a", 64, |_| {});
    let sys = Sysroot::new(&server);
    let repo = sys.path().join("ostree/repo");
    let show_url = |name: &str| {
        stdout(&run_ok(
            Command::new("ostree")
                .args(["remote", "show-url", name])
                .arg(format!("--repo={}", repo.display())),
        ))
        .trim()
        .to_string()
    };
    let keyring = repo.join("corral.trustedkeys.gpg");
    assert!(keyring.is_file());

    // set-url: only the url changes; the keys and verification stay.
    let dead = "http://127.0.0.1:9/ostree";
    let out = sys.json(&["remote", "set-url", "corral", dead]);
    assert_eq!(
        out,
        serde_json::json!({"remote": "corral", "from": server.url(), "to": dead})
    );
    assert_eq!(show_url("corral"), dead);
    let list = sys.json(&["remote", "list"]);
    assert_eq!(
        list,
        serde_json::json!([{"name": "corral", "url": dead, "gpg_verify": true, "gpg_verify_summary": true}])
    );
    assert!(keyring.is_file());
    let text = run_code(sys.host().args(["deploy", "--origin", &origin()]), 2);
    assert!(text.contains("127.0.0.1:9"), "{text}");
    let text = run_ok(
        sys.host()
            .args(["remote", "set-url", "corral", &server.url()]),
    );
    assert!(stdout(&text).contains("its keys and options are kept"));
    assert_eq!(show_url("corral"), server.url());
    let first = sys.json(&["deploy", "--origin", &origin()]);
    assert_eq!(first["to"]["checksum"], a.as_str(), "{first}");
    assert_eq!(first["signature"]["state"], "valid", "{first}");
    // bad input names the remote or the url
    let text = run_code(
        sys.host().args(["remote", "set-url", "corral", "ftp://x"]),
        2,
    );
    assert!(text.contains("remote url `ftp://x` is not"), "{text}");
    let text = run_code(sys.host().args(["remote", "set-url", "nope", dead]), 2);
    assert!(text.contains("no remote `nope`"), "{text}");
    assert_eq!(show_url("corral"), server.url());

    // delete: refused while a deployment updates from it.
    run_ok(
        sys.host()
            .args(["remote", "add", "spare", dead, "--gpg-key"])
            .arg(&server.gpg.public_key),
    );
    let text = run_code(sys.host().args(["remote", "delete", "corral"]), 2);
    assert!(
        text.contains(&format!("is the origin of deployment 0 ({a}.0)"))
            && text.contains("--force"),
        "{text}"
    );
    assert_eq!(show_url("corral"), server.url());
    // one nothing uses goes at once, with its keyring
    assert!(repo.join("spare.trustedkeys.gpg").is_file());
    let out = sys.json(&["remote", "delete", "spare"]);
    assert_eq!(
        out,
        serde_json::json!({"deleted": "spare", "origin_of": []})
    );
    assert!(!repo.join("spare.trustedkeys.gpg").exists());
    let text = run_code(sys.host().args(["remote", "delete", "spare"]), 2);
    assert!(text.contains("no remote `spare`"), "{text}");
    // --force deletes it and says who still names it; its refs go, the
    // deployment's commit stays
    let refs = |repo: &Path| {
        stdout(&run_ok(
            Command::new("ostree")
                .arg("refs")
                .arg(format!("--repo={}", repo.display())),
        ))
    };
    assert!(refs(&repo).contains(&format!("corral:{REF}")));
    let text = stdout(&run_ok(
        sys.host().args(["remote", "delete", "corral", "--force"]),
    ));
    assert!(
        text.contains("deleted remote corral")
            && text.contains(&format!("deployment 0 ({a}.0) still names it")),
        "{text}"
    );
    let remotes = stdout(&run_ok(
        Command::new("ostree")
            .args(["remote", "list"])
            .arg(format!("--repo={}", repo.display())),
    ));
    assert_eq!(remotes.trim(), "");
    assert!(!keyring.exists());
    assert!(!refs(&repo).contains("corral:"), "{}", refs(&repo));
    run_ok(
        Command::new("ostree")
            .args(["fsck", "--quiet"])
            .arg(format!("--repo={}", repo.display())),
    );
    assert_eq!(sys.order(), vec![a.clone()]);
    // and can be added again under the same name
    run_ok(
        sys.host()
            .args(["remote", "add", "corral", &server.url(), "--gpg-key"])
            .arg(&server.gpg.public_key),
    );
    let text = run_code(sys.host().args(["upgrade", "--check"]), 1);
    assert!(text.contains("no update"), "{text}");
}

#[test]
fn a_second_writer_waits_or_names_the_holder() {
    let mut server = Server::start();
    server.compose("a", 64, |_| {});
    let (sys, _) = (Sysroot::new(&server), ());
    sys.json(&["deploy", "--origin", &origin()]);
    server.compose("b", 64, |_| {});
    sys.json(&["upgrade"]);
    let lock = sys.path().join("ostree/corral-host.lock");
    std::fs::write(&lock, "pid 4242 (corral host upgrade)\n").unwrap();
    require_tool("flock");
    let mut holder = Command::new("flock")
        .arg("--no-fork")
        .arg(&lock)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    // wait until the holder has it
    let started = Instant::now();
    while Command::new("flock")
        .args(["-n"])
        .arg(&lock)
        .arg("true")
        .status()
        .unwrap()
        .success()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "flock never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = run_code(sys.host().args(["--no-wait", "rollback"]), 2);
    assert!(
        text.contains("is locked by pid 4242 (corral host upgrade)"),
        "{text}"
    );
    let before = sys.order();
    // Without --no-wait it says whom it waits for, and runs once the
    // holder is gone.
    let mut waiting = sys
        .host()
        .arg("rollback")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = waiting.stderr.take().unwrap();
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let said = said.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut stderr = stderr;
            let mut buf = [0u8; 256];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                said.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let started = Instant::now();
    while !said.lock().unwrap().contains("waiting for pid 4242") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "it did not say whom it waits for: {}",
            said.lock().unwrap()
        );
        assert!(waiting.try_wait().unwrap().is_none(), "it did not wait");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sys.order(), before, "it ran while the lock was held");
    holder.kill().unwrap();
    holder.wait().unwrap();
    let status = waiting.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{}", said.lock().unwrap());
    let after = sys.order();
    assert_eq!(after, vec![before[1].clone(), before[0].clone()]);
}

impl Server {
    /// Composes the sample stream from the sample RPM repositories.
    fn compose_sample(&mut self, repos: &Path) -> (String, String) {
        self.run_compose(|c| {
            c.env("CORRAL_SAMPLE_REPOS", repos);
        })
    }
}

#[test]
fn a_one_package_update_comes_as_a_delta_with_its_package_diff() {
    let repos = sample_repos();
    let mut server = Server::start();
    let (a, _) = server.compose_sample(repos.path());
    let sys = Sysroot::new(&server);
    // the first deployment comes through the published from-scratch delta
    let first = sys.json(&["deploy", "--origin", &origin()]);
    assert!(
        first["pull"]["delta_parts"].as_u64().unwrap() > 0,
        "{first}"
    );
    assert!(
        first["delta_unpacked_bytes"].as_u64().unwrap() > 0,
        "{first}"
    );

    let updated = scratch();
    run_ok(
        Command::new("bash")
            .arg(repo_root().join("tests/fixtures/rpms/build-repo.sh"))
            .arg(updated.path())
            .env("HELLO_VERSION", "1.1"),
    );
    let (b, vb) = server.compose_sample(updated.path());
    let check = run_code(sys.host().args(["upgrade", "--check"]), 0);
    assert!(
        check.contains(&vb) && check.contains("a static delta is published"),
        "{check}"
    );
    assert!(
        check.contains("corral-hello.noarch 1.0-1 -> 1.1-1"),
        "{check}"
    );

    let up = sys.json(&["upgrade"]);
    assert_eq!(
        (
            up["from"]["checksum"].as_str(),
            up["to"]["checksum"].as_str()
        ),
        (Some(a.as_str()), Some(b.as_str()))
    );
    assert!(
        up["pull"]["delta_parts"].as_u64().unwrap() > 0,
        "the static delta was not used: {up}"
    );
    // the free-space check knew the delta's unpacked size beforehand
    assert!(up["delta_unpacked_bytes"].as_u64().unwrap() > 0, "{up}");
    let changed = serde_json::json!([{"name": "corral-hello", "arch": "noarch", "from": "1.0-1", "to": "1.1-1"}]);
    assert_eq!(up["packages"]["changed"], changed);
    let st = sys.status();
    assert_eq!(st["changes"]["packages"]["changed"], changed, "{st}");
    assert_eq!(st["changes"]["packages"]["added"], serde_json::json!([]));
    let text = stdout(&run_ok(sys.host().arg("status")));
    assert!(
        text.contains("corral-hello.noarch 1.0-1 -> 1.1-1"),
        "{text}"
    );
    // the deployed tree is the composed one
    let hello =
        std::fs::read_to_string(sys.deployment_dir(0).join("usr/bin/corral-hello")).unwrap();
    assert!(hello.contains("corral-hello 1.1"), "{hello}");
}

/// The units in dist/systemd, which docs/host.md names (their text is not
/// copied there), pass `systemd-analyze verify` with this build's corral.
/// disk_boot.rs checks them as packaged, enabled and running in a VM.
#[test]
fn the_shipped_systemd_units_verify() {
    require_tool("systemd-analyze");
    // this checkout's, not the support crate's (it may have been built
    // from another checkout sharing the target directory); the test is the
    // `corral` package's, in crates/corral
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap();
    let doc = std::fs::read_to_string(root.join("docs/host.md")).unwrap();
    let dir = scratch();
    let mut units = Vec::new();
    for name in [
        "corral-host-check.service",
        "corral-boot-complete.service",
        "corral-host-upgrade.service",
        "corral-host-upgrade.timer",
        "corral-host-auto.service",
        "corral-host-auto.timer",
        "corral-host-steady.service",
    ] {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/host.md does not name {name}"
        );
        let text = std::fs::read_to_string(root.join("dist/systemd").join(name)).unwrap();
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            text.replace("/usr/bin/corral", &corral_bin().display().to_string()),
        )
        .unwrap();
        units.push(path);
    }
    let out = systemd_verify(&units);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify refused dist/systemd:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
