//! The request layer every registry call goes through: credentials, bearer
//! tokens cached per registry and scope, and the `401` dance.
//!
//! A request goes out with a cached token for its scope if there is one,
//! else (by default) with the basic credentials. A `401` with a `Bearer`
//! challenge (the docker token protocol: Docker Hub, quay.io, ghcr.io, corral
//! mirror with `token_only`) buys a token from the challenge's realm and the
//! request is sent once more with it; a `401` with a `Basic` challenge is
//! sent once more with the basic credentials if it went without them. A
//! second `401` is the caller's answer: nothing loops.
//!
//! Nothing is retried on connection errors or `5xx`: neither of corral's
//! clients did before this layer existed, and a pull-through cache must say
//! "upstream unavailable" quickly rather than wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::auth::{Challenge, Token};

/// A username and password.
pub type Credentials = (String, String);

/// When basic credentials go with a request that has no token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BasicAuth {
    /// On every such request: one round trip, and a pushed body is sent
    /// once (corral mirror and distribution accept unasked credentials).
    #[default]
    Always,
    /// Only after the registry answered `401` with a `Basic` challenge.
    WhenChallenged,
}

/// Why a request got no usable answer from the registry or its token
/// service. A registry's own error statuses are not errors here: the
/// response is returned for the caller to judge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("parsing URL {url}: {reason}")]
    Url { url: String, reason: String },
    /// No answer within the session's timeout; `what` is `METHOD URL` or
    /// `fetching a token from REALM`.
    #[error("{what}: no answer within {after:?}")]
    Timeout { what: String, after: Duration },
    /// No HTTP answer (connection refused, TLS, reset…) to the first send.
    #[error("{what}")]
    Send {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// No HTTP answer to the second send, after the registry had answered
    /// the first with a challenge.
    #[error("{what}")]
    Resend {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// No HTTP answer from the token service.
    #[error("fetching a token from {realm}")]
    TokenSend {
        realm: String,
        #[source]
        source: reqwest::Error,
    },
    /// The token service refused; `body` is what it said.
    #[error("{realm}: {status}: {body}")]
    TokenStatus {
        realm: String,
        status: StatusCode,
        body: String,
    },
    #[error("reading the token from {realm}")]
    TokenBody {
        realm: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{realm} answered without a token")]
    NoToken { realm: String },
}

impl SessionError {
    /// Whether the request timed out (the session's timeout or reqwest's).
    pub fn is_timeout(&self) -> bool {
        match self {
            SessionError::Timeout { .. } => true,
            SessionError::Send { source, .. }
            | SessionError::Resend { source, .. }
            | SessionError::TokenSend { source, .. }
            | SessionError::TokenBody { source, .. } => source.is_timeout(),
            _ => false,
        }
    }
}

impl SessionError {
    fn into_resend(self) -> SessionError {
        match self {
            SessionError::Send { what, source } => SessionError::Resend { what, source },
            e => e,
        }
    }
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    expires: Instant,
}

/// Credentials, a token cache and the challenge handling, over one
/// `reqwest::Client`. Clones share the token cache.
///
/// ```no_run
/// # async fn f() -> Result<(), corral_registry::SessionError> {
/// use corral_registry::Session;
/// let session = Session::new(reqwest::Client::new(), Some(("u".into(), "pw".into())));
/// let resp = session
///     .send(reqwest::Method::GET, "https://registry.example/v2/a/b/tags/list", "a/b", |r| r)
///     .await?;
/// println!("{}", resp.status());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Session {
    http: reqwest::Client,
    creds: Option<Credentials>,
    basic: BasicAuth,
    timeout: Option<Duration>,
    /// Bearer tokens by `origin scope`.
    tokens: Arc<Mutex<HashMap<String, CachedToken>>>,
}

/// The scope a request on `repo` needs: reads pull, everything else pushes.
fn scope_for(method: &Method, repo: &str) -> String {
    if matches!(*method, Method::GET | Method::HEAD) {
        format!("repository:{repo}:pull")
    } else {
        format!("repository:{repo}:pull,push")
    }
}

fn origin(url: &str) -> Result<String, SessionError> {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .map_err(|e| SessionError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })
}

/// How long a token is used: what the service says (the token protocol's
/// default is 60 seconds), at least 10, less 5 for the clock between us.
fn token_lifetime(expires_in: Option<u64>) -> Duration {
    Duration::from_secs(expires_in.unwrap_or(60).max(10) - 5)
}

impl Session {
    pub fn new(http: reqwest::Client, creds: Option<Credentials>) -> Session {
        Session {
            http,
            creds,
            ..Session::default()
        }
    }

    /// When basic credentials go out (default [`BasicAuth::Always`]).
    pub fn with_basic_auth(mut self, basic: BasicAuth) -> Session {
        self.basic = basic;
        self
    }

    /// A bound on each request's wait for the response headers (the body
    /// is the caller's to time); none by default.
    pub fn with_timeout(mut self, timeout: Duration) -> Session {
        self.timeout = Some(timeout);
        self
    }

    pub fn credentials(&self) -> Option<&Credentials> {
        self.creds.as_ref()
    }

