//! Where the static files under `/ostree/` and `/disk-images/` come from:
//! a local directory ([`FileSource::Dir`], the `ostree_repo` and
//! `[disk_images] dir` keys) or keys under a prefix of the S3 bucket
//! ([`FileSource::Bucket`], `[s3] ostree_prefix` and `disk_images_prefix`),
//! so every replica of a set serves the same OSTree repository and disk
//! images. `corral mirror publish` ([`crate::publish`]) puts them there.
//!
//! Bucket files are served like local ones: whole or one byte range, with
//! the same paths refused. Disk images in the bucket are listed with their
//! size, published checksum and signature state; checking one downloads it
//! to the scratch directory once, and the result is kept while the image
//! and its signature keep their size and modification time.

use std::collections::HashMap;
use std::path::{Component, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectMeta};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use crate::config::Config;
use crate::disk_images::{DiskImage, SignatureState};
use crate::storage::ObjectBackend;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BucketFileError {
    #[error("reading {key} from the bucket: {source}")]
    Read {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("listing {prefix} in the bucket: {source}")]
    List {
        prefix: String,
        #[source]
        source: object_store::Error,
    },
    #[error("writing {path}: {source}")]
    Scratch {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checking the signature of {key}: {source:#}")]
    Signature {
        key: String,
        #[source]
        source: anyhow::Error,
    },
}

/// Where one tree of static files comes from.
pub enum FileSource {
    Dir(PathBuf),
    Bucket(BucketDir),
}

impl FileSource {
    /// `path` (relative, from the URL), whole or the one byte range asked.
    pub async fn serve(&self, path: &str, headers: &HeaderMap) -> Response {
        match self {
            FileSource::Dir(root) => crate::ostree::static_file(root, path, headers).await,
            FileSource::Bucket(b) => b.serve(path, headers).await,
        }
    }
}

/// The static file trees of a mirror.
#[derive(Default)]
pub struct StaticFiles {
    pub ostree: Option<FileSource>,
    pub disk_images: Option<FileSource>,
}

impl StaticFiles {
    /// The sources `config` names; opens a bucket client when a tree is in
    /// the bucket.
    pub fn from_config(config: &Config) -> anyhow::Result<StaticFiles> {
        let mut files = StaticFiles {
            ostree: config.ostree_repo.clone().map(FileSource::Dir),
            disk_images: config.disk_images.dir.clone().map(FileSource::Dir),
        };
        let Some(s3) = &config.s3 else {
            return Ok(files);
        };
        if s3.ostree_prefix.is_none() && s3.disk_images_prefix.is_none() {
            return Ok(files);
        }
        anyhow::ensure!(
            files.ostree.is_none() || s3.ostree_prefix.is_none(),
            "both `ostree_repo` and `[s3] ostree_prefix` are set; use one"
        );
        anyhow::ensure!(
            files.disk_images.is_none() || s3.disk_images_prefix.is_none(),
            "both `[disk_images] dir` and `[s3] disk_images_prefix` are set; use one"
        );
        let store = crate::storage::open_bucket(s3)?;
        let scratch = s3
            .scratch
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("corral-mirror-scratch"));
        if let Some(p) = &s3.ostree_prefix {
            files.ostree = Some(FileSource::Bucket(BucketDir::new(
                store.clone(),
                p,
                &scratch,
            )));
        }
        if let Some(p) = &s3.disk_images_prefix {
            files.disk_images = Some(FileSource::Bucket(BucketDir::new(store, p, &scratch)));
        }
        Ok(files)
    }
}

/// Size and modification time of an image, modification time of its
/// signature: a cached check is valid while they stay the same.
type Stamp = (u64, SystemTime, Option<SystemTime>);
type Checked = (Stamp, Option<bool>, SignatureState);

/// A tree of files under a key prefix of the bucket.
pub struct BucketDir {
    store: Arc<dyn ObjectBackend>,
    /// Empty or ending in `/`.
    prefix: String,
    /// Where images are downloaded to be checked.
    scratch: PathBuf,
    checked: Mutex<HashMap<String, Checked>>,
}

fn status(s: StatusCode) -> Response {
    (s, s.canonical_reason().unwrap_or("")).into_response()
}

/// Whether `rel` is a plain relative path (no `..`, `.`, empty or absolute
/// parts), as [`crate::ostree::safe_join`] demands of local paths.
fn plain(rel: &str) -> bool {
    !rel.is_empty()
        && rel.split('/').all(|s| !s.is_empty())
        && std::path::Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

impl BucketDir {
    pub fn new(
        store: Arc<dyn ObjectBackend>,
        prefix: &str,
        scratch: impl Into<PathBuf>,
    ) -> BucketDir {
        let prefix = prefix.trim_matches('/');
        BucketDir {
            store,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            scratch: scratch.into(),
            checked: Mutex::new(HashMap::new()),
        }
    }

    /// The key of `rel`, or `None` for a path that could leave the prefix.
    pub fn key(&self, rel: &str) -> Option<Key> {
        if !plain(rel) {
            return None;
        }
        Key::parse(format!("{}{rel}", self.prefix)).ok()
    }

    /// Serves `rel`, whole or one byte range.
    pub async fn serve(&self, rel: &str, headers: &HeaderMap) -> Response {
        let Some(key) = self.key(rel) else {
            return status(StatusCode::NOT_FOUND);
        };
        let range = headers.get("range").and_then(|v| v.to_str().ok());
        let mut opts = GetOptions::default();
        let mut partial = None;
        if let Some(r) = range {
            // The size decides what a range means ("bytes=-100") and whether
            // it is satisfiable, so it comes first.
            let size = match self.store.head(&key).await {
                Ok(m) => m.size,
                Err(e) => return self.failed(&key, e),
            };
            match crate::http::parse_range(r, size) {
                None => {}
                Some(Ok((s, e))) => {
                    opts.range = Some(GetRange::Bounded(s..e + 1));
                    partial = Some((s, e, size));
                }
                Some(Err(())) => {
                    return (
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        [("content-range", format!("bytes */{size}"))],
                    )
                        .into_response()
                }
            }
        }
        let got = match self.store.get_opts(&key, opts).await {
            Ok(g) => g,
            Err(e) => return self.failed(&key, e),
        };
        let len = got.range.end - got.range.start;
        let mut b = Response::builder()
            .header("content-type", "application/octet-stream")
            .header("content-length", len)
            .header("accept-ranges", "bytes");
        b = match partial {
            Some((s, e, size)) => b
                .status(StatusCode::PARTIAL_CONTENT)
                .header("content-range", format!("bytes {s}-{e}/{size}")),
            None => b.status(StatusCode::OK),
        };
        let body = got.into_stream().map_err(std::io::Error::other);
        b.body(Body::from_stream(body))
            .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR))
    }

    fn failed(&self, key: &Key, e: object_store::Error) -> Response {
        if matches!(e, object_store::Error::NotFound { .. }) {
            return status(StatusCode::NOT_FOUND);
        }
        tracing::error!(key = %key, error = %e, "reading a static file from the bucket");
        // The bucket did not answer: a load balancer should try elsewhere.
        status(StatusCode::SERVICE_UNAVAILABLE)
    }

    /// Every object under the prefix, by path relative to it.
    pub async fn list(&self) -> Result<Vec<(String, ObjectMeta)>, BucketFileError> {
        let prefix = Key::from(self.prefix.trim_end_matches('/'));
        let prefix = (!self.prefix.is_empty()).then_some(prefix);
        let metas: Vec<ObjectMeta> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(|source| BucketFileError::List {
                prefix: self.prefix.clone(),
                source,
            })?;
        Ok(self.relative_sorted(metas))
    }

    /// The objects directly in directory `dir` (relative to the prefix),
    /// by path relative to the prefix: one listing of that directory, not
    /// of the whole tree.
    pub async fn list_dir(&self, dir: &str) -> Result<Vec<(String, ObjectMeta)>, BucketFileError> {
        let Some(key) = self.key(dir) else {
            return Ok(Vec::new());
        };
        let listed = self
            .store
            .list_with_delimiter(Some(&key))
            .await
            .map_err(|source| BucketFileError::List {
                prefix: key.to_string(),
                source,
            })?;
        Ok(self.relative_sorted(listed.objects))
    }

    /// Listed objects by path relative to the prefix, sorted by that path.
    fn relative_sorted(&self, metas: Vec<ObjectMeta>) -> Vec<(String, ObjectMeta)> {
        let mut out: Vec<_> = metas
            .into_iter()
            .filter_map(|m| {
                let rel = m.location.as_ref().strip_prefix(self.prefix.as_str())?;
                Some((rel.to_string(), m))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// A small object's bytes; `None` when missing.
    pub async fn read(&self, rel: &str) -> Result<Option<Bytes>, BucketFileError> {
        let Some(key) = self.key(rel) else {
            return Ok(None);
        };
        let err = |source| BucketFileError::Read {
            key: key.to_string(),
            source,
        };
        match self.store.get(&key).await {
            Ok(g) => Ok(Some(g.bytes().await.map_err(err)?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// Downloads `rel` to `dest`; returns its sha256 (hex).
    async fn download(&self, rel: &str, dest: &std::path::Path) -> Result<String, BucketFileError> {
        let key = self.key(rel).ok_or_else(|| BucketFileError::Read {
            key: rel.to_string(),
            source: object_store::Error::InvalidPath {
                source: object_store::path::Error::EmptySegment {
                    path: rel.to_string(),
                },
            },
        })?;
        let read_err = |source| BucketFileError::Read {
            key: key.to_string(),
            source,
        };
        let write_err = |source| BucketFileError::Scratch {
            path: dest.to_path_buf(),
            source,
        };
        let mut stream = self.store.get(&key).await.map_err(read_err)?.into_stream();
        let mut f = tokio::fs::File::create(dest).await.map_err(write_err)?;
        let mut h = Sha256::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(read_err)?;
            h.update(&chunk);
            f.write_all(&chunk).await.map_err(write_err)?;
        }
        f.flush().await.map_err(write_err)?;
        Ok(hex::encode(h.finalize()))
    }

    /// The disk images under the prefix, checked like a local directory's
    /// (hidden keys and sidecars are not images).
    pub async fn disk_images(
        &self,
        keyrings: &[PathBuf],
    ) -> Result<Vec<DiskImage>, BucketFileError> {
        let all = self.list().await?;
        let by_rel: HashMap<&str, &ObjectMeta> = all.iter().map(|(r, m)| (r.as_str(), m)).collect();
        let mut out = Vec::new();
        for (rel, meta) in &all {
            if rel.split('/').any(|s| s.starts_with('.'))
                || crate::disk_images::SIDECARS
                    .iter()
                    .any(|s| rel.ends_with(s))
            {
                continue;
            }
            let sha256 = match by_rel.contains_key(format!("{rel}.sha256").as_str()) {
                true => self
                    .read(&format!("{rel}.sha256"))
                    .await?
                    .and_then(|b| crate::disk_images::parse_sha256(&String::from_utf8_lossy(&b))),
                false => None,
            };
            let sig = [".asc", ".sig"]
                .iter()
                .map(|s| format!("{rel}{s}"))
                .find_map(|s| by_rel.get(s.as_str()).map(|m| (s.clone(), (*m).clone())));
            let modified: SystemTime = meta.last_modified.into();
            let stamp: Stamp = (
                meta.size,
                modified,
                sig.as_ref().map(|(_, m)| m.last_modified.into()),
            );
            let cached = self
                .checked
                .lock()
                .ok()
                .and_then(|c| c.get(rel).filter(|(s, _, _)| *s == stamp).cloned());
            let (matches, signature) = match cached {
                Some((_, m, s)) => (m, s),
                None => {
                    let (m, s) = self
                        .check(rel, sha256.as_deref(), sig.as_ref(), keyrings)
                        .await?;
                    if let Ok(mut c) = self.checked.lock() {
                        c.insert(rel.clone(), (stamp, m, s.clone()));
                    }
                    (m, s)
                }
            };
            out.push(DiskImage {
                url: format!("/disk-images/{rel}"),
                name: rel.clone(),
                size: meta.size,
                modified: modified
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                sha256,
                checksum_matches: matches,
                signature,
            });
        }
        Ok(out)
    }

    /// Checksum match and signature state of one image, downloading it only
    /// when there is something to check it against.
    async fn check(
        &self,
        rel: &str,
        sha256: Option<&str>,
        sig: Option<&(String, ObjectMeta)>,
        keyrings: &[PathBuf],
    ) -> Result<(Option<bool>, SignatureState), BucketFileError> {
        let sig_name = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
        let verify_sig = sig.is_some() && !keyrings.is_empty();
        if sha256.is_none() && !verify_sig {
            let state = match sig {
                Some((s, _)) => SignatureState::NotChecked { file: sig_name(s) },
                None => SignatureState::Unsigned,
            };
            return Ok((None, state));
        }
        let scratch_err = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| BucketFileError::Scratch { path, source }
        };
        tokio::fs::create_dir_all(&self.scratch)
            .await
            .map_err(scratch_err(&self.scratch))?;
        let dir = tempfile::tempdir_in(&self.scratch).map_err(scratch_err(&self.scratch))?;
        // The signature's file name is what the catalog shows, so the
        // copies keep the published names.
        let image = dir.path().join(sig_name(rel));
        let actual = self.download(rel, &image).await?;
        let matches = sha256.map(|want| want == actual);
        let state = match sig {
            None => SignatureState::Unsigned,
            Some((s, _)) if keyrings.is_empty() => SignatureState::NotChecked { file: sig_name(s) },
            Some((s, _)) => {
                let sig_path = dir.path().join(sig_name(s));
                self.download(s, &sig_path).await?;
                let keyrings = keyrings.to_vec();
                let key = s.clone();
                tokio::task::spawn_blocking(move || {
                    crate::disk_images::check(&image, Some(&sig_path), &keyrings)
                })
                .await
                .map_err(|e| BucketFileError::Signature {
                    key: key.clone(),
                    source: e.into(),
                })?
                .map_err(|source| BucketFileError::Signature { key, source })?
            }
        };
        Ok((matches, state))
    }
}

#[cfg(test)]
mod tests;
