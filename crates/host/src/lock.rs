//! One `corral host` writer per sysroot: an exclusive `flock` on
//! `ostree/corral-host.lock`, holding the pid and command of its holder
//! so that the next process can say whom it waits for.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::HostError;

/// The lock file inside the sysroot.
pub const LOCK_FILE: &str = "ostree/corral-host.lock";

/// Held while a command changes the sysroot; released on drop.
#[derive(Debug)]
pub struct HostLock {
    _file: File,
    path: PathBuf,
}

impl HostLock {
    /// Takes the lock. When another process holds it: with `wait`, says
    /// so on stderr and waits; without, fails naming the holder.
    pub fn acquire(sysroot: &Path, what: &str, wait: bool) -> Result<HostLock, anyhow::Error> {
        let path = sysroot.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| anyhow::Error::new(e).context(format!("opening {}", path.display())))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "another process".to_string(),
                h => h.to_string(),
            };
            if !wait {
                return Err(HostError::Locked { path, holder }.into());
            }
            eprintln!("waiting for {holder}, which holds {}", path.display());
            flock(&file, FlockOperation::LockExclusive).map_err(|e| {
                anyhow::Error::new(std::io::Error::from(e))
                    .context(format!("locking {}", path.display()))
            })?;
        }
        let record = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "pid {} (corral host {what})", std::process::id())?;
            file.sync_data()
        };
        record(&mut file)
            .map_err(|e| anyhow::Error::new(e).context(format!("writing {}", path.display())))?;
        Ok(HostLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_writer_is_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ostree")).unwrap();
        let first = HostLock::acquire(dir.path(), "upgrade", false).unwrap();
        // flock belongs to the open file description: a second open in
        // this process conflicts as another process would.
        let err = HostLock::acquire(dir.path(), "rollback", false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "locked by pid {} (corral host upgrade)",
                std::process::id()
            )),
            "{msg}"
        );
        drop(first);
        let again = HostLock::acquire(dir.path(), "rollback", false).unwrap();
        assert!(again.path().ends_with(LOCK_FILE));
    }
}
