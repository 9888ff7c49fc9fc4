//! Single-flight, tee'd blob fetches. The first request for a missing blob
//! starts one background download into a staging file; every request for that
//! blob (the first included) streams from the staging file as it grows. The
//! last byte is held back until the digest is verified and the blob committed,
//! so a client never receives a complete wrong blob: on a mismatch nothing is
//! cached and every reader's stream ends in an error (the connection aborts).

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::watch;

use super::{upstream_failure, UpstreamClient, UpstreamError};
use crate::app::App;
use crate::error::{ErrorCode, RegistryError, Result};
use crate::name::{Digest, RepoName};

#[derive(Debug, Clone)]
pub(super) enum FetchState {
    /// Waiting for the upstream's answer.
    Connecting,
    Running {
        written: u64,
        total: Option<u64>,
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

async fn download(
    app: &App,
    client: &UpstreamClient,
    repo: &RepoName,
    d: &Digest,
    f: &Inflight,
    mut file: tokio::fs::File,
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
    let mut written = 0u64;
    loop {
        let chunk = match tokio::time::timeout(
            Duration::from_secs(app.config.limits.upstream_timeout_secs),
            stream.next(),
        )
        .await
        {
            Err(_) => return fail(UpstreamError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => return fail(UpstreamError::Unreachable(e.to_string())),
            Ok(Some(Ok(c))) => c,
        };
        // Flush each chunk: tokio's File buffers writes on a blocking thread,
        // and readers follow the file by the `written` count.
        if let Err(e) = async {
            file.write_all(&chunk).await?;
            file.flush().await
        }
        .await
        {
            tracing::error!(error = %e, "writing staged blob");
            return fail(UpstreamError::Unreachable("local write failed".into()));
        }
        written += chunk.len() as u64;
        f.state.send_replace(FetchState::Running { written, total });
    }
    if let Err(e) = file.flush().await {
        tracing::error!(error = %e, "flushing staged blob");
        return fail(UpstreamError::Unreachable("local write failed".into()));
    }
    drop(file);
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
    match app.store.commit_staged(f.path.clone(), d).await {
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
            return crate::serve::stored_blob(app, d, &axum::http::HeaderMap::new(), false).await;
        }
        FetchState::Running { total, .. } => *total,
        FetchState::Connecting => None,
    };
    let file = match file {
        Ok(f) => f,
        Err(_) => {
            return crate::serve::stored_blob(app, d, &axum::http::HeaderMap::new(), false).await
        }
    };
    if let Some(t) = total {
        app.metrics.bytes_sent.fetch_add(t, Relaxed);
    }
    let stream = futures_util::stream::unfold(
        (file, 0u64, rx, false),
        |(mut file, pos, mut rx, done)| async move {
            if done {
                return None;
            }
            loop {
                let state = rx.borrow_and_update().clone();
                let limit = match &state {
                    FetchState::Running { written, .. } => written.saturating_sub(1),
                    FetchState::Done { size } => *size,
                    FetchState::Failed(_) | FetchState::Corrupt => {
                        let e = std::io::Error::other("upstream fetch failed");
                        return Some((Err(e), (file, pos, rx, true)));
                    }
                    FetchState::Connecting => 0,
                };
                if pos < limit {
                    let want = (limit - pos).min(256 << 10) as usize;
                    let mut buf = vec![0u8; want];
                    let read = async {
                        file.seek(SeekFrom::Start(pos)).await?;
                        file.read_exact(&mut buf).await
                    }
                    .await;
                    return match read {
                        Ok(_) => Some((Ok(Bytes::from(buf)), (file, pos + want as u64, rx, false))),
                        Err(e) => Some((Err(e), (file, pos, rx, true))),
                    };
                }
                if let FetchState::Done { .. } = state {
                    return None;
                }
                if rx.changed().await.is_err() {
                    // The fetch task ended; its final state is in the channel.
                    let last = rx.borrow().clone();
                    if !matches!(last, FetchState::Done { .. }) {
                        return Some((
                            Err(std::io::Error::other("upstream fetch ended")),
                            (file, pos, rx, true),
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
