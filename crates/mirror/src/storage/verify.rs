//! Verify-then-commit, the rule both backends write by: content becomes
//! visible under a digest only after it is hashed and found equal to it.

use std::io;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::{Result, StorageError};
use crate::name::Digest;

/// The sha256 (hex) and size of a local file, read on a blocking thread.
pub(crate) async fn hash_file(path: &Path) -> Result<(String, u64)> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let at = |e| super::durable::error_at("hashing", &p, e);
        let mut h = Sha256::new();
        let size = io::copy(&mut std::fs::File::open(&p).map_err(at)?, &mut h).map_err(at)?;
        Ok((hex::encode(h.finalize()), size))
    })
    .await
    .map_err(io::Error::other)?
}

/// The digest of content in memory, hashed on a blocking thread.
pub(crate) async fn digest_of(data: &bytes::Bytes) -> Result<Digest> {
    let data = data.clone();
    Ok(tokio::task::spawn_blocking(move || Digest::of_bytes(&data))
        .await
        .map_err(io::Error::other)?)
}

/// `Ok` when content hashing to `actual` (hex) is the blob `expected`.
pub(crate) fn digest_matches(expected: &Digest, actual: &str) -> Result<()> {
    if actual == expected.hex() {
        return Ok(());
    }
    Err(StorageError::DigestMismatch {
        expected: expected.to_string(),
        actual: format!("sha256:{actual}"),
    })
}
