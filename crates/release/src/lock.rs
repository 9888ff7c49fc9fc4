//! One release at a time per work directory: timers overlap when a run is
//! slow, and two runs would interleave their state. An exclusive `flock`
//! on `WORK/release.lock`, which carries the holder's pid for the error.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{bail, Context};
use rustix::fs::{flock, FlockOperation};

/// Held for the whole run; released on drop (or when the process ends).
#[derive(Debug)]
pub struct ReleaseLock {
    _file: File,
}

impl ReleaseLock {
    pub fn acquire(work: &Path) -> anyhow::Result<ReleaseLock> {
        std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
        let path = work.join("release.lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            bail!(
                "another corral release (pid {}) is running on {}",
                pid.trim(),
                work.display()
            );
        }
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(ReleaseLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_release_on_the_same_work_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let held = ReleaseLock::acquire(dir.path()).unwrap();
        let e = ReleaseLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "another corral release (pid {})",
                std::process::id()
            )),
            "{e}"
        );
        drop(held);
        ReleaseLock::acquire(dir.path()).unwrap();
    }
}
