//! An HTTP client for one upstream registry, doing the bearer-token challenge
//! dance (anonymous or with configured credentials) and basic auth.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use corral_registry::{Challenge, Token};
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

pub struct UpstreamClient {
    pub cfg: UpstreamConfig,
    password: Option<String>,
    http: reqwest::Client,
    timeout: Duration,
    /// Bearer tokens by scope, with their expiry.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
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
        Ok(UpstreamClient {
            cfg: cfg.clone(),
            password,
            http,
            timeout,
            tokens: Mutex::new(HashMap::new()),
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

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, UpstreamError> {
        match tokio::time::timeout(self.timeout, req.send()).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Err(e)) if e.is_timeout() => Err(UpstreamError::Timeout),
            Ok(Err(e)) => Err(UpstreamError::Unreachable(e.to_string())),
            Ok(Ok(r)) => Ok(r),
        }
    }

    async fn fetch_token(
        &self,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<String, UpstreamError> {
        let mut req = challenge
            .token_request(&self.http, scope)
            .ok_or(UpstreamError::Status(401))?;
        if let (Some(u), Some(p)) = (&self.cfg.username, &self.password) {
            req = req.basic_auth(u, Some(p));
        }
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(UpstreamError::Status(resp.status().as_u16()));
        }
        let v: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let Token { token, expires_in } = Token::from_json(&v).ok_or(UpstreamError::Status(401))?;
        let ttl = expires_in.unwrap_or(60).max(10);
        self.tokens.lock().expect("token cache lock").insert(
            scope.to_string(),
            (token.clone(), Instant::now() + Duration::from_secs(ttl - 5)),
        );
        Ok(token)
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
        let scope = format!("repository:{}:pull", self.remote_name(repo));
        let build = |auth: Option<&str>, basic: bool| {
            let mut r = self.http.request(method.clone(), &url);
            if let Some(a) = accept {
                r = r.header("accept", a);
            }
            if let Some(t) = auth {
                r = r.bearer_auth(t);
            } else if basic {
                if let (Some(u), Some(p)) = (&self.cfg.username, &self.password) {
                    r = r.basic_auth(u, Some(p));
                }
            }
            r
        };
        let cached = {
            let tokens = self.tokens.lock().expect("token cache lock");
            tokens
                .get(&scope)
                .filter(|(_, exp)| *exp > Instant::now())
                .map(|(t, _)| t.clone())
        };
        let mut resp = self.send(build(cached.as_deref(), false)).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .and_then(Challenge::parse);
            resp = match challenge {
                Some(c) if c.scheme == "bearer" => {
                    let scope = c.scope().map_or(scope, str::to_string);
                    let token = self.fetch_token(&c, &scope).await?;
                    self.send(build(Some(&token), false)).await?
                }
                Some(c) if c.scheme == "basic" => self.send(build(None, true)).await?,
                _ => resp,
            };
        }
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::NOT_FOUND => Err(UpstreamError::NotFound),
            StatusCode::TOO_MANY_REQUESTS => Err(UpstreamError::RateLimited),
            s => Err(UpstreamError::Status(s.as_u16())),
        }
    }
}
