//! The HTTP surface: the distribution-spec `/v2/` API plus `/token`,
//! `/metrics`, `/healthz`, the website (`/`, crate::site) and the catalog of every tag at `/catalog`, `/ostree/`, `/disk-images/`
//! and the FleetLock endpoints under `/v1/`.

mod blobs;
pub(crate) use blobs::parse_range;
mod listing;
pub mod manifests;
pub mod route;
mod token;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::auth::{Action, Authenticator, Identity};
use crate::config::Config;
use crate::error::{ErrorCode, RegistryError, Result};
use crate::metrics::Metrics;
use crate::storage::Storage;
use crate::trust::{SignatureCache, TrustedKeys};
use crate::upstream::Upstreams;
use route::Route;

/// Everything a request handler needs.
pub struct App {
    pub store: Arc<dyn Storage>,
    pub config: Config,
    pub auth: Authenticator,
    pub metrics: Metrics,
    pub upstreams: Upstreams,
    /// Whether the listener speaks TLS (for URLs in challenges).
    pub tls: bool,
    /// Keys the catalog page checks signatures against.
    pub trust: Arc<TrustedKeys>,
    pub signature_cache: SignatureCache,
    /// Checksum and signature checks of the disk images.
    pub disk_images: crate::disk_images::DiskImageCache,
    /// Where `/ostree/` and `/disk-images/` come from.
    pub files: crate::bucket_files::StaticFiles,
    /// How long `/readyz` waits for the storage probe.
    pub readiness_timeout: Duration,
    /// The FleetLock server, when `[fleetlock]` is configured.
    pub fleetlock: Option<crate::fleetlock::FleetLock>,
}

impl App {
    pub fn new(config: Config, store: Arc<dyn Storage>) -> anyhow::Result<App> {
        config.check_paths()?;
        let auth = Authenticator::from_config(&config.auth)?;
        let upstreams = Upstreams::new(&config)?;
        let tls = config.tls.is_some();
        let trust = Arc::new(TrustedKeys::load(&config.trust)?);
        let files = crate::bucket_files::StaticFiles::from_config(&config)?;
        let fleetlock = config
            .fleetlock
            .as_ref()
            .map(|f| crate::fleetlock::FleetLock::open(f, &config.storage))
            .transpose()?;
        Ok(App {
            store,
            config,
            auth,
            metrics: Metrics::default(),
            upstreams,
            tls,
            trust,
            signature_cache: SignatureCache::default(),
            disk_images: Default::default(),
            files,
            readiness_timeout: Duration::from_secs(5),
            fleetlock,
        })
    }

    /// `scheme://host` as the client addressed us.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| self.config.listen.to_string());
        format!("{}://{host}", if self.tls { "https" } else { "http" })
    }
}

/// Builds the router; the server and the in-process tests both use it.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
        .route("/token", get(token::token))
        .route("/metrics", get(metrics))
        // Liveness: the process answers HTTP. Restarting it would not mend
        // its storage, so this stays cheap and does not look there.
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/", get(crate::site::page))
        .route("/repositories/{*name}", get(crate::site::page))
        .route("/atomic-host", get(crate::site::page))
        .route("/atomic-host/{*name}", get(crate::site::page))
        .route("/downloads", get(crate::site::page))
        .route("/site/{*file}", get(crate::site::page))
        .route("/catalog", get(crate::catalog_page::page))
        .route("/catalog.json", get(crate::catalog_page::json))
        .route("/ostree/{*path}", get(crate::ostree::serve))
        .route("/disk-images/{*path}", get(crate::disk_images::serve))
        .route("/sigstore/{*path}", any(crate::lookaside::serve))
        .route("/v1/pre-reboot", post(crate::fleetlock::pre_reboot))
        .route("/v1/steady-state", post(crate::fleetlock::steady_state))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), status = tracing::field::Empty, bytes = tracing::field::Empty)
                })
                .on_response(|resp: &Response, latency: Duration, span: &tracing::Span| {
                    let bytes = resp
                        .headers()
                        .get("content-length")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                    span.record("status", resp.status().as_u16());
                    span.record("bytes", bytes);
                    tracing::info!(status = resp.status().as_u16(), bytes, duration_ms = latency.as_millis() as u64, "response");
                }),
        )
        .with_state(app)
}

