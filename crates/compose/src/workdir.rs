//! The compose's scratch directory (the tree being built, the rootfs being
//! committed), and the sweeping of those a killed compose left behind.
//!
//! Each work directory holds a lock file locked for the life of its
//! compose; the lock dies with the process. A new compose removes every
//! sibling work directory whose lock it can take, so a compose killed with
//! SIGKILL (or a machine that lost power) costs disk space only until the
//! next compose on the machine.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use corral_pidlock::{PidLock, PidLockError, Wait};

/// The prefix of every work directory's name.
pub const PREFIX: &str = "corral-compose-";
/// The lock file inside a work directory.
const LOCK: &str = ".corral-work.lock";
/// A work directory without a lock file is only removed after this long:
/// its compose may be between creating it and locking it.
const UNLOCKED_GRACE: Duration = Duration::from_secs(3600);

/// A work directory, removed on drop; locked while it lives.
pub struct WorkDir {
    // Field order: the directory is removed before the lock is released.
    dir: tempfile::TempDir,
    _lock: PidLock,
}

impl WorkDir {
    /// Creates a work directory under `parent` after removing the ones
    /// killed composes left there.
    pub fn create(parent: &Path) -> Result<WorkDir> {
        let removed = sweep(parent);
        if removed > 0 {
            tracing::info!(removed, parent = %parent.display(), "removed work directories of killed composes");
        }
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(parent)
            .with_context(|| format!("creating a work directory in {}", parent.display()))?;
        let lock = PidLock::acquire(
            &dir.path().join(LOCK),
            &format!("corral compose, pid {}", std::process::id()),
            Wait::No,
        )
        .with_context(|| format!("locking {}", dir.path().display()))?;
        Ok(WorkDir { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the work directories under `parent` whose compose is gone;
/// returns how many. Errors are logged, never fatal: sweeping is tidying.
pub fn sweep(parent: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(PREFIX)
            || !entry.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let dir = entry.path();
        let lock_path = dir.join(LOCK);
        let abandoned = if lock_path.exists() {
            match PidLock::acquire(&lock_path, "corral compose, sweeping", Wait::No) {
                // Held while removing, so no other sweeper races us.
                Ok(held) => Some(held),
                Err(PidLockError::Held { .. }) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "checking a compose work directory");
                    continue;
                }
            }
        } else {
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok());
            if age.is_none_or(|a| a <= UNLOCKED_GRACE) {
                continue;
            }
            None
        };
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "removing a killed compose's work directory")
            }
        }
        drop(abandoned);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_work_directory_stays_and_a_dead_one_goes() {
        let parent = tempfile::tempdir().unwrap();
        let live = WorkDir::create(parent.path()).unwrap();
        std::fs::write(live.path().join("rootfs"), b"in use").unwrap();

        // A compose that died: its directory and lock file remain, the
        // lock does not (the process that held it is gone).
        let dead = parent.path().join(format!("{PREFIX}dead"));
        std::fs::create_dir_all(dead.join("rootfs/usr")).unwrap();
        std::fs::write(dead.join(LOCK), b"corral compose, pid 1\n").unwrap();
        // One being created right now: no lock file yet, and young.
        let young = parent.path().join(format!("{PREFIX}young"));
        std::fs::create_dir(&young).unwrap();
        // Not ours at all.
        let other = parent.path().join("something-else");
        std::fs::create_dir(&other).unwrap();

        assert_eq!(sweep(parent.path()), 1);
        assert!(!dead.exists(), "the dead compose's directory is left");
        assert!(
            live.path().join("rootfs").exists(),
            "a live compose lost its work"
        );
        assert!(young.exists() && other.exists());

        // The next compose sweeps too, and the live one is still kept.
        let next = WorkDir::create(parent.path()).unwrap();
        assert!(live.path().exists() && next.path().exists());
        let (live_path, next_path) = (live.path().to_path_buf(), next.path().to_path_buf());
        drop(live);
        drop(next);
        assert!(!live_path.exists() && !next_path.exists());
    }
}
