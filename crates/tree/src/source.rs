//! Trees that already exist: a directory, or a tar archive of one.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::TreeError;

/// A root filesystem ready to read. An unpacked archive lives as long as
/// this value.
#[derive(Debug)]
pub struct ReadyTree {
    path: PathBuf,
    _unpacked: Option<tempfile::TempDir>,
}

impl ReadyTree {
    /// Opens `source`: a directory is used as it is (never modified); a
    /// tar archive (plain or compressed) is unpacked into a temporary
    /// directory with owners, modes and xattrs kept.
    pub fn open(source: &Path) -> Result<ReadyTree, TreeError> {
        let meta = std::fs::metadata(source).map_err(TreeError::io("reading", source))?;
        if meta.is_dir() {
            return Ok(ReadyTree {
                path: source.to_path_buf(),
                _unpacked: None,
            });
        }
        if !meta.is_file() {
            return Err(TreeError::NotATree {
                path: source.to_path_buf(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("corral-rootfs-")
            .tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
            .map_err(TreeError::io("creating", "a directory to unpack into"))?;
        let out = Command::new("tar")
            .args([
                "--extract",
                "--auto-compress",
                "--same-permissions",
                "--same-owner",
                "--numeric-owner",
            ])
            .args(["--xattrs", "--xattrs-include=*", "--acls", "--file"])
            .arg(source)
            .arg("--directory")
            .arg(dir.path())
            .output()
            .map_err(TreeError::io("running tar on", source))?;
        if !out.status.success() {
            let detail = String::from_utf8_lossy(&out.stderr);
            if detail.contains("does not look like a tar archive")
                || detail.contains("not in gzip format")
            {
                return Err(TreeError::NotATree {
                    path: source.to_path_buf(),
                });
            }
            return Err(TreeError::Tool {
                tool: "tar",
                status: out.status.to_string(),
                detail: format!("unpacking {}: {}", source.display(), detail.trim()),
            });
        }
        Ok(ReadyTree {
            path: dir.path().to_path_buf(),
            _unpacked: Some(dir),
        })
    }

    /// Where the tree is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
