//! `corral` starts without libostree and hands the commands that need it
//! to `corral-ostree` (see crates/cli/src/ostree_helper.rs).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use corral_test_support::{corral_bin, corral_ostree_bin, run_ok};

fn shared_objects(bin: &Path) -> String {
    String::from_utf8(run_ok(Command::new("ldd").arg(bin)).stdout).unwrap()
}

#[test]
fn corral_does_not_load_libostree_and_corral_ostree_does() {
    let front = shared_objects(&corral_bin());
    for lib in ["libostree", "libglib", "libgio", "libgpgme", "libcurl"] {
        assert!(!front.contains(lib), "corral loads {lib}:\n{front}");
    }
    let helper = shared_objects(&corral_ostree_bin());
    assert!(helper.contains("libostree-1.so"), "{helper}");
}

/// A stand-in for corral-ostree that records how it was run.
fn recording_helper(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("helper");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\necho from-helper\nexit 7\n",
            dir.join("args").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn ostree_commands_are_handed_over_with_their_arguments_streams_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let helper = recording_helper(dir.path());
    for args in [
        &["compose", "plan", "--repo", "r", "streams.toml"][..],
        &["-v", "host", "status", "--sysroot", "/s"],
        &[
            "disk", "build", "d.toml", "--commit", "c", "--repo", "r", "-o", "o", "--format", "raw",
        ],
        &["release", "--config", "r.toml", "--dry-run"],
    ] {
        let out = Command::new(corral_bin())
            .args(args)
            .env("CORRAL_OSTREE_BIN", &helper)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(7), "{args:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "from-helper\n");
        let seen = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(seen.lines().collect::<Vec<_>>(), args);
    }
}

#[test]
fn other_commands_run_in_corral_itself() {
    let dir = tempfile::tempdir().unwrap();
    let helper = recording_helper(dir.path());
    let library = dir.path().join("lib");
    std::fs::create_dir_all(library.join("app")).unwrap();
    std::fs::write(library.join("app/Dockerfile"), "FROM scratch\n").unwrap();
    for args in [
        &["--version"][..],
        &["compose", "--help"],
        &["dockerfiles", "lint", library.to_str().unwrap()],
    ] {
        let out = Command::new(corral_bin())
            .args(args)
            .env("CORRAL_OSTREE_BIN", &helper)
            .output()
            .unwrap();
        // lint exits 1: the file has findings
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {out:?}"
        );
        assert!(!out.stdout.is_empty(), "{args:?}: {out:?}");
        assert!(!dir.path().join("args").exists(), "{args:?} ran the helper");
    }
}

#[test]
fn a_missing_corral_ostree_is_named() {
    let out = Command::new(corral_bin())
        .args(["compose", "plan", "--repo", "r", "streams.toml"])
        .env("CORRAL_OSTREE_BIN", "/nonexistent/corral-ostree")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/corral-ostree") && stderr.contains("CORRAL_OSTREE_BIN"),
        "{stderr}"
    );
}
