//! The pull-through mirror: repositories under a configured prefix are
//! fetched lazily from their upstream. Manifests are fetched per digest as
//! asked (never a whole index's platforms); tags are revalidated after the
//! upstream's TTL and served stale when the upstream fails; blobs are
//! streamed to the client while written to storage (see [`fetch`]).
//! Concurrent misses of one manifest wait for the first one's fetch
//! ([`ManifestFlight`]) instead of each asking the upstream.

mod client;
mod fetch;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use reqwest::Method;

pub use client::{UpstreamClient, UpstreamError};

use crate::app::App;
use crate::config::{Config, UpstreamConfig};
use crate::error::{ErrorCode, RegistryError, Result};
use crate::manifest::{media_type_of, store as store_manifest};
use crate::name::{Digest, Reference, RepoName};
use crate::serve::stored_manifest;
use crate::storage::StoredManifest;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

type FlightKey = (RepoName, String);
type Flights = Mutex<HashMap<FlightKey, Arc<tokio::sync::Mutex<()>>>>;

/// All configured upstreams plus the blob and manifest fetches in flight.
pub struct Upstreams {
    clients: HashMap<String, Arc<UpstreamClient>>,
    inflight: Mutex<HashMap<Digest, Arc<fetch::Inflight>>>,
    manifests: Flights,
}

/// The right to fetch one manifest (repository, reference) from upstream;
/// others asking for it meanwhile wait, then find it cached.
pub(crate) struct ManifestFlight<'a> {
    flights: &'a Flights,
    key: FlightKey,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for ManifestFlight<'_> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock().expect("manifest flights lock");
        // The map's and this guard's references only: nobody waits.
        if flights
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) <= 2)
        {
            flights.remove(&self.key);
        }
    }
}

impl Upstreams {
    pub fn new(config: &Config) -> anyhow::Result<Upstreams> {
        let timeout = Duration::from_secs(config.limits.upstream_timeout_secs);
        let mut clients = HashMap::new();
        for u in &config.upstreams {
            clients.insert(u.prefix.clone(), Arc::new(UpstreamClient::new(u, timeout)?));
        }
        Ok(Upstreams {
            clients,
            inflight: Mutex::new(HashMap::new()),
            manifests: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for the turn to fetch `repo`'s manifest `r` from upstream.
    pub(crate) async fn manifest_flight(
        &self,
        repo: &RepoName,
        r: &Reference,
    ) -> ManifestFlight<'_> {
        let key = (repo.clone(), r.to_string());
        let turn = self
            .manifests
            .lock()
            .expect("manifest flights lock")
            .entry(key.clone())
            .or_default()
            .clone();
        ManifestFlight {
            flights: &self.manifests,
            key,
            _turn: turn.lock_owned().await,
        }
    }

    pub(crate) fn client(&self, up: &UpstreamConfig) -> Result<Arc<UpstreamClient>> {
        self.clients
            .get(&up.prefix)
            .cloned()
            .ok_or_else(|| RegistryError::internal(format!("no client for upstream {}", up.prefix)))
    }
}

/// The error a client sees when the upstream failed and nothing is cached.
fn upstream_failure(app: &App, e: &UpstreamError) -> RegistryError {
    app.metrics.upstream_errors.fetch_add(1, Relaxed);
    tracing::warn!(error = %e, "upstream request failed");
    match e {
        UpstreamError::RateLimited => {
            RegistryError::new(ErrorCode::TooManyRequests, "upstream is rate-limiting")
        }
        UpstreamError::Timeout | UpstreamError::Unreachable(_) => {
            RegistryError::new(ErrorCode::Unavailable, "upstream registry unavailable")
        }
        _ => RegistryError::new(ErrorCode::BadGateway, "upstream registry error"),
    }
}

async fn fetch_manifest(
    app: &App,
    client: &UpstreamClient,
    repo: &RepoName,
    r: &Reference,
) -> Result<Result<(Digest, StoredManifest), UpstreamError>> {
    let resp = match client
        .request(Method::GET, repo, &format!("manifests/{r}"), Some(ACCEPT))
        .await
    {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|c| c.to_str().ok())
        .map(str::to_string);
    let limit = app.config.limits.max_manifest_bytes;
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(RegistryError::new(
            ErrorCode::BadGateway,
            "upstream manifest too large",
        ));
    }
    let body = match resp.bytes().await {
        Ok(b) if b.len() as u64 <= limit => b,
        Ok(_) => {
            return Err(RegistryError::new(
                ErrorCode::BadGateway,
                "upstream manifest too large",
            ))
        }
        Err(e) => return Ok(Err(UpstreamError::Unreachable(e.to_string()))),
    };
    let d = Digest::of_bytes(&body);
    if let Reference::Digest(want) = r {
        if *want != d {
            app.metrics.upstream_errors.fetch_add(1, Relaxed);
            tracing::error!(expected = %want, actual = %d, "upstream manifest does not match its digest; not cached");
            return Err(RegistryError::new(
                ErrorCode::BadGateway,
                "upstream sent a manifest not matching its digest",
            ));
        }
    }
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| RegistryError::new(ErrorCode::BadGateway, "upstream manifest is not JSON"))?;
    let media_type = media_type_of(content_type.as_deref(), &v);
    let tag = match r {
        Reference::Tag(t) => Some(t.as_str()),
        Reference::Digest(_) => None,
    };
    let guard = app.store.lock_shared().await?;
    let (d, _) = store_manifest(app, repo, tag, &media_type, body.clone(), &v).await?;
    drop(guard);
    tracing::info!(repo = %repo, digest = %d, reference = %r, "manifest cached from upstream");
    Ok(Ok((d, StoredManifest { media_type, body })))
}

