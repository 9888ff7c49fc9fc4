//! fsck: re-hash every blob against its digest, report leftover temporary
//! files and references to content that is missing.

use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

use crate::name::Reference;
use crate::storage::{Result, Storage};

#[derive(Debug, Default, Serialize)]
pub struct FsckReport {
    pub blobs_checked: usize,
    pub bytes_checked: u64,
    /// `digest: actual hash` of blobs whose content does not match.
    pub corrupt: Vec<String>,
    /// Tags and manifest links pointing at content that is not there.
    pub dangling: Vec<String>,
    /// Leftovers of interrupted writes (invisible to clients; safe to delete).
    pub temp_files: Vec<PathBuf>,
}

impl FsckReport {
    /// Whether anything is damaged (temp files alone are not damage).
    pub fn damaged(&self) -> bool {
        !self.corrupt.is_empty() || !self.dangling.is_empty()
    }
}

pub async fn check(store: &dyn Storage) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    let mut buf = vec![0u8; 1 << 20];
    for (d, _) in store.list_blobs().await? {
        let Some((_, mut r)) = store.open_blob(&d, 0).await? else {
            continue;
        };
        let mut h = Sha256::new();
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            report.bytes_checked += n as u64;
        }
        report.blobs_checked += 1;
        let actual = hex::encode(h.finalize());
        if actual != d.hex() {
            tracing::error!(digest = %d, actual, "blob content does not match its digest");
            report.corrupt.push(format!("{d}: sha256:{actual}"));
        }
    }
    for repo in store.list_repos().await? {
        for t in store.list_tags(&repo).await? {
            if let Some((d, _)) = store.get_tag(&repo, &t).await? {
                if store.get_manifest(&repo, &d).await?.is_none() {
                    report.dangling.push(format!("{repo}:{t} -> {d}"));
                }
            }
        }
        for (d, _) in store.list_manifests(&repo).await? {
            if store.blob_size(&d).await?.is_none() {
                report
                    .dangling
                    .push(format!("{repo}@{}", Reference::Digest(d)));
            }
        }
    }
    report.temp_files = store.leftover_temp_files().await?;
    Ok(report)
}
