//! Single-flight, tee'd blob fetches. The first request for a missing blob
//! starts one background download into a staging file; every request for that
//! blob (the first included) streams from the staging file as it grows. The
//! bytes are hashed as they arrive and the last byte is held back until the
//! digest is verified, so a client never receives a complete wrong blob: on a
//! mismatch nothing is cached and every reader's stream ends in an error (the
//! connection aborts). The verified blob is synced and committed while the
//! readers send their last bytes.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use reqwest::Method;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use super::{upstream_failure, UpstreamClient, UpstreamError};
use crate::app::App;
use crate::error::{ErrorCode, RegistryError, Result};
use crate::name::{Digest, RepoName};
use crate::storage::chunks::ChunkPool;

#[derive(Debug, Clone)]
pub(super) enum FetchState {
    /// Waiting for the upstream's answer.
    Connecting,
    Running {
        written: u64,
        total: Option<u64>,
    },
    /// Every byte is in the staging file and hashes to the digest; the
    /// blob is being made durable and committed. Readers may send all of it.
    Verified {
        size: u64,
    },
    Done {
        size: u64,
    },
    Failed(Arc<UpstreamError>),
    /// The digest did not match: nothing cached.
    Corrupt,
}

pub(super) struct Inflight {
    path: PathBuf,
    state: watch::Sender<FetchState>,
}

/// Joins the fetch of `d`, starting it if none runs.
async fn join(
    app: &Arc<App>,
    client: Arc<UpstreamClient>,
    repo: &RepoName,
    d: &Digest,
) -> Result<Arc<Inflight>> {
    if let Some(f) = app.upstreams.inflight.lock().expect("inflight lock").get(d) {
        return Ok(f.clone());
    }
    let staged = app.store.stage_blob().await?;
    let inflight = {
        let mut map = app.upstreams.inflight.lock().expect("inflight lock");
        if let Some(f) = map.get(d) {
            let f = f.clone();
            drop(map);
            let _ = std::fs::remove_file(&staged.path);
            return Ok(f);
        }
        let (tx, _) = watch::channel(FetchState::Connecting);
        let f = Arc::new(Inflight {
            path: staged.path.clone(),
            state: tx,
        });
        map.insert(d.clone(), f.clone());
        f
    };
    let (app2, repo, d2, f2) = (app.clone(), repo.clone(), d.clone(), inflight.clone());
    // Detached: the download finishes (and is cached) even if the client goes.
    tokio::spawn(async move {
        let end = download(&app2, &client, &repo, &d2, &f2, staged.file).await;
        f2.state.send_replace(end);
        app2.upstreams
            .inflight
            .lock()
            .expect("inflight lock")
            .remove(&d2);
    });
    Ok(inflight)
}

/// How much of the upstream's body is gathered before one write to the
/// staging file (and one wake-up of the readers following it).
const WRITE_BATCH: usize = 1 << 20;
/// The largest read a follower makes of the staging file at once.
const READ_CHUNK: u64 = 1 << 20;

/// The followers' read buffers, reused as the stored blobs' are (see
/// storage/chunks.rs).
static FOLLOW_CHUNKS: std::sync::LazyLock<Arc<ChunkPool>> =
    std::sync::LazyLock::new(|| ChunkPool::new(READ_CHUNK as usize));

