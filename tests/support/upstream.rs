//! Debian's docker-registry (distribution) as an upstream registry.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, require_tool, scratch, stop_child, wait_http};

/// Debian's docker-registry (distribution 2.8) on a loopback port, with its
/// access log kept so a test can count the requests it saw.
pub struct Upstream {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Upstream {
    pub fn start() -> Upstream {
        require_tool("docker-registry");
        let dir = scratch();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting docker-registry");
        let up = Upstream {
            port,
            child: Some(child),
            dir,
        };
        wait_http(&format!("{}/v2/", up.url()), "docker-registry", &log);
        up
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many access-log lines contain `needle` (e.g. `"GET /v2/…/blobs/sha256:…`).
    pub fn requests_matching(&self, needle: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("registry.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}
