//! One compose at a time per repository: an exclusive `flock` on a file in
//! it, carrying the holder's pid for the error the next process gives.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::ComposeError;

/// Held while a compose writes to the repository; released on drop.
#[derive(Debug)]
pub struct RepoLock {
    _file: File,
    path: PathBuf,
}

/// The lock file's name inside the repository.
pub const LOCK_FILE: &str = ".corral-compose.lock";

impl RepoLock {
    /// Takes the lock on `repo`; when another process holds it, waits
    /// (`wait`) or fails naming that process.
    pub fn acquire(repo: &Path, wait: bool) -> Result<RepoLock, ComposeError> {
        std::fs::create_dir_all(repo).map_err(ComposeError::io("creating", repo))?;
        let path = repo.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(ComposeError::io("opening", &path))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            if !wait {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(ComposeError::Locked {
                    path: repo.to_path_buf(),
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.to_string()
                    },
                });
            }
            tracing::info!(lock = %path.display(), "waiting for another compose to finish");
            flock(&file, FlockOperation::LockExclusive)
                .map_err(|e| ComposeError::io("locking", &path)(e.into()))?;
        }
        file.set_len(0)
            .map_err(ComposeError::io("writing", &path))?;
        file.rewind().map_err(ComposeError::io("writing", &path))?;
        writeln!(file, "{}", std::process::id()).map_err(ComposeError::io("writing", &path))?;
        Ok(RepoLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = RepoLock::acquire(dir.path(), false).unwrap();
        // flock locks belong to the open file description, so a second
        // open in this process conflicts like another process would.
        let err = RepoLock::acquire(dir.path(), false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("locked by pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        RepoLock::acquire(dir.path(), false).unwrap();
    }
}
