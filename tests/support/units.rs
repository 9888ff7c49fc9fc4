//! The systemd units a guide shows, checked with `systemd-analyze verify`.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::{corral_bin, repo_root, require_tool, scratch};

/// Writes the systemd units that the guide `doc` (a path from the
/// repository root) shows under "`/etc/systemd/system/NAME`:" and checks
/// them with `systemd-analyze verify`, with `/usr/bin/corral` pointing at
/// the binary under test.
pub fn verify_documented_units(doc: &str, names: &[&str]) {
    require_tool("systemd-analyze");
    let text = std::fs::read_to_string(repo_root().join(doc)).unwrap();
    let dir = scratch();
    let mut units = Vec::new();
    for name in names {
        let marker = format!("`/etc/systemd/system/{name}`:\n\n```ini\n");
        let start = text
            .find(&marker)
            .unwrap_or_else(|| panic!("{doc} has no {name}"))
            + marker.len();
        let body = &text[start..start + text[start..].find("```").unwrap()];
        let body = body.replace("/usr/bin/corral", &corral_bin().display().to_string());
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        units.push(path);
    }
    let out = systemd_verify(&units);
    assert!(
        out.status.success(),
        "systemd-analyze verify refused the units of {doc}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `systemd-analyze verify --man=no UNITS…`, its output for the caller
/// to judge.
pub fn systemd_verify(units: &[PathBuf]) -> Output {
    require_tool("systemd-analyze");
    Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(units)
        .output()
        .expect("running systemd-analyze")
}
