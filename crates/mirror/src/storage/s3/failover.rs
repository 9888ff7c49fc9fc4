//! Several S3 endpoints of one cluster (say, every Garage node's S3 API)
//! behind one [`ObjectBackend`], so a replica keeps serving when the node it
//! talks to is down.
//!
//! Every endpoint must reach the same cluster and bucket: a request may go
//! to any of them. Requests go to the first healthy endpoint in configured
//! order (so a replica sticks to its nearby node); a connection error, a
//! timeout or a 5xx answer marks that endpoint down for a back-off that
//! doubles on each consecutive failure, and the request moves on to the
//! next endpoint. Answers that come from the cluster itself (4xx, not
//! found, already exists) are final and returned at once.
//!
//! A request that may have been applied before it failed (a timeout, a
//! dropped connection, a 5xx) is sent again elsewhere only when repeating
//! it is harmless: reads, listings, deletes, overwriting puts and parts.
//! Conditional writes and multipart completion move on only when the
//! failed attempt never left this machine (connection refused), because a
//! repeat of one that did could report a conflict the first attempt
//! caused. The multipart uploads this store starts send each part through
//! the same failover, since S3 clusters such as Garage keep multipart state
//! in the cluster, not in the node that started the upload.
//!
//! A streamed read fails over only until its response starts; a listing
//! resumes on the next endpoint after the last key it returned.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartId, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

use super::ObjectBackend;

/// How long an endpoint is skipped after its first failure; doubled on each
/// consecutive failure up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(2);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Every endpoint failed a request; `last` is the last endpoint's error.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: all {tried} s3 endpoints failed ({endpoints}); last error: {last}")]
pub struct AllEndpointsFailed {
    pub op: &'static str,
    pub path: String,
    pub tried: usize,
    pub endpoints: String,
    #[source]
    pub last: object_store::Error,
}

/// What a failed request tells about its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request never reached the endpoint (connection refused, DNS).
    Unsent,
    /// The endpoint may have received it: a timeout, a dropped connection,
    /// a 5xx answer.
    MaybeSent,
    /// The cluster answered (4xx, not found, precondition): another
    /// endpoint would answer the same.
    Final,
}

/// Classifies an object store error. object_store does not export its
/// retry error, so the reqwest error underneath is found by downcasting
/// and a status code by the message object_store prints for it.
pub fn classify(e: &object_store::Error) -> Failure {
    use object_store::Error as E;
    let source: &(dyn std::error::Error + 'static) = match e {
        E::Generic { source, .. } => source.as_ref(),
        _ => return Failure::Final,
    };
    let mut cur = Some(source);
    let mut text = String::new();
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<reqwest::Error>() {
            if r.is_connect() {
                return Failure::Unsent;
            }
            if let Some(s) = r.status() {
                return if s.is_server_error() {
                    Failure::MaybeSent
                } else {
                    Failure::Final
                };
            }
            // a timeout, a closed connection, a body cut short
            return Failure::MaybeSent;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotConnected => {
                    return Failure::Unsent
                }
                std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => return Failure::MaybeSent,
                _ => {}
            }
        }
        text.push_str(&err.to_string());
        text.push('\n');
        cur = err.source();
    }
    // object_store's RequestError: "Server returned non-2xx status code:
    // 503 Service Unavailable: ..." or, for a 200 whose body is an S3
    // InternalError/SlowDown, "Server returned error response: ...".
    if let Some(rest) = text.split("status code: ").nth(1) {
        return match rest.as_bytes().first() {
            Some(b'5') => Failure::MaybeSent,
            _ => Failure::Final,
        };
    }
    if text.contains("Server returned error response") {
        return Failure::MaybeSent;
    }
    Failure::Final
}

/// Whether a request may be sent again after failing with `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Idempotent: any failure that is not final moves on.
    Harmless,
    /// Moves on only when the request was not sent.
    IfUnsent,
}

struct Endpoint {
    name: String,
    store: Arc<dyn ObjectBackend>,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    down_until: Option<Instant>,
    failures: u32,
}

struct Inner {
    endpoints: Vec<Endpoint>,
    min_backoff: Duration,
    max_backoff: Duration,
}

