//! What an image test run checks: the `[tests]` table of an image's
//! `image.toml` (corral-dockerfiles places it in the file; the release
//! pipeline and `corral test` hand it to [`crate::engine::TestRunner`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What an image test run checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tests {
    /// The user the container must run as (`id -u` output, or a name).
    pub user: Option<String>,
    /// Paths that must be declared as VOLUMEs.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Paths that must exist in the image.
    #[serde(default)]
    pub files_present: Vec<String>,
    /// Paths that must not exist (docs, caches).
    #[serde(default)]
    pub files_absent: Vec<String>,
    #[serde(default)]
    pub commands: Vec<CommandTest>,
    pub service: Option<ServiceTest>,
    /// Host directories mounted into every test container of a run.
    #[serde(default)]
    pub mounts: Vec<MountTest>,
}

/// A host directory mounted at `target`, relabelled for the run: a fresh
/// one unless `source` names one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MountTest {
    /// The path inside the container.
    pub target: String,
    /// `:z` (label `s0`, shared with other runs) instead of `:Z` (private
    /// to the run's MCS categories).
    #[serde(default)]
    pub shared: bool,
    /// An existing host directory (absolute) to mount instead of a fresh
    /// one; it is created when missing and kept after the run.
    #[serde(default)]
    pub source: Option<String>,
    /// `false` mounts the directory with the label it has, neither `:z` nor
    /// `:Z`: how a test shows that a run cannot read another run's files.
    #[serde(default = "yes")]
    pub relabel: bool,
}

fn yes() -> bool {
    true
}

/// Run a command in the image and check how it ends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CommandTest {
    /// argv, run without a shell.
    pub run: Vec<String>,
    #[serde(default)]
    pub exit_code: i32,
    /// A regular expression (Rust `regex` syntax) stdout must match.
    pub stdout: Option<String>,
    /// A regular expression stderr must match.
    pub stderr: Option<String>,
}

/// Start the image with its default command and wait until it is ready.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServiceTest {
    /// The container port to probe.
    pub port: u16,
    /// An HTTP path to GET; without it the probe is a TCP connect.
    pub http: Option<String>,
    /// The HTTP status the probe expects.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Environment for the container (e.g. a database password).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u32,
}

fn default_status() -> u16 {
    200
}

fn default_timeout() -> u32 {
    60
}
