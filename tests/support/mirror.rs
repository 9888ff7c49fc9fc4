//! `corral mirror serve`, the real binary, on a loopback port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{corral_bin, free_port, http_get, scratch, stop_child, wait_http};

/// `corral mirror serve` (the real binary) on a loopback port.
pub struct Mirror {
    pub port: u16,
    pub storage: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

impl Mirror {
    /// Starts the mirror with `extra` flags (e.g. `--upstream library=URL`)
    /// and waits for `/healthz`.
    pub fn start(extra: &[&str]) -> Mirror {
        let dir = scratch();
        let port = free_port();
        let storage = dir.path().join("storage");
        let log = dir.path().join("mirror.log");
        let child = Command::new(corral_bin())
            .args(["mirror", "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--storage")
            .arg(&storage)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting corral mirror serve");
        let m = Mirror {
            port,
            storage,
            child,
            dir,
        };
        wait_http(&format!("{}/healthz", m.url()), "corral mirror", &log);
        m
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, as registries.conf and image references spell it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The value of an unlabelled counter from `/metrics`.
    pub fn counter(&self, name: &str) -> u64 {
        let text = http_get(&format!("{}/metrics", self.url())).expect("GET /metrics");
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == name).then(|| v.trim().parse::<f64>().ok())?
            })
            .map(|v| v as u64)
            .unwrap_or(0)
    }

    /// Whether the storage holds `digest` (`sha256:…`) as a blob.
    pub fn has_blob(&self, digest: &str) -> bool {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .is_file()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mirror.log")).unwrap_or_default()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(10));
    }
}
