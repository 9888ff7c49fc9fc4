//! The store lock on S3, where several replicas and a GC on any machine
//! share one bucket: lock objects under `_locks/`, as restic does.
//!
//! - A writer PUTs `_locks/shared-<random>`, then LISTs `_locks/`. If a live
//!   `exclusive-*` is there, it deletes its object and waits, listing only,
//!   until no live `exclusive-*` is listed, then starts over; otherwise it
//!   holds the lock until it deletes its object. (Writers that wrote and
//!   deleted objects while waiting would keep one in the bucket nearly all
//!   the time, and GC would wait for them as they wait for GC.)
//! - GC PUTs `_locks/exclusive-<random>`, then LISTs until no other live
//!   lock is left, keeping its object meanwhile (so writers arriving after
//!   it back off: GC cannot be starved). Of two GCs, the one whose name
//!   sorts later withdraws and retries.
//!
//! Why this excludes: each party writes its object and then lists. If both
//! went ahead, each listing missed the other's object, so (the store being
//! strongly consistent for PUT then LIST, as S3 and Garage are) each
//! listing came before the other's write; but each party's own write came
//! before its own listing. That is a cycle; so at least one of them saw the
//! other and waited.
//!
//! Every held lock object is rewritten every `refresh` by a background
//! task. An object older than `stale` (by the bucket's clock, measured
//! against the listing party's own freshly written object) belongs to a
//! crashed process: it is ignored, and GC deletes it. A holder that has not
//! refreshed for `stale / 2` by its own clock can no longer rely on the
//! lock ([`StoreGuard::check`]).

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use object_store::path::Path;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{is_not_found, mtime, store_error, ObjectBackend, S3Storage};
use crate::storage::lock::HeldLock;
use crate::storage::{LockMode, Result, StorageError, StoreGuard};

/// How often held lock objects are rewritten, and when an unrefreshed one
/// counts as a crashed holder's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LockTiming {
    pub refresh: Duration,
    pub stale: Duration,
}

impl Default for LockTiming {
    fn default() -> Self {
        // Eight missed refreshes before a lock counts as dead: a live
        // holder stalled that long has failed check() a minute earlier.
        // A crashed GC blocks pushes for at most `stale`.
        LockTiming {
            refresh: Duration::from_secs(15),
            stale: Duration::from_secs(120),
        }
    }
}

/// Longest pause between two attempts of a waiting party.
const MAX_WAIT: Duration = Duration::from_millis(500);

fn jittered(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    getrandom::getrandom(&mut b).expect("system random source");
    // 50% to 150% of `d`, so backed-off writers do not retry in step.
    d.mul_f64(0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX))
}

fn lock_body() -> String {
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!("{{\"pid\":{},\"written\":{unix}}}", std::process::id())
}

/// One lock object in the bucket, kept fresh until removed.
struct LockObject {
    store: Arc<dyn ObjectBackend>,
    key: Path,
    stale: Duration,
    /// When the last successful write of the object started (this clock).
    last_written: Arc<Mutex<Instant>>,
    /// Dropping it stops the refresher.
    stop: Option<oneshot::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl LockObject {
    async fn create(store: Arc<dyn ObjectBackend>, key: Path, timing: LockTiming) -> Result<Self> {
        let started = Instant::now();
        store
            .put(&key, lock_body().into())
            .await
            .map_err(|e| lock_error(&key, "writing", e))?;
        let last_written = Arc::new(Mutex::new(started));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let refresher = {
            let (store, key, last) = (store.clone(), key.clone(), last_written.clone());
            tokio::spawn(async move {
                let held_since = Instant::now();
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(timing.refresh) => {}
                        _ = &mut stopped => break,
                    }
                    let started = Instant::now();
                    // Not cancelled mid-request: a refresh landing after
                    // the release's delete would resurrect the lock.
                    match store.put(&key, lock_body().into()).await {
                        Ok(_) => *last.lock().expect("lock refresh time") = started,
                        Err(e) => tracing::warn!(key = %key, error = %e, "refreshing lock object"),
                    }
                    // Writers hold the lock for a few requests: one held
                    // this long is what a stuck operation looks like.
                    let held = held_since.elapsed();
                    if held > timing.stale / 2 {
                        tracing::warn!(key = %key, held_s = held.as_secs(), "store lock held for long");
                    }
                }
            })
        };
        Ok(LockObject {
            store,
            key,
            stale: timing.stale,
            last_written,
            stop: Some(stop),
            refresher: Some(refresher),
        })
    }

    fn name(&self) -> &str {
        self.key.filename().unwrap_or_default()
    }

    fn check(&self) -> Result<()> {
        let since = self
            .last_written
            .lock()
            .expect("lock refresh time")
            .elapsed();
        if since > self.stale / 2 {
            return Err(StorageError::LockLost(self.key.to_string()));
        }
        Ok(())
    }

    /// Stops refreshing, then deletes the object.
    async fn remove(mut self) -> Result<()> {
        let (stop, refresher) = (self.stop.take(), self.refresher.take());
        remove_object(self.store.clone(), self.key.clone(), stop, refresher).await
    }
}

