//! The state every request handler shares: storage, configuration, auth,
//! metrics, the upstreams, trust and the static files. The HTTP routes
//! ([`crate::api`] and the page modules) and the services under them
//! ([`crate::upstream`], [`crate::manifest`]) take it; it imports none of
//! them.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::storage::Storage;
use crate::trust::{SignatureCache, TrustedKeys};
use crate::upstream::Upstreams;

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
    /// What the website and the catalog list apart or leave out, set by
    /// the pages served beside the mirror (the community portal).
    pub listings: Arc<corral_site::listings::Listings>,
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
            listings: Arc::default(),
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
