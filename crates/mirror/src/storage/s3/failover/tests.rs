//! The failover store over two endpoints of one in-memory "cluster", each
//! of which can be made to refuse connections or answer 5xx.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::memory::InMemory;

use super::*;

const UP: u8 = 0;
const REFUSED: u8 = 1;
const SERVER_ERROR: u8 = 2;
/// Lists `LIST_FAILS_AFTER` keys, then drops the connection.
const LIST_BREAKS: u8 = 3;
const LIST_FAILS_AFTER: usize = 2;

/// One endpoint of a cluster: shares `cluster` with the others. Other
/// modules' tests use it to inject faults too, or as a bucket alone that
/// answers slowly ([`Node::slow`]) or never ([`Node::stalling`]).
#[derive(Debug)]
pub(crate) struct Node {
    cluster: Arc<InMemory>,
    mode: AtomicU8,
    calls: AtomicUsize,
    /// Puts of keys containing this fail with a final error.
    fail_puts: Mutex<Option<String>>,
    /// Every put, get, delete and listing is answered after this long (as
    /// a loaded server does).
    delay: Duration,
    /// Puts of keys containing this are never answered (as a server that
    /// accepted a request and went quiet).
    stall: Option<&'static str>,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Node")
    }
}

impl Node {
    pub(crate) fn new(cluster: &Arc<InMemory>) -> Arc<Node> {
        Arc::new(Node::of(cluster))
    }

    fn of(cluster: &Arc<InMemory>) -> Node {
        Node {
            cluster: cluster.clone(),
            mode: AtomicU8::new(UP),
            calls: AtomicUsize::new(0),
            fail_puts: Mutex::new(None),
            delay: Duration::ZERO,
            stall: None,
        }
    }

    /// A bucket of its own that answers every request after `delay`.
    pub(crate) fn slow(delay: Duration) -> Arc<Node> {
        let cluster = Arc::new(InMemory::new());
        Arc::new(Node {
            delay,
            ..Node::of(&cluster)
        })
    }

    /// A bucket of its own that never answers puts of keys containing `part`.
    pub(crate) fn stalling(part: &'static str) -> Arc<Node> {
        let cluster = Arc::new(InMemory::new());
        Arc::new(Node {
            stall: Some(part),
            ..Node::of(&cluster)
        })
    }

    async fn pace(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }

    /// Makes puts of keys containing `part` fail; `""` ends that.
    pub(crate) fn fail_puts_of(&self, part: &str) {
        *self.fail_puts.lock().unwrap() = (!part.is_empty()).then(|| part.to_string());
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }

    /// The error this node's mode makes a request fail with, shaped like
    /// object_store's S3 client errors.
    fn fault(&self) -> object_store::Result<()> {
        self.calls.fetch_add(1, SeqCst);
        match self.mode.load(SeqCst) {
            REFUSED => Err(object_store::Error::Generic {
                store: "S3",
                source: Box::new(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused",
                )),
            }),
            SERVER_ERROR => Err(object_store::Error::Generic {
                store: "S3",
                source: "Server returned non-2xx status code: 503 Service Unavailable: ".into(),
            }),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl ObjectStore for Node {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.fault()?;
        if self.stall.is_some_and(|s| location.as_ref().contains(s)) {
            std::future::pending::<()>().await;
        }
        self.pace().await;
        if let Some(part) = self.fail_puts.lock().unwrap().as_deref() {
            if location.as_ref().contains(part) {
                return Err(object_store::Error::PermissionDenied {
                    path: location.to_string(),
                    source: "injected".into(),
                });
            }
        }
        self.cluster.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.fault()?;
        self.cluster.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.fault()?;
        self.pace().await;
        self.cluster.get_opts(location, options).await
    }
    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.fault()?;
        self.pace().await;
        self.cluster.delete(location).await
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if self.mode.load(SeqCst) == LIST_BREAKS {
            self.calls.fetch_add(1, SeqCst);
            let broken = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
            return self
                .cluster
                .list(prefix)
                .take(LIST_FAILS_AFTER)
                .chain(futures_util::stream::once(async move {
                    Err(object_store::Error::Generic {
                        store: "S3",
                        source: Box::new(broken),
                    })
                }))
                .boxed();
        }
        if let Err(e) = self.fault() {
            return futures_util::stream::once(async move { Err(e) }).boxed();
        }
        let listing = self.cluster.list(prefix);
        if self.delay.is_zero() {
            return listing;
        }
        let delay = tokio::time::sleep(self.delay);
        futures_util::stream::once(async move {
            delay.await;
            listing
        })
        .flatten()
        .boxed()
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.fault()?;
        self.cluster.list_with_delimiter(prefix).await
    }
    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.fault()?;
        self.cluster.copy(from, to).await
    }
    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.fault()?;
        self.cluster.copy_if_not_exists(from, to).await
    }
}

