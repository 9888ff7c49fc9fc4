//! `corral image inspect`: the manifest, config and layers of an image in
//! any transport skopeo knows (`oci:`, `docker://`, `docker-daemon:`,
//! `oci-archive:`).

use anyhow::Context;
use serde::Serialize;

/// An image as read.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub reference: String,
    pub manifest_digest: String,
    pub manifest: serde_json::Value,
    pub config: serde_json::Value,
    pub layers: Vec<LayerInfo>,
    pub total_size: i64,
}

/// One layer of an image.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    pub digest: String,
    pub media_type: String,
    pub size: i64,
}

/// Reads the manifest and config of `reference` through skopeo's image
/// proxy; `tls_verify` as skopeo's `--tls-verify`.
pub async fn inspect(reference: &str, tls_verify: bool) -> anyhow::Result<Inspection> {
    // The config is non_exhaustive: set fields on a default.
    let mut config = containers_image_proxy::ImageProxyConfig::default();
    config.insecure_skip_tls_verification = Some(!tls_verify);
    let proxy = containers_image_proxy::ImageProxy::new_with_config(config)
        .await
        .context("starting skopeo's image proxy (is skopeo installed?)")?;
    let img = proxy
        .open_image(reference)
        .await
        .with_context(|| format!("opening {reference}"))?;
    let (digest, manifest) = proxy
        .fetch_manifest(&img)
        .await
        .with_context(|| format!("reading the manifest of {reference}"))?;
    let config = proxy
        .fetch_config(&img)
        .await
        .with_context(|| format!("reading the config of {reference}"))?;
    proxy.close_image(&img).await?;
    proxy.finalize().await?;
    let layers: Vec<LayerInfo> = manifest
        .layers()
        .iter()
        .map(|l| LayerInfo {
            digest: l.digest().to_string(),
            media_type: l.media_type().to_string(),
            size: l.size() as i64,
        })
        .collect();
    let total_size = layers.iter().map(|l| l.size).sum::<i64>() + manifest.config().size() as i64;
    Ok(Inspection {
        reference: reference.to_string(),
        manifest_digest: digest,
        manifest: serde_json::to_value(&manifest)?,
        config: serde_json::to_value(&config)?,
        layers,
        total_size,
    })
}

/// [`inspect`] on a runtime of its own, for callers that are not async.
pub fn inspect_blocking(reference: &str, tls_verify: bool) -> anyhow::Result<Inspection> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(inspect(reference, tls_verify))
}
