//! A Docker Engine started for one test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::require_tool;

/// A Docker Engine started for one test, on its own socket and data root,
/// with the flags this machine needs; stopped and removed on drop.
pub struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Dockerd {
    pub fn start() -> Dockerd {
        Dockerd::start_with_config(None)
    }

    /// Starts an engine with `daemon_json` as its `--config-file` (for
    /// settings such as `registry-mirrors`), or none.
    pub fn start_with_config(daemon_json: Option<&str>) -> Dockerd {
        require_tool("dockerd");
        require_tool("containerd");
        let dir = tempfile::Builder::new()
            .prefix("corral-dockerd-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let mut cmd = Command::new("dockerd");
        if let Some(json) = daemon_json {
            let config = dir.path().join("daemon.json");
            std::fs::write(&config, json).unwrap();
            cmd.arg(format!("--config-file={}", config.display()));
        }
        let child = cmd
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--ip6tables=false",
            ])
            .arg(format!(
                "--host=unix://{}",
                dir.path().join("docker.sock").display()
            ))
            .arg(format!("--data-root={}", dir.path().join("data").display()))
            .arg(format!("--exec-root={}", dir.path().join("exec").display()))
            .arg(format!(
                "--pidfile={}",
                dir.path().join("docker.pid").display()
            ))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting dockerd");
        let d = Dockerd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = d
                .docker()
                .arg("version")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up in 60 s; its log:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// What the engine logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// `unix:///…/docker.sock`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// The Debian docker client, pointed at this engine.
    pub fn docker(&self) -> Command {
        let client = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let mut cmd = Command::new(client);
        cmd.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("client"));
        cmd
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        crate::stop_child(&mut self.child, Duration::from_secs(20));
        // Mounts under the data root must go before the directory can.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {0}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l",
                self.dir.path().display()
            ))
            .status();
    }
}
