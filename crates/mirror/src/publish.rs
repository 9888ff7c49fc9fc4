//! Publishing an OSTree archive repository or a directory of disk images
//! into the bucket, where every replica serves them
//! ([`crate::bucket_files`]).
//!
//! Uploads go in phases, and a phase starts only when the one before has
//! finished, so a client never finds a name pointing at something missing:
//!
//! - OSTree: the repository `config`, content objects and static deltas;
//!   then commit metadata (`.commitmeta`, then `.commit`); then `refs/`;
//!   then `summary` and `summary.sig`.
//! - Disk images: the images; then their `.sha256`; then `.asc`/`.sig`.
//!
//! Each object is written whole (a put, or a multipart upload that becomes
//! visible only when completed). Content-addressed files (OSTree objects
//! other than `.commitmeta`, static deltas) already in the bucket with the
//! same size are skipped; the others are compared byte for byte and
//! uploaded when they differ. A disk image is skipped when the bucket has
//! it with the same size and the same `.sha256`; an image whose `.sha256`
//! does not match its content is refused before anything of it is visible.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{MultipartUpload, PutPayload};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

use crate::storage::ObjectBackend;

/// Files up to this size are one put; larger ones a multipart upload of
/// parts this size.
const PART_SIZE: usize = 8 << 20;
/// Uploads in flight at once within a phase.
const CONCURRENCY: usize = 8;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    #[error("reading {path}: {source}")]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an OSTree archive repository: {why}")]
    NotArchiveRepo { path: PathBuf, why: String },
    #[error("{path}: sha256 is {actual} but its .sha256 file says {published}")]
    ChecksumMismatch {
        path: PathBuf,
        published: String,
        actual: String,
    },
    #[error("{op} {key} in the bucket: {source}")]
    Bucket {
        op: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
}

type Result<T, E = PublishError> = std::result::Result<T, E>;

/// What a publish did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct PublishReport {
    /// Keys written, in the order they became visible (within a phase,
    /// the order uploads finished).
    pub uploaded: Vec<Uploaded>,
    /// Files already in the bucket as they are locally.
    pub skipped: usize,
    pub bytes_uploaded: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Uploaded {
    pub key: String,
    pub bytes: u64,
    pub phase: &'static str,
}

/// How a file already in the bucket is recognised as the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Same {
    /// Content-addressed: the same name and size is the same file.
    Size,
    /// Mutable: compared byte for byte.
    Bytes,
    /// A disk image: the same size and the same published `.sha256`.
    SizeAndChecksum,
}

struct File {
    rel: String,
    path: PathBuf,
    size: u64,
    same: Same,
    /// The sha256 the upload must have (a disk image's `.sha256`).
    expect_sha256: Option<String>,
}

