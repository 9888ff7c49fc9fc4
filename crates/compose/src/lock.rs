//! One compose at a time per repository: a [`corral_pidlock::PidLock`] on a
//! file in it, carrying the holder's pid for the error the next process
//! gives.

use std::path::Path;

use corral_pidlock::{PidLock, PidLockError, Wait};

use crate::error::ComposeError;

/// Held while a compose writes to the repository; released on drop.
#[derive(Debug)]
pub struct RepoLock {
    lock: PidLock,
}

/// The lock file's name inside the repository.
pub const LOCK_FILE: &str = ".corral-compose.lock";

impl RepoLock {
    /// Takes the lock on `repo`; when another process holds it, waits
    /// (`wait`) or fails naming that process.
    pub fn acquire(repo: &Path, wait: bool) -> Result<RepoLock, ComposeError> {
        std::fs::create_dir_all(repo).map_err(ComposeError::io("creating", repo))?;
        let path = repo.join(LOCK_FILE);
        let say = |_: &str| {
            tracing::info!(lock = %path.display(), "waiting for another compose to finish");
        };
        let wait = if wait { Wait::Yes(&say) } else { Wait::No };
        let lock =
            PidLock::acquire(&path, &std::process::id().to_string(), wait).map_err(
                |e| match e {
                    PidLockError::Held { holder, .. } => ComposeError::Locked {
                        path: repo.to_path_buf(),
                        pid: if holder.is_empty() {
                            "unknown".into()
                        } else {
                            holder
                        },
                    },
                    PidLockError::Io {
                        action,
                        path,
                        source,
                    } => ComposeError::Io {
                        path,
                        action,
                        source,
                    },
                    other => ComposeError::Io {
                        path: path.clone(),
                        action: "locking",
                        source: std::io::Error::other(other.to_string()),
                    },
                },
            )?;
        Ok(RepoLock { lock })
    }

    pub fn path(&self) -> &Path {
        self.lock.path()
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
