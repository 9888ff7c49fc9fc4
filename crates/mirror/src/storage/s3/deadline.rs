//! A deadline on every object store request, so no request of the mirror
//! waits forever on a bucket that stopped answering.
//!
//! The S3 client's own whole-request timeout is off (it would cut a blob
//! body streamed to a slow client), so without this layer a request the
//! server accepted and never answered kept its caller waiting for good. A
//! caller holding the store lock then kept it alive (its refresher goes on
//! rewriting the lock object) and GC, and every writer queued behind GC,
//! waited with it.
//!
//! Each call gets [`DEFAULT_TIMEOUT`] (or the configured one) until its
//! answer; a streamed body or listing gets it for each chunk or page while
//! the caller is waiting for one, never while the caller is not reading.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, GetResultPayload, ListResult, MultipartId, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

use super::ObjectBackend;

/// How long one request may wait for its answer. Well under the lock's
/// `stale / 2`, so a writer's failing request ends before its lock could
/// be taken for a crashed one's.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(45);

/// A request got no answer in time.
#[derive(Debug, thiserror::Error)]
#[error("s3 {op} {path}: no answer within {}s", .after.as_secs_f64())]
pub struct RequestTimedOut {
    pub op: &'static str,
    pub path: String,
    pub after: Duration,
}

fn timed_out(op: &'static str, path: &str, after: Duration) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: Box::new(RequestTimedOut {
            op,
            path: path.to_string(),
            after,
        }),
    }
}

async fn within<T>(
    after: Duration,
    op: &'static str,
    path: &str,
    fut: impl Future<Output = object_store::Result<T>>,
) -> object_store::Result<T> {
    match tokio::time::timeout(after, fut).await {
        Ok(r) => r,
        Err(_) => Err(timed_out(op, path, after)),
    }
}

/// An [`ObjectBackend`] whose every request ends within `timeout`.
#[derive(Clone)]
pub struct DeadlineStore {
    inner: Arc<dyn ObjectBackend>,
    timeout: Duration,
}

impl DeadlineStore {
    pub fn new(inner: Arc<dyn ObjectBackend>, timeout: Duration) -> DeadlineStore {
        DeadlineStore { inner, timeout }
    }
}

impl fmt::Debug for DeadlineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineStore")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for DeadlineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeadlineStore({}s, {})",
            self.timeout.as_secs(),
            self.inner
        )
    }
}

/// A stream whose next item must come within `after` of being asked for.
struct Paced<T> {
    inner: BoxStream<'static, object_store::Result<T>>,
    after: Duration,
    op: &'static str,
    path: String,
    /// Armed while the caller waits for an item.
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
    failed: bool,
}