async fn download(
    app: &App,
    client: &UpstreamClient,
    repo: &RepoName,
    d: &Digest,
    f: &Inflight,
    file: tokio::fs::File,
) -> FetchState {
    let fail = |e: UpstreamError| {
        let _ = std::fs::remove_file(&f.path);
        FetchState::Failed(Arc::new(e))
    };
    let resp = match client
        .request(Method::GET, repo, &format!("blobs/{d}"), None)
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let total = resp.content_length();
    f.state
        .send_replace(FetchState::Running { written: 0, total });
    let mut stream = resp.bytes_stream();
    // The bytes are hashed as they arrive and written in batches on a
    // blocking thread; readers follow the file by the `written` count,
    // which only counts bytes already written.
    let file = Arc::new(file.into_std().await);
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let timeout = Duration::from_secs(app.config.limits.upstream_timeout_secs);
    let mut ended = false;
    while !ended {
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batch_len = 0usize;
        // Wait for one chunk, then take whatever else is already there.
        let mut next = match tokio::time::timeout(timeout, stream.next()).await {
            Err(_) => return fail(UpstreamError::Timeout),
            Ok(n) => n,
        };
        loop {
            match next {
                None => {
                    ended = true;
                    break;
                }
                Some(Err(e)) => return fail(UpstreamError::Unreachable(e.to_string())),
                Some(Ok(c)) => {
                    hasher.update(&c);
                    batch_len += c.len();
                    batch.push(c);
                }
            }
            if batch_len >= WRITE_BATCH {
                break;
            }
            match stream.next().now_or_never() {
                Some(n) => next = n,
                None => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let out = file.clone();
        let wrote = tokio::task::spawn_blocking(move || {
            batch.iter().try_for_each(|c| (&*out).write_all(c))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        if let Err(e) = wrote {
            tracing::error!(error = %e, "writing staged blob");
            return fail(UpstreamError::Unreachable("local write failed".into()));
        }
        written += batch_len as u64;
        f.state.send_replace(FetchState::Running { written, total });
    }
    drop(file);
    let hashed = (hex::encode(hasher.finalize()), written);
    // Verified in memory, as the bytes went by: the followers may send
    // their last bytes now, while the blob is synced and committed (a
    // commit that fails after this only means it is not cached).
    if hashed.0 == d.hex() {
        f.state.send_replace(FetchState::Verified { size: written });
    }
    // Committing onto an existing blob refreshes it, and the link must be
    // seen by GC: both under the guard.
    let _guard = match app.store.lock_shared().await {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(repo = %repo, digest = %d, error = %e, "taking the store lock");
            let _ = std::fs::remove_file(&f.path);
            return FetchState::Failed(Arc::new(UpstreamError::Unreachable(
                "local store unavailable".into(),
            )));
        }
    };
    match app
        .store
        .commit_staged(f.path.clone(), d, Some(hashed))
        .await
    {
        Ok(()) => {
            if let Err(e) = app.store.link_blob(repo, d).await {
                tracing::error!(repo = %repo, digest = %d, error = %e, "linking cached blob");
            }
            tracing::info!(repo = %repo, digest = %d, bytes = written, "blob cached from upstream");
            FetchState::Done { size: written }
        }
        Err(e) => {
            app.metrics.upstream_errors.fetch_add(1, Relaxed);
            tracing::error!(repo = %repo, digest = %d, error = %e, "upstream blob rejected; not cached");
            let _ = std::fs::remove_file(&f.path);
            FetchState::Corrupt
        }
    }
}

/// Serves a blob that is being (or about to be) fetched from upstream.
pub(super) async fn serve(
    app: &Arc<App>,
    client: Arc<UpstreamClient>,
    repo: &RepoName,
    d: &Digest,
) -> Result<Response> {
    let inflight = join(app, client, repo, d).await?;
    let mut rx = inflight.state.subscribe();
    // Open the staging file before it can be renamed away.
    let file = tokio::fs::File::open(&inflight.path).await;
    let file = match file {
        Ok(f) => Ok(Arc::new(f.into_std().await)),
        Err(e) => Err(e),
    };
    // Wait for the upstream's answer.
    let state = loop {
        let s = rx.borrow_and_update().clone();
        if !matches!(s, FetchState::Connecting) {
            break s;
        }
        if rx.changed().await.is_err() {
            break rx.borrow().clone();
        }
    };
    let total = match &state {
        FetchState::Failed(e) => {
            return Err(match e.as_ref() {
                UpstreamError::NotFound => {
                    RegistryError::new(ErrorCode::BlobUnknown, "blob unknown upstream")
                }
                e => upstream_failure(app, e),
            });
        }
        FetchState::Corrupt => {
            return Err(RegistryError::new(
                ErrorCode::BadGateway,
                "upstream sent a blob not matching its digest",
            ));
        }
        FetchState::Done { .. } => {
            // Finished before we could follow it: serve the committed blob.
            return crate::serve::stored_blob(app, d, &axum::http::HeaderMap::new(), false, None)
                .await;
        }
        FetchState::Running { total, .. } => *total,
        FetchState::Verified { size } => Some(*size),
        FetchState::Connecting => None,
    };
    let file = match file {
        Ok(f) => f,
        Err(_) => {
            return crate::serve::stored_blob(app, d, &axum::http::HeaderMap::new(), false, None)
                .await
        }
    };
    if let Some(t) = total {
        app.metrics.bytes_sent.fetch_add(t, Relaxed);
    }
    // Once the fetch has verified the bytes, a reader sends all of them
    // even if committing them to the store fails afterwards.
    let verified = match &state {
        FetchState::Verified { size } => Some(*size),
        _ => None,
    };
    let stream = futures_util::stream::unfold(
        (file, 0u64, rx, verified, false),
        |(file, pos, mut rx, mut verified, done)| async move {
            if done {
                return None;
            }
            loop {
                let state = rx.borrow_and_update().clone();
                if let FetchState::Verified { size } | FetchState::Done { size } = state {
                    verified = Some(size);
                }
                let limit = match (&state, verified) {
                    (_, Some(size)) => size,
                    (FetchState::Running { written, .. }, None) => written.saturating_sub(1),
                    (FetchState::Connecting, None) => 0,
                    (_, None) => {
                        let e = std::io::Error::other("upstream fetch failed");
                        return Some((Err(e), (file, pos, rx, verified, true)));
                    }
                };
                if pos < limit {
                    // A positioned read straight into the buffer the body
                    // sends, on a blocking thread.
                    let want = (limit - pos).min(READ_CHUNK) as usize;
                    let from = file.clone();
                    let read = tokio::task::spawn_blocking(move || {
                        FOLLOW_CHUNKS.fill(want, |buf| from.read_exact_at(buf, pos))
                    })
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|r| r);
                    let next = pos + want as u64;
                    return match read {
                        Ok(chunk) => Some((Ok(chunk), (file, next, rx, verified, false))),
                        Err(e) => Some((Err(e), (file, pos, rx, verified, true))),
                    };
                }
                if verified.is_some() {
                    return None;
                }
                if rx.changed().await.is_err() {
                    // The fetch task ended; its final state is in the channel.
                    let last = rx.borrow().clone();
                    if !matches!(last, FetchState::Verified { .. } | FetchState::Done { .. }) {
                        return Some((
                            Err(std::io::Error::other("upstream fetch ended")),
                            (file, pos, rx, verified, true),
                        ));
                    }
                }
            }
        },
    );
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/octet-stream")
        .header("docker-content-digest", d.to_string());
    if let Some(t) = total {
        b = b.header("content-length", t);
    }
    b.body(Body::from_stream(stream))
        .map_err(RegistryError::internal)
}