/// Readiness, for load balancers: 200 only when a probe object can be
/// written to and read back from the storage within the timeout, else 503
/// naming why (the cause is logged too).
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let timeout = app.readiness_timeout;
    let reason = match tokio::time::timeout(timeout, app.store.probe()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => format!("storage probe failed: {}", crate::error::error_chain(&e)),
        Err(_) => format!(
            "storage probe did not finish within {}s",
            timeout.as_secs_f32()
        ),
    };
    tracing::warn!(reason, "not ready");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [("content-type", "text/plain")],
        format!("not ready: {reason}\n"),
    )
        .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// The action a request needs on its repository.
fn action_for(method: &Method, route: &Route) -> Action {
    match (method, route) {
        (&Method::GET | &Method::HEAD, Route::Upload(..)) => Action::Push,
        (&Method::GET | &Method::HEAD, _) => Action::Pull,
        (&Method::DELETE, Route::Upload(..)) => Action::Push,
        (&Method::DELETE, _) => Action::Delete,
        _ => Action::Push,
    }
}

async fn dispatch(State(app): State<Arc<App>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let rest = path
        .strip_prefix("/v2")
        .unwrap_or("")
        .trim_start_matches('/');
    let route = match route::parse(rest) {
        Ok(Some(r)) => r,
        Ok(None) => {
            app.metrics.record("other", 404);
            return RegistryError::new(ErrorCode::NameUnknown, "no such endpoint").into_response();
        }
        Err(e) => {
            app.metrics.record("invalid", e.status_code().as_u16());
            return e.into_response();
        }
    };
    let label = route.label();
    let resp = match handle(&app, route, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    app.metrics.record(label, resp.status().as_u16());
    resp
}

async fn handle(app: &Arc<App>, route: Route, req: Request) -> Result<Response> {
    let who = app.auth.identify_registry(req.headers());
    let base = app.base_url(req.headers());
    let method = req.method().clone();
    match &route {
        Route::Ping => {
            let must_auth = matches!(who, Identity::Invalid)
                || (matches!(who, Identity::Anonymous)
                    && (app.auth.has_users() || !app.auth.anonymous_pull()));
            if must_auth {
                return Err(app.auth.challenge(&base, &[]));
            }
            return Ok(([("content-type", "application/json")], "{}").into_response());
        }
        Route::Catalog => {
            let ok = match &who {
                Identity::Invalid => false,
                Identity::Anonymous => app.auth.anonymous_pull(),
                _ => true,
            };
            if !ok {
                return Err(app.auth.challenge(&base, &[]));
            }
        }
        _ => {
            let repo = route.repo().expect("repository routes have a name");
            let action = action_for(&method, &route);
            if !app.auth.allowed(&who, repo.as_str(), action) {
                let actions: &[Action] = match action {
                    Action::Pull => &[Action::Pull],
                    Action::Push => &[Action::Pull, Action::Push],
                    Action::Delete => &[Action::Delete],
                };
                if matches!(who, Identity::User(_)) {
                    return Err(RegistryError::new(ErrorCode::Denied, "access denied"));
                }
                let mut scopes = vec![(repo.as_str(), actions)];
                // A mount also needs pull on its source: name it, or a token
                // client never asks for it and silently uploads instead.
                let from = mount_source(&method, &route, req.uri().query());
                if let Some(from) = &from {
                    if from != repo {
                        scopes.push((from.as_str(), &[Action::Pull]));
                    }
                }
                return Err(app.auth.challenge(&base, &scopes));
            }
            if action != Action::Pull && app.config.upstream_for(repo).is_some() {
                return Err(RegistryError::new(
                    ErrorCode::Denied,
                    "repository is mirrored from an upstream and read-only",
                ));
            }
        }
    }
    let (parts, body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("").to_string();
    let head = method == Method::HEAD;
    match (method, route) {
        (Method::GET, Route::Catalog) => listing::catalog(app, &query).await,
        (Method::GET, Route::Tags(repo)) => listing::tags(app, &repo, &query).await,
        (Method::GET, Route::Referrers(repo, d)) => {
            listing::referrers(app, &repo, &d, &query).await
        }
        (Method::GET | Method::HEAD, Route::Manifest(repo, r)) => {
            manifests::get(app, &repo, &r, head).await
        }
        (Method::PUT, Route::Manifest(repo, r)) => {
            manifests::put(app, &repo, &r, &parts.headers, body).await
        }
        (Method::DELETE, Route::Manifest(repo, r)) => manifests::delete(app, &repo, &r).await,
        (Method::GET | Method::HEAD | Method::DELETE, Route::BadReference(_, r)) => {
            Err(manifests::unknown_reference(&r))
        }
        (Method::PUT, Route::BadReference(_, r)) => Err(manifests::invalid_reference(&r)),
        (Method::GET | Method::HEAD, Route::Blob(repo, d)) => {
            blobs::get(app, &repo, &d, &parts.headers, head).await
        }
        (Method::DELETE, Route::Blob(repo, d)) => blobs::delete(app, &repo, &d).await,
        (Method::POST, Route::Upload(repo, None)) => {
            uploads::start(app, &repo, &query, &who, body).await
        }
        (Method::PATCH, Route::Upload(repo, Some(id))) => {
            uploads::patch(app, &repo, &id, &parts.headers, body).await
        }
        (Method::PUT, Route::Upload(repo, Some(id))) => {
            uploads::finish(app, &repo, &id, &query, &parts.headers, body).await
        }
        (Method::GET, Route::Upload(repo, Some(id))) => uploads::status(app, &repo, &id).await,
        (Method::DELETE, Route::Upload(repo, Some(id))) => uploads::cancel(app, &repo, &id).await,
        _ => Err(RegistryError::new(
            ErrorCode::Unsupported,
            "method not supported here",
        )),
    }
}

/// The `from` repository of a `POST .../blobs/uploads/?mount=D&from=NAME`
/// (only when it is a valid name: it goes into a header).
fn mount_source(
    method: &Method,
    route: &Route,
    query: Option<&str>,
) -> Option<crate::name::RepoName> {
    let query = query?;
    if *method != Method::POST || !matches!(route, Route::Upload(_, None)) {
        return None;
    }
    query_param(query, "mount")?;
    crate::name::RepoName::parse(&query_param(query, "from")?)
}

/// A query parameter's decoded value.
pub(crate) fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| percent_decode(v))
    })
}

pub(crate) fn query_params(query: &str, key: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| percent_decode(v))
        })
        .collect()
}

pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hexval = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
                if let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2])) {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for c in s.bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Reads a request body up to `limit` bytes; larger bodies get 413.
pub(crate) async fn read_limited(body: Body, limit: u64, what: &str) -> Result<bytes::Bytes> {
    axum::body::to_bytes(body, limit as usize)
        .await
        .map_err(|_| {
            RegistryError::new(
                ErrorCode::SizeInvalid,
                format!("{what} is larger than {limit} bytes"),
            )
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        })
}

/// Serves a committed blob whole (used by the mirror once a fetch is done).
pub(crate) async fn serve_committed_blob(app: &App, d: &crate::name::Digest) -> Result<Response> {
    blobs::serve_local(app, d, &HeaderMap::new(), false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent() {
        assert_eq!(percent_decode("a%2Fb%3a"), "a/b:");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(
            percent_encode("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
        assert_eq!(
            query_param("n=2&last=a%2Fb", "last").as_deref(),
            Some("a/b")
        );
        assert_eq!(query_params("scope=a&scope=b", "scope"), vec!["a", "b"]);
    }
}
