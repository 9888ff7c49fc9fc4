//! The S3 backend: every piece of state lives in one bucket (under an
//! optional key prefix), so any number of replicas can share it. Layout:
//!
//! ```text
//! blobs/sha256/<hex>                          content-addressed data (manifests too)
//! repos/<name>/_blobs/<hex>                   the repository has this blob (empty)
//! repos/<name>/_manifests/<hex>               ... this manifest; content: media type
//! repos/<name>/_tags/<tag>                    content: digest
//! repos/<name>/_referrers/<subject>/<hex>     content: descriptor JSON
//! _repos/<name>                               the repository index (empty markers)
//! _repos/.complete                            every repository has its marker
//! uploads/<id>/session.json                   a resumable upload session
//! uploads/<id>/data, uploads/<id>/tail-<n>    its multipart upload and unaligned tail
//! sigstore/<name>/sha256=<hex>/signature-<n>  lookaside signatures
//! readyz/<id>                                 a readiness probe, removed at once
//! _locks/{shared,exclusive}-<random>          the store lock (see lock.rs)
//! ```
//!
//! A blob key only ever holds verified content: uploads are assembled and
//! re-hashed under `uploads/` and then copied to their digest's key, and
//! pull-through downloads are hashed on the replica's scratch disk before
//! they are uploaded. Two writers of the same blob write the same bytes to
//! the same key, so a race is harmless; a writer that finds the blob already
//! there does not store it again.
//!
//! Listings are pages of the bucket's own sorted key index: `tags/list` is
//! a listing of `repos/<name>/_tags/` starting after `last`, and `_catalog`
//! one of `_repos/`. A repository's marker is written before its first
//! manifest link, so the index never misses a repository with a manifest;
//! a marker whose repository has no manifest (a crash between the two, or
//! every manifest deleted) is skipped when listed. A bucket written before
//! the index existed is indexed by the first `_catalog` request.
//!
//! The only local files are the scratch copies of in-flight upstream
//! downloads, which no other replica needs.

pub mod deadline;
pub mod failover;
mod inspect;
mod lock;
mod upload;

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, PutPayload};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

use super::page::Page;
// Named through the module: a `ByteStore` in scope would make every
// `Storage` call on an `S3Storage` (the tests' too) ambiguous.
use super::store::{self as layer, digests};
use super::verify;
use super::{
    BlobReader, LockMode, Result, StagedBlob, Storage, StorageError, StoreGuard, StoredManifest,
};
use crate::name::{Digest, RepoName};

/// What the backend needs from an object store: objects plus the low-level
/// multipart API (an upload session names its multipart upload id, so
/// another replica can continue it).
pub trait ObjectBackend: ObjectStore + MultipartStore {}
impl<T: ObjectStore + MultipartStore> ObjectBackend for T {}

/// A [`Storage`] on an S3-compatible object store.
pub struct S3Storage {
    /// The bucket, every request under a deadline (deadline.rs).
    store: Arc<dyn ObjectBackend>,
    /// The bucket as given, without the deadline.
    raw: Arc<dyn ObjectBackend>,
    /// Key prefix, empty or ending in `/`.
    prefix: String,
    /// Local directory for pull-through downloads being verified.
    scratch: PathBuf,
    /// Serialises the requests of one upload session on this replica.
    /// Lock order: a session's mutex is never held while taking the store
    /// lock; finishing (under the store lock) waits for it at most
    /// `session_wait`.
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    session_wait: std::time::Duration,
    lock_timing: lock::LockTiming,
    /// Repositories whose `_repos/` marker this replica has written.
    indexed: layer::IndexedRepos,
    /// `_repos/.complete` has been seen.
    index_complete: AtomicBool,
}

/// How many manifest checks of a `_catalog` page run at once.
const CATALOG_CHECKS: usize = 16;

