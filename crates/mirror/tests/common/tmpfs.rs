//! A small tmpfs for full-disk tests: mounted on a temp dir (the tests run as
//! root), filled on demand, unmounted on drop.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes. `None`, after a loud message, only
    /// when the kernel refuses the mount (not root, no CAP_SYS_ADMIN).
    pub fn mount(size: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("running mount");
        if !out.status.success() {
            eprintln!(
                "\n!!!!!!!! SKIPPED: mounting a {size}-byte tmpfs on {} was refused ({}); \
                 this full-disk test did not run. Run the tests as root. !!!!!!!!\n",
                dir.path().display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes an unprivileged writer can still use.
    pub fn available(&self) -> u64 {
        let s = rustix::fs::statvfs(self.path()).expect("statvfs on the tmpfs");
        s.f_bavail * s.f_frsize
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes a filler file (outside any storage root) until at most `leave`
    /// bytes are free; with `leave == 0` until the disk answers ENOSPC.
    pub fn fill(&self, leave: u64) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())
            .unwrap();
        let chunk = vec![0xa5u8; 64 << 10];
        loop {
            let avail = self.available();
            if avail <= leave {
                break;
            }
            let n = ((avail - leave) as usize).min(chunk.len());
            match f.write_all(&chunk[..n]) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()) => {
                    break
                }
                Err(e) => panic!("filling {}: {e}", self.filler().display()),
            }
            if n < chunk.len() && leave > 0 {
                break;
            }
        }
        f.sync_all().ok();
    }

    /// Removes the filler.
    pub fn free(&self) {
        match std::fs::remove_file(self.filler()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("removing {}: {e}", self.filler().display()),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so a file still open in a leaked task cannot keep it mounted.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
