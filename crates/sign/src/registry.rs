//! The registry client signing needs: image references, manifests by tag
//! or digest, monolithic blob uploads, manifest pushes and the lookaside.
//!
//! Credentials go as HTTP basic on every request (corral mirror and
//! distribution accept that). A `401` with a `Bearer` challenge (the docker
//! token protocol: Docker Hub, quay.io, ghcr.io, corral mirror with
//! `token_only`) buys a token from the challenge's realm with those basic
//! credentials; the request is retried with it and the token kept per
//! registry and scope.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use corral_registry::{Challenge, Token};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use sha2::{Digest as _, Sha256};

pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// `host[:port]/repo[:tag][@sha256:…]`, with an optional `docker://`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub host: String,
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// ```
    /// let r = corral_sign::registry::ImageRef::parse("docker://127.0.0.1:5000/a/b:1").unwrap();
    /// assert_eq!((r.host.as_str(), r.repo.as_str(), r.tag.as_deref()), ("127.0.0.1:5000", "a/b", Some("1")));
    /// assert_eq!(r.to_string(), "127.0.0.1:5000/a/b:1");
    /// ```
    pub fn parse(s: &str) -> anyhow::Result<ImageRef> {
        let s = s.strip_prefix("docker://").unwrap_or(s);
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (s, None),
        };
        let Some((host, path)) = rest.split_once('/') else {
            bail!("image reference {s:?} has no registry host (write HOST/REPO:TAG)");
        };
        let last = path.rsplit('/').next().unwrap_or(path);
        let (repo, tag) = match last.split_once(':') {
            Some((_, t)) => (&path[..path.len() - t.len() - 1], Some(t.to_string())),
            None => (path, None),
        };
        if repo.is_empty() || (tag.is_none() && digest.is_none()) {
            bail!("image reference {s:?} needs a repository and a tag or digest");
        }
        if let Some(d) = &digest {
            if !is_sha256_digest(d) {
                bail!("image reference {s:?} has an invalid digest");
            }
        }
        Ok(ImageRef {
            host: host.to_string(),
            repo: repo.to_string(),
            tag,
            digest,
        })
    }

    /// `host/repo`, the identity cosign signs.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.host, self.repo)
    }

    /// The tag, else the digest.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .expect("parse requires one")
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

pub fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct Client {
    http: reqwest::Client,
    pub plain_http: bool,
    pub creds: Option<(String, String)>,
    /// Bearer tokens by `origin scope`; shared by clones.
    tokens: Arc<Mutex<HashMap<String, String>>>,
}

/// A fetched manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub media_type: String,
}

/// The scope a request on `repo` needs: reads pull, everything else pushes.
fn scope_for(method: &Method, repo: &str) -> String {
    if matches!(*method, Method::GET | Method::HEAD) {
        format!("repository:{repo}:pull")
    } else {
        format!("repository:{repo}:pull,push")
    }
}

fn origin(url: &str) -> anyhow::Result<String> {
    Ok(reqwest::Url::parse(url)
        .with_context(|| format!("parsing URL {url}"))?
        .origin()
        .ascii_serialization())
}

impl Client {
    pub fn new(plain_http: bool, creds: Option<(String, String)>) -> Client {
        Client {
            http: reqwest::Client::new(),
            plain_http,
            creds,
            tokens: Arc::default(),
        }
    }

    fn base(&self, host: &str) -> String {
        format!(
            "{}://{host}",
            if self.plain_http { "http" } else { "https" }
        )
    }

    fn token(&self, key: &str) -> Option<String> {
        self.tokens
            .lock()
            .expect("token cache lock")
            .get(key)
            .cloned()
    }

    /// Sends a request on `repo`'s behalf: with a cached token for its
    /// scope, else basic credentials; a bearer challenge fetches a token
    /// and retries once. `prepare` adds headers and body (it may run twice).
    async fn send(
        &self,
        method: Method,
        url: &str,
        repo: &str,
        prepare: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> anyhow::Result<Response> {
        let origin = origin(url)?;
        let scope = scope_for(&method, repo);
        let key = format!("{origin} {scope}");
        // A push token covers pulls too.
        let cached = self
            .token(&key)
            .or_else(|| self.token(&format!("{origin} repository:{repo}:pull,push")));
        let resp = match prepare(self.authorised(method.clone(), url, cached.as_deref()))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(self.explain(e, &method, url).await),
        };
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let Some(challenge) = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(Challenge::parse_bearer)
        else {
            return Ok(resp);
        };
        let token_scope = challenge
            .scope()
            .map_or_else(|| scope.clone(), str::to_string);
        let token = self.fetch_token(&origin, &challenge, &token_scope).await?;
        self.tokens
            .lock()
            .expect("token cache lock")
            .insert(key, token.clone());
        prepare(self.authorised(method.clone(), url, Some(&token)))
            .send()
            .await
            .with_context(|| format!("{method} {url} with a bearer token"))
    }

