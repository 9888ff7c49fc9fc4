//! The built binaries, running commands, and scratch directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `corral` binary cargo built for this test run: the end-to-end
/// tests are integration tests of the `corral` package, so `cargo test`
/// and `cargo nextest run` build the binary before them and name it in
/// `CARGO_BIN_EXE_corral` (at run time since cargo 1.94); a stale build in
/// the target directory is never picked up.
pub fn corral_bin() -> PathBuf {
    let bin = ["CARGO_BIN_EXE_corral", "NEXTEST_BIN_EXE_corral"]
        .into_iter()
        .find_map(std::env::var_os)
        .map(PathBuf::from)
        .expect(
            "CARGO_BIN_EXE_corral is not set: run the end-to-end tests with \
             `cargo test -p corral --test NAME` (cargo 1.94 or later) or \
             `cargo nextest run -p corral`",
        );
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// `corral-ostree`, which `corral` runs for `compose`, `disk`, `host` and
/// `release`: `corral_bin()` plus `-ostree`.
pub fn corral_ostree_bin() -> PathBuf {
    corral_ostree_bin_beside(&corral_bin())
}

fn corral_ostree_bin_beside(bin: &Path) -> PathBuf {
    let mut name = bin.as_os_str().to_owned();
    name.push("-ostree");
    PathBuf::from(name)
}

/// A `corral` command with the sample repositories in its environment.
pub fn corral(repos: &Path) -> Command {
    let mut cmd = Command::new(corral_bin());
    cmd.env("CORRAL_SAMPLE_REPOS", repos)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs `cmd`, panicking with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Panics with a clear message when `tool` is not on PATH.
pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is required by this test and is not installed (scripts/setup.sh installs it)"
    );
}

/// `corral compose run STREAM --repo REPO --json`, signed with the key in
/// `gnupghome`, at a fixed SOURCE_DATE_EPOCH; callers add their flags.
pub fn compose_run(stream: &Path, repo: &Path, gnupghome: &Path) -> Command {
    let mut cmd = Command::new(corral_bin());
    cmd.args(["compose", "run"])
        .arg(stream)
        .arg("--repo")
        .arg(repo)
        .arg("--json")
        .current_dir(repo_root())
        .env("GNUPGHOME", gnupghome)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .env_remove("RUST_LOG");
    cmd
}

/// A scratch directory on a disk-backed filesystem (not tmpfs: trees
/// carry xattrs and device nodes).
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("corral-e2e-")
        .tempdir_in("/var/tmp")
        .expect("temp dir")
}

/// ostree-ext's own CLI (tests/ostree-ext-reader), the independent reader
/// and writer of OS images: `$OSTREE_EXT_CLI`, or what scripts/setup.sh
/// installs into /var/tmp/corral-tools/bin; a panic naming both otherwise.
pub fn ostree_ext_cli() -> PathBuf {
    let bin = std::env::var_os("OSTREE_EXT_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/corral-tools/bin/ostree-ext-cli"));
    assert!(
        bin.is_file(),
        "{} not found: scripts/setup.sh installs it (corral_install_ostree_ext_cli), or set OSTREE_EXT_CLI",
        bin.display()
    );
    bin
}
