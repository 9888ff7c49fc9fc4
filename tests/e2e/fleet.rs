//! Updates without a person, end to end: sysroots in temp dirs running
//! the real `corral host auto` / `check` / `steady` against one `corral
//! mirror serve` that serves the OSTree repository and a FleetLock with
//! one slot. The reboot command of each host appends a line with the time
//! to a log, so the test sees exactly when each host "rebooted".

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corral_test_support::*;

const OS: &str = "corral";
const REF: &str = "corral-sample/43/x86_64/atomic-host";

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The compose side: a signed archive repository served by a mirror that
/// also serves a FleetLock with `groups`.
struct Server {
    work: tempfile::TempDir,
    gpg: Gpg,
    repo: PathBuf,
    stream: PathBuf,
    mirror: Mirror,
    composes: u32,
}

impl Server {
    fn start(groups: &str) -> Server {
        Self::start_with(|_| format!("[fleetlock]\ngroups = {groups}\n"))
    }

    /// With the mirror config `config(work dir)` returns.
    fn start_with(config: impl FnOnce(&Path) -> String) -> Server {
        require_tool("ostree");
        let work = scratch();
        let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
        let repo = work.path().join("repo");
        let stream = work.path().join("stream.toml");
        std::fs::copy(repo_root().join("ostree-refs/sample-atomic.toml"), &stream).unwrap();
        init_archive_repo(&repo);
        let config_text = config(work.path());
        let config = work.path().join("mirror.toml");
        std::fs::write(&config, config_text).unwrap();
        let mirror = Mirror::start(&[
            "--ostree-repo",
            repo.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ]);
        Server {
            work,
            gpg,
            repo,
            stream,
            mirror,
            composes: 0,
        }
    }

    /// Composes a small tree with `marker`, its commit dated `epoch`;
    /// returns the checksum.
    fn compose(&mut self, marker: &str, epoch: u64) -> String {
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
        std::fs::write(tree.join("usr/lib/modules/6.9.0-t/vmlinuz"), "kernel").unwrap();
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
        let mut cmd = compose_run(&self.stream, &self.repo, self.gpg.home.path());
        cmd.arg("--rootfs")
            .arg(&tree)
            .args(["--force", "--reason", marker])
            .env("SOURCE_DATE_EPOCH", epoch.to_string());
        let out = run_ok(&mut cmd);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v[0]["result"], "committed", "{v}");
        v[0]["checksum"].as_str().unwrap().to_string()
    }
}

/// A host: a sysroot with the first deployment, its machine id and a
/// reboot command that logs to `reboots`.
struct Sysroot {
    name: String,
    dir: tempfile::TempDir,
    reboots: PathBuf,
}