    fn token(&self, key: &str) -> Option<String> {
        let mut tokens = self.tokens.lock().expect("token cache lock");
        match tokens.get(key) {
            Some(t) if t.expires > Instant::now() => Some(t.token.clone()),
            Some(_) => {
                tokens.remove(key);
                None
            }
            None => None,
        }
    }

    /// Sends a request on `repo`'s behalf (the token scope is pull for
    /// `GET`/`HEAD`, pull and push otherwise), answering one challenge as
    /// the module doc says. `prepare` adds headers and body; it runs again
    /// for the second send.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        repo: &str,
        prepare: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, SessionError> {
        let origin = origin(url)?;
        let scope = scope_for(&method, repo);
        let key = format!("{origin} {scope}");
        // A push token covers pulls too.
        let cached = self
            .token(&key)
            .or_else(|| self.token(&format!("{origin} repository:{repo}:pull,push")));
        let what = || format!("{method} {url}");
        let basic_first = cached.is_none() && self.basic == BasicAuth::Always;
        let first = self.authorised(method.clone(), url, cached.as_deref(), basic_first);
        let resp = self.execute(prepare(first), what).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(Challenge::parse)
            .collect();
        if let Some(bearer) = challenges
            .iter()
            .find(|c| c.scheme == "bearer" && c.realm().is_some())
        {
            let token_scope = bearer.scope().map_or_else(|| scope.clone(), str::to_string);
            let token = self.fetch_token(&origin, bearer, &token_scope).await?;
            // Kept under the scope this request needed, which is what the
            // next one like it looks up.
            self.tokens.lock().expect("token cache lock").insert(
                key,
                CachedToken {
                    token: token.token.clone(),
                    expires: Instant::now() + token_lifetime(token.expires_in),
                },
            );
            let token = token.token;
            let again = self.authorised(method.clone(), url, Some(&token), false);
            return self
                .execute(prepare(again), || {
                    format!("{method} {url} with a bearer token")
                })
                .await
                .map_err(SessionError::into_resend);
        }
        let basic_challenged = challenges.iter().any(|c| c.scheme == "basic");
        if basic_challenged && self.creds.is_some() && !basic_first {
            let again = self.authorised(method.clone(), url, None, true);
            return self
                .execute(prepare(again), || {
                    format!("{method} {url} with basic credentials")
                })
                .await
                .map_err(SessionError::into_resend);
        }
        Ok(resp)
    }

    async fn execute(
        &self,
        req: RequestBuilder,
        what: impl Fn() -> String,
    ) -> Result<Response, SessionError> {
        let sent = match self.timeout {
            Some(after) => match tokio::time::timeout(after, req.send()).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(SessionError::Timeout {
                        what: what(),
                        after,
                    })
                }
            },
            None => req.send().await,
        };
        sent.map_err(|source| SessionError::Send {
            what: what(),
            source,
        })
    }

    fn authorised(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        basic: bool,
    ) -> RequestBuilder {
        let r = self.http.request(method, url);
        match (token, &self.creds) {
            (Some(t), _) => r.bearer_auth(t),
            (None, Some((u, p))) if basic => r.basic_auth(u, Some(p)),
            _ => r,
        }
    }

    /// `GET realm?scope=…&service=…` with the basic credentials, if any.
    async fn fetch_token(
        &self,
        registry_origin: &str,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<Token, SessionError> {
        let realm = challenge.realm().unwrap_or_default().to_string();
        let realm_origin = origin(&realm)?;
        let Some(mut req) = challenge.token_request(&self.http, scope) else {
            return Err(SessionError::NoToken { realm });
        };
        // Credentials go to the registry's own origin or over TLS, never in
        // clear text to a host the registry named.
        if let Some((u, p)) = &self.creds {
            if realm_origin == registry_origin || realm.starts_with("https://") {
                req = req.basic_auth(u, Some(p));
            } else {
                tracing::warn!(
                    realm,
                    "not sending credentials to a plain-HTTP token realm on another host"
                );
            }
        }
        let resp = match self
            .execute(req, || format!("fetching a token from {realm}"))
            .await
        {
            Ok(r) => r,
            Err(SessionError::Send { source, .. }) => {
                return Err(SessionError::TokenSend { realm, source })
            }
            Err(e) => return Err(e),
        };
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default().trim().to_string();
            return Err(SessionError::TokenStatus {
                realm,
                status,
                body,
            });
        }
        let body: serde_json::Value = match resp.json().await {
            Ok(b) => b,
            Err(source) => return Err(SessionError::TokenBody { realm, source }),
        };
        Token::from_json(&body).ok_or(SessionError::NoToken { realm })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(scope_for(&Method::HEAD, "a/b"), "repository:a/b:pull");
        assert_eq!(scope_for(&Method::PATCH, "a/b"), "repository:a/b:pull,push");
    }

    #[test]
    fn token_lifetimes() {
        assert_eq!(token_lifetime(None), Duration::from_secs(55));
        assert_eq!(token_lifetime(Some(1)), Duration::from_secs(5));
        assert_eq!(token_lifetime(Some(300)), Duration::from_secs(295));
    }
}
