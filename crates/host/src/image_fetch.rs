//! Fetching an OS image from a registry into the sysroot's image cache,
//! an OCI layout under `ostree/corral/image-cache` that
//! [`corral_ostree::container::import`] reads.
//!
//! Only the layers an import needs are fetched: the caller names those
//! of the deployed images (their objects are in the repository already). A layer is
//! downloaded to `blobs/sha256/HEX.partial`; a download that is cut off
//! keeps what it got, and the next one asks for the rest with an HTTP
//! `Range` request. Nothing is used before its digest is checked. Layers
//! are removed from the cache once imported (their objects live in the
//! repository); manifests and configs stay for the deployments that use
//! them.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use corral_registry::{sha256_digest, Client, ImageRef, Manifest};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The cache's place in a sysroot.
pub const CACHE_DIR: &str = "ostree/corral/image-cache";
/// The tag of the image being imported in the cache's `index.json`.
pub const CACHE_TAG: &str = "corral-host";

/// What a fetch moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FetchStats {
    /// Bytes received over the network (manifest, config and layers).
    pub bytes: u64,
    /// Layers downloaded (in full, or the rest of a cut-off download).
    pub layers_fetched: Vec<String>,
    /// Layers not downloaded: their objects are in the repository.
    pub layers_reused: Vec<String>,
    /// Bytes of layers a cut-off download had already received.
    pub resumed_bytes: u64,
}

/// An image's manifest and config, fetched and checked.
#[derive(Debug, Clone)]
pub struct RemoteImage {
    pub manifest: Manifest,
    pub manifest_json: Value,
    pub config: Vec<u8>,
    pub config_digest: String,
    /// (digest, size) in order.
    pub layers: Vec<(String, u64)>,
}

/// A registry client and the cache it fills.
pub struct ImageFetcher {
    client: Client,
    rt: tokio::runtime::Runtime,
    cache: PathBuf,
    /// A request that makes no progress for this long is stopped.
    stall: Duration,
}

fn hex_of(digest: &str) -> Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("unsupported digest {digest}"))
}