async fn remove_object(
    store: Arc<dyn ObjectBackend>,
    key: Path,
    stop: Option<oneshot::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
) -> Result<()> {
    drop(stop);
    if let Some(r) = refresher {
        let _ = r.await;
    }
    match store.delete(&key).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(lock_error(&key, "deleting", e)),
    }
}

impl Drop for LockObject {
    fn drop(&mut self) {
        // Not released in order (an error path or a dropped request):
        // delete in the background. Without a runtime the object stays
        // until it goes stale.
        if self.refresher.is_none() {
            return;
        }
        let (stop, refresher) = (self.stop.take(), self.refresher.take());
        let (store, key) = (self.store.clone(), self.key.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move {
                    if let Err(e) = remove_object(store, key, stop, refresher).await {
                        tracing::warn!(error = %e, "releasing a dropped lock");
                    }
                });
            }
            Err(_) => tracing::warn!(key = %key, "lock object left behind; it goes stale"),
        }
    }
}

fn lock_error(key: &Path, what: &str, e: object_store::Error) -> StorageError {
    StorageError::Io(io::Error::other(format!("{what} lock object {key}: {e}")))
}

struct HeldObject(LockObject);

impl HeldLock for HeldObject {
    fn check(&self) -> Result<()> {
        self.0.check()
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(self.0.remove())
    }
}

/// A lock object seen in a listing.
struct Listed {
    name: String,
    key: Path,
    written: SystemTime,
}

impl S3Storage {
    /// Overrides how often lock objects are refreshed and when an
    /// unrefreshed one counts as dead (tests use short ones).
    pub fn with_lock_timing(mut self, refresh: Duration, stale: Duration) -> Self {
        assert!(
            refresh < stale / 2,
            "a lock must be refreshed well within `stale`"
        );
        self.lock_timing = LockTiming { refresh, stale };
        self
    }

    fn lock_key(&self, name: &str) -> Path {
        self.key(&format!("_locks/{name}"))
    }

