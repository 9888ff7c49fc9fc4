//! Running the server: plain TCP or TLS (rustls) on the configured address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::api::router_with;
use crate::app::App;
use crate::config::{Config, TlsConfig};
use crate::zerocopy::ZeroCopyStream;

/// A server running on a background task.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Stops accepting and waits for the server task.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        self.task.await.context("server task")?
    }

    /// Waits until the server ends (it only ends on error).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task")?
    }
}

/// Builds the app for `config` (opening its storage). Without a configured
/// `auth.token_secret`, the filesystem backend's stored one is used (made on
/// first start); replicas on `[s3]` must be given one, since a token issued
/// by one must be valid on the others.
pub fn build_app(config: Config) -> anyhow::Result<Arc<App>> {
    build_app_with(config, Arc::default())
}

/// [`build_app`], with the listing rules the pages served beside it set
/// (`mirror serve --portal`).
pub fn build_app_with(
    mut config: Config,
    listings: Arc<corral_site::listings::Listings>,
) -> anyhow::Result<Arc<App>> {
    config.validate()?;
    let store = crate::storage::open(&config)?;
    if config.auth.token_secret.is_none() {
        anyhow::ensure!(
            config.s3.is_none(),
            "auth.token_secret must be set with [s3]: the replicas sharing the bucket must sign tokens with the same key"
        );
        config.auth.token_secret = Some(crate::auth::stored_token_secret(&config.storage)?);
    }
    let mut app = App::new(config, store)?;
    app.listings = listings;
    Ok(Arc::new(app))
}

fn tls_config(tls: &TlsConfig) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .with_context(|| format!("reading {}", tls.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", tls.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .with_context(|| format!("reading {}", tls.key.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("tls protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("tls certificate and key")?;
    Ok(Arc::new(cfg))
}

/// Accepts TCP connections and hands out completed TLS handshakes, so a slow
/// handshake never blocks other clients.
struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn new(tcp: TcpListener, cfg: Arc<rustls::ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "tls handshake failed"),
                        Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Binds the configured address and serves on a background task.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let app = build_app(config)?;
    start_app(app).await
}

pub async fn start_app(app: Arc<App>) -> anyhow::Result<RunningServer> {
    start_app_with(app, axum::Router::new()).await
}

/// Serves the mirror with the caller's `extra` routes beside its own
/// ([`crate::api::router_with`]). Handlers see the client's address as
/// `ConnectInfo<SocketAddr>`, over plain TCP and over the mirror's own TLS.
pub async fn start_app_with(app: Arc<App>, extra: axum::Router) -> anyhow::Result<RunningServer> {
    let listen = app.config.listen;
    let tcp = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = tcp.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = rx.await;
    };
    let router = router_with(app.clone(), extra);
    let task = match &app.config.tls {
        Some(tls) => {
            // `tap_io` (doing nothing) gives the listener axum's generic
            // ConnectInfo: handlers see the client's address over TLS too.
            let listener = TlsListener::new(tcp, tls_config(tls)?)?.tap_io(|_| {});
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            tokio::spawn(async move {
                axum::serve(listener, service)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .context("serving")
            })
        }
        None => tokio::spawn(serve_plain(tcp, router, shutdown)),
    };
    tracing::info!(%addr, tls = app.tls, "mirror listening");
    Ok(RunningServer {
        addr,
        app,
        shutdown: Some(tx),
        task,
    })
}

/// Serves plain HTTP/1.1 connections, each through a [`ZeroCopyStream`]
/// so blob bodies go out with `sendfile` (crates/mirror/src/zerocopy.rs).
/// As `axum::serve` does: handlers see `ConnectInfo<SocketAddr>`; on
/// shutdown no new connection is accepted and open ones finish their
/// requests.
async fn serve_plain(
    tcp: TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut connections = tokio::task::JoinSet::new();
    let mut stopping = stop_rx.clone();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // as axum does: a full file table may clear; wait and retry
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            _ = stop_signal(&mut stopping) => break,
        };
        // Reap the connections that ended.
        while connections.try_join_next().is_some() {}
        let (stream, zero_copy) = ZeroCopyStream::new(stream);
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req.extensions_mut().insert(zero_copy.clone());
                tower::ServiceExt::oneshot(router.clone(), req)
            });
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            // Vectored writes of the body frames as they are (zerocopy.rs
            // depends on it): hyper's "queue" strategy, never a flattening
            // copy.
            let conn = hyper::server::conn::http1::Builder::new()
                .writev(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop_signal(&mut stop), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(tcp);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Resolves once the shutdown signal is given (or its sender is gone).
async fn stop_signal(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