pub(crate) fn store_error(e: object_store::Error) -> StorageError {
    StorageError::Io(io::Error::other(e))
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

fn mtime(m: &ObjectMeta) -> SystemTime {
    m.last_modified.into()
}

impl S3Storage {
    /// Wraps an object store; `prefix` scopes every key (so several mirrors
    /// can share a bucket) and `scratch` is created if missing.
    pub fn new(
        store: Arc<dyn ObjectBackend>,
        prefix: &str,
        scratch: impl Into<PathBuf>,
    ) -> io::Result<S3Storage> {
        let scratch = scratch.into();
        std::fs::create_dir_all(&scratch)?;
        let prefix = prefix.trim_matches('/');
        Ok(S3Storage {
            store: Arc::new(deadline::DeadlineStore::new(
                store.clone(),
                deadline::DEFAULT_TIMEOUT,
            )),
            raw: store,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            scratch,
            sessions: Mutex::new(HashMap::new()),
            session_wait: deadline::DEFAULT_TIMEOUT,
            lock_timing: Default::default(),
            indexed: Default::default(),
            index_complete: AtomicBool::new(false),
        })
    }

    /// Overrides how long one request to the bucket may go unanswered
    /// before it fails (tests use short ones).
    pub fn with_request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.store = Arc::new(deadline::DeadlineStore::new(self.raw.clone(), timeout));
        self.session_wait = timeout;
        self
    }

    pub(super) fn key(&self, rel: &str) -> Path {
        Path::from(format!("{}{rel}", self.prefix))
    }

    /// The key's path relative to the prefix.
    fn rel<'k>(&self, key: &'k Path) -> Option<&'k str> {
        key.as_ref().strip_prefix(self.prefix.as_str())
    }

    fn blob_key(&self, d: &Digest) -> Path {
        self.key(&format!("blobs/sha256/{}", d.hex()))
    }

    fn repo_key(&self, repo: &RepoName, rest: &str) -> Path {
        self.key(&format!("repos/{repo}/{rest}"))
    }

    /// Reads a small object; `None` when it is missing.
    async fn read(&self, key: &Path) -> Result<Option<(Bytes, SystemTime)>> {
        match self.store.get(key).await {
            Ok(r) => {
                let t = mtime(&r.meta);
                Ok(Some((r.bytes().await.map_err(store_error)?, t)))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn write(&self, key: &Path, data: impl Into<PutPayload>) -> Result<()> {
        self.store
            .put(key, data.into())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn head(&self, key: &Path) -> Result<Option<ObjectMeta>> {
        match self.store.head(key).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Deletes a key; whether it existed.
    async fn remove(&self, key: &Path) -> Result<bool> {
        let existed = self.head(key).await?.is_some();
        match self.store.delete(key).await {
            Ok(()) => Ok(existed),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Every object under `rel` (a directory, without trailing slash).
    async fn list(&self, rel: &str) -> Result<Vec<ObjectMeta>> {
        let prefix = self.key(rel);
        let mut out: Vec<ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(store_error)?;
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    /// Names (last key segment) and times of the objects under `rel`.
    async fn list_names(&self, rel: &str) -> Result<Vec<(String, SystemTime)>> {
        Ok(self
            .list(rel)
            .await?
            .iter()
            .filter_map(|m| m.location.filename().map(|n| (n.to_string(), mtime(m))))
            .collect())
    }

    /// Repositories (in lexical order) with a key `repos/<name><marker>...`.
    async fn repos_having(&self, markers: &[&str]) -> Result<Vec<RepoName>> {
        let mut repos = BTreeSet::new();
        for m in self.list("repos").await? {
            let Some(rest) = self.rel(&m.location).and_then(|r| r.strip_prefix("repos/")) else {
                continue;
            };
            for marker in markers {
                if let Some((name, _)) = rest.split_once(marker) {
                    if let Some(r) = RepoName::parse(name) {
                        repos.insert(r);
                    }
                }
            }
        }
        Ok(repos.into_iter().collect())
    }

    fn marker_key(&self, repo: &RepoName) -> Path {
        self.key(&format!("_repos/{repo}"))
    }

    /// Repositories with manifests that have no index marker.
    async fn find_unindexed(&self) -> Result<Vec<RepoName>> {
        let mut missing = Vec::new();
        for r in self.repos_having(&["/_manifests/"]).await? {
            if self.head(&self.marker_key(&r)).await?.is_none() {
                missing.push(r);
            }
        }
        Ok(missing)
    }

    /// Writes the given repositories' markers.
    async fn add_to_index(&self, repos: &[RepoName]) -> Result<()> {
        for r in repos {
            self.indexed.forget(r);
            layer::ByteStore::index_repo(self, r).await?;
        }
        Ok(())
    }

    /// Indexes a bucket written before the repository index existed (once;
    /// writers add their markers regardless, so this is safe beside them).
    async fn ensure_repo_index(&self) -> Result<()> {
        if self.index_complete.load(Ordering::Relaxed) {
            return Ok(());
        }
        let complete = self.key("_repos/.complete");
        if self.head(&complete).await?.is_none() {
            let missing = self.find_unindexed().await?;
            self.add_to_index(&missing).await?;
            self.write(&complete, Bytes::new()).await?;
            tracing::info!(repositories = missing.len(), "repository index built");
        }
        self.index_complete.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Whether `repo` has at least one manifest link.
    async fn has_manifests(&self, repo: &RepoName) -> Result<bool> {
        let prefix = self.repo_key(repo, "_manifests");
        match self.store.list(Some(&prefix)).next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(store_error(e)),
        }
    }

    /// The key names under `rel` after `last`, in key order: a listing that
    /// starts where the page does (S3's `start-after`), read only as far as
    /// the caller pulls.
    fn names_after(
        &self,
        rel: &str,
        last: Option<&str>,
    ) -> futures_util::stream::BoxStream<'static, Result<String>> {
        let prefix = self.key(rel);
        let stream = match last {
            Some(l) => self
                .store
                .list_with_offset(Some(&prefix), &self.key(&format!("{rel}/{l}"))),
            None => self.store.list(Some(&prefix)),
        };
        let strip = format!("{prefix}/");
        stream
            .map(move |m| {
                let m = m.map_err(store_error)?;
                Ok(m.location
                    .as_ref()
                    .strip_prefix(strip.as_str())
                    .unwrap_or_default()
                    .to_string())
            })
            .boxed()
    }

    /// Uploads a verified local file as blob `d`, unless it is already there.
    async fn upload_file(&self, file: &std::path::Path, d: &Digest) -> Result<()> {
        let key = self.blob_key(d);
        if self.head(&key).await?.is_some() {
            tracing::info!(digest = %d, "blob already in the bucket; not uploaded again");
            return Ok(());
        }
        let mut f = tokio::fs::File::open(file).await?;
        let mut up = self.store.put_multipart(&key).await.map_err(store_error)?;
        let mut buf = vec![0u8; upload::PART_SIZE];
        let result = async {
            loop {
                let mut filled = 0;
                while filled < buf.len() {
                    let n = f.read(&mut buf[filled..]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                up.put_part(PutPayload::from(Bytes::copy_from_slice(&buf[..filled])))
                    .await
                    .map_err(store_error)?;
                if filled < buf.len() {
                    break;
                }
            }
            up.complete().await.map_err(store_error)?;
            tracing::info!(digest = %d, "blob uploaded to the bucket");
            Ok::<_, StorageError>(())
        }
        .await;
        if let Err(e) = result {
            let _ = up.abort().await;
            // Another writer of the same content finishing first can fail
            // this upload (Garage drops the other uploads of a key when one
            // completes). Its content is verified too: that is success.
            let size = tokio::fs::metadata(file).await?.len();
            if self.head(&key).await?.is_some_and(|m| m.size == size) {
                tracing::info!(digest = %d, "blob stored by another writer meanwhile");
                return Ok(());
            }
            return Err(e);
        }
        Ok(())
    }

    /// Streams an object through sha256.
    async fn hash_object(&self, key: &Path) -> Result<(String, u64)> {
        let mut stream = self
            .store
            .get(key)
            .await
            .map_err(store_error)?
            .into_stream();
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(store_error)?;
            n += chunk.len() as u64;
            h.update(&chunk);
        }
        Ok((hex::encode(h.finalize()), n))
    }
}

impl layer::ByteStore for S3Storage {
    async fn lock(&self, mode: LockMode) -> Result<StoreGuard> {
        self.lock_impl(mode).await
    }

    async fn read_record(&self, rel: &str) -> Result<Option<(Bytes, SystemTime)>> {
        self.read(&self.key(rel)).await
    }

    async fn has_record(&self, rel: &str) -> Result<bool> {
        Ok(self.head(&self.key(rel)).await?.is_some())
    }

    /// Always a new PUT: the object's time is what GC goes by.
    async fn write_record(&self, rel: &str, data: Bytes) -> Result<()> {
        self.write(&self.key(rel), data).await
    }

    async fn create_record(&self, rel: &str, data: Bytes) -> Result<bool> {
        // Not every S3 implementation honours If-None-Match on PUT, so this
        // checks first; two writers racing for one key within a round trip
        // can both succeed, the later one winning.
        let key = self.key(rel);
        if self.head(&key).await?.is_some() {
            return Ok(false);
        }
        self.write(&key, data).await?;
        Ok(true)
    }

    async fn remove_record(&self, rel: &str) -> Result<bool> {
        self.remove(&self.key(rel)).await
    }

    /// A bucket lists every key below `dir`; the layer only lists
    /// directories without subdirectories.
    async fn list_records(&self, dir: &str) -> Result<Vec<(String, SystemTime)>> {
        self.list_names(dir).await
    }

    async fn index_repo(&self, repo: &RepoName) -> Result<()> {
        let key = self.marker_key(repo);
        self.indexed
            .mark(repo, self.write(&key, Bytes::new()))
            .await
    }

    async fn blob_size(&self, d: &Digest) -> Result<Option<u64>> {
        Ok(self.head(&self.blob_key(d)).await?.map(|m| m.size))
    }

    async fn open_blob(&self, d: &Digest, offset: u64) -> Result<Option<(u64, BlobReader)>> {
        let key = self.blob_key(d);
        let Some(meta) = self.head(&key).await? else {
            return Ok(None);
        };
        if offset >= meta.size {
            let empty: BlobReader = Box::pin(tokio::io::empty());
            return Ok(Some((meta.size, empty)));
        }
        let opts = GetOptions {
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            ..Default::default()
        };
        let r = match self.store.get_opts(&key, opts).await {
            Ok(r) => r,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        let stream = r.into_stream().map_err(io::Error::other);
        let reader: BlobReader = Box::pin(tokio_util::io::StreamReader::new(stream));
        Ok(Some((meta.size, reader)))
    }

    async fn put_blob(&self, data: Bytes) -> Result<Digest> {
        let d = verify::digest_of(&data).await?;
        // Content-addressed and verified before the write: a put
        // replaces the same bytes at worst, and refreshes the time GC
        // goes by.
        self.write(&self.blob_key(&d), data).await?;
        Ok(d)
    }

    async fn stage_blob(&self) -> Result<StagedBlob> {
        let path = self.scratch.join(super::random_id());
        let file = tokio::fs::File::create(&path).await?;
        Ok(StagedBlob { path, file })
    }

    async fn install_file(&self, file: &std::path::Path, d: &Digest, _size: u64) -> Result<()> {
        let uploaded = self.upload_file(file, d).await;
        let _ = tokio::fs::remove_file(file).await;
        uploaded
    }

    async fn delete_blob(&self, d: &Digest) -> Result<()> {
        self.remove(&self.blob_key(d)).await?;
        Ok(())
    }

    async fn list_blobs(&self) -> Result<Vec<(Digest, SystemTime)>> {
        Ok(digests(self.list_names("blobs/sha256").await?))
    }

    async fn get_manifest(&self, repo: &RepoName, d: &Digest) -> Result<Option<StoredManifest>> {
        let link = self.repo_key(repo, &format!("_manifests/{}", d.hex()));
        let blob = self.blob_key(d);
        let (link, body) =
            futures_util::future::try_join(self.read(&link), self.read(&blob)).await?;
        let (Some((media_type, _)), Some((body, _))) = (link, body) else {
            return Ok(None);
        };
        Ok(Some(StoredManifest {
            media_type: String::from_utf8_lossy(&media_type).into_owned(),
            body,
        }))
    }

    async fn delete_manifest(&self, repo: &RepoName, d: &Digest) -> Result<bool> {
        let removed = self
            .remove(&self.repo_key(repo, &format!("_manifests/{}", d.hex())))
            .await?;
        for tag in Storage::list_tags(self, repo).await? {
            if let Some((t, _)) = Storage::get_tag(self, repo, &tag).await? {
                if &t == d {
                    self.remove(&self.repo_key(repo, &format!("_tags/{tag}")))
                        .await?;
                }
            }
        }
        for m in self.list(&format!("repos/{repo}/_referrers")).await? {
            if m.location.filename() == Some(d.hex()) {
                self.remove(&m.location).await?;
            }
        }
        Ok(removed)
    }

    async fn tags_after(&self, repo: &RepoName, last: Option<&str>) -> Result<layer::NameStream> {
        Ok(self.names_after(&format!("repos/{repo}/_tags"), last))
    }

    async fn list_repos(&self) -> Result<Vec<RepoName>> {
        // A repository is a name with at least one manifest link.
        self.repos_having(&["/_manifests/"]).await
    }

    async fn repos_page(&self, last: Option<&str>, n: Option<usize>) -> Result<Page<RepoName>> {
        self.ensure_repo_index().await?;
        let names = self.names_after("_repos", last);
        // Checked in key order, a few at a time: markers of
        // repositories without manifests are skipped.
        let checked = names
            .try_filter_map(|name| async move { Ok(RepoName::parse(&name)) })
            .map_ok(|r| async move {
                let has = self.has_manifests(&r).await?;
                Ok::<_, StorageError>(has.then_some(r))
            })
            .try_buffered(n.map_or(CATALOG_CHECKS, |n| (n + 1).clamp(1, CATALOG_CHECKS)));
        Page::of_stream(checked, n).await
    }

    async fn unindexed_repos(&self) -> Result<Vec<RepoName>> {
        self.find_unindexed().await
    }

    async fn index_repos(&self, repos: &[RepoName]) -> Result<()> {
        self.add_to_index(repos).await
    }

    async fn list_linking_repos(&self) -> Result<Vec<RepoName>> {
        self.repos_having(&["/_manifests/", "/_blobs/"]).await
    }

    async fn leftover_temp_files(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut rd = tokio::fs::read_dir(&self.scratch).await?;
        while let Some(e) = rd.next_entry().await? {
            out.push(e.path());
        }
        out.sort();
        Ok(out)
    }

    async fn purge_idle(&self, idle: std::time::Duration, dry_run: bool) -> Result<Vec<String>> {
        let old = |t: SystemTime| SystemTime::now().duration_since(t).unwrap_or_default() > idle;
        let mut out = Vec::new();
        // Sessions of every replica: the newest object of a session is
        // its last activity.
        let mut last: HashMap<String, SystemTime> = HashMap::new();
        for m in self.list("uploads").await? {
            let Some(id) = self
                .rel(&m.location)
                .and_then(|r| r.strip_prefix("uploads/"))
                .and_then(|r| r.split('/').next())
            else {
                continue;
            };
            let t = last.entry(id.to_string()).or_insert(SystemTime::UNIX_EPOCH);
            *t = (*t).max(mtime(&m));
        }
        let mut ids: Vec<_> = last.into_iter().filter(|(_, t)| old(*t)).collect();
        ids.sort();
        for (id, _) in ids {
            out.push(format!("upload session {id}"));
            if !dry_run {
                self.drop_session(&id).await?;
            }
        }
        // This replica's own scratch files.
        let mut rd = tokio::fs::read_dir(&self.scratch).await?;
        while let Some(e) = rd.next_entry().await? {
            if old(e.metadata().await?.modified()?) {
                out.push(format!("temp file {}", e.file_name().to_string_lossy()));
                if !dry_run {
                    let _ = tokio::fs::remove_file(e.path()).await;
                }
            }
        }
        Ok(out)
    }

    async fn probe(&self) -> Result<()> {
        let key = self.key(&format!("readyz/{}", super::random_id()));
        let result = async {
            self.write(&key, Bytes::from_static(super::PROBE_BODY))
                .await?;
            match self.read(&key).await? {
                Some((b, _)) if b == super::PROBE_BODY => Ok(()),
                _ => Err(super::probe_mismatch(key.as_ref())),
            }
        }
        .await;
        let _ = self.store.delete(&key).await;
        result
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::name::Reference;

    pub(super) fn memory_store(dir: &std::path::Path) -> S3Storage {
        S3Storage::new(
            Arc::new(object_store::memory::InMemory::new()),
            "mirror",
            dir.join("scratch"),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn pages_of_tags_and_repositories_come_from_key_listings() {
        let dir = tempfile::tempdir().unwrap();
        let bucket: Arc<dyn ObjectBackend> = Arc::new(object_store::memory::InMemory::new());
        let st = S3Storage::new(bucket.clone(), "mirror", dir.path().join("s")).unwrap();
        let mut want = Vec::new();
        for repo in ["z", "a/b", "a-c", "a"] {
            let repo = RepoName::parse(repo).unwrap();
            let m = st
                .put_manifest(&repo, "application/x-test", Bytes::from(repo.to_string()))
                .await
                .unwrap();
            if repo.as_str() == "a" {
                for i in 0..25 {
                    let tag = format!("t{i:02}");
                    st.set_tag(&repo, &tag, &m).await.unwrap();
                    want.push(tag);
                }
            }
        }
        let a = RepoName::parse("a").unwrap();
        let p = st.tags_page(&a, None, Some(10)).await.unwrap();
        assert_eq!((p.items, p.more), (want[..10].to_vec(), true));
        let p = st.tags_page(&a, Some("t19"), Some(10)).await.unwrap();
        assert_eq!((p.items, p.more), (want[20..].to_vec(), false));
        assert_eq!(st.tags_page(&a, None, None).await.unwrap().items, want);

        let names = |p: Page<RepoName>| -> (Vec<String>, bool) {
            (p.items.iter().map(|r| r.to_string()).collect(), p.more)
        };
        let all: Vec<String> = ["a", "a-c", "a/b", "z"].map(String::from).to_vec();
        assert_eq!(
            names(st.repos_page(None, None).await.unwrap()),
            (all.clone(), false)
        );
        assert_eq!(
            names(st.repos_page(Some("a-c"), Some(1)).await.unwrap()),
            (vec!["a/b".to_string()], true)
        );
        // A marker without manifests is skipped.
        st.write(&st.key("_repos/ghost"), Bytes::new())
            .await
            .unwrap();
        assert_eq!(
            names(st.repos_page(Some("a/b"), None).await.unwrap()),
            (vec!["z".to_string()], false)
        );

        // A bucket written before the index: indexed by the first listing
        // of a fresh replica; fsck sees nothing missing afterwards.
        for k in ["_repos/a", "_repos/a/b", "_repos/.complete"] {
            bucket.delete(&st.key(k)).await.unwrap();
        }
        let fresh = S3Storage::new(bucket.clone(), "mirror", dir.path().join("s2")).unwrap();
        assert_eq!(fresh.unindexed_repos().await.unwrap().len(), 2);
        assert_eq!(
            names(fresh.repos_page(None, None).await.unwrap()),
            (all, false)
        );
        assert!(fresh.unindexed_repos().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn blobs_manifests_tags() {
        let dir = tempfile::tempdir().unwrap();
        let st = memory_store(dir.path());
        let repo = RepoName::parse("a/b").unwrap();
        let d = st.put_blob(Bytes::from_static(b"layer")).await.unwrap();
        assert_eq!(st.blob_size(&d).await.unwrap(), Some(5));
        let (size, mut r) = st.open_blob(&d, 2).await.unwrap().unwrap();
        let mut rest = String::new();
        r.read_to_string(&mut rest).await.unwrap();
        assert_eq!((size, rest.as_str()), (5, "yer"));
        st.link_blob(&repo, &d).await.unwrap();
        assert!(st.has_blob_link(&repo, &d).await.unwrap());

        let m = st
            .put_manifest(&repo, "application/x-test", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        st.set_tag(&repo, "v1", &m).await.unwrap();
        let found = st
            .resolve_manifest(&repo, &Reference::Tag("v1".into()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.digest, m);
        assert_eq!(found.manifest.media_type, "application/x-test");
        assert!(found.tagged_at.is_some());
        assert_eq!(st.list_tags(&repo).await.unwrap(), vec!["v1".to_string()]);
        assert_eq!(st.list_repos().await.unwrap(), vec![repo.clone()]);
        let mut blobs: Vec<_> = st
            .list_blobs()
            .await
            .unwrap()
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        blobs.sort();
        let mut want = vec![d.clone(), m.clone()];
        want.sort();
        assert_eq!(blobs, want);

        let referrer = st
            .put_manifest(
                &repo,
                "application/x-sig",
                Bytes::from_static(b"{\"sig\":1}"),
            )
            .await
            .unwrap();
        st.add_referrer(
            &repo,
            &m,
            &referrer,
            serde_json::json!({"digest": referrer.to_string()}),
        )
        .await
        .unwrap();
        assert_eq!(st.list_referrers(&repo, &m).await.unwrap().len(), 1);
        // Deleting a manifest takes it out of the referrers lists ...
        assert!(st.delete_manifest(&repo, &referrer).await.unwrap());
        assert!(st.list_referrers(&repo, &m).await.unwrap().is_empty());
        // ... and its tags with it.
        assert!(st.delete_manifest(&repo, &m).await.unwrap());
        assert!(!st.delete_manifest(&repo, &m).await.unwrap());
        assert!(
            st.list_tags(&repo).await.unwrap().is_empty(),
            "the tag went with it"
        );
        assert!(st.list_repos().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn staged_blob_is_verified() {
        let dir = tempfile::tempdir().unwrap();
        let st = memory_store(dir.path());
        let staged = st.stage_blob().await.unwrap();
        drop(staged.file);
        std::fs::write(&staged.path, b"upstream bytes").unwrap();
        let wrong = Digest::of_bytes(b"other");
        assert!(matches!(
            st.commit_staged(staged.path.clone(), &wrong, None).await,
            Err(StorageError::DigestMismatch { .. })
        ));
        assert_eq!(st.blob_size(&wrong).await.unwrap(), None);
        assert!(st.leftover_temp_files().await.unwrap().is_empty());

        let staged = st.stage_blob().await.unwrap();
        drop(staged.file);
        std::fs::write(&staged.path, b"upstream bytes").unwrap();
        let right = Digest::of_bytes(b"upstream bytes");
        st.commit_staged(staged.path, &right, None).await.unwrap();
        assert_eq!(st.blob_size(&right).await.unwrap(), Some(14));
        assert!(st.leftover_temp_files().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn signatures_are_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let st = memory_store(dir.path());
        let repo = RepoName::parse("a").unwrap();
        let hex = "a".repeat(64);
        assert_eq!(st.get_signature(&repo, &hex, 1).await.unwrap(), None);
        assert!(st
            .put_signature(&repo, &hex, 1, Bytes::from_static(b"one"))
            .await
            .unwrap());
        assert!(!st
            .put_signature(&repo, &hex, 1, Bytes::from_static(b"two"))
            .await
            .unwrap());
        assert_eq!(
            st.get_signature(&repo, &hex, 1).await.unwrap().as_deref(),
            Some(&b"one"[..])
        );
    }
}