    /// A request that got no HTTP answer. Over HTTPS, the usual cause is a
    /// plain-HTTP registry (rustls: "received corrupt message of type
    /// InvalidContentType"), which tells nobody what to do; asking the same
    /// host over HTTP tells that case apart from a dead or a TLS-broken one.
    async fn explain(&self, e: reqwest::Error, method: &Method, url: &str) -> anyhow::Error {
        let err = anyhow::Error::new(e).context(format!("{method} {url}"));
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return err;
        };
        if parsed.scheme() != "https" {
            return err;
        }
        let mut plain = parsed.clone();
        if plain.set_scheme("http").is_err() {
            return err;
        }
        // Same port: a registry on a non-default port speaks one protocol
        // there. The default port 443 changes to 80 with the scheme, which
        // says nothing about 443, so it is not probed.
        if parsed.port().is_none() {
            return err;
        }
        plain.set_path("/v2/");
        plain.set_query(None);
        let probe = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build();
        let answered = match probe {
            Ok(c) => c.get(plain).send().await.is_ok(),
            Err(_) => false,
        };
        if answered {
            let host = parsed.host_str().unwrap_or_default();
            let host = match parsed.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            tracing::debug!(%host, "the TLS handshake failed and plain HTTP answers");
            return err.context(format!(
                "{host} speaks plain HTTP, not HTTPS (pass --plain-http)"
            ));
        }
        err
    }

    fn authorised(&self, method: Method, url: &str, token: Option<&str>) -> RequestBuilder {
        let r = self.http.request(method, url);
        match (token, &self.creds) {
            (Some(t), _) => r.bearer_auth(t),
            (None, Some((u, p))) => r.basic_auth(u, Some(p)),
            (None, None) => r,
        }
    }

    /// `GET realm?service=…&scope=…` with the basic credentials, if any.
    async fn fetch_token(
        &self,
        registry_origin: &str,
        challenge: &Challenge,
        scope: &str,
    ) -> anyhow::Result<String> {
        let realm = challenge
            .realm()
            .context("the registry's challenge names no token realm")?;
        let realm_origin = origin(realm)?;
        let mut req = challenge
            .token_request(&self.http, scope)
            .context("the registry's challenge names no token realm")?;
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
        let resp = req
            .send()
            .await
            .with_context(|| format!("fetching a token from {realm}"))?;
        let resp = check(resp, realm).await?;
        let body: serde_json::Value = resp
            .json()
            .await
            .with_context(|| format!("reading the token from {realm}"))?;
        Token::from_json(&body)
            .map(|t| t.token)
            .with_context(|| format!("{realm} answered without a token"))
    }

    /// The manifest `reference` (tag or digest) of `image`'s repository;
    /// `None` when the registry says it does not exist.
    pub async fn manifest(
        &self,
        image: &ImageRef,
        reference: &str,
    ) -> anyhow::Result<Option<Manifest>> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base(&image.host),
            image.repo
        );
        let resp = self
            .send(Method::GET, &url, &image.repo, |r| {
                r.header("accept", MANIFEST_ACCEPT)
            })
            .await
            .with_context(|| format!("fetching {url}"))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = check(resp, &url).await?;
        let media_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("reading {url}"))?
            .to_vec();
        let digest = sha256_digest(&bytes);
        if is_sha256_digest(reference) && reference != digest {
            bail!("manifest {url} has digest {digest}, not the one asked for");
        }
        Ok(Some(Manifest {
            bytes,
            digest,
            media_type,
        }))
    }

    /// The referrers index of `digest` filtered to `artifact_type` (OCI 1.1
    /// `GET /v2/<name>/referrers/<digest>`); `None` when the registry does
    /// not have the API (404).
    pub async fn referrers(
        &self,
        image: &ImageRef,
        digest: &str,
        artifact_type: &str,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let url = format!(
            "{}/v2/{}/referrers/{digest}",
            self.base(&image.host),
            image.repo
        );
        let resp = self
            .send(Method::GET, &url, &image.repo, |r| {
                r.query(&[("artifactType", artifact_type)])
                    .header("accept", "application/vnd.oci.image.index.v1+json")
            })
            .await
            .with_context(|| format!("fetching {url}"))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = check(resp, &url).await?.bytes().await?;
        Ok(Some(serde_json::from_slice(&body).with_context(|| {
            format!("parsing the referrers index from {url}")
        })?))
    }

    /// A blob, checked against its digest.
    pub async fn blob(&self, image: &ImageRef, digest: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.base(&image.host),
            image.repo
        );
        let resp = self
            .send(Method::GET, &url, &image.repo, |r| r)
            .await
            .with_context(|| format!("fetching {url}"))?;
        let bytes = check(resp, &url).await?.bytes().await?.to_vec();
        if sha256_digest(&bytes) != digest {
            bail!("blob {digest} from {url} does not match its digest");
        }
        Ok(bytes)
    }

    /// Uploads a blob in one request (`POST …/blobs/uploads/?digest=`),
    /// falling back to a session with one PUT.
    pub async fn push_blob(&self, image: &ImageRef, data: &[u8]) -> anyhow::Result<String> {
        let digest = sha256_digest(data);
        let base = self.base(&image.host);
        let url = format!("{base}/v2/{}/blobs/uploads/?digest={digest}", image.repo);
        let resp = self
            .send(Method::POST, &url, &image.repo, |r| {
                r.header("content-type", "application/octet-stream")
                    .body(data.to_vec())
            })
            .await
            .with_context(|| format!("uploading blob {digest}"))?;
        if resp.status() == StatusCode::CREATED {
            return Ok(digest);
        }
        let resp = check(resp, &url).await?;
        let Some(loc) = resp.headers().get("location").and_then(|v| v.to_str().ok()) else {
            bail!("upload of {digest} to {url}: no Location header");
        };
        let loc = if loc.starts_with('/') {
            format!("{base}{loc}")
        } else {
            loc.to_string()
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put = format!("{loc}{sep}digest={digest}");
        let resp = self
            .send(Method::PUT, &put, &image.repo, |r| {
                r.header("content-type", "application/octet-stream")
                    .body(data.to_vec())
            })
            .await
            .with_context(|| format!("uploading blob {digest}"))?;
        check(resp, &put).await?;
        Ok(digest)
    }

    /// Pushes a manifest under `reference`; returns its digest.
    pub async fn push_manifest(
        &self,
        image: &ImageRef,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> anyhow::Result<String> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base(&image.host),
            image.repo
        );
        let resp = self
            .send(Method::PUT, &url, &image.repo, |r| {
                r.header("content-type", media_type).body(bytes.to_vec())
            })
            .await
            .with_context(|| format!("pushing manifest {url}"))?;
        check(resp, &url).await?;
        Ok(sha256_digest(bytes))
    }

    /// Deletes the manifest or tag `reference` of `image`'s repository.
    pub async fn delete_manifest(&self, image: &ImageRef, reference: &str) -> anyhow::Result<()> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base(&image.host),
            image.repo
        );
        let resp = self
            .send(Method::DELETE, &url, &image.repo, |r| r)
            .await
            .with_context(|| format!("deleting {url}"))?;
        check(resp, &url).await?;
        Ok(())
    }

    /// GET of a URL that holds `image`'s data (the lookaside); `None` on 404.
    pub async fn get_optional(
        &self,
        image: &ImageRef,
        url: &str,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let resp = self
            .send(Method::GET, url, &image.repo, |r| r)
            .await
            .with_context(|| format!("fetching {url}"))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(check(resp, url).await?.bytes().await?.to_vec()))
    }

    /// PUT of a URL that holds `image`'s data (the lookaside).
    pub async fn put(&self, image: &ImageRef, url: &str, data: Vec<u8>) -> anyhow::Result<()> {
        let resp = self
            .send(Method::PUT, url, &image.repo, |r| r.body(data.clone()))
            .await
            .with_context(|| format!("uploading {url}"))?;
        check(resp, url).await?;
        Ok(())
    }
}

async fn check(resp: Response, url: &str) -> anyhow::Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let hint = if status == StatusCode::UNAUTHORIZED {
        " (credentials missing or wrong: --creds USER:PASS or CORRAL_REGISTRY_CREDS)"
    } else {
        ""
    };
    bail!("{url}: {status}{hint}: {}", body.trim())
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
    fn references() {
        let r = ImageRef::parse("h:5/a/b@sha256:".to_string().as_str());
        assert!(r.is_err());
        let d = format!("sha256:{}", "0".repeat(64));
        let r = ImageRef::parse(&format!("h:5/a/b:t@{d}")).unwrap();
        assert_eq!(r.reference(), d);
        assert_eq!(r.repository(), "h:5/a/b");
        assert!(ImageRef::parse("nohost").is_err());
        assert!(ImageRef::parse("h/a").is_err());
    }
}
