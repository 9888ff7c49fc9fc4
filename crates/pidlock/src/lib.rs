//! One writer at a time: an exclusive `flock` on a lock file that records
//! who holds it (the pid, and what the holder chooses to add), so that the
//! next process can say whom it waits for or why it gives up.
//!
//! Used for one compose per repository, one `corral host` writer per
//! sysroot and one release per work directory. The lock belongs to the
//! open file: it is released on drop and when the process dies, so a crash
//! never leaves a stale lock behind (the file stays; its content is only a
//! hint).
//!
//! ```no_run
//! use corral_pidlock::{PidLock, Wait};
//! let pid = std::process::id();
//! let _held = PidLock::acquire("repo/.lock".as_ref(), &pid.to_string(), Wait::No)?;
//! # Ok::<(), corral_pidlock::PidLockError>(())
//! ```

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

/// What to do when another process holds the lock.
pub enum Wait<'a> {
    /// Fail with [`PidLockError::Held`].
    No,
    /// Call this with the holder's record, then block until it is free.
    Yes(&'a dyn Fn(&str)),
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PidLockError {
    /// Another process holds it; `holder` is what it recorded, trimmed
    /// (empty when it had not written yet).
    #[error("{}: held by {}", path.display(), if holder.is_empty() { "another process" } else { holder })]
    Held { path: PathBuf, holder: String },
    /// Opening, locking or writing the lock file failed; the I/O error is
    /// the source.
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while its owner writes; released on drop.
#[derive(Debug)]
pub struct PidLock {
    _file: File,
    path: PathBuf,
}

impl PidLock {
    /// Takes the lock on `path` (created when missing, its directory must
    /// exist) and writes `record` into it, on one line.
    pub fn acquire(path: &Path, record: &str, wait: Wait<'_>) -> Result<PidLock, PidLockError> {
        let io = |action| {
            move |source| PidLockError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io("opening"))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim().to_string();
            match wait {
                Wait::No => {
                    return Err(PidLockError::Held {
                        path: path.to_path_buf(),
                        holder,
                    })
                }
                Wait::Yes(say) => {
                    say(&holder);
                    flock(&file, FlockOperation::LockExclusive)
                        .map_err(|e| io("locking")(e.into()))?;
                }
            }
        }
        let mut write = || -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{record}")?;
            file.sync_data()
        };
        write().map_err(io("writing"))?;
        Ok(PidLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn the_second_holder_is_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = PidLock::acquire(&path, "pid 1 (first)", Wait::No).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "pid 1 (first)\n");
        // flock belongs to the open file description: a second open in
        // this process conflicts as another process would.
        match PidLock::acquire(&path, "pid 2", Wait::No).unwrap_err() {
            PidLockError::Held { holder, .. } => assert_eq!(holder, "pid 1 (first)"),
            e => panic!("{e}"),
        }
        drop(first);
        let again = PidLock::acquire(&path, "pid 2", Wait::No).unwrap();
        assert_eq!(again.path(), path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "pid 2\n");
    }

    #[test]
    fn a_waiter_is_told_then_gets_the_lock_when_it_is_freed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = PidLock::acquire(&path, "pid 1", Wait::No).unwrap();
        let told = RefCell::new(String::new());
        let say = |holder: &str| {
            *told.borrow_mut() = holder.to_string();
        };
        std::thread::scope(|s| {
            let releaser = s.spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                drop(first);
            });
            let second = PidLock::acquire(&path, "pid 2", Wait::Yes(&say)).unwrap();
            releaser.join().unwrap();
            drop(second);
        });
        assert_eq!(*told.borrow(), "pid 1");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "pid 2\n");
    }

    #[test]
    fn a_missing_directory_is_named() {
        let err = PidLock::acquire(Path::new("/nonexistent/x.lock"), "1", Wait::No).unwrap_err();
        assert_eq!(err.to_string(), "opening /nonexistent/x.lock");
    }
}
