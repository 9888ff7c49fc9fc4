//! The HTTP surface: the distribution-spec `/v2/` API plus `/token`,
//! `/metrics`, `/healthz`, the website (`/`, crate::site) and the catalog of every tag at `/catalog`, `/ostree/`, `/disk-images/`
//! and the FleetLock endpoints under `/v1/`.

mod blobs;
mod listing;
pub mod manifests;
pub mod route;
mod token;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

pub use crate::app::App;
use crate::auth::{Action, Identity};
use crate::error::{ErrorCode, RegistryError, Result};
use crate::http::query_param;
use route::Route;

/// Builds the router; the server and the in-process tests both use it.
pub fn router(app: Arc<App>) -> Router {
    router_with(app, Router::new())
}

/// The router with the caller's `extra` routes beside the mirror's (the
/// community portal, joined by corral-cli), traced like the others. Their
/// paths must not overlap the mirror's.
pub fn router_with(app: Arc<App>, extra: Router) -> Router {
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
        .route("/keys/{name}", get(crate::site::key))
        .route("/catalog", get(crate::catalog_page::page))
        .route("/catalog.json", get(crate::catalog_page::json))
        .route("/ostree/{*path}", get(crate::ostree::serve))
        .route("/disk-images/{*path}", get(crate::disk_images::serve))
        .route("/sigstore/{*path}", any(crate::lookaside::serve))
        .route("/v1/pre-reboot", post(crate::fleetlock::pre_reboot))
        .route("/v1/steady-state", post(crate::fleetlock::steady_state))
        .with_state(app)
        .merge(extra)
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
            blobs::get(
                app,
                &repo,
                &d,
                &parts.headers,
                head,
                parts.extensions.get::<crate::zerocopy::ZeroCopy>(),
            )
            .await
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
