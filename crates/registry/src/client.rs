//! The high-level client: manifests, referrers and blobs by image
//! reference, blob and manifest pushes, deletes, and plain GET/PUT of
//! URLs that hold an image's data (the sigstore lookaside). Every request
//! goes through a [`Session`].

use anyhow::{bail, Context};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::digest::{is_sha256_digest, sha256_digest};
use crate::manifest::{Manifest, MANIFEST_ACCEPT};
use crate::reference::ImageRef;
use crate::session::{Credentials, Session, SessionError};

/// How to reach registries: HTTPS or plain HTTP, and a session holding the
/// credentials and tokens. Clones share the tokens.
#[derive(Debug, Clone, Default)]
pub struct Client {
    session: Session,
    pub plain_http: bool,
}

impl Client {
    pub fn new(plain_http: bool, creds: Option<Credentials>) -> Client {
        Client {
            session: Session::new(reqwest::Client::new(), creds),
            plain_http,
        }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    fn base(&self, host: &str) -> String {
        format!(
            "{}://{host}",
            if self.plain_http { "http" } else { "https" }
        )
    }

    /// `…/v2/REPO/TAIL` on `image`'s registry.
    fn url(&self, image: &ImageRef, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base(&image.host), image.repo)
    }

    /// [`Session::send`], its failures explained for a person.
    async fn send(
        &self,
        method: Method,
        url: &str,
        repo: &str,
        prepare: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> anyhow::Result<Response> {
        match self.session.send(method, url, repo, prepare).await {
            Ok(r) => Ok(r),
            Err(SessionError::Send { what, source }) => Err(self.explain(source, what, url).await),
            Err(SessionError::TokenStatus {
                realm,
                status,
                body,
            }) => Err(status_error(&realm, status, &body)),
            Err(e) => Err(e.into()),
        }
    }

    /// A request that got no HTTP answer. Over HTTPS, the usual cause is a
    /// plain-HTTP registry (rustls: "received corrupt message of type
    /// InvalidContentType"), which tells nobody what to do; asking the same
    /// host over HTTP tells that case apart from a dead or a TLS-broken one.
    async fn explain(&self, e: reqwest::Error, what: String, url: &str) -> anyhow::Error {
        let err = anyhow::Error::new(e).context(what);
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

    /// The manifest `reference` (tag or digest) of `image`'s repository;
    /// `None` when the registry says it does not exist.
    pub async fn manifest(
        &self,
        image: &ImageRef,
        reference: &str,
    ) -> anyhow::Result<Option<Manifest>> {
        let url = self.url(image, &format!("manifests/{reference}"));
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
        let url = self.url(image, &format!("referrers/{digest}"));
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
        let url = self.url(image, &format!("blobs/{digest}"));
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
        let url = self.url(image, &format!("manifests/{reference}"));
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
        let url = self.url(image, &format!("manifests/{reference}"));
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
    Err(status_error(url, status, &body))
}

/// `URL: STATUS: BODY` (the registry's error JSON names its code), with a
/// hint on a `401`.
fn status_error(url: &str, status: StatusCode, body: &str) -> anyhow::Error {
    let hint = if status == StatusCode::UNAUTHORIZED {
        " (credentials missing or wrong: --creds USER:PASS or CORRAL_REGISTRY_CREDS)"
    } else {
        ""
    };
    anyhow::anyhow!("{url}: {status}{hint}: {}", body.trim())
}
