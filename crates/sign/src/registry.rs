//! The registry client signing needs: image references, manifests by tag
//! or digest, monolithic blob uploads, manifest pushes and the lookaside.
//! Credentials are sent as HTTP basic on every request (corral mirror and
//! distribution accept that); bearer-token registries are not supported yet.

use anyhow::{bail, Context};
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
}

/// A fetched manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub media_type: String,
}

impl Client {
    pub fn new(plain_http: bool, creds: Option<(String, String)>) -> Client {
        Client {
            http: reqwest::Client::new(),
            plain_http,
            creds,
        }
    }

    fn base(&self, host: &str) -> String {
        format!(
            "{}://{host}",
            if self.plain_http { "http" } else { "https" }
        )
    }

    fn req(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, url);
        match &self.creds {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
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
            .req(reqwest::Method::GET, &url)
            .header("accept", MANIFEST_ACCEPT)
            .send()
            .await
            .with_context(|| format!("fetching {url}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
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

    /// A blob, checked against its digest.
    pub async fn blob(&self, image: &ImageRef, digest: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.base(&image.host),
            image.repo
        );
        let resp = self
            .req(reqwest::Method::GET, &url)
            .send()
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
            .req(reqwest::Method::POST, &url)
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .with_context(|| format!("uploading blob {digest}"))?;
        if resp.status() == reqwest::StatusCode::CREATED {
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
            .req(reqwest::Method::PUT, &put)
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
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
            .req(reqwest::Method::PUT, &url)
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .await
            .with_context(|| format!("pushing manifest {url}"))?;
        check(resp, &url).await?;
        Ok(sha256_digest(bytes))
    }

    /// GET of any URL; `None` on 404.
    pub async fn get_optional(&self, url: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let resp = self
            .req(reqwest::Method::GET, url)
            .send()
            .await
            .with_context(|| format!("fetching {url}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(check(resp, url).await?.bytes().await?.to_vec()))
    }

    pub async fn put(&self, url: &str, data: Vec<u8>) -> anyhow::Result<()> {
        let resp = self
            .req(reqwest::Method::PUT, url)
            .body(data)
            .send()
            .await
            .with_context(|| format!("uploading {url}"))?;
        check(resp, url).await?;
        Ok(())
    }
}

async fn check(resp: reqwest::Response, url: &str) -> anyhow::Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
        " (credentials missing or wrong: --creds USER:PASS or CORRAL_REGISTRY_CREDS)"
    } else {
        ""
    };
    bail!("{url}: {status}{hint}: {}", body.trim())
}

#[cfg(test)]
mod tests {
    use super::ImageRef;

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
