//! Opening the configured backend.

use std::sync::Arc;

use anyhow::Context;
use object_store::aws::AmazonS3Builder;
use object_store::ClientOptions;

use super::{FsStorage, S3Storage, Storage};
use crate::config::{Config, S3Config};

/// Opens the storage `config` names: the S3 bucket when `[s3]` is set, the
/// `storage` directory otherwise.
pub fn open(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    match &config.s3 {
        Some(s3) => Ok(Arc::new(open_s3(s3)?)),
        None => Ok(Arc::new(FsStorage::open(&config.storage).with_context(
            || format!("opening storage {}", config.storage.display()),
        )?)),
    }
}

fn open_s3(c: &S3Config) -> anyhow::Result<S3Storage> {
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&c.bucket)
        .with_region(&c.region)
        .with_virtual_hosted_style_request(c.virtual_hosted_style)
        // The default 30 s covers a whole request, body included: too short
        // for a large blob streamed to a slow client.
        .with_client_options(
            ClientOptions::new()
                .with_timeout_disabled()
                .with_connect_timeout(std::time::Duration::from_secs(5)),
        );
    if let Some(e) = &c.endpoint {
        b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
    }
    let key_id = c
        .access_key_id
        .clone()
        .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok());
    let secret = match (&c.secret_access_key_file, &c.secret_access_key) {
        (Some(f), _) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .trim()
                .to_string(),
        ),
        (None, Some(s)) => Some(s.clone()),
        (None, None) => std::env::var("AWS_SECRET_ACCESS_KEY").ok(),
    };
    if let Some(k) = key_id {
        b = b.with_access_key_id(k);
    }
    if let Some(s) = secret {
        b = b.with_secret_access_key(s);
    }
    let store = b
        .build()
        .with_context(|| format!("configuring s3 bucket {}", c.bucket))?;
    // A fixed default, so gc on this machine finds what a killed replica
    // left; names inside are random, so processes can share it.
    let scratch = c
        .scratch
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("corral-mirror-scratch"));
    S3Storage::new(Arc::new(store), &c.prefix, &scratch)
        .with_context(|| format!("creating scratch directory {}", scratch.display()))
}
