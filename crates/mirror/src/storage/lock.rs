//! The store-wide lock between GC's sweep and the writes that depend on
//! content already in the store (docs/mirror.md, "Garbage collection").
//!
//! Writers (a manifest PUT checking its blobs, a mount, an upload finishing
//! onto an existing blob, pull-through links, deletes) hold it shared; GC
//! holds it exclusive while it re-marks and sweeps. [`StoreGuard`] is the
//! held lock, released on drop.
//!
//! The filesystem backend's lock lives here: `flock(2)` on two files under
//! `locks/` in the storage root, each taken on a freshly opened file (flock
//! belongs to the open file description, so two opens in one process
//! exclude each other just as two processes do; GC is usually another
//! process). A writer takes `gate` shared, then `store` shared, and lets go
//! of `gate` at once; GC takes `gate` exclusive, then `store` exclusive. A
//! GC waiting for `store` holds `gate`, so new writers queue behind it and
//! a steady stream of writes cannot starve it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use futures_util::future::BoxFuture;
use rustix::fs::FlockOperation;

use super::Result;

/// Which side of the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Writers: many at once, never during a GC sweep.
    Shared,
    /// GC: alone.
    Exclusive,
}

/// What a backend keeps while its lock is held; dropping it releases the
/// lock (as a fallback: [`StoreGuard::release`] is the orderly way).
pub(crate) trait HeldLock: Send + Sync {
    /// Fails when the lock can no longer be relied on.
    fn check(&self) -> Result<()>;
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>>;
}

/// A held store lock.
pub struct StoreGuard {
    held: Box<dyn HeldLock>,
    mode: LockMode,
    now: SystemTime,
    stale_removed: Vec<String>,
}

impl std::fmt::Debug for StoreGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreGuard")
            .field("mode", &self.mode)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl StoreGuard {
    pub(crate) fn new(
        held: Box<dyn HeldLock>,
        mode: LockMode,
        now: SystemTime,
        stale_removed: Vec<String>,
    ) -> StoreGuard {
        StoreGuard {
            held,
            mode,
            now,
            stale_removed,
        }
    }

    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// The store's clock when the lock was taken (on S3 the bucket's time
    /// stamp of the lock object, so GC measures ages against the same clock
    /// that stamped the content, whatever this machine's clock says).
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// Lock objects of crashed processes removed while taking this lock.
    pub fn stale_removed(&self) -> &[String] {
        &self.stale_removed
    }

    /// Fails when the lock may have been lost (an S3 lock object not
    /// refreshed for too long, so others may take it for a crashed
    /// holder's). GC checks before each removal.
    pub fn check(&self) -> Result<()> {
        self.held.check()
    }

    /// Releases the lock and waits until others can see that.
    pub async fn release(self) -> Result<()> {
        self.held.release().await
    }
}

/// The flock files of a filesystem store.
struct FlockHeld {
    /// Kept open while held: closing them releases the locks.
    _files: Vec<std::fs::File>,
}

impl HeldLock for FlockHeld {
    fn check(&self) -> Result<()> {
        // The kernel holds a flock until the file is closed.
        Ok(())
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }
}

fn flock(f: &std::fs::File, op: FlockOperation, path: &Path) -> io::Result<()> {
    loop {
        match rustix::fs::flock(f, op) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                let e = io::Error::from(e);
                return Err(io::Error::new(
                    e.kind(),
                    format!("locking {}: {e}", path.display()),
                ));
            }
        }
    }
}

fn open_lock_file(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))
}

/// Takes the filesystem store's lock under `root`.
pub(super) async fn lock_dir(root: PathBuf, mode: LockMode) -> Result<StoreGuard> {
    // flock blocks: it waits on a blocking thread. A request dropped while
    // waiting leaves the thread to take the lock and drop it again.
    let held = tokio::task::spawn_blocking(move || -> io::Result<FlockHeld> {
        let dir = root.join("locks");
        std::fs::create_dir_all(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", dir.display())))?;
        let (gate_path, store_path) = (dir.join("gate"), dir.join("store"));
        let gate = open_lock_file(&gate_path)?;
        let store = open_lock_file(&store_path)?;
        match mode {
            LockMode::Shared => {
                flock(&gate, FlockOperation::LockShared, &gate_path)?;
                flock(&store, FlockOperation::LockShared, &store_path)?;
                // Closing `gate` here lets a waiting GC in.
                Ok(FlockHeld {
                    _files: vec![store],
                })
            }
            LockMode::Exclusive => {
                flock(&gate, FlockOperation::LockExclusive, &gate_path)?;
                flock(&store, FlockOperation::LockExclusive, &store_path)?;
                Ok(FlockHeld {
                    _files: vec![gate, store],
                })
            }
        }
    })
    .await
    .map_err(io::Error::other)??;
    Ok(StoreGuard::new(
        Box::new(held),
        mode,
        SystemTime::now(),
        Vec::new(),
    ))
}

/// Whether `fut` is still pending after `wait` (the lock tests of both
/// backends ask this of a lock that must wait).
#[cfg(test)]
pub(crate) async fn still_pending<F: std::future::Future + Unpin>(
    fut: &mut F,
    wait: std::time::Duration,
) -> bool {
    tokio::time::timeout(wait, fut).await.is_err()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn blocks<F: std::future::Future + Unpin>(fut: &mut F) -> bool {
        still_pending(fut, Duration::from_millis(200)).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exclusive_waits_for_shared_and_holds_off_new_writers() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let a = lock_dir(root.clone(), LockMode::Shared).await.unwrap();
        // Shared locks coexist.
        let b = lock_dir(root.clone(), LockMode::Shared).await.unwrap();
        let mut gc = Box::pin(lock_dir(root.clone(), LockMode::Exclusive));
        assert!(blocks(&mut gc).await, "gc got the lock under two writers");
        drop(a);
        assert!(blocks(&mut gc).await, "gc got the lock under one writer");
        // A writer arriving while GC waits queues behind it.
        let mut late = Box::pin(lock_dir(root.clone(), LockMode::Shared));
        assert!(
            blocks(&mut late).await,
            "a new writer overtook a waiting gc"
        );
        drop(b);
        let held = gc.await.unwrap();
        assert_eq!(held.mode(), LockMode::Exclusive);
        assert!(blocks(&mut late).await, "a writer got in during gc");
        held.release().await.unwrap();
        late.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_exclusive_locks_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let first = lock_dir(root.clone(), LockMode::Exclusive).await.unwrap();
        let mut second = Box::pin(lock_dir(root.clone(), LockMode::Exclusive));
        assert!(blocks(&mut second).await);
        drop(first);
        second.await.unwrap().check().unwrap();
    }
}
