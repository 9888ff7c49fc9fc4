//! Loop devices and mounts, each released by its guard's `Drop` (also
//! when the build fails half way).
//!
//! Partition nodes of a `losetup -P` device do not appear everywhere (no
//! udev in a container), so each file system gets a loop device of its own
//! over its byte range of the image (`--offset`, `--sizelimit`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::layout::Partition;
use crate::tools::Interrupt;

/// A loop device over one partition of an image file.
pub struct LoopDevice {
    pub device: PathBuf,
}

impl LoopDevice {
    pub fn attach(image: &Path, part: &Partition, int: &Interrupt) -> Result<LoopDevice> {
        let out = int.run(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(format!("--offset={}", part.start))
                .arg(format!("--sizelimit={}", part.size))
                .arg(image),
            &format!("attaching partition {} of {}", part.name, image.display()),
        )?;
        let device = PathBuf::from(String::from_utf8_lossy(&out).trim());
        Ok(LoopDevice { device })
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let ok = Command::new("losetup")
            .arg("--detach")
            .arg(&self.device)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            tracing::warn!(device = %self.device.display(), "could not detach the loop device");
        }
    }
}

/// A mounted file system.
pub struct Mount {
    pub target: PathBuf,
    /// Set by [`Mount::finish`]: nothing left for `Drop` to do.
    finished: bool,
}

impl Mount {
    pub fn new(device: &Path, target: &Path, options: &str, int: &Interrupt) -> Result<Mount> {
        std::fs::create_dir_all(target)
            .with_context(|| format!("creating the mount point {}", target.display()))?;
        int.run(
            Command::new("mount")
                .args(["-o", options])
                .arg(device)
                .arg(target),
            &format!("mounting {} on {}", device.display(), target.display()),
        )?;
        Ok(Mount {
            target: target.to_path_buf(),
            finished: false,
        })
    }

    /// Makes the file system read-only, then unmounts it: the end of a
    /// build that succeeded.
    ///
    /// A process that entered a new mount namespace while the build ran (a
    /// container started by anyone on the machine) holds a copy of this
    /// mount, and then a plain `umount` only removes ours: the file system
    /// stays alive with its last writes still in the journal, and GRUB,
    /// which does not replay journals, would not see them in the image.
    /// Remounting read-only acts on the file system itself, wherever it is
    /// mounted: the journal is written back and the file system marked
    /// clean before the image is converted.
    pub fn finish(mut self, int: &Interrupt) -> Result<()> {
        self.finished = true;
        int.run(
            Command::new("mount")
                .args(["-o", "remount,ro"])
                .arg(&self.target),
            &format!("remounting {} read-only", self.target.display()),
        )?;
        int.run(
            Command::new("umount").arg(&self.target),
            &format!("unmounting {}", self.target.display()),
        )?;
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let ok = Command::new("umount")
            .arg(&self.target)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            // a process still holds it: detach lazily rather than leak it
            let _ = Command::new("umount").arg("-l").arg(&self.target).status();
            tracing::warn!(target = %self.target.display(), "unmounted lazily");
        }
    }
}
