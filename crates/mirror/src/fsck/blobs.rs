//! Blob hashes: every blob is read back and hashed; one that does not hash
//! to its name is corrupt (clients verify digests, so it fails every pull).

use std::collections::HashMap;
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

use super::report::{CorruptBlob, FsckReport};
use super::{Context, Result};
use crate::name::Digest;
use crate::storage::{Storage, StorageError};

/// A blob as listed: its size (as read) and modification time.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlobInfo {
    pub bytes: u64,
    pub modified: SystemTime,
}

/// Re-hashes every blob; returns what exists (for the reference checks).
pub(super) async fn rehash(
    store: &dyn Storage,
    report: &mut FsckReport,
) -> Result<HashMap<Digest, BlobInfo>> {
    let mut found = HashMap::new();
    let mut buf = vec![0u8; 1 << 20];
    let listed = store.list_blobs().await.about(|| "listing blobs".into())?;
    for (d, modified) in listed {
        let Some((_, mut r)) = store
            .open_blob(&d, 0)
            .await
            .about(|| format!("opening blob {d}"))?
        else {
            // Removed (by GC) since the listing.
            continue;
        };
        let mut h = Sha256::new();
        let mut bytes = 0u64;
        loop {
            let n = r
                .read(&mut buf)
                .await
                .map_err(StorageError::from)
                .about(|| format!("reading blob {d}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            bytes += n as u64;
        }
        report.blobs_checked += 1;
        report.bytes_checked += bytes;
        let actual = hex::encode(h.finalize());
        if actual != d.hex() {
            tracing::error!(digest = %d, actual, "blob content does not match its digest");
            report.corrupt_blobs.push(CorruptBlob {
                digest: d.to_string(),
                actual: format!("sha256:{actual}"),
                bytes,
            });
        }
        found.insert(d, BlobInfo { bytes, modified });
    }
    Ok(found)
}