#[async_trait]
impl MultipartStore for Node {
    async fn create_multipart(&self, path: &Path) -> object_store::Result<MultipartId> {
        self.fault()?;
        self.cluster.create_multipart(path).await
    }
    async fn put_part(
        &self,
        path: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> object_store::Result<PartId> {
        self.fault()?;
        self.cluster.put_part(path, id, part_idx, data).await
    }
    async fn complete_multipart(
        &self,
        path: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> object_store::Result<PutResult> {
        self.fault()?;
        self.cluster.complete_multipart(path, id, parts).await
    }
    async fn abort_multipart(&self, path: &Path, id: &MultipartId) -> object_store::Result<()> {
        self.fault()?;
        self.cluster.abort_multipart(path, id).await
    }
}

/// Two nodes of one cluster behind a failover store with `backoff`.
fn cluster(backoff: Duration) -> (FailoverStore, Arc<Node>, Arc<Node>, Arc<InMemory>) {
    let mem = Arc::new(InMemory::new());
    let (a, b) = (Node::new(&mem), Node::new(&mem));
    let store = FailoverStore::new(vec![
        ("http://a:3900".into(), a.clone() as Arc<dyn ObjectBackend>),
        ("http://b:3900".into(), b.clone() as Arc<dyn ObjectBackend>),
    ])
    .with_backoff(backoff, backoff * 4);
    (store, a, b, mem)
}

async fn read(store: &dyn ObjectStore, key: &str) -> object_store::Result<Bytes> {
    store.get(&Path::from(key)).await?.bytes().await
}

#[tokio::test]
async fn a_refusing_endpoint_is_skipped_until_its_backoff_ends() {
    let (store, a, b, _) = cluster(Duration::from_millis(300));
    store.put(&Path::from("k"), "v1".into()).await.unwrap();
    assert_eq!(
        (a.calls(), b.calls()),
        (1, 0),
        "the first endpoint is preferred"
    );

    a.set(REFUSED);
    assert_eq!(read(&store, "k").await.unwrap(), "v1");
    assert_eq!((a.calls(), b.calls()), (2, 1));
    assert_eq!(store.down(), ["http://a:3900"]);
    // While it is down, requests go straight to b.
    store.put(&Path::from("k"), "v2".into()).await.unwrap();
    assert_eq!(read(&store, "k").await.unwrap(), "v2");
    assert_eq!((a.calls(), b.calls()), (2, 3));

    // After the back-off a is tried first again, and is preferred once it
    // answers.
    a.set(UP);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(read(&store, "k").await.unwrap(), "v2");
    assert_eq!((a.calls(), b.calls()), (3, 3));
    assert!(store.down().is_empty());
}

#[tokio::test]
async fn one_request_probes_an_endpoint_whose_backoff_ended() {
    let (store, a, b, _) = cluster(Duration::from_millis(100));
    a.set(REFUSED);
    store.put(&Path::from("k"), "v".into()).await.unwrap();
    assert_eq!((a.calls(), b.calls()), (1, 1));
    assert_eq!(store.order(), [1, 0], "a is down");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(store.order(), [0, 1], "the first to look probes a");
    assert_eq!(store.order(), [1, 0], "the others keep away meanwhile");
    assert_eq!(read(&store, "k").await.unwrap(), "v");
    assert_eq!((a.calls(), b.calls()), (1, 2), "not sent to a");
}

#[tokio::test]
async fn answers_from_the_cluster_are_final() {
    let (store, a, b, _) = cluster(Duration::from_secs(5));
    let e = read(&store, "missing").await.unwrap_err();
    assert!(matches!(e, object_store::Error::NotFound { .. }), "{e}");
    assert_eq!((a.calls(), b.calls()), (1, 0), "not found is not retried");

    // A conditional write that loses is not repeated elsewhere either.
    let create = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    store
        .put_opts(&Path::from("once"), "1".into(), create.clone())
        .await
        .unwrap();
    let e = store
        .put_opts(&Path::from("once"), "2".into(), create)
        .await
        .unwrap_err();
    assert!(
        matches!(e, object_store::Error::AlreadyExists { .. }),
        "{e}"
    );
    assert_eq!((a.calls(), b.calls()), (3, 0));
    assert!(
        store.down().is_empty(),
        "a 4xx says nothing of the endpoint"
    );
}

#[tokio::test]
async fn a_5xx_repeats_idempotent_requests_only() {
    let (store, a, b, mem) = cluster(Duration::from_secs(5));
    a.set(SERVER_ERROR);
    store.put(&Path::from("k"), "v".into()).await.unwrap();
    assert_eq!(read(mem.as_ref(), "k").await.unwrap(), "v");
    assert_eq!((a.calls(), b.calls()), (1, 1));

    // A create the first endpoint may have applied is not sent again: a
    // repeat could report AlreadyExists for a write that succeeded.
    let (store, a, b, mem) = cluster(Duration::from_secs(5));
    a.set(SERVER_ERROR);
    let create = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let e = store
        .put_opts(&Path::from("c"), "v".into(), create.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("503"), "{e}");
    assert_eq!((a.calls(), b.calls()), (1, 0));
    assert!(read(mem.as_ref(), "c").await.is_err());
    // ...but one that never left is: a is down now, so b gets it first.
    a.set(REFUSED);
    store
        .put_opts(&Path::from("c"), "v".into(), create)
        .await
        .unwrap();
    assert_eq!(b.calls(), 1);
}

#[tokio::test]
async fn every_endpoint_failing_names_the_key_and_the_endpoints() {
    let (store, a, b, _) = cluster(Duration::from_secs(5));
    a.set(REFUSED);
    b.set(SERVER_ERROR);
    let e = read(&store, "blobs/sha256/ab")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("get blobs/sha256/ab"), "{e}");
    assert!(e.contains("all 2 s3 endpoints failed"), "{e}");
    assert!(e.contains("http://a:3900, http://b:3900"), "{e}");
    assert!(e.contains("503"), "the last error is kept: {e}");
    assert_eq!(store.down().len(), 2);
    // Marked down, they are still tried rather than failing outright.
    a.set(UP);
    assert!(matches!(
        read(&store, "blobs/sha256/ab").await,
        Err(object_store::Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_multipart_upload_continues_on_another_endpoint() {
    let (store, a, b, mem) = cluster(Duration::from_secs(5));
    let mut up = store.put_multipart(&Path::from("big")).await.unwrap();
    up.put_part(vec![b'a'; 5 << 20].into()).await.unwrap();
    a.set(REFUSED);
    up.put_part(vec![b'b'; 5 << 20].into()).await.unwrap();
    up.put_part(Bytes::from_static(b"tail").into())
        .await
        .unwrap();
    up.complete().await.unwrap();
    let got = read(mem.as_ref(), "big").await.unwrap();
    assert_eq!(got.len(), (10 << 20) + 4);
    assert_eq!(&got[(5 << 20) - 1..(5 << 20) + 1], b"ab");
    assert!(got.ends_with(b"tail"));
    assert_eq!(a.calls(), 3, "create and part 1 on a, part 2 refused");
    assert_eq!(b.calls(), 3, "parts 2 and 3 and complete on b");
}

#[tokio::test]
async fn a_listing_resumes_after_its_last_key() {
    let (store, a, b, mem) = cluster(Duration::from_secs(5));
    for i in 0..5 {
        mem.put(&Path::from(format!("p/{i}")), "x".into())
            .await
            .unwrap();
    }
    mem.put(&Path::from("q/0"), "x".into()).await.unwrap();
    a.set(LIST_BREAKS);
    let keys: Vec<String> = store
        .list(Some(&Path::from("p")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys, ["p/0", "p/1", "p/2", "p/3", "p/4"]);
    assert_eq!((a.calls(), b.calls()), (1, 1));

    // A listing that fails on every endpoint ends with the error.
    a.set(REFUSED);
    b.set(REFUSED);
    let r: object_store::Result<Vec<_>> = store.list(None).try_collect().await;
    assert!(r.is_err());
    assert_eq!((a.calls(), b.calls()), (2, 2));
}

#[tokio::test]
async fn the_storage_keeps_working_when_its_first_node_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let (store, a, _b, _) = cluster(Duration::from_secs(5));
    let st = crate::storage::S3Storage::new(Arc::new(store), "mirror", dir.path()).unwrap();
    use crate::storage::Storage;
    let d = st.put_blob(Bytes::from_static(b"layer")).await.unwrap();
    a.set(REFUSED);
    assert_eq!(st.blob_size(&d).await.unwrap(), Some(5));
    let blobs = st.list_blobs().await.unwrap();
    assert_eq!(blobs.len(), 1);
    assert_eq!(blobs[0].0, d);
}

/// A one-shot HTTP server answering every request with `status`.
async fn answering(status: &'static str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = c.read(&mut buf).await;
                let body = "<Error><Code>X</Code></Error>";
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = c.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

fn s3_client(endpoint: &str) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("b")
        .with_region("garage")
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_access_key_id("k")
        .with_secret_access_key("s")
        .with_retry(object_store::RetryConfig {
            max_retries: 0,
            ..Default::default()
        })
        .build()
        .unwrap()
}

/// The classification against the errors object_store's real S3 client
/// returns, since it reads their messages.
#[tokio::test]
async fn real_s3_client_errors_are_classified() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = s3_client(&format!("http://127.0.0.1:{port}"))
        .head(&Path::from("k"))
        .await
        .unwrap_err();
    assert_eq!(classify(&e), Failure::Unsent, "{e}");

    for (status, want) in [
        ("503 Service Unavailable", Failure::MaybeSent),
        ("500 Internal Server Error", Failure::MaybeSent),
        ("400 Bad Request", Failure::Final),
        ("404 Not Found", Failure::Final),
        ("403 Forbidden", Failure::Final),
    ] {
        let addr = answering(status).await;
        let c = s3_client(&format!("http://{addr}"));
        let e = c.get(&Path::from("k")).await.unwrap_err();
        assert_eq!(classify(&e), want, "{status}: {e}");
        let e = c.put(&Path::from("k"), "v".into()).await.unwrap_err();
        assert_eq!(classify(&e), want, "{status} on put: {e}");
    }
}
