//! One release at a time per work directory: timers overlap when a run is
//! slow, and two runs would interleave their state. A
//! [`corral_pidlock::PidLock`] on `WORK/release.lock`, which carries the
//! holder's pid for the error.

use std::path::Path;

use anyhow::{bail, Context};
use corral_pidlock::{PidLock, PidLockError, Wait};

/// Held for the whole run; released on drop (or when the process ends).
#[derive(Debug)]
pub struct ReleaseLock {
    _lock: PidLock,
}

impl ReleaseLock {
    pub fn acquire(work: &Path) -> anyhow::Result<ReleaseLock> {
        std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
        let path = work.join("release.lock");
        match PidLock::acquire(&path, &std::process::id().to_string(), Wait::No) {
            Ok(lock) => Ok(ReleaseLock { _lock: lock }),
            Err(PidLockError::Held { holder, .. }) => bail!(
                "another corral release (pid {holder}) is running on {}",
                work.display()
            ),
            Err(e) => Err(e.into()),
        }
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
