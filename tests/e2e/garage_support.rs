//! A 3-node Garage cluster for the tests of the S3 backend (scripts/garage.sh),
//! shared by tests/e2e/replicas.rs and tests/e2e/mirror_faults.rs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use corral_e2e::{repo_root, run_ok, scratch};

/// A 3-node Garage cluster with a bucket and key; stopped on drop.
pub struct Garage {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Garage {
    pub fn start() -> Garage {
        let dir = scratch();
        run_ok(
            Command::new("bash")
                .arg(repo_root().join("scripts/garage.sh"))
                .arg("start")
                .arg(dir.path()),
        );
        let env = std::fs::read_to_string(dir.path().join("env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Garage { dir, env }
    }

    /// The S3 endpoint of node `n` (1-3).
    pub fn endpoint(&self, n: u8) -> &str {
        &self.env[&format!("S3_ENDPOINT_{n}")]
    }

    pub fn stop_node(&self, n: u8) {
        run_ok(
            Command::new("bash")
                .arg(repo_root().join("scripts/garage.sh"))
                .arg("stop")
                .arg(self.dir.path())
                .arg(n.to_string()),
        );
    }

    /// A mirror config using the S3 API of `nodes` (an `endpoints` list,
    /// preferred first, when there are several), pushes allowed to
    /// `user:pass` from `htpasswd`.
    pub fn mirror_config_on(&self, nodes: &[u8], listen: u16, htpasswd: &Path) -> String {
        let endpoints = match nodes {
            [n] => format!("endpoint = \"{}\"", self.endpoint(*n)),
            _ => format!(
                "endpoints = [{}]",
                nodes
                    .iter()
                    .map(|n| format!("\"{}\"", self.endpoint(*n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "listen = \"127.0.0.1:{listen}\"\n[auth]\nhtpasswd = \"{}\"\ntoken_secret = \"shared by the replicas, 32 bytes or more\"\n[s3]\n{}\nbucket = \"{}\"\nregion = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\nprefix = \"mirror\"\n",
            htpasswd.display(),
            endpoints,
            self.env["S3_BUCKET"],
            self.env["S3_REGION"],
            self.env["S3_ACCESS_KEY_ID"],
            self.env["S3_SECRET_ACCESS_KEY"],
        )
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in 1..=3 {
                let log = std::fs::read_to_string(self.dir.path().join(format!("node{n}/log")));
                eprintln!("--- log of garage node {n}:\n{}", log.unwrap_or_default());
            }
        }
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/garage.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}