impl<T> Stream for Paced<T> {
    type Item = object_store::Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = this.inner.poll_next_unpin(cx) {
            this.waiting = None;
            return Poll::Ready(item);
        }
        let after = this.after;
        let sleep = this
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.failed = true;
                this.waiting = None;
                Poll::Ready(Some(Err(timed_out(this.op, &this.path, after))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn paced<T: Send + 'static>(
    inner: BoxStream<'static, object_store::Result<T>>,
    after: Duration,
    op: &'static str,
    path: String,
) -> BoxStream<'static, object_store::Result<T>> {
    Paced {
        inner,
        after,
        op,
        path,
        waiting: None,
        failed: false,
    }
    .boxed()
}

#[async_trait]
impl ObjectStore for DeadlineStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let fut = self.inner.put_opts(location, payload, opts);
        within(self.timeout, "put", location.as_ref(), fut).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let fut = self.inner.put_multipart_opts(location, opts);
        let upload = within(self.timeout, "put_multipart", location.as_ref(), fut).await?;
        Ok(Box::new(DeadlineUpload {
            inner: upload,
            timeout: self.timeout,
            path: location.to_string(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let fut = self.inner.get_opts(location, options);
        let mut r = within(self.timeout, "get", location.as_ref(), fut).await?;
        r.payload = match r.payload {
            GetResultPayload::Stream(s) => {
                GetResultPayload::Stream(paced(s, self.timeout, "get", location.to_string()))
            }
            #[allow(unreachable_patterns)]
            other => other,
        };
        Ok(r)
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        let fut = self.inner.get_range(location, range);
        within(self.timeout, "get", location.as_ref(), fut).await
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        let fut = self.inner.head(location);
        within(self.timeout, "head", location.as_ref(), fut).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        let fut = self.inner.delete(location);
        within(self.timeout, "delete", location.as_ref(), fut).await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let path = prefix.map(|p| p.to_string()).unwrap_or_default();
        paced(self.inner.list(prefix), self.timeout, "list", path)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let path = prefix.map(|p| p.to_string()).unwrap_or_default();
        let inner = self.inner.list_with_offset(prefix, offset);
        paced(inner, self.timeout, "list", path)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let path = prefix.map(|p| p.to_string()).unwrap_or_default();
        let fut = self.inner.list_with_delimiter(prefix);
        within(self.timeout, "list", &path, fut).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        let fut = self.inner.copy(from, to);
        within(self.timeout, "copy", to.as_ref(), fut).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        let fut = self.inner.copy_if_not_exists(from, to);
        within(self.timeout, "copy", to.as_ref(), fut).await
    }
}

#[async_trait]
impl MultipartStore for DeadlineStore {
    async fn create_multipart(&self, path: &Path) -> object_store::Result<MultipartId> {
        let fut = self.inner.create_multipart(path);
        within(self.timeout, "create_multipart", path.as_ref(), fut).await
    }

    async fn put_part(
        &self,
        path: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> object_store::Result<PartId> {
        let fut = self.inner.put_part(path, id, part_idx, data);
        within(self.timeout, "put_part", path.as_ref(), fut).await
    }

    async fn complete_multipart(
        &self,
        path: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> object_store::Result<PutResult> {
        let fut = self.inner.complete_multipart(path, id, parts);
        within(self.timeout, "complete_multipart", path.as_ref(), fut).await
    }

    async fn abort_multipart(&self, path: &Path, id: &MultipartId) -> object_store::Result<()> {
        let fut = self.inner.abort_multipart(path, id);
        within(self.timeout, "abort_multipart", path.as_ref(), fut).await
    }
}

#[derive(Debug)]
struct DeadlineUpload {
    inner: Box<dyn MultipartUpload>,
    timeout: Duration,
    path: String,
}

#[async_trait]
impl MultipartUpload for DeadlineUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let (fut, after, path) = (self.inner.put_part(data), self.timeout, self.path.clone());
        Box::pin(async move { within(after, "put_part", &path, fut).await })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let (after, path) = (self.timeout, self.path.clone());
        within(after, "complete_multipart", &path, self.inner.complete()).await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let (after, path) = (self.timeout, self.path.clone());
        within(after, "abort_multipart", &path, self.inner.abort()).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::S3Storage;
    use super::*;
    use crate::name::RepoName;
    use crate::storage::FaultyNode;
    use crate::storage::Storage;

    /// A manifest PUT holds the store lock while it writes; a write the
    /// bucket never answers used to keep that lock alive (refreshed) for
    /// good, so GC, and every writer queued behind GC, waited forever.
    #[tokio::test]
    async fn a_request_stuck_under_the_store_lock_fails_and_gc_goes_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let bucket: Arc<dyn ObjectBackend> = FaultyNode::stalling("/_manifests/");
        let replica = S3Storage::new(bucket.clone(), "mirror", dir.path().join("a"))
            .unwrap()
            .with_request_timeout(Duration::from_millis(500));
        let gc = S3Storage::new(bucket, "mirror", dir.path().join("gc")).unwrap();
        let repo = RepoName::parse("stuck").unwrap();
        let push = async {
            let guard = replica.lock_shared().await.unwrap();
            let stored = replica
                .put_manifest(&repo, "application/x-test", Bytes::from_static(b"{}"))
                .await;
            guard.release().await.unwrap();
            stored
        };
        let stored = tokio::time::timeout(Duration::from_secs(20), push)
            .await
            .expect("a request under the store lock waited forever for the bucket");
        let e = stored.expect_err("a write the bucket never answered succeeded");
        let msg = e.to_string();
        assert!(
            msg.contains("s3 put mirror/repos/stuck/_manifests/")
                && msg.contains("no answer within 0.5s"),
            "{msg}"
        );
        let held = tokio::time::timeout(Duration::from_secs(20), gc.lock_exclusive())
            .await
            .expect("gc waited for a lock nobody uses")
            .unwrap();
        held.release().await.unwrap();
    }

    /// A listing page or a body chunk that never comes fails the same way,
    /// while a caller that is slow to read is never cut off.
    #[tokio::test]
    async fn a_stream_waits_only_while_its_reader_does() {
        let after = Duration::from_millis(200);
        let quiet = futures_util::stream::pending::<object_store::Result<u8>>().boxed();
        let mut s = paced(quiet, after, "list", "mirror/x".into());
        let e = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("a stalled listing waited forever")
            .unwrap()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("s3 list mirror/x: no answer within 0.2s"),
            "{e}"
        );
        assert!(s.next().await.is_none(), "a failed stream goes on");

        let items = futures_util::stream::iter([Ok(1u8), Ok(2)]).boxed();
        let mut s = paced(items, after, "get", "mirror/y".into());
        assert_eq!(s.next().await.unwrap().unwrap(), 1);
        // The reader pauses far longer than the deadline between chunks.
        tokio::time::sleep(after * 3).await;
        assert_eq!(s.next().await.unwrap().unwrap(), 2);
        assert!(s.next().await.is_none());
    }
}
