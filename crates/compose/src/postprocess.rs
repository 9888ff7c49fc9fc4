//! The stream's `[postprocess]` table applied to the tree: scripts run
//! inside it, units enabled, files removed (rpm-ostree's
//! `postprocess-script`, `units` and `remove-files`).
//!
//! Scripts run with the tree as `/` in new network, PID, IPC and UTS
//! namespaces (`unshare`): a compose's result must not depend on what the
//! network answered, so there is none — only a loopback that is down.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::stream::Postprocess;

/// Applies `pp` to the tree at `root`: the scripts in order, then the
/// units, then the removals (so no script brings a removed file back).
/// `epoch` is the scripts' `SOURCE_DATE_EPOCH`.
pub fn apply(root: &Path, pp: &Postprocess, epoch: u64) -> Result<()> {
    for (i, script) in pp.scripts.iter().enumerate() {
        run_script(root, script, epoch).with_context(|| {
            format!(
                "postprocess script {} (`{}`)",
                i + 1,
                script
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
            )
        })?;
    }
    if !pp.units.is_empty() {
        enable_units(root, &pp.units)?;
    }
    for rel in &pp.remove_files {
        let path = root.join(rel);
        let meta = path
            .symlink_metadata()
            .with_context(|| format!("postprocess.remove-files: {rel} is not in the tree"))?;
        if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .with_context(|| format!("removing {}", path.display()))?;
        tracing::info!(path = %rel, "removed");
    }
    Ok(())
}

fn run_script(root: &Path, script: &str, epoch: u64) -> Result<()> {
    anyhow::ensure!(
        root.join("bin/sh").exists() || root.join("usr/bin/sh").exists(),
        "the tree has no /bin/sh to run it"
    );
    let out = Command::new("unshare")
        .args(["--net", "--pid", "--fork", "--ipc", "--uts", "--root"])
        .arg(root)
        .args(["--", "/bin/sh", "-e", "-c", script])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C.UTF-8")
        .env("HOME", "/")
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .context("running unshare")?;
    let log = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_string();
    for line in log(&out.stdout).lines().chain(log(&out.stderr).lines()) {
        tracing::info!(target: "corral_compose::postprocess", "{line}");
    }
    anyhow::ensure!(
        out.status.success(),
        "failed ({}): {}",
        out.status,
        tail(&format!("{}\n{}", log(&out.stdout), log(&out.stderr)), 12)
    );
    Ok(())
}

/// `systemctl --root=TREE enable UNITS…`: the links the units' `[Install]`
/// sections ask for, in the tree's `/etc`.
fn enable_units(root: &Path, units: &[String]) -> Result<()> {
    let out = Command::new("systemctl")
        .arg(format!("--root={}", root.display()))
        .arg("enable")
        .arg("--")
        .args(units)
        .env("SYSTEMD_OFFLINE", "1")
        .output()
        .context("running systemctl")?;
    anyhow::ensure!(
        out.status.success(),
        "enabling {}: systemctl failed ({}): {}",
        units.join(", "),
        out.status,
        tail(&String::from_utf8_lossy(&out.stderr), 12)
    );
    tracing::info!(units = %units.join(" "), "enabled");
    Ok(())
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_files_and_directories_and_names_what_is_missing() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/share/doc/x")).unwrap();
        std::fs::write(t.path().join("usr/share/doc/x/README"), "r").unwrap();
        std::fs::write(t.path().join("usr/share/junk"), "j").unwrap();
        let pp = Postprocess {
            remove_files: vec!["usr/share/doc/x".into(), "usr/share/junk".into()],
            ..Postprocess::default()
        };
        apply(t.path(), &pp, 0).unwrap();
        assert!(!t.path().join("usr/share/doc/x").exists());
        assert!(!t.path().join("usr/share/junk").exists());
        assert!(t.path().join("usr/share/doc").is_dir());
        // Applied again, the paths are gone: a stale entry is an error.
        let err = format!("{:#}", apply(t.path(), &pp, 0).unwrap_err());
        assert!(
            err.contains("postprocess.remove-files: usr/share/doc/x is not in the tree"),
            "{err}"
        );
    }

    #[test]
    fn a_script_needs_a_shell_in_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let pp = Postprocess {
            scripts: vec!["\n  touch /x\n".into()],
            ..Postprocess::default()
        };
        let err = format!("{:#}", apply(t.path(), &pp, 0).unwrap_err());
        assert!(
            err.contains("postprocess script 1 (`touch /x`)") && err.contains("no /bin/sh"),
            "{err}"
        );
    }
}
