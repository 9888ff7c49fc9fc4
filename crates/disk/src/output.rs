//! The published files: the image in its format, `IMAGE.sha256`
//! (`sha256sum` format) and, with a GPG key, the detached armored
//! signature `IMAGE.asc`. Each is written under a temporary name beside
//! IMAGE and renamed only when all are complete, the image last.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::layout::Format;
use crate::tools::Interrupt;

/// A file removed on drop unless kept.
pub struct TempPath {
    pub path: PathBuf,
    keep: bool,
}

impl TempPath {
    /// `DIR/.NAME.SUFFIX.corral-tmp-PID` beside `target`.
    pub fn beside(target: &Path, suffix: &str) -> TempPath {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path =
            target.with_file_name(format!(".{name}{suffix}.corral-tmp-{}", std::process::id()));
        TempPath { path, keep: false }
    }

    /// Renames the file to `to`; from then on it is not removed.
    pub fn persist(mut self, to: &Path) -> Result<()> {
        std::fs::rename(&self.path, to)
            .with_context(|| format!("renaming {} to {}", self.path.display(), to.display()))?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Converts the raw image `raw` to `format` at `to` (for `raw`, a rename).
pub fn convert(raw: TempPath, format: Format, to: &TempPath, int: &Interrupt) -> Result<()> {
    match format {
        Format::Raw => raw.persist(&to.path),
        Format::Qcow2 => {
            int.run(
                Command::new("qemu-img")
                    .args(["convert", "-f", "raw", "-O", "qcow2"])
                    .arg(&raw.path)
                    .arg(&to.path),
                "converting to qcow2",
            )?;
            Ok(())
        }
        Format::RawXz => {
            // xz compresses in place (FILE to FILE.xz, sparse input read
            // fast); the result is then renamed to the image's temp name.
            // A fixed block size keeps the output the same whatever the
            // number of threads.
            let xz = TempPath {
                path: sidecar(&raw.path, ".xz"),
                keep: false,
            };
            int.run(
                Command::new("xz")
                    .args(["--threads=0", "--block-size=64MiB", "--check=crc64", "-6"])
                    .arg(&raw.path),
                "compressing with xz",
            )?;
            xz.persist(&to.path)
        }
    }
}

/// `IMAGE.sha256`, `IMAGE.asc`.
pub fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    corral_oci::sha256_file(path).with_context(|| format!("reading {}", path.display()))
}

/// A detached armored signature of `file` by `key` into `to`.
pub fn sign(
    file: &Path,
    key: &str,
    homedir: Option<&Path>,
    to: &Path,
    int: &Interrupt,
) -> Result<()> {
    let mut cmd = Command::new("gpg");
    if let Some(h) = homedir {
        cmd.arg("--homedir").arg(h);
    }
    cmd.args([
        "--batch",
        "--yes",
        "--armor",
        "--detach-sign",
        "--local-user",
        key,
    ])
    .arg("--output")
    .arg(to)
    .arg(file);
    int.run(
        &mut cmd,
        &format!("signing {} with gpg key {key}", file.display()),
    )?;
    Ok(())
}

/// `qemu-img info` of a file: (virtual size, format).
pub fn qemu_img_info(path: &Path, int: &Interrupt) -> Result<(u64, String)> {
    let out = int.run(
        Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(path),
        &format!("reading {} with qemu-img info", path.display()),
    )?;
    let v: serde_json::Value =
        serde_json::from_slice(&out).context("parsing qemu-img info's JSON")?;
    Ok((
        v["virtual-size"].as_u64().unwrap_or(0),
        v["format"].as_str().unwrap_or("").to_string(),
    ))
}
