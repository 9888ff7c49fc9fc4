//! The sample RPM repositories and OSTree repositories of the tests.

use std::path::Path;
use std::process::Command;

use crate::{repo_root, require_tool, run_ok};

/// Builds the sample RPM repositories into a fresh temporary directory.
pub fn sample_repos() -> tempfile::TempDir {
    sample_repos_with(&[])
}

/// The sample repositories with `corral-hello` at `version` (1.0 in
/// [`sample_repos`]): a one-package update of the sample stream.
pub fn sample_repos_hello(version: &str) -> tempfile::TempDir {
    sample_repos_with(&[("HELLO_VERSION", version)])
}

fn sample_repos_with(env: &[(&str, &str)]) -> tempfile::TempDir {
    for tool in ["rpmbuild", "rpmsign", "createrepo_c", "gpg", "busybox"] {
        require_tool(tool);
    }
    let dir = tempfile::Builder::new()
        .prefix("corral-repos-")
        .tempdir_in("/var/tmp")
        .expect("temp dir");
    run_ok(
        Command::new("bash")
            .arg(repo_root().join("tests/fixtures/rpms/build-repo.sh"))
            .arg(dir.path())
            .envs(env.iter().copied()),
    );
    dir
}

/// `ostree init --mode=archive` of `repo` (created if missing): the kind
/// of repository composes write and the mirror serves.
pub fn init_archive_repo(repo: &Path) {
    std::fs::create_dir_all(repo).unwrap();
    run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args(["init", "--mode=archive"]),
    );
}