    async fn list_locks(&self) -> Result<Vec<Listed>> {
        Ok(self
            .list("_locks")
            .await?
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_string();
                Some(Listed {
                    name,
                    written: mtime(&m),
                    key: m.location,
                })
            })
            .collect())
    }

    /// Lists the locks, and the bucket's time stamp on `own` in it: the
    /// clock against which the others' ages are measured.
    async fn list_around(&self, own: &LockObject) -> Result<(Vec<Listed>, SystemTime)> {
        let locks = self.list_locks().await?;
        let Some(now) = locks
            .iter()
            .find(|l| l.name == own.name())
            .map(|l| l.written)
        else {
            return Err(StorageError::Io(io::Error::other(format!(
                "lock object {} missing from a listing right after its write: \
                 the object store is not read-after-write consistent",
                own.key
            ))));
        };
        Ok((locks, now))
    }

    fn is_stale(&self, now: SystemTime, l: &Listed) -> bool {
        now.duration_since(l.written).unwrap_or_default() > self.lock_timing.stale
    }

    pub(super) async fn lock_impl(&self, mode: LockMode) -> Result<StoreGuard> {
        match mode {
            LockMode::Shared => self.lock_shared_impl().await,
            LockMode::Exclusive => self.lock_exclusive_impl().await,
        }
    }

    /// Whether a live exclusive lock object is listed, measuring ages
    /// against the bucket's clock as last seen (`seen`, at `at` on this
    /// machine's clock) plus the time since.
    async fn exclusive_listed(&self, seen: SystemTime, at: Instant) -> Result<bool> {
        let now = seen + at.elapsed();
        Ok(self
            .list_locks()
            .await?
            .iter()
            .any(|l| l.name.starts_with("exclusive-") && !self.is_stale(now, l)))
    }

    async fn lock_shared_impl(&self) -> Result<StoreGuard> {
        let mut wait = Duration::from_millis(20);
        // The bucket's clock when GC was last found holding or wanting the
        // lock.
        let mut gc_seen: Option<(SystemTime, Instant)> = None;
        loop {
            // While GC is there, wait by listing only. A writer that wrote
            // its object to find GC there, removed it and tried again kept
            // an object in the bucket most of the time; with a few such
            // writers every listing of GC showed one, so GC waited for them
            // as they waited for it, for good.
            if let Some((seen, at)) = gc_seen {
                if self.exclusive_listed(seen, at).await? {
                    tokio::time::sleep(jittered(wait)).await;
                    wait = (wait * 2).min(MAX_WAIT);
                    continue;
                }
            }
            let name = format!("shared-{}", crate::storage::random_id());
            let own =
                LockObject::create(self.store.clone(), self.lock_key(&name), self.lock_timing)
                    .await?;
            let (locks, now) = self.list_around(&own).await?;
            let gc = locks
                .iter()
                .find(|l| l.name.starts_with("exclusive-") && !self.is_stale(now, l));
            let Some(gc) = gc else {
                return Ok(StoreGuard::new(
                    Box::new(HeldObject(own)),
                    LockMode::Shared,
                    now,
                    Vec::new(),
                ));
            };
            tracing::debug!(gc = %gc.key, "store locked by gc; backing off");
            own.remove().await?;
            gc_seen = Some((now, Instant::now()));
            tokio::time::sleep(jittered(wait)).await;
            wait = (wait * 2).min(MAX_WAIT);
        }
    }

    async fn lock_exclusive_impl(&self) -> Result<StoreGuard> {
        let mut stale_removed = Vec::new();
        let mut wait = Duration::from_millis(20);
        'attempt: loop {
            let name = format!("exclusive-{}", crate::storage::random_id());
            let own =
                LockObject::create(self.store.clone(), self.lock_key(&name), self.lock_timing)
                    .await?;
            let mut poll = Duration::from_millis(10);
            loop {
                let (locks, now) = self.list_around(&own).await?;
                let mut waiting_for = None;
                for l in locks.iter().filter(|l| l.name != name) {
                    if self.is_stale(now, l) {
                        tracing::warn!(lock = %l.key, "removing a stale lock object (its holder crashed)");
                        match self.store.delete(&l.key).await {
                            Ok(()) => {}
                            Err(e) if is_not_found(&e) => {}
                            Err(e) => return Err(store_error(e)),
                        }
                        stale_removed.push(self.rel(&l.key).unwrap_or(l.key.as_ref()).to_string());
                        continue;
                    }
                    if l.name.starts_with("exclusive-") && l.name < name {
                        // Another GC wins the tie: step back entirely, so
                        // writers are not held off by two of us.
                        tracing::info!(other = %l.key, "another gc holds or wants the store lock");
                        own.remove().await?;
                        tokio::time::sleep(jittered(wait)).await;
                        wait = (wait * 2).min(MAX_WAIT);
                        continue 'attempt;
                    }
                    waiting_for.get_or_insert(&l.key);
                }
                let Some(holder) = waiting_for else {
                    return Ok(StoreGuard::new(
                        Box::new(HeldObject(own)),
                        LockMode::Exclusive,
                        now,
                        stale_removed,
                    ));
                };
                tracing::debug!(holder = %holder, "gc waiting for writers to finish");
                tokio::time::sleep(poll).await;
                poll = (poll * 2).min(MAX_WAIT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::memory_store;
    use super::*;
    use crate::storage::Storage;

    async fn blocks<F: std::future::Future + Unpin>(fut: &mut F) -> bool {
        crate::storage::lock::still_pending(fut, Duration::from_millis(300)).await
    }

    /// Two replicas on one bucket.
    fn replicas(dir: &std::path::Path, timing: Option<(u64, u64)>) -> (S3Storage, S3Storage) {
        let a = memory_store(dir);
        let b = S3Storage::new(a.raw.clone(), "mirror", dir.join("scratch-b")).unwrap();
        match timing {
            Some((refresh, stale)) => {
                let (r, s) = (Duration::from_millis(refresh), Duration::from_millis(stale));
                (a.with_lock_timing(r, s), b.with_lock_timing(r, s))
            }
            None => (a, b),
        }
    }

    async fn lock_names(st: &S3Storage) -> Vec<String> {
        st.list_locks()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect()
    }

    #[tokio::test]
    async fn exclusive_waits_for_shared_on_another_replica() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = replicas(dir.path(), None);
        let w1 = a.lock_shared().await.unwrap();
        let w2 = b.lock_shared().await.unwrap();
        assert_eq!(lock_names(&a).await.len(), 2);
        let mut gc = b.lock_exclusive();
        assert!(blocks(&mut gc).await, "gc went ahead of two writers");
        w1.release().await.unwrap();
        assert!(blocks(&mut gc).await, "gc went ahead of a writer");
        w2.release().await.unwrap();
        let held = gc.await.unwrap();
        held.check().unwrap();
        assert_eq!(held.mode(), LockMode::Exclusive);
        let names = lock_names(&a).await;
        assert!(
            names.len() == 1 && names[0].starts_with("exclusive-"),
            "{names:?}"
        );
        held.release().await.unwrap();
        assert!(lock_names(&a).await.is_empty());
    }

    /// Writers waiting for GC on a bucket that answers slowly (a loaded
    /// Garage): when each of them wrote and deleted an object per attempt,
    /// one was nearly always in the bucket, GC waited for them as they
    /// waited for GC, and nothing moved again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gc_gets_the_lock_while_many_writers_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let bucket: Arc<dyn ObjectBackend> =
            crate::storage::FaultyNode::slow(Duration::from_millis(60));
        let replica =
            Arc::new(S3Storage::new(bucket.clone(), "mirror", dir.path().join("a")).unwrap());
        let gc_store = Arc::new(S3Storage::new(bucket, "mirror", dir.path().join("gc")).unwrap());
        let holder = replica.lock_shared().await.unwrap();
        let gc = {
            let st = gc_store.clone();
            tokio::spawn(async move { st.lock_exclusive().await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let writers: Vec<_> = (0..24)
            .map(|_| {
                let st = replica.clone();
                tokio::spawn(async move { st.lock_shared().await?.release().await })
            })
            .collect();
        // Every writer has found GC there and is waiting.
        tokio::time::sleep(Duration::from_secs(2)).await;
        holder.release().await.unwrap();
        let held = tokio::time::timeout(Duration::from_secs(20), gc)
            .await
            .expect("gc never got the lock while writers waited for it")
            .unwrap()
            .unwrap();
        held.release().await.unwrap();
        for w in writers {
            tokio::time::timeout(Duration::from_secs(30), w)
                .await
                .expect("a writer never got the lock after gc")
                .unwrap()
                .unwrap();
        }
        assert!(lock_names(&replica).await.is_empty());
    }

    #[tokio::test]
    async fn shared_waits_while_exclusive_is_held_or_wanted() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = replicas(dir.path(), None);
        let writer = a.lock_shared().await.unwrap();
        // A waiting GC already holds new writers off.
        let mut gc = Box::pin(b.lock_exclusive());
        assert!(blocks(&mut gc).await);
        let mut late = Box::pin(a.lock_shared());
        assert!(blocks(&mut late).await, "a writer overtook a waiting gc");
        writer.release().await.unwrap();
        let held = gc.await.unwrap();
        assert!(blocks(&mut late).await, "a writer got in during gc");
        held.release().await.unwrap();
        late.await.unwrap().release().await.unwrap();
    }

    #[tokio::test]
    async fn a_stale_lock_is_ignored_and_removed_by_gc() {
        let dir = tempfile::tempdir().unwrap();
        let a = memory_store(dir.path())
            .with_lock_timing(Duration::from_millis(50), Duration::from_millis(400));
        // Lock objects of processes that crashed while holding them.
        a.write(&a.lock_key("exclusive-0000dead"), lock_body())
            .await
            .unwrap();
        a.write(&a.lock_key("shared-0000dead"), lock_body())
            .await
            .unwrap();
        let mut writer = Box::pin(a.lock_shared());
        assert!(
            blocks(&mut writer).await,
            "a live-looking gc lock was ignored"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Now older than `stale`: writers go ahead, GC removes them.
        let w = writer.await.unwrap();
        w.release().await.unwrap();
        let gc = a.lock_exclusive().await.unwrap();
        assert_eq!(
            gc.stale_removed(),
            ["_locks/exclusive-0000dead", "_locks/shared-0000dead"]
        );
        gc.release().await.unwrap();
        assert!(lock_names(&a).await.is_empty());
    }

    #[tokio::test]
    async fn a_held_lock_is_refreshed_and_not_taken_for_stale() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = replicas(dir.path(), Some((40, 300)));
        let gc = a.lock_exclusive().await.unwrap();
        // Well past `stale`: only the refreshes keep it alive.
        tokio::time::sleep(Duration::from_millis(700)).await;
        gc.check().unwrap();
        let mut writer = Box::pin(b.lock_shared());
        assert!(
            blocks(&mut writer).await,
            "a refreshed gc lock was taken for stale"
        );
        gc.release().await.unwrap();
        writer.await.unwrap().release().await.unwrap();
    }

    #[tokio::test]
    async fn dropped_guard_deletes_its_object() {
        let dir = tempfile::tempdir().unwrap();
        let a = memory_store(dir.path());
        drop(a.lock_shared().await.unwrap());
        for _ in 0..50 {
            if lock_names(&a).await.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("lock object left: {:?}", lock_names(&a).await);
    }
}
