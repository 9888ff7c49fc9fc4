//! skopeo with a policy of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{require_tool, scratch};

/// skopeo with an accept-anything policy and, unless given one, no
/// registries.conf of the host.
pub struct Skopeo {
    policy: PathBuf,
    _dir: tempfile::TempDir,
}

impl Default for Skopeo {
    fn default() -> Self {
        Self::new()
    }
}

impl Skopeo {
    pub fn new() -> Skopeo {
        require_tool("skopeo");
        let dir = scratch();
        let policy = dir.path().join("policy.json");
        std::fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        Skopeo { policy, _dir: dir }
    }

    /// `skopeo --registries-conf CONF copy ARGS…` (CONF: /dev/null when None).
    pub fn copy(&self, registries_conf: Option<&Path>, args: &[&str]) -> Command {
        let mut cmd = Command::new("skopeo");
        cmd.arg("--policy")
            .arg(&self.policy)
            .arg("--registries-conf")
            .arg(registries_conf.unwrap_or(Path::new("/dev/null")))
            .args(["copy", "--retry-times", "0"])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }
}