impl Sysroot {
    fn new(server: &Server, name: &str) -> Sysroot {
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
        let s = Sysroot {
            name: name.to_string(),
            reboots: dir.path().join("reboots.log"),
            dir,
        };
        run_ok(
            s.host()
                .args(["remote", "add", "corral"])
                .arg(format!("{}/ostree", server.mirror.url()))
                .arg("--gpg-key")
                .arg(&server.gpg.public_key),
        );
        run_ok(
            s.host()
                .args(["deploy", "--origin", &format!("corral:{REF}")]),
        );
        std::fs::write(
            s.etc().join("machine-id"),
            format!("{:0>32}\n", hex::encode(name)),
        )
        .unwrap();
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

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = run_ok(self.host().args(args).arg("--json"));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// The default deployment's `/etc`.
    fn etc(&self) -> PathBuf {
        let s = self.json(&["status"]);
        let d = &s["deployments"][0];
        self.path()
            .join(format!(
                "ostree/deploy/{OS}/deploy/{}.{}",
                d["checksum"].as_str().unwrap(),
                d["serial"]
            ))
            .join("etc")
    }

    fn default_checksum(&self) -> String {
        self.json(&["status"])["deployments"][0]["checksum"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Writes `[updates]` (plus the reboot command) into host.toml.
    fn configure(&self, updates: &str) {
        let script = self.path().join("reboot.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"{} $(date +%s.%N) $CORRAL_DEPLOYMENT\" >> {}\n",
                self.name,
                self.reboots.display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all(self.etc().join("corral")).unwrap();
        std::fs::write(
            self.etc().join("corral/host.toml"),
            format!(
                "[updates]\nreboot-command = [\"sh\", \"{}\"]\n{updates}\n",
                script.display()
            ),
        )
        .unwrap();
    }

    /// (time, deployment) of every reboot so far.
    fn reboots(&self) -> Vec<(f64, String)> {
        std::fs::read_to_string(&self.reboots)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                assert_eq!(f[0], self.name, "{l}");
                (f[1].parse().unwrap(), f[2].to_string())
            })
            .collect()
    }
}

impl Drop for Sysroot {
    /// libostree makes deployment roots immutable.
    fn drop(&mut self) {
        let deploy = self.path().join(format!("ostree/deploy/{OS}/deploy"));
        for e in std::fs::read_dir(deploy).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                let _ = Command::new("chattr").arg("-i").arg(e.path()).status();
            }
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn fleet_lock(server: &Server) -> String {
    format!(
        "strategy = \"fleet_lock\"\n[updates.fleet-lock]\nbase-url = \"{}/\"\ngroup = \"default\"\n",
        server.mirror.url()
    )
}

/// The holders the mirror has on disk.
fn holders(server: &Server) -> serde_json::Value {
    let p = server.mirror.storage.join("fleetlock.json");
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice::<serde_json::Value>(&b).unwrap()["groups"].clone(),
        Err(_) => serde_json::json!({}),
    }
}

#[test]
fn with_one_slot_the_second_host_reboots_after_the_first_is_steady() {
    let mut server = Server::start("{ default = 1 }");
    server.compose("a", 1_767_225_600);
    let a = Sysroot::new(&server, "host-a");
    let b = Sysroot::new(&server, "host-b");
    a.configure(&fleet_lock(&server));
    b.configure(&fleet_lock(&server));
    let new = server.compose("b", 1_767_312_000);

    let ra = a.json(&["auto"]);
    assert_eq!(ra["result"], "rebooted", "{ra}");
    assert_eq!(ra["deployed"]["to"]["checksum"], new.as_str(), "{ra}");
    assert_eq!(a.reboots().len(), 1);
    assert!(a.reboots()[0].1.starts_with(&new), "{:?}", a.reboots());

    let rb = b.json(&["auto"]);
    assert_eq!(rb["result"], "waiting-lock", "{rb}");
    assert_eq!(b.default_checksum(), new, "b deployed, waiting to reboot");
    assert!(b.reboots().is_empty());
    // the next run fetches nothing again and is still refused
    let rb = b.json(&["auto"]);
    assert_eq!(rb["result"], "waiting-lock", "{rb}");
    assert!(rb["deployed"].is_null(), "{rb}");
    let st = b.json(&["updates"]);
    assert_eq!(st["strategy"], "fleet_lock", "{st}");
    assert!(st["pending"].as_str().unwrap().starts_with(&new), "{st}");
    let a_id = a.json(&["updates"])["fleet_lock_id"].clone();
    assert_eq!(holders(&server)["default"][0]["id"], a_id);

    // a's steady-state before its health check keeps the slot
    let out = a.host().args(["steady"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not been checked yet"),
        "{}",
        text(&out)
    );
    assert_eq!(b.json(&["auto"])["result"], "waiting-lock");

    assert_eq!(a.json(&["check"])["healthy"], true);
    let s = a.json(&["steady"]);
    assert_eq!(s["released"], true, "{s}");
    assert_eq!(holders(&server), serde_json::json!({}));

    let rb = b.json(&["auto"]);
    assert_eq!(rb["result"], "rebooted", "{rb}");
    assert_eq!(b.reboots().len(), 1);
    assert!(b.reboots()[0].0 > a.reboots()[0].0);
    // rebooted into it: nothing waits any more, and a second run is quiet
    assert_eq!(b.json(&["auto"])["result"], "up-to-date");
    assert_eq!(b.reboots().len(), 1);
    assert_eq!(a.json(&["auto"])["result"], "up-to-date");
    assert_eq!(a.reboots().len(), 1);
}

#[test]
fn two_hosts_racing_for_one_slot_never_reboot_together() {
    let mut server = Server::start("{ default = 1 }");
    server.compose("a", 1_767_225_600);
    let hosts = [
        Sysroot::new(&server, "host-a"),
        Sysroot::new(&server, "host-b"),
    ];
    for h in &hosts {
        h.configure(&fleet_lock(&server));
    }
    server.compose("b", 1_767_312_000);

    // Both run their timer every 100 ms. A host that rebooted is "down"
    // for 300 ms, then boots, passes its health check and reports steady.
    // Down means from its reboot command until it is back and healthy.
    let refused = std::sync::atomic::AtomicU32::new(0);
    let ends: Vec<f64> = std::thread::scope(|s| {
        let threads: Vec<_> = hosts
            .iter()
            .map(|h| {
                let refused = &refused;
                s.spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(120);
                    loop {
                        assert!(Instant::now() < deadline, "{} never rebooted", h.name);
                        let r = h.json(&["auto"]);
                        match r["result"].as_str().unwrap() {
                            "rebooted" => break,
                            "waiting-lock" => {
                                refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                std::thread::sleep(Duration::from_millis(100));
                            }
                            other => panic!("{}: unexpected {other}: {r}", h.name),
                        }
                    }
                    std::thread::sleep(Duration::from_millis(300));
                    assert_eq!(h.json(&["check"])["healthy"], true);
                    // up and healthy from here; the server frees the slot
                    // while `steady` runs, so the other host may reboot
                    // before `steady` returns
                    let up = now();
                    assert_eq!(h.json(&["steady"])["released"], true);
                    up
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });

    let mut spans: Vec<(f64, f64, &str)> = hosts
        .iter()
        .zip(&ends)
        .map(|(h, end)| {
            let r = h.reboots();
            assert_eq!(r.len(), 1, "{}: {r:?}", h.name);
            (r[0].0, *end, h.name.as_str())
        })
        .collect();
    spans.sort_by(|x, y| x.0.total_cmp(&y.0));
    assert!(
        spans[0].1 <= spans[1].0,
        "{} rebooted at {} while {} was down from {} to {}",
        spans[1].2,
        spans[1].0,
        spans[0].2,
        spans[0].0,
        spans[0].1
    );
    assert!(
        refused.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the second host was never refused: the race did not happen"
    );
    assert_eq!(holders(&server), serde_json::json!({}));
}

#[test]
fn periodic_windows_and_rollout_wariness() {
    let mut server = Server::start("{ default = 1 }");
    server.compose("a", 1_767_225_600);
    let h = Sysroot::new(&server, "host-p");
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let secs = now() as u64;
    let today = ((secs / 86_400 + 3) % 7) as usize;
    // a window two days away: certainly closed now
    let later = DAYS[(today + 2) % 7];
    h.configure(&format!(
        "strategy = \"periodic\"\n[[updates.periodic.window]]\ndays = [\"{later}\"]\nstart-time = \"03:00\"\nlength-minutes = 60\n"
    ));
    let new = server.compose("b", now() as u64);
    let r = h.json(&["auto"]);
    assert_eq!(r["result"], "waiting-window", "{r}");
    assert_eq!(r["deployed"]["to"]["checksum"], new.as_str(), "{r}");
    let opens = r["not_before"].as_u64().unwrap();
    assert_eq!(opens % 86_400, 3 * 3600, "{r}");
    assert_eq!(((opens / 86_400 + 3) % 7) as usize, (today + 2) % 7, "{r}");
    assert!(h.reboots().is_empty());
    assert_eq!(h.json(&["updates"])["in_window"], false);

    // the whole of today is a window, but a rollout delay of up to a
    // hundred years came in: the deployed release waits for it too
    let window: u64 = 100 * 365 * 86_400;
    let today_open = format!(
        "strategy = \"periodic\"\n[[updates.periodic.window]]\ndays = [\"{}\"]\nstart-time = \"00:00\"\nlength-minutes = 1440\n",
        DAYS[today]
    );
    h.configure(&format!("rollout-wariness = {window}\n{today_open}"));
    let r = h.json(&["auto"]);
    assert_eq!(r["result"], "waiting-rollout", "{r}");
    assert!(r["pending"].as_str().unwrap().starts_with(&new), "{r}");
    assert!(h.reboots().is_empty());
    // without it, it reboots, without fetching again
    h.configure(&today_open);
    let r = h.json(&["auto"]);
    assert_eq!(r["result"], "rebooted", "{r}");
    assert!(r["deployed"].is_null(), "{r}");
    assert_eq!(h.reboots().len(), 1);

    // Rollout wariness before deploying: a release made now.
    h.configure(&format!("rollout-wariness = {window}\n"));
    let released = now() as u64;
    let newer = server.compose("c", released);
    let r = h.json(&["auto"]);
    assert_eq!(r["result"], "waiting-rollout", "{r}");
    let delay = r["delay"].as_u64().unwrap();
    assert!(delay < window);
    // counted from the commit's timestamp, the release
    let stamp = r["commit"]["timestamp"].as_u64().unwrap();
    assert!(stamp >= released, "{r}");
    assert_eq!(r["not_before"].as_u64().unwrap(), stamp + delay, "{r}");
    assert!(stamp + delay > now() as u64, "{r}");
    assert_eq!(r["commit"]["checksum"], newer.as_str());
    assert_eq!(h.default_checksum(), new, "nothing deployed while waiting");
    // the delay is this host's own, the same on every run
    assert_eq!(h.json(&["auto"])["delay"].as_u64().unwrap(), delay);

    // a window of one second: no delay, deployed and (immediate) rebooted
    h.configure("rollout-wariness = 1\n");
    let r = h.json(&["auto"]);
    assert_eq!(r["result"], "rebooted", "{r}");
    assert_eq!(r["deployed"]["to"]["checksum"], newer.as_str(), "{r}");
    assert_eq!(h.reboots().len(), 2);
}

#[test]
fn a_failing_reboot_command_gives_the_slot_back() {
    let mut server = Server::start("{ default = 1 }");
    server.compose("a", 1_767_225_600);
    let h = Sysroot::new(&server, "host-f");
    h.configure(&fleet_lock(&server));
    let host_toml = h.etc().join("corral/host.toml");
    let text_before = std::fs::read_to_string(&host_toml).unwrap();
    std::fs::write(
        &host_toml,
        text_before.replace(
            "reboot-command = [\"sh\", ",
            "reboot-command = [\"false\", ",
        ),
    )
    .unwrap();
    server.compose("b", 1_767_312_000);
    let out = h.host().arg("auto").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("the reboot command `false"),
        "{}",
        text(&out)
    );
    assert_eq!(holders(&server), serde_json::json!({}), "slot given back");
    // and it is tried again at the next run
    std::fs::write(h.etc().join("corral/host.toml"), text_before).unwrap();
    assert_eq!(h.json(&["auto"])["result"], "rebooted");
}

#[test]
fn credentials_in_the_base_url_reach_a_server_that_requires_them() {
    require_tool("htpasswd");
    let mut server = Server::start_with(|dir| {
        let out = run_ok(Command::new("htpasswd").args(["-Bbn", "fleet", "s3cret-pw"]));
        let file = dir.join("htpasswd");
        std::fs::write(&file, out.stdout).unwrap();
        format!(
            "[auth]\nhtpasswd = \"{}\"\n[fleetlock]\ngroups = {{ default = 1 }}\nrequire_auth = true\n",
            file.display()
        )
    });
    server.compose("a", 1_767_225_600);
    let with = Sysroot::new(&server, "host-c");
    let without = Sysroot::new(&server, "host-d");
    let port = server.mirror.port;
    let settings = |url: String| {
        format!("strategy = \"fleet_lock\"\n[updates.fleet-lock]\nbase-url = \"{url}\"\n")
    };
    with.configure(&settings(format!(
        "http://fleet:s3cret-pw@127.0.0.1:{port}/"
    )));
    without.configure(&settings(format!("http://127.0.0.1:{port}/")));
    server.compose("b", 1_767_312_000);

    let out = without.host().arg("auto").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("unauthorized"), "{}", text(&out));
    assert!(without.reboots().is_empty());

    let r = with.json(&["auto"]);
    assert_eq!(r["result"], "rebooted", "{r}");
    let st = with.json(&["updates"]);
    assert_eq!(
        st["fleet_lock_url"],
        format!("http://127.0.0.1:{port}/"),
        "no password in what is shown: {st}"
    );
}