/// An [`ObjectBackend`] over several endpoints of one cluster.
#[derive(Clone)]
pub struct FailoverStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for FailoverStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverStore")
            .field("endpoints", &self.names())
            .finish()
    }
}

impl fmt::Display for FailoverStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailoverStore({})", self.names())
    }
}

impl FailoverStore {
    /// `endpoints` are (name for logs, client) pairs, preferred first.
    ///
    /// # Panics
    /// When `endpoints` is empty.
    pub fn new(endpoints: Vec<(String, Arc<dyn ObjectBackend>)>) -> FailoverStore {
        assert!(!endpoints.is_empty(), "a failover store needs an endpoint");
        FailoverStore {
            inner: Arc::new(Inner {
                endpoints: endpoints
                    .into_iter()
                    .map(|(name, store)| Endpoint {
                        name,
                        store,
                        health: Mutex::new(Health::default()),
                    })
                    .collect(),
                min_backoff: MIN_BACKOFF,
                max_backoff: MAX_BACKOFF,
            }),
        }
    }

    /// Replaces the back-off bounds (tests use short ones).
    pub fn with_backoff(self, min: Duration, max: Duration) -> FailoverStore {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|_| {
            panic!("with_backoff is called before the store is shared");
        });
        FailoverStore {
            inner: Arc::new(Inner {
                min_backoff: min,
                max_backoff: max,
                ..inner
            }),
        }
    }

    fn names(&self) -> String {
        self.inner
            .endpoints
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Names of the endpoints currently marked down.
    pub fn down(&self) -> Vec<String> {
        let now = Instant::now();
        self.inner
            .endpoints
            .iter()
            .filter(|e| {
                e.health
                    .lock()
                    .map(|h| h.down_until.is_some_and(|t| t > now))
                    .unwrap_or(false)
            })
            .map(|e| e.name.clone())
            .collect()
    }

    /// Endpoint indexes to try: healthy ones in configured order, then the
    /// ones marked down, soonest back first (they may be up again, and a
    /// request should not fail while any endpoint might answer).
    ///
    /// When an endpoint's back-off ends, only the request that notices
    /// first tries it in its place: the others keep treating it as down
    /// until that probe answers, so a busy replica does not send a burst of
    /// requests at a node that is still gone.
    fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let mut up = Vec::new();
        let mut down = Vec::new();
        for (i, e) in self.inner.endpoints.iter().enumerate() {
            let Ok(mut h) = e.health.lock() else {
                up.push(i);
                continue;
            };
            match h.down_until {
                Some(t) if t > now => down.push((t, i)),
                Some(_) => {
                    h.down_until = Some(now + self.inner.min_backoff);
                    up.push(i);
                }
                None => up.push(i),
            }
        }
        down.sort();
        up.extend(down.into_iter().map(|(_, i)| i));
        up
    }

    fn mark_up(&self, i: usize) {
        if let Ok(mut h) = self.inner.endpoints[i].health.lock() {
            if h.failures > 0 {
                tracing::info!(endpoint = %self.inner.endpoints[i].name, "s3 endpoint answers again");
            }
            *h = Health::default();
        }
    }

    fn mark_down(&self, i: usize) {
        let e = &self.inner.endpoints[i];
        if let Ok(mut h) = e.health.lock() {
            let shift = h.failures.min(16);
            let backoff = self
                .inner
                .min_backoff
                .saturating_mul(1 << shift)
                .min(self.inner.max_backoff);
            h.failures += 1;
            h.down_until = Some(Instant::now() + backoff);
            tracing::warn!(
                endpoint = %e.name,
                failures = h.failures,
                backoff_ms = backoff.as_millis() as u64,
                "s3 endpoint marked down"
            );
        }
    }

    /// Runs `f` on endpoints in [`Self::order`] until one answers, or the
    /// failure is final, or `repeat` forbids another attempt.
    async fn run<T, F, Fut>(
        &self,
        op: &'static str,
        path: &str,
        repeat: Repeat,
        f: F,
    ) -> object_store::Result<T>
    where
        F: Fn(Arc<dyn ObjectBackend>) -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let order = self.order();
        let mut tried = 0;
        let mut last = None;
        for (n, &i) in order.iter().enumerate() {
            let e = &self.inner.endpoints[i];
            tried += 1;
            let err = match f(e.store.clone()).await {
                Ok(v) => {
                    self.mark_up(i);
                    return Ok(v);
                }
                Err(err) => err,
            };
            let failure = classify(&err);
            if failure == Failure::Final {
                // The cluster answered; the endpoint is fine.
                self.mark_up(i);
                return Err(err);
            }
            self.mark_down(i);
            let more = n + 1 < order.len();
            let again = more && (repeat == Repeat::Harmless || failure == Failure::Unsent);
            if again {
                tracing::warn!(op, path, endpoint = %e.name, error = %err, "s3 request failed; trying the next endpoint");
            }
            last = Some(err);
            if !again {
                break;
            }
        }
        let last = last.expect("at least one endpoint was tried");
        if tried == 1 {
            return Err(last);
        }
        Err(object_store::Error::Generic {
            store: "S3",
            source: Box::new(AllEndpointsFailed {
                op,
                path: path.to_string(),
                tried,
                endpoints: self.names(),
                last,
            }),
        })
    }
}