pub(crate) async fn serve_manifest(
    app: &Arc<App>,
    up: &UpstreamConfig,
    repo: &RepoName,
    r: &Reference,
    head: bool,
) -> Result<Response> {
    let client = app.upstreams.client(up)?;
    let is_fresh = |resolved: &Option<crate::storage::ResolvedManifest>| match resolved {
        None => false,
        // Content addressed: a cached digest never goes stale.
        Some(m) => match m.tagged_at {
            None => true,
            Some(at) => {
                SystemTime::now().duration_since(at).unwrap_or_default()
                    < Duration::from_secs(up.ttl_secs)
            }
        },
    };
    let mut resolved = app.store.resolve_manifest(repo, r).await?;
    let _flight = if is_fresh(&resolved) {
        None
    } else {
        // One upstream request per manifest: the others wait here, then
        // find what the first one cached.
        let flight = app.upstreams.manifest_flight(repo, r).await;
        resolved = app.store.resolve_manifest(repo, r).await?;
        Some(flight)
    };
    let fresh = is_fresh(&resolved);
    let local = resolved.map(|m| (m.digest, m.manifest));
    if fresh {
        let (d, m) = local.expect("fresh implies cached");
        app.metrics.cache_hits.fetch_add(1, Relaxed);
        return stored_manifest(&m, &d, head);
    }
    // A stale tag is revalidated with HEAD first: unchanged content costs
    // the upstream no GET (Docker Hub counts GETs against its rate limit).
    let mut head_error = None;
    if let (Reference::Tag(t), Some((ld, lm))) = (r, &local) {
        match client
            .request(Method::HEAD, repo, &format!("manifests/{r}"), Some(ACCEPT))
            .await
        {
            Ok(resp) => {
                let upstream_digest = resp
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<Digest>().ok());
                if upstream_digest.as_ref() == Some(ld) {
                    app.store.touch_tag(repo, t).await?;
                    app.metrics.cache_hits.fetch_add(1, Relaxed);
                    tracing::debug!(repo = %repo, tag = %t, "tag revalidated");
                    return stored_manifest(lm, ld, head);
                }
            }
            Err(UpstreamError::NotFound) => {
                return Err(RegistryError::new(
                    ErrorCode::ManifestUnknown,
                    "manifest unknown upstream",
                ));
            }
            Err(e) => head_error = Some(e),
        }
    }
    app.metrics.cache_misses.fetch_add(1, Relaxed);
    let fetched = match head_error {
        Some(e) => Err(e),
        None => fetch_manifest(app, &client, repo, r).await?,
    };
    match fetched {
        Ok((d, m)) => {
            if !head {
                app.metrics
                    .bytes_sent
                    .fetch_add(m.body.len() as u64, Relaxed);
            }
            stored_manifest(&m, &d, head)
        }
        Err(UpstreamError::NotFound) => Err(RegistryError::new(
            ErrorCode::ManifestUnknown,
            "manifest unknown upstream",
        )),
        Err(e) => match local {
            // stale-if-error
            Some((d, m)) => {
                app.metrics.upstream_errors.fetch_add(1, Relaxed);
                tracing::warn!(repo = %repo, reference = %r, error = %e, "upstream failed; serving cached manifest");
                stored_manifest(&m, &d, head)
            }
            None => Err(upstream_failure(app, &e)),
        },
    }
}

pub(crate) async fn serve_blob(
    app: &Arc<App>,
    repo: &RepoName,
    d: &Digest,
    head: bool,
) -> Result<Response> {
    let up = app
        .config
        .upstream_for(repo)
        .expect("called for mirrored repositories")
        .clone();
    let client = app.upstreams.client(&up)?;
    app.metrics.cache_misses.fetch_add(1, Relaxed);
    if head {
        return match client
            .request(Method::HEAD, repo, &format!("blobs/{d}"), None)
            .await
        {
            Ok(resp) => {
                let mut b = Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/octet-stream")
                    .header("docker-content-digest", d.to_string());
                if let Some(l) = resp.content_length() {
                    b = b.header("content-length", l);
                }
                b.body(Body::empty()).map_err(RegistryError::internal)
            }
            Err(UpstreamError::NotFound) => Err(RegistryError::new(
                ErrorCode::BlobUnknown,
                "blob unknown upstream",
            )),
            Err(e) => Err(upstream_failure(app, &e)),
        };
    }
    fetch::serve(app, client, repo, d).await
}

/// The upstream's tag list for a mirrored repository (following `Link`
/// pagination), or `None` when the upstream cannot answer.
pub(crate) async fn remote_tags(
    app: &App,
    up: &UpstreamConfig,
    repo: &RepoName,
) -> Option<Vec<String>> {
    let client = app.upstreams.client(up).ok()?;
    let mut tags = Vec::new();
    let mut suffix = "tags/list".to_string();
    for _ in 0..50 {
        let resp = match client.request(Method::GET, repo, &suffix, None).await {
            Ok(r) => r,
            Err(e) => {
                app.metrics.upstream_errors.fetch_add(1, Relaxed);
                tracing::warn!(repo = %repo, error = %e, "upstream tag list failed; listing cached tags");
                return None;
            }
        };
        // `<.../v2/<name>/tags/list?n=..&last=..>; rel="next"`
        let next = resp
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .filter(|l| l.contains("rel=\"next\""))
            .and_then(|l| l.split('?').nth(1))
            .and_then(|q| q.split('>').next())
            .map(|q| format!("tags/list?{q}"));
        let v: serde_json::Value = resp.json().await.ok()?;
        tags.extend(
            v.get("tags")
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str())
                .filter(|t| crate::name::valid_tag(t))
                .map(str::to_string),
        );
        match next {
            Some(n) => suffix = n,
            None => break,
        }
    }
    tags.sort();
    tags.dedup();
    Some(tags)
}
