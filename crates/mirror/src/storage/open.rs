//! Opening the configured backend.

use std::sync::Arc;

use anyhow::Context;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ClientOptions, RetryConfig};

use super::s3::failover::FailoverStore;
use super::{FsStorage, ObjectBackend, S3Storage, Storage};
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
    let store = open_bucket(c)?;
    // A fixed default, so gc on this machine finds what a killed replica
    // left; names inside are random, so processes can share it.
    let scratch = c
        .scratch
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("corral-mirror-scratch"));
    S3Storage::new(store, &c.prefix, &scratch)
        .with_context(|| format!("creating scratch directory {}", scratch.display()))
}

/// A client for the bucket `c` names: one endpoint's, or a
/// [`FailoverStore`] over all of `endpoints`.
pub fn open_bucket(c: &S3Config) -> anyhow::Result<Arc<dyn ObjectBackend>> {
    if c.endpoints.len() < 2 {
        let endpoint = c
            .endpoint
            .as_deref()
            .or(c.endpoints.first().map(String::as_str));
        return Ok(Arc::new(s3_client(c, endpoint, RetryConfig::default())?));
    }
    // The failover store moves on to the next endpoint itself: the client
    // retrying a node that is down for 10 attempts would only delay that.
    let retry = RetryConfig {
        max_retries: 1,
        ..RetryConfig::default()
    };
    let clients = c
        .endpoints
        .iter()
        .map(|e| {
            let client: Arc<dyn ObjectBackend> = Arc::new(s3_client(c, Some(e), retry.clone())?);
            Ok((e.clone(), client))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Arc::new(FailoverStore::new(clients)))
}

fn s3_client(c: &S3Config, endpoint: Option<&str>, retry: RetryConfig) -> anyhow::Result<AmazonS3> {
    let mut b = AmazonS3Builder::new()
        .with_retry(retry)
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
    if let Some(e) = endpoint {
        b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
    }
    let key_id = c
        .access_key_id
        .clone()
        .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok());
    let secret = match (&c.secret_access_key_file, &c.secret_access_key) {
        (Some(f), _) => Some(
            corral_configfile::read_to_string(f, crate::config::SECRET_FILE_LIMIT)?
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
    b.build().with_context(|| {
        format!(
            "configuring s3 bucket {} at {}",
            c.bucket,
            endpoint.unwrap_or("aws")
        )
    })
}
