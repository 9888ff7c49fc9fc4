//! An HTTP client for one upstream registry: its configuration, its names
//! (prefix stripping), its timeouts, and its failures as [`UpstreamError`].
//! Authentication (the bearer-token dance, anonymous or with the configured
//! credentials, and basic auth when challenged) is `corral_registry`'s
//! [`Session`].

use std::time::Duration;

use anyhow::Context;
use corral_registry::{BasicAuth, Session, SessionError};
use reqwest::{Method, StatusCode};

use crate::config::UpstreamConfig;
use crate::name::RepoName;

/// Why an upstream request failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    #[error("upstream timed out")]
    Timeout,
    #[error("upstream rate-limited the mirror")]
    RateLimited,
    #[error("not found upstream")]
    NotFound,
    #[error("upstream answered {0}")]
    Status(u16),
}

impl From<SessionError> for UpstreamError {
    fn from(e: SessionError) -> UpstreamError {
        if e.is_timeout() {
            return UpstreamError::Timeout;
        }
        match e {
            SessionError::TokenStatus { status, .. } => UpstreamError::Status(status.as_u16()),
            SessionError::NoToken { .. } => UpstreamError::Status(401),
            SessionError::Send { source, .. }
            | SessionError::Resend { source, .. }
            | SessionError::TokenSend { source, .. }
            | SessionError::TokenBody { source, .. } => {
                UpstreamError::Unreachable(source.to_string())
            }
            e => UpstreamError::Unreachable(e.to_string()),
        }
    }
}

pub struct UpstreamClient {
    pub cfg: UpstreamConfig,
    /// Credentials (sent only when challenged), tokens, and a bound on
    /// each request's wait for headers.
    session: Session,
}

impl UpstreamClient {
    pub fn new(cfg: &UpstreamConfig, timeout: Duration) -> anyhow::Result<UpstreamClient> {
        let password = match (&cfg.password_file, &cfg.password) {
            (Some(p), _) => Some(
                corral_configfile::read_to_string(p, crate::config::SECRET_FILE_LIMIT)?
                    .trim_end()
                    .to_string(),
            ),
            (None, p) => p.clone(),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("corral-mirror/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the upstream http client")?;
        let creds = cfg.username.clone().zip(password);
        Ok(UpstreamClient {
            cfg: cfg.clone(),
            session: Session::new(http, creds)
                .with_basic_auth(BasicAuth::WhenChallenged)
                .with_timeout(timeout),
        })
    }

    /// The repository's name upstream.
    pub fn remote_name(&self, repo: &RepoName) -> String {
        if self.cfg.strip_prefix {
            repo.as_str()[self.cfg.prefix.len() + 1..].to_string()
        } else {
            repo.to_string()
        }
    }

    fn url(&self, repo: &RepoName, suffix: &str) -> String {
        format!(
            "{}/v2/{}/{suffix}",
            self.cfg.url.trim_end_matches('/'),
            self.remote_name(repo)
        )
    }

    /// Sends a request for `/v2/<name>/<suffix>`, authenticating as challenged.
    /// Error statuses are mapped to [`UpstreamError`].
    pub async fn request(
        &self,
        method: Method,
        repo: &RepoName,
        suffix: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = self.url(repo, suffix);
        let resp = self
            .session
            .send(method, &url, &self.remote_name(repo), |r| match accept {
                Some(a) => r.header("accept", a),
                None => r,
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::NOT_FOUND => Err(UpstreamError::NotFound),
            StatusCode::TOO_MANY_REQUESTS => Err(UpstreamError::RateLimited),
            s => Err(UpstreamError::Status(s.as_u16())),
        }
    }
}