/// One phase: its name and files.
type Phase = (&'static str, Vec<File>);

/// Every regular file under `root`, by `/`-separated relative path.
fn walk(root: &Path) -> Result<Vec<(String, PathBuf, u64)>> {
    let local = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PublishError::Local { path, source }
    };
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(local(&dir))? {
            let e = e.map_err(local(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // temp files of a write in progress
            }
            let ft = e.file_type().map_err(local(&e.path()))?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .unwrap_or(&e.path())
                    .to_string_lossy()
                    .replace(std::path::MAIN_SEPARATOR, "/");
                let size = e.metadata().map_err(local(&e.path()))?.len();
                out.push((rel, e.path(), size));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The upload phases of an OSTree archive repository.
fn ostree_phases(repo: &Path) -> Result<Vec<Phase>> {
    let config = repo.join("config");
    let text = corral_configfile::read_to_string(&config, corral_configfile::DEFAULT_LIMIT)
        .map_err(|e| PublishError::NotArchiveRepo {
            path: repo.to_path_buf(),
            why: format!("{:#}", anyhow::Error::from(e)),
        })?;
    let mode = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "mode")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    if !mode.starts_with("archive") {
        return Err(PublishError::NotArchiveRepo {
            path: repo.to_path_buf(),
            why: format!(
                "its mode is {mode:?}; HTTP clients need archive (ostree init --mode=archive)"
            ),
        });
    }
    let (mut content, mut commits, mut refs, mut summary) = (vec![], vec![], vec![], vec![]);
    let mut commit_objects = vec![];
    for (rel, path, size) in walk(repo)? {
        let file = |same| File {
            rel: rel.clone(),
            path: path.clone(),
            size,
            same,
            expect_sha256: None,
        };
        let top = rel.split('/').next().unwrap_or("");
        match top {
            // Local state of this repository, not part of what it serves.
            "tmp" | "state" | "extensions" => continue,
            "refs" => refs.push(file(Same::Bytes)),
            "summary" | "summary.sig" | "summaries" => summary.push(file(Same::Bytes)),
            "objects" if rel.ends_with(".commitmeta") => commits.push(file(Same::Bytes)),
            "objects" if rel.ends_with(".commit") => commit_objects.push(file(Same::Size)),
            "objects" | "deltas" => content.push(file(Same::Size)),
            "config" => content.push(file(Same::Bytes)),
            _ => content.push(file(Same::Bytes)),
        }
    }
    // A commit's detached metadata (its signatures) is there before the
    // commit, so nobody reads a commit whose signature is still missing.
    let mut commit_phase = commits;
    commit_phase.extend(commit_objects);
    // summary.sig last: its summary is in place when it appears.
    summary.sort_by_key(|f| f.rel == "summary.sig");
    Ok(vec![
        ("content", content),
        ("commit-metadata", commit_phase),
        ("refs", refs),
        ("summary", summary),
    ])
}

/// The upload phases of a directory of disk images.
fn disk_image_phases(dir: &Path) -> Result<Vec<Phase>> {
    let all = walk(dir)?;
    let is_sidecar = |rel: &str| {
        crate::disk_images::SIDECARS
            .iter()
            .any(|s| rel.ends_with(s))
    };
    let (mut images, mut sums, mut sigs) = (vec![], vec![], vec![]);
    for (rel, path, size) in &all {
        let file = |same, expect_sha256| File {
            rel: rel.clone(),
            path: path.clone(),
            size: *size,
            same,
            expect_sha256,
        };
        if rel.ends_with(".sha256") {
            sums.push(file(Same::Bytes, None));
        } else if is_sidecar(rel) {
            sigs.push(file(Same::Bytes, None));
        } else {
            let sum_path = path.with_file_name(format!(
                "{}.sha256",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
            let published = corral_configfile::read_to_string(&sum_path, 64 * 1024)
                .ok()
                .and_then(|t| crate::disk_images::parse_sha256(&t));
            images.push(file(Same::SizeAndChecksum, published));
        }
    }
    Ok(vec![
        ("image", images),
        ("checksum", sums),
        ("signature", sigs),
    ])
}

/// Uploads into the bucket under `prefix` what `phases` list and the
/// bucket does not have.
async fn publish(
    store: Arc<dyn ObjectBackend>,
    prefix: &str,
    phases: Vec<Phase>,
) -> Result<PublishReport> {
    let prefix = prefix.trim_matches('/');
    let key = |rel: &str| {
        Key::from(if prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{prefix}/{rel}")
        })
    };
    let listed: Vec<object_store::ObjectMeta> = store
        .list((!prefix.is_empty()).then(|| Key::from(prefix)).as_ref())
        .try_collect()
        .await
        .map_err(|source| PublishError::Bucket {
            op: "listing",
            key: prefix.to_string(),
            source,
        })?;
    let remote: HashMap<String, u64> = listed
        .into_iter()
        .map(|m| (m.location.to_string(), m.size))
        .collect();
    let mut report = PublishReport::default();
    for (phase, files) in phases {
        let mut todo = Vec::new();
        for f in files {
            let k = key(&f.rel);
            let same = match (remote.get(k.as_ref()), f.same) {
                (Some(&size), Same::Size) => size == f.size,
                (Some(&size), Same::Bytes) => {
                    size == f.size && read_remote(&store, &k).await? == Some(read_local(&f.path)?)
                }
                (Some(&size), Same::SizeAndChecksum) => {
                    let sum = key(&format!("{}.sha256", f.rel));
                    size == f.size
                        && f.expect_sha256.is_some()
                        && read_remote(&store, &sum).await?.and_then(|b| {
                            crate::disk_images::parse_sha256(&String::from_utf8_lossy(&b))
                        }) == f.expect_sha256
                }
                (None, _) => false,
            };
            if same {
                report.skipped += 1;
            } else {
                todo.push((k, f));
            }
        }
        let done: Vec<Uploaded> = futures_util::stream::iter(todo)
            .map(|(k, f)| {
                let store = store.clone();
                async move {
                    upload(&store, &k, &f).await?;
                    tracing::info!(key = %k, bytes = f.size, phase, "published");
                    Ok::<_, PublishError>(Uploaded {
                        key: k.to_string(),
                        bytes: f.size,
                        phase,
                    })
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        report.bytes_uploaded += done.iter().map(|u| u.bytes).sum::<u64>();
        report.uploaded.extend(done);
    }
    Ok(report)
}

fn read_local(path: &Path) -> Result<Bytes> {
    std::fs::read(path)
        .map(Bytes::from)
        .map_err(|source| PublishError::Local {
            path: path.to_path_buf(),
            source,
        })
}

async fn read_remote(store: &Arc<dyn ObjectBackend>, key: &Key) -> Result<Option<Bytes>> {
    let err = |source| PublishError::Bucket {
        op: "reading",
        key: key.to_string(),
        source,
    };
    match store.get(key).await {
        Ok(g) => Ok(Some(g.bytes().await.map_err(err)?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

/// Writes `f` whole to `key`, checking its sha256 when one is expected
/// before the object becomes visible.
async fn upload(store: &Arc<dyn ObjectBackend>, key: &Key, f: &File) -> Result<()> {
    let bucket = |op| {
        move |source| PublishError::Bucket {
            op,
            key: key.to_string(),
            source,
        }
    };
    let local = |source| PublishError::Local {
        path: f.path.clone(),
        source,
    };
    let check = |h: Sha256| match &f.expect_sha256 {
        Some(want) => {
            let actual = hex::encode(h.finalize());
            if actual == *want {
                Ok(())
            } else {
                Err(PublishError::ChecksumMismatch {
                    path: f.path.clone(),
                    published: want.clone(),
                    actual,
                })
            }
        }
        None => Ok(()),
    };
    if f.size <= PART_SIZE as u64 {
        let data = read_local(&f.path)?;
        check(Sha256::new_with_prefix(&data))?;
        store
            .put(key, PutPayload::from(data))
            .await
            .map_err(bucket("writing"))?;
        return Ok(());
    }
    let mut file = tokio::fs::File::open(&f.path).await.map_err(local)?;
    let mut up = store.put_multipart(key).await.map_err(bucket("starting"))?;
    let result = async {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; PART_SIZE];
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                let n = file.read(&mut buf[filled..]).await.map_err(local)?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            h.update(&buf[..filled]);
            up.put_part(Bytes::copy_from_slice(&buf[..filled]).into())
                .await
                .map_err(bucket("writing a part of"))?;
        }
        check(h)
    }
    .await;
    match result {
        Ok(()) => {
            up.complete().await.map_err(bucket("completing"))?;
            Ok(())
        }
        Err(e) => {
            // Nothing of it became visible; drop the parts.
            if let Err(a) = up.abort().await {
                tracing::warn!(key = %key, error = %a, "aborting a refused upload");
            }
            Err(e)
        }
    }
}

/// Publishes the OSTree archive repository `repo` under `prefix`.
pub async fn publish_ostree(
    store: Arc<dyn ObjectBackend>,
    prefix: &str,
    repo: &Path,
) -> Result<PublishReport> {
    let phases = ostree_phases(repo)?;
    publish(store, prefix, phases).await
}

/// Publishes the disk images under `dir` under `prefix`.
pub async fn publish_disk_images(
    store: Arc<dyn ObjectBackend>,
    prefix: &str,
    dir: &Path,
) -> Result<PublishReport> {
    let phases = disk_image_phases(dir)?;
    publish(store, prefix, phases).await
}

#[cfg(test)]
mod tests;