impl ImageFetcher {
    pub fn new(sysroot: &Path, client: Client, stall: Duration) -> Result<ImageFetcher> {
        let cache = sysroot.join(CACHE_DIR);
        std::fs::create_dir_all(cache.join("blobs/sha256"))
            .with_context(|| format!("creating {}", cache.display()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the registry client's runtime")?;
        Ok(ImageFetcher {
            client,
            rt,
            cache,
            stall,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `f`, stopped when it takes longer than the stall timeout
    /// (`what` names it in the error).
    pub fn block_on<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let stall = self.stall;
        self.rt.block_on(async {
            match tokio::time::timeout(stall, f).await {
                Ok(r) => r,
                Err(_) => bail!("no progress for {} s {what}", stall.as_secs()),
            }
        })
    }

    pub fn cache(&self) -> &Path {
        &self.cache
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.cache.join("blobs/sha256").join(hex_of(digest)?))
    }

    /// The manifest `reference` (a tag or digest) of `image` and its
    /// config. An index is refused: an OS image names one platform.
    pub fn manifest(&self, image: &ImageRef, reference: &str) -> Result<RemoteImage> {
        let manifest = self
            .block_on(
                "fetching a manifest",
                self.client.manifest(image, reference),
            )
            .with_context(|| format!("fetching the manifest of {image}"))?
            .with_context(|| format!("{image}: no such image in the registry"))?;
        let json: Value = serde_json::from_slice(&manifest.bytes)
            .with_context(|| format!("parsing the manifest of {image}"))?;
        if json["manifests"].is_array() {
            bail!("{image} is an image index; name the platform's manifest by digest");
        }
        let config_digest = json["config"]["digest"]
            .as_str()
            .with_context(|| format!("the manifest of {image} has no config"))?
            .to_string();
        let config = self
            .block_on("fetching a config", self.client.blob(image, &config_digest))
            .with_context(|| format!("fetching the config of {image}"))?;
        let layers = json["layers"]
            .as_array()
            .with_context(|| format!("the manifest of {image} has no layers"))?
            .iter()
            .map(|l| {
                Ok((
                    l["digest"]
                        .as_str()
                        .context("a layer without a digest")?
                        .to_string(),
                    l["size"].as_u64().context("a layer without a size")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RemoteImage {
            manifest,
            manifest_json: json,
            config,
            config_digest,
            layers,
        })
    }

    /// Writes `remote`'s manifest and config into the cache, fetches its
    /// layers except those in `skip`, and tags it in the cache's index.
    pub fn fetch(
        &self,
        image: &ImageRef,
        remote: &RemoteImage,
        skip: &BTreeSet<String>,
    ) -> Result<FetchStats> {
        let mut stats = FetchStats {
            bytes: (remote.manifest.bytes.len() + remote.config.len()) as u64,
            ..FetchStats::default()
        };
        self.write_blob(&remote.manifest.digest, &remote.manifest.bytes)?;
        self.write_blob(&remote.config_digest, &remote.config)?;
        for (digest, size) in &remote.layers {
            if skip.contains(digest) {
                stats.layers_reused.push(digest.clone());
                continue;
            }
            let (got, resumed) = self
                .fetch_layer(image, digest, *size)
                .with_context(|| format!("fetching layer {digest} of {image}"))?;
            stats.bytes += got;
            stats.resumed_bytes += resumed;
            stats.layers_fetched.push(digest.clone());
        }
        self.write_index(&remote.manifest)?;
        Ok(stats)
    }

    fn write_blob(&self, digest: &str, data: &[u8]) -> Result<()> {
        ensure!(
            sha256_digest(data) == digest,
            "blob {digest} does not match"
        );
        let path = self.blob_path(digest)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, data)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .with_context(|| format!("writing {}", path.display()))
    }

    fn write_index(&self, manifest: &Manifest) -> Result<()> {
        let media_type = if manifest.media_type.is_empty() {
            "application/vnd.oci.image.manifest.v1+json"
        } else {
            manifest.media_type.as_str()
        };
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": media_type,
                "digest": manifest.digest,
                "size": manifest.bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": CACHE_TAG},
            }],
        });
        std::fs::write(
            self.cache.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .context("writing the cache's oci-layout")?;
        let path = self.cache.join("index.json");
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&index)?)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Downloads one layer, continuing a partial download. Returns the
    /// bytes received now and those a cut-off download had received.
    fn fetch_layer(&self, image: &ImageRef, digest: &str, size: u64) -> Result<(u64, u64)> {
        let path = self.blob_path(digest)?;
        if path.exists() && sha256_file(&path)? == digest {
            return Ok((0, 0));
        }
        let partial = path.with_extension("partial");
        let mut have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if have >= size {
            // complete but not renamed, or longer than it should be
            if have == size && sha256_file(&partial)? == digest {
                std::fs::rename(&partial, &path)?;
                return Ok((0, have));
            }
            std::fs::remove_file(&partial)?;
            have = 0;
        }
        let scheme = if self.client.plain_http {
            "http"
        } else {
            "https"
        };
        let url = format!("{scheme}://{}/v2/{}/blobs/{digest}", image.host, image.repo);
        let stall = self.stall;
        let stalled = || format!("no progress for {} s reading {url}", stall.as_secs());
        let got = self.rt.block_on(async {
            let range = format!("bytes={have}-");
            let send = self
                .client
                .session()
                .send(Method::GET, &url, &image.repo, |r| {
                    if have > 0 {
                        r.header("range", range.as_str())
                    } else {
                        r
                    }
                });
            let resp = tokio::time::timeout(stall, send)
                .await
                .map_err(|_| anyhow::anyhow!(stalled()))?
                .with_context(|| format!("GET {url}"))?;
            let status = resp.status();
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&partial)
                .with_context(|| format!("opening {}", partial.display()))?;
            match status {
                StatusCode::PARTIAL_CONTENT if have > 0 => {
                    tracing::info!(%digest, have, "resuming a cut-off layer download");
                }
                StatusCode::OK => {
                    // the registry sends it all: start over
                    file.set_len(0)?;
                    have = 0;
                }
                s => {
                    let body = resp.text().await.unwrap_or_default();
                    bail!("{url}: {s}: {}", body.trim());
                }
            }
            let mut resp = resp;
            let mut got = 0u64;
            while let Some(chunk) = tokio::time::timeout(stall, resp.chunk())
                .await
                .map_err(|_| anyhow::anyhow!(stalled()))?
                .with_context(|| format!("reading {url} ({} bytes in)", have + got))?
            {
                file.write_all(&chunk)
                    .with_context(|| format!("writing {}", partial.display()))?;
                got += chunk.len() as u64;
            }
            file.sync_all()
                .with_context(|| format!("syncing {}", partial.display()))?;
            anyhow::Ok(got)
        })?;
        let actual = sha256_file(&partial)?;
        if actual != digest {
            let _ = std::fs::remove_file(&partial);
            bail!("the download has digest {actual}: discarded");
        }
        std::fs::rename(&partial, &path)
            .with_context(|| format!("renaming {}", partial.display()))?;
        Ok((got, have))
    }

    /// Removes layer blobs (imported, their objects in the repository)
    /// and manifests and configs no deployment names in `keep`.
    pub fn prune(&self, keep: &BTreeSet<String>) -> Result<()> {
        let dir = self.cache.join("blobs/sha256");
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".partial") {
                continue;
            }
            if !keep.contains(&format!("sha256:{name}")) {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("removing {}", entry.path().display()))?;
            }
        }
        Ok(())
    }

    /// The layers and config of a manifest kept in the cache, if it is.
    pub fn cached_manifest(&self, digest: &str) -> Option<Value> {
        let path = self.blob_path(digest).ok()?;
        let bytes = std::fs::read(path).ok()?;
        if sha256_digest(&bytes) != digest {
            return None;
        }
        serde_json::from_slice(&bytes).ok()
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// The layer digests of a manifest.
pub fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["digest"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