fn put_repeat(mode: &PutMode) -> Repeat {
    match mode {
        PutMode::Overwrite => Repeat::Harmless,
        PutMode::Create | PutMode::Update(_) => Repeat::IfUnsent,
    }
}

#[async_trait]
impl ObjectStore for FailoverStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let repeat = put_repeat(&opts.mode);
        self.run("put", location.as_ref(), repeat, |s| {
            let (payload, opts) = (payload.clone(), opts.clone());
            async move { s.put_opts(location, payload, opts).await }
        })
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        if !opts.attributes.is_empty() || !opts.tags.encoded().is_empty() {
            // MultipartStore cannot carry tags or attributes: such an
            // upload stays on the endpoint that starts it.
            return self
                .run("put_multipart", location.as_ref(), Repeat::Harmless, |s| {
                    let opts = opts.clone();
                    async move { s.put_multipart_opts(location, opts).await }
                })
                .await;
        }
        let id = self.create_multipart(location).await?;
        Ok(Box::new(FailoverUpload {
            store: self.clone(),
            path: location.clone(),
            id,
            parts: Arc::new(Mutex::new(Vec::new())),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.run("get", location.as_ref(), Repeat::Harmless, |s| {
            let options = options.clone();
            async move { s.get_opts(location, options).await }
        })
        .await
    }

    async fn get_range(
        &self,
        location: &Path,
        range: Range<u64>,
    ) -> object_store::Result<bytes::Bytes> {
        self.run("get", location.as_ref(), Repeat::Harmless, |s| {
            let range = range.clone();
            async move { s.get_range(location, range).await }
        })
        .await
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        self.run(
            "head",
            location.as_ref(),
            Repeat::Harmless,
            |s| async move { s.head(location).await },
        )
        .await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.run(
            "delete",
            location.as_ref(),
            Repeat::Harmless,
            |s| async move { s.delete(location).await },
        )
        .await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.resumable_list(prefix.cloned(), None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.resumable_list(prefix.cloned(), Some(offset.clone()))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let p = prefix.map(|p| p.to_string()).unwrap_or_default();
        self.run("list", &p, Repeat::Harmless, |s| async move {
            s.list_with_delimiter(prefix).await
        })
        .await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.run("copy", to.as_ref(), Repeat::Harmless, |s| async move {
            s.copy(from, to).await
        })
        .await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.run("copy", to.as_ref(), Repeat::IfUnsent, |s| async move {
            s.copy_if_not_exists(from, to).await
        })
        .await
    }
}

/// State of a listing that resumes after its last key on another endpoint.
struct ListState {
    store: FailoverStore,
    prefix: Option<Path>,
    /// The last key returned (or the caller's offset).
    after: Option<Path>,
    order: Vec<usize>,
    next: usize,
    current: Option<(usize, BoxStream<'static, object_store::Result<ObjectMeta>>)>,
    done: bool,
}

impl FailoverStore {
    fn resumable_list(
        &self,
        prefix: Option<Path>,
        after: Option<Path>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let state = ListState {
            store: self.clone(),
            prefix,
            after,
            order: self.order(),
            next: 0,
            current: None,
            done: false,
        };
        futures_util::stream::unfold(state, |mut st| async move {
            loop {
                if st.done {
                    return None;
                }
                if st.current.is_none() {
                    let i = st.order[st.next];
                    st.next += 1;
                    let s = &st.store.inner.endpoints[i].store;
                    let stream = match &st.after {
                        Some(a) => s.list_with_offset(st.prefix.as_ref(), a),
                        None => s.list(st.prefix.as_ref()),
                    };
                    st.current = Some((i, stream));
                }
                let (i, stream) = st.current.as_mut().expect("set above");
                let i = *i;
                match stream.next().await {
                    Some(Ok(m)) => {
                        st.after = Some(m.location.clone());
                        return Some((Ok(m), st));
                    }
                    None => {
                        st.store.mark_up(i);
                        return None;
                    }
                    Some(Err(e)) => {
                        let failure = classify(&e);
                        if failure != Failure::Final {
                            st.store.mark_down(i);
                        }
                        if failure == Failure::Final || st.next >= st.order.len() {
                            st.done = true;
                            return Some((Err(e), st));
                        }
                        tracing::warn!(
                            prefix = ?st.prefix.as_ref().map(|p| p.to_string()),
                            endpoint = %st.store.inner.endpoints[i].name,
                            error = %e,
                            "s3 listing failed; resuming on the next endpoint"
                        );
                        st.current = None;
                    }
                }
            }
        })
        .boxed()
    }
}

#[async_trait]
impl MultipartStore for FailoverStore {
    async fn create_multipart(&self, path: &Path) -> object_store::Result<MultipartId> {
        // A repeat after a lost answer leaves an unused upload behind, which
        // the bucket's lifecycle (or gc of the session) cleans up.
        self.run(
            "create_multipart",
            path.as_ref(),
            Repeat::Harmless,
            |s| async move { s.create_multipart(path).await },
        )
        .await
    }

    async fn put_part(
        &self,
        path: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> object_store::Result<PartId> {
        self.run("put_part", path.as_ref(), Repeat::Harmless, |s| {
            let data = data.clone();
            async move { s.put_part(path, id, part_idx, data).await }
        })
        .await
    }

    async fn complete_multipart(
        &self,
        path: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> object_store::Result<PutResult> {
        self.run("complete_multipart", path.as_ref(), Repeat::IfUnsent, |s| {
            let parts = parts.clone();
            async move { s.complete_multipart(path, id, parts).await }
        })
        .await
    }

    async fn abort_multipart(&self, path: &Path, id: &MultipartId) -> object_store::Result<()> {
        self.run(
            "abort_multipart",
            path.as_ref(),
            Repeat::Harmless,
            |s| async move { s.abort_multipart(path, id).await },
        )
        .await
    }
}

/// A multipart upload whose parts each fail over on their own.
struct FailoverUpload {
    store: FailoverStore,
    path: Path,
    id: MultipartId,
    parts: Arc<Mutex<Vec<Option<PartId>>>>,
}

impl fmt::Debug for FailoverUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverUpload")
            .field("path", &self.path.as_ref())
            .field("id", &self.id)
            .finish()
    }
}

fn poisoned() -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: "multipart part list lock poisoned".into(),
    }
}

#[async_trait]
impl MultipartUpload for FailoverUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let idx = match self.parts.lock() {
            Ok(mut p) => {
                p.push(None);
                p.len() - 1
            }
            Err(_) => return Box::pin(async { Err(poisoned()) }),
        };
        let (store, path, id, parts) = (
            self.store.clone(),
            self.path.clone(),
            self.id.clone(),
            self.parts.clone(),
        );
        Box::pin(async move {
            let part = store.put_part(&path, &id, idx, data).await?;
            parts.lock().map_err(|_| poisoned())?[idx] = Some(part);
            Ok(())
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let parts = self
            .parts
            .lock()
            .map_err(|_| poisoned())?
            .iter()
            .cloned()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "completing multipart upload of {} before all its parts finished",
                    self.path
                )
                .into(),
            })?;
        self.store
            .complete_multipart(&self.path, &self.id, parts)
            .await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.store.abort_multipart(&self.path, &self.id).await
    }
}

#[cfg(test)]
pub(crate) mod tests;
