//! The filesystem backend. Layout under the root:
//!
//! ```text
//! blobs/sha256/<2 hex>/<hex>          content-addressed data (manifests too)
//! repos/<name>/_blobs/<hex>           the repository has this blob
//! repos/<name>/_manifests/<hex>       ... this manifest; content: media type
//! repos/<name>/_tags/<tag>            content: digest
//! repos/<name>/_referrers/<subject hex>/<hex>   content: descriptor JSON
//! uploads/<id>/{data,repo}            resumable upload sessions
//! repos/_index/<name with / as +>      the repository index (fs_index.rs)
//! tmp/                                temporary files, renamed into blobs/
//! locks/{gate,store}                  flock(2) files of the store lock (see lock.rs)
//! ```
//!
//! Name components never start with `_`, so the link directories cannot
//! collide with repository names.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncSeekExt;

use super::durable;
use super::fs_index::{self, DirCache};
use super::page::Page;
use super::upload::UploadState;
use super::{
    BlobReader, ByteStream, FreeSpace, ResolvedManifest, Result, StagedBlob, Storage, StorageError,
    StoredManifest, UploadStatus,
};
use crate::name::{Digest, Reference, RepoName};

/// The read size of a blob GET's body.
const BLOB_CHUNK: u64 = 1 << 20;

/// A [`Storage`] on a local directory.
pub struct FsStorage {
    root: PathBuf,
    /// In-memory state of open upload sessions (running hash); rebuilt from
    /// disk after a restart.
    pub(super) uploads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<UploadState>>>>,
    /// Sorted tag and repository listings (see fs_index.rs).
    listings: Arc<DirCache>,
    /// Repositories whose index marker this process has seen written.
    indexed: Mutex<HashSet<RepoName>>,
}

pub(super) fn random_id() -> String {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).expect("system random source");
    hex::encode(b)
}

impl FsStorage {
    /// Opens (and creates) a storage root.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<FsStorage> {
        let root = root.into();
        for d in ["blobs/sha256", "repos", "uploads", "tmp"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        let tmp = root.join("tmp");
        fs_index::ensure_repo_index(&root, || tmp.join(random_id())).map_err(|e| match e {
            StorageError::Io(e) => e,
            e => io::Error::other(e),
        })?;
        Ok(FsStorage {
            root,
            uploads: Mutex::new(HashMap::new()),
            listings: Arc::default(),
            indexed: Mutex::new(HashSet::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn blob_path(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.root.join("blobs/sha256").join(&hex[..2]).join(hex)
    }

    fn repo_dir(&self, repo: &RepoName) -> PathBuf {
        self.root.join("repos").join(repo.as_str())
    }

    pub(super) fn upload_dir(&self, id: &str) -> Option<PathBuf> {
        (id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit()))
            .then(|| self.root.join("uploads").join(id))
    }

    pub(super) fn tmp_path(&self) -> PathBuf {
        self.root.join("tmp").join(random_id())
    }

    /// Writes a small metadata file (link, tag, referrer) atomically and
    /// durably; identical content is only touched, so it needs no space.
    async fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<()> {
        let (tmp, dest, data) = (self.tmp_path(), path.to_path_buf(), data.to_vec());
        blocking(move || durable::replace_if_changed(&tmp, &dest, &data).map(drop)).await
    }

    /// Moves a complete, fsynced, verified file of `size` bytes to `d`'s
    /// place. A blob already there is kept when it has that size (its mtime
    /// refreshed, so a GC racing this push sees it as young); a damaged one,
    /// such as the empty file an earlier version left on a full disk, is
    /// replaced instead of trusted. On error `from` is removed.
    pub(super) async fn install_blob(&self, from: &Path, d: &Digest, size: u64) -> Result<()> {
        let (from, dest) = (from.to_path_buf(), self.blob_path(d));
        blocking(move || {
            match std::fs::metadata(&dest) {
                Ok(m) if m.len() == size => {
                    let _ = std::fs::remove_file(&from);
                    return durable::touch(&dest);
                }
                Ok(m) => tracing::warn!(
                    path = %dest.display(),
                    stored = m.len(),
                    expected = size,
                    "stored blob has the wrong size; replacing it"
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    let _ = std::fs::remove_file(&from);
                    return Err(durable::error_at("reading", &dest, e));
                }
            }
            durable::rename_into_place(&from, &dest)
        })
        .await
    }

    /// Makes sure `repo` has its marker in the repository index before
    /// anything of it is linked (fs_index.rs).
    async fn index_repo(&self, repo: &RepoName) -> Result<()> {
        if self.indexed.lock().expect("index lock").contains(repo) {
            return Ok(());
        }
        let (root, tmp, r) = (self.root.clone(), self.tmp_path(), repo.clone());
        blocking(move || fs_index::write_marker(&root, &tmp, &r)).await?;
        self.indexed
            .lock()
            .expect("index lock")
            .insert(repo.clone());
        Ok(())
    }

    /// The repository's tags, sorted, from the listing cache.
    async fn sorted_tags(&self, repo: &RepoName) -> Result<Arc<Vec<String>>> {
        let (cache, dir) = (self.listings.clone(), self.repo_dir(repo).join("_tags"));
        blocking(move || {
            Ok(cache.sorted_names(&dir, |n| crate::name::valid_tag(n).then(|| n.to_string()))?)
        })
        .await
    }

    /// Repositories with manifests that have no index marker.
    async fn find_unindexed(&self) -> Result<Vec<RepoName>> {
        let root = self.root.clone();
        blocking(move || Ok(fs_index::missing_markers(&root)?)).await
    }

    /// Writes the missing markers [`FsStorage::unindexed_repos`] finds.
    async fn add_to_index(&self, repos: &[RepoName]) -> Result<()> {
        for r in repos {
            self.indexed.lock().expect("index lock").remove(r);
            self.index_repo(r).await?;
        }
        let root = self.root.clone();
        let tmp = root.join("tmp");
        blocking(move || fs_index::ensure_repo_index(&root, || tmp.join(random_id())).map(drop))
            .await
    }

    async fn exists(path: &Path) -> io::Result<bool> {
        tokio::fs::try_exists(path).await
    }

    async fn remove_if_exists(path: &Path) -> io::Result<bool> {
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Repositories (in lexical order) whose directory has one of `markers`.
    async fn repos_having(&self, markers: &[&str]) -> Result<Vec<RepoName>> {
        let base = self.root.join("repos");
        let mut out = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(prefix) = stack.pop() {
            let dir = if prefix.is_empty() {
                base.clone()
            } else {
                base.join(&prefix)
            };
            for (n, _) in Self::read_dir_names(&dir).await? {
                if n.starts_with('_') {
                    continue;
                }
                let full = if prefix.is_empty() {
                    n.clone()
                } else {
                    format!("{prefix}/{n}")
                };
                let p = base.join(&full);
                if !tokio::fs::metadata(&p)
                    .await
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
                {
                    continue;
                }
                let mut has = false;
                for m in markers {
                    has = has || Self::exists(&p.join(m)).await?;
                }
                if has {
                    if let Some(r) = RepoName::parse(&full) {
                        out.push(r);
                    }
                }
                stack.push(full);
            }
        }
        out.sort();
        Ok(out)
    }

    async fn read_dir_names(dir: &Path) -> io::Result<Vec<(String, SystemTime)>> {
        let mut out = Vec::new();
        let mut rd = match tokio::fs::read_dir(dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        while let Some(e) = rd.next_entry().await? {
            // An entry removed since the directory was read (a finished
            // upload, a renamed temporary file) is simply not listed.
            let mtime = match e.metadata().await {
                Ok(m) => m.modified()?,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    return Err(io::Error::new(
                        err.kind(),
                        format!("reading {}: {err}", e.path().display()),
                    ))
                }
            };
            if let Some(n) = e.file_name().to_str() {
                out.push((n.to_string(), mtime));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

fn digests(names: Vec<(String, SystemTime)>) -> Vec<(Digest, SystemTime)> {
    names
        .into_iter()
        .filter_map(|(n, t)| Digest::from_hex(&n).map(|d| (d, t)))
        .collect()
}

impl Storage for FsStorage {
    fn lock(&self, mode: super::LockMode) -> BoxFuture<'_, Result<super::StoreGuard>> {
        super::lock::lock_dir(self.root.clone(), mode).boxed()
    }

    fn blob_size<'a>(&'a self, d: &'a Digest) -> BoxFuture<'a, Result<Option<u64>>> {
        async move {
            match tokio::fs::metadata(self.blob_path(d)).await {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        .boxed()
    }

    fn open_blob<'a>(
        &'a self,
        d: &'a Digest,
        offset: u64,
    ) -> BoxFuture<'a, Result<Option<(u64, BlobReader)>>> {
        async move {
            let mut f = match tokio::fs::File::open(self.blob_path(d)).await {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let size = f.metadata().await?.len();
            if offset > 0 {
                f.seek(io::SeekFrom::Start(offset)).await?;
            }
            Ok(Some((size, Box::pin(f) as BlobReader)))
        }
        .boxed()
    }

    fn blob_stream<'a>(
        &'a self,
        d: &'a Digest,
        offset: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<Option<ByteStream>>> {
        async move {
            let path = self.blob_path(d);
            let file = match blocking(move || Ok(std::fs::File::open(path))).await? {
                Ok(f) => Arc::new(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            // Positioned reads of BLOB_CHUNK straight into the buffers the
            // body sends (no copy through an intermediate buffer as
            // tokio::fs::File makes), the next chunk read while this one is
            // written to the socket.
            let chunks = (0..len.div_ceil(BLOB_CHUNK)).map(move |i| {
                let start = offset + i * BLOB_CHUNK;
                (start, BLOB_CHUNK.min(offset + len - start) as usize)
            });
            let stream = futures_util::stream::iter(chunks)
                .map(move |(start, n)| {
                    let file = file.clone();
                    async move {
                        tokio::task::spawn_blocking(move || {
                            let mut buf = vec![0u8; n];
                            std::os::unix::fs::FileExt::read_exact_at(&*file, &mut buf, start)?;
                            Ok(Bytes::from(buf))
                        })
                        .await
                        .map_err(io::Error::other)?
                    }
                })
                .buffered(2);
            Ok(Some(stream.boxed()))
        }
        .boxed()
    }

    fn put_blob<'a>(&'a self, data: Bytes) -> BoxFuture<'a, Result<Digest>> {
        async move {
            let d = {
                let data = data.clone();
                tokio::task::spawn_blocking(move || Digest::of_bytes(&data))
                    .await
                    .map_err(io::Error::other)?
            };
            let (tmp, dest) = (self.tmp_path(), self.blob_path(&d));
            blocking(move || {
                // These are small (manifests): a stored copy is compared
                // byte for byte, and only rewritten when it differs.
                match std::fs::metadata(&dest) {
                    Ok(m) if m.len() == data.len() as u64 => match std::fs::read(&dest) {
                        Ok(old) if old == data => return durable::touch(&dest),
                        Ok(_) => {}
                        Err(e) => return Err(durable::error_at("reading", &dest, e)),
                    },
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(durable::error_at("reading", &dest, e)),
                }
                if dest.exists() {
                    tracing::warn!(path = %dest.display(), "stored blob is damaged; replacing it");
                }
                durable::replace_file(&tmp, &dest, &data)
            })
            .await?;
            Ok(d)
        }
        .boxed()
    }

    fn stage_blob(&self) -> BoxFuture<'_, Result<StagedBlob>> {
        async move {
            let path = self.tmp_path();
            let file = tokio::fs::File::create(&path).await?;
            Ok(StagedBlob { path, file })
        }
        .boxed()
    }

    fn commit_staged<'a>(
        &'a self,
        staged: PathBuf,
        expected: &'a Digest,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let p = staged.clone();
            let hashed = blocking(move || {
                let at = |e| durable::error_at("syncing", &p, e);
                let mut f = std::fs::File::open(&p).map_err(at)?;
                f.sync_all().map_err(at)?;
                let mut h = Sha256::new();
                let size = io::copy(&mut f, &mut h).map_err(at)?;
                Ok((hex::encode(h.finalize()), size))
            })
            .await;
            let (actual, size) = match hashed {
                Ok(v) => v,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&staged).await;
                    return Err(e);
                }
            };
            if actual != expected.hex() {
                let _ = tokio::fs::remove_file(&staged).await;
                return Err(StorageError::DigestMismatch {
                    expected: expected.to_string(),
                    actual: format!("sha256:{actual}"),
                });
            }
            self.install_blob(&staged, expected, size).await
        }
        .boxed()
    }

    fn delete_blob<'a>(&'a self, d: &'a Digest) -> BoxFuture<'a, Result<()>> {
        async move {
            Self::remove_if_exists(&self.blob_path(d)).await?;
            Ok(())
        }
        .boxed()
    }

    fn list_blobs(&self) -> BoxFuture<'_, Result<Vec<(Digest, SystemTime)>>> {
        async move {
            let mut out = Vec::new();
            let base = self.root.join("blobs/sha256");
            for (prefix, _) in Self::read_dir_names(&base).await? {
                out.extend(digests(Self::read_dir_names(&base.join(prefix)).await?));
            }
            Ok(out)
        }
        .boxed()
    }

    fn link_blob<'a>(&'a self, repo: &'a RepoName, d: &'a Digest) -> BoxFuture<'a, Result<()>> {
        async move {
            let p = self.repo_dir(repo).join("_blobs").join(d.hex());
            // An existing link is made young again (touched): the push that
            // relies on it must not lose it to a GC that finds it old.
            self.write_atomic(&p, b"").await?;
            Ok(())
        }
        .boxed()
    }

    fn has_blob_link<'a>(
        &'a self,
        repo: &'a RepoName,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<bool>> {
        async move { Ok(Self::exists(&self.repo_dir(repo).join("_blobs").join(d.hex())).await?) }
            .boxed()
    }

    fn unlink_blob<'a>(&'a self, repo: &'a RepoName, d: &'a Digest) -> BoxFuture<'a, Result<bool>> {
        async move {
            Ok(Self::remove_if_exists(&self.repo_dir(repo).join("_blobs").join(d.hex())).await?)
        }
        .boxed()
    }

    fn list_blob_links<'a>(
        &'a self,
        repo: &'a RepoName,
    ) -> BoxFuture<'a, Result<Vec<(Digest, SystemTime)>>> {
        async move {
            let names = Self::read_dir_names(&self.repo_dir(repo).join("_blobs")).await?;
            Ok(digests(names))
        }
        .boxed()
    }

    fn put_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        media_type: &'a str,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Digest>> {
        async move {
            let d = self.put_blob(body).await?;
            // The index marker first: a crash before the link leaves a
            // marker that listings skip, never a repository they miss.
            self.index_repo(repo).await?;
            // The link only after the content is durable: a crash between the
            // two leaves an unreferenced blob (for GC), never a dangling link.
            self.write_atomic(
                &self.repo_dir(repo).join("_manifests").join(d.hex()),
                media_type.as_bytes(),
            )
            .await?;
            Ok(d)
        }
        .boxed()
    }

    fn get_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<Option<StoredManifest>>> {
        async move {
            let link = self.repo_dir(repo).join("_manifests").join(d.hex());
            let media_type = match tokio::fs::read_to_string(&link).await {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            match tokio::fs::read(self.blob_path(d)).await {
                Ok(body) => Ok(Some(StoredManifest {
                    media_type,
                    body: body.into(),
                })),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        .boxed()
    }

    fn resolve_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        r: &'a Reference,
    ) -> BoxFuture<'a, Result<Option<ResolvedManifest>>> {
        // One blocking task for tag, link and body instead of one per file.
        let dir = self.repo_dir(repo);
        let blobs = self.root.join("blobs/sha256");
        let r = r.clone();
        async move {
            let found =
                tokio::task::spawn_blocking(move || -> io::Result<Option<ResolvedManifest>> {
                    let missing = |e: io::Error| {
                        if e.kind() == io::ErrorKind::NotFound {
                            Ok(None)
                        } else {
                            Err(e)
                        }
                    };
                    let (digest, tagged_at) = match r {
                        Reference::Digest(d) => (d, None),
                        Reference::Tag(t) => {
                            let p = dir.join("_tags").join(t);
                            let mut f = match std::fs::File::open(&p) {
                                Ok(f) => f,
                                Err(e) => return missing(e),
                            };
                            let mtime = f.metadata()?.modified()?;
                            let mut s = String::new();
                            io::Read::read_to_string(&mut f, &mut s)?;
                            match s.trim().parse::<Digest>() {
                                Ok(d) => (d, Some(mtime)),
                                Err(_) => return Ok(None),
                            }
                        }
                    };
                    let media_type =
                        match std::fs::read_to_string(dir.join("_manifests").join(digest.hex())) {
                            Ok(m) => m,
                            Err(e) => return missing(e),
                        };
                    let body =
                        match std::fs::read(blobs.join(&digest.hex()[..2]).join(digest.hex())) {
                            Ok(b) => b,
                            Err(e) => return missing(e),
                        };
                    Ok(Some(ResolvedManifest {
                        digest,
                        manifest: StoredManifest {
                            media_type,
                            body: body.into(),
                        },
                        tagged_at,
                    }))
                })
                .await
                .map_err(io::Error::other)??;
            Ok(found)
        }
        .boxed()
    }

    fn delete_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<bool>> {
        async move {
            let removed =
                Self::remove_if_exists(&self.repo_dir(repo).join("_manifests").join(d.hex()))
                    .await?;
            // Tags pointing at it go too.
            let want = d.to_string();
            for tag in self.list_tags(repo).await? {
                let p = self.repo_dir(repo).join("_tags").join(&tag);
                if tokio::fs::read_to_string(&p).await.ok().as_deref() == Some(want.as_str()) {
                    Self::remove_if_exists(&p).await?;
                }
            }
            // As do its entries in any referrers list.
            let refdir = self.repo_dir(repo).join("_referrers");
            for (subject, _) in Self::read_dir_names(&refdir).await? {
                Self::remove_if_exists(&refdir.join(subject).join(d.hex())).await?;
            }
            Ok(removed)
        }
        .boxed()
    }

    fn list_manifests<'a>(
        &'a self,
        repo: &'a RepoName,
    ) -> BoxFuture<'a, Result<Vec<(Digest, SystemTime)>>> {
        async move {
            Ok(digests(
                Self::read_dir_names(&self.repo_dir(repo).join("_manifests")).await?,
            ))
        }
        .boxed()
    }

    fn set_tag<'a>(
        &'a self,
        repo: &'a RepoName,
        tag: &'a str,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            self.write_atomic(
                &self.repo_dir(repo).join("_tags").join(tag),
                d.to_string().as_bytes(),
            )
            .await?;
            Ok(())
        }
        .boxed()
    }

    fn get_tag<'a>(
        &'a self,
        repo: &'a RepoName,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Digest, SystemTime)>>> {
        async move {
            let p = self.repo_dir(repo).join("_tags").join(tag);
            let s = match tokio::fs::read_to_string(&p).await {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let mtime = tokio::fs::metadata(&p).await?.modified()?;
            Ok(s.trim().parse().ok().map(|d| (d, mtime)))
        }
        .boxed()
    }

    fn touch_tag<'a>(&'a self, repo: &'a RepoName, tag: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            if let Some((d, _)) = self.get_tag(repo, tag).await? {
                self.set_tag(repo, tag, &d).await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn delete_tag<'a>(&'a self, repo: &'a RepoName, tag: &'a str) -> BoxFuture<'a, Result<bool>> {
        async move { Ok(Self::remove_if_exists(&self.repo_dir(repo).join("_tags").join(tag)).await?) }.boxed()
    }

    fn list_tags<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<Vec<String>>> {
        async move { Ok(self.sorted_tags(repo).await?.to_vec()) }.boxed()
    }

    fn tags_page<'a>(
        &'a self,
        repo: &'a RepoName,
        last: Option<&'a str>,
        n: Option<usize>,
    ) -> BoxFuture<'a, Result<Page<String>>> {
        async move { Ok(Page::of_sorted(&self.sorted_tags(repo).await?, last, n)) }.boxed()
    }

    fn repos_page<'a>(
        &'a self,
        last: Option<&'a str>,
        n: Option<usize>,
    ) -> BoxFuture<'a, Result<Page<RepoName>>> {
        let (cache, root) = (self.listings.clone(), self.root.clone());
        let last = last.map(str::to_string);
        blocking(move || fs_index::repos_page(&cache, &root, last.as_deref(), n)).boxed()
    }

    fn add_referrer<'a>(
        &'a self,
        repo: &'a RepoName,
        subject: &'a Digest,
        referrer: &'a Digest,
        descriptor: serde_json::Value,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let p = self
                .repo_dir(repo)
                .join("_referrers")
                .join(subject.hex())
                .join(referrer.hex());
            self.write_atomic(&p, descriptor.to_string().as_bytes())
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn remove_referrer<'a>(
        &'a self,
        repo: &'a RepoName,
        subject: &'a Digest,
        referrer: &'a Digest,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            Self::remove_if_exists(
                &self
                    .repo_dir(repo)
                    .join("_referrers")
                    .join(subject.hex())
                    .join(referrer.hex()),
            )
            .await?;
            Ok(())
        }
        .boxed()
    }

    fn list_referrers<'a>(
        &'a self,
        repo: &'a RepoName,
        subject: &'a Digest,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>>> {
        async move {
            let dir = self.repo_dir(repo).join("_referrers").join(subject.hex());
            let mut out = Vec::new();
            for (n, _) in Self::read_dir_names(&dir).await? {
                if let Ok(bytes) = tokio::fs::read(dir.join(n)).await {
                    if let Ok(v) = serde_json::from_slice(&bytes) {
                        out.push(v);
                    }
                }
            }
            Ok(out)
        }
        .boxed()
    }

    fn list_repos(&self) -> BoxFuture<'_, Result<Vec<RepoName>>> {
        self.repos_having(&["_manifests"]).boxed()
    }

    fn unindexed_repos(&self) -> BoxFuture<'_, Result<Vec<RepoName>>> {
        self.find_unindexed().boxed()
    }

    fn index_repos<'a>(&'a self, repos: &'a [RepoName]) -> BoxFuture<'a, Result<()>> {
        self.add_to_index(repos).boxed()
    }

    fn list_linking_repos(&self) -> BoxFuture<'_, Result<Vec<RepoName>>> {
        self.repos_having(&["_manifests", "_blobs"]).boxed()
    }

    fn get_signature<'a>(
        &'a self,
        repo: &'a RepoName,
        hex: &'a str,
        n: u32,
    ) -> BoxFuture<'a, Result<Option<Bytes>>> {
        async move {
            let file = crate::lookaside::signature_dir(&self.root, repo.as_str(), hex)
                .join(format!("signature-{n}"));
            match tokio::fs::read(&file).await {
                Ok(data) => Ok(Some(data.into())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
        .boxed()
    }

    fn put_signature<'a>(
        &'a self,
        repo: &'a RepoName,
        hex: &'a str,
        n: u32,
        data: Bytes,
    ) -> BoxFuture<'a, Result<bool>> {
        async move {
            // hard_link is the atomic create-if-absent.
            let dir = crate::lookaside::signature_dir(&self.root, repo.as_str(), hex);
            let tmp = dir.join(format!(".tmp-{}", random_id()));
            let dest = dir.join(format!("signature-{n}"));
            blocking(move || {
                durable::create_dirs(&dir)?;
                durable::write_new(&tmp, &data)?;
                let linked = std::fs::hard_link(&tmp, &dest);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => durable::sync_dir(&dir).map(|()| true),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(durable::error_at("linking", &dest, e)),
                }
            })
            .await
        }
        .boxed()
    }

    fn upload_start<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<String>> {
        self.upload_start_impl(repo).boxed()
    }

    fn upload_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<UploadStatus>> {
        self.upload_status_impl(id).boxed()
    }

    fn upload_append<'a>(
        &'a self,
        id: &'a str,
        start: Option<u64>,
        body: ByteStream,
        limit: u64,
    ) -> BoxFuture<'a, Result<Result<u64, u64>>> {
        self.upload_append_impl(id, start, body, limit).boxed()
    }

    fn upload_finish<'a>(&'a self, id: &'a str, expected: &'a Digest) -> BoxFuture<'a, Result<()>> {
        self.upload_finish_impl(id, expected).boxed()
    }

    fn upload_cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        self.upload_cancel_impl(id).boxed()
    }

    fn free_space(&self) -> BoxFuture<'_, Result<Option<FreeSpace>>> {
        let root = self.root.clone();
        blocking(move || {
            FreeSpace::of(&root)
                .map(Some)
                .map_err(|e| durable::error_at("statvfs", &root, e))
        })
        .boxed()
    }

    fn leftover_temp_files(&self) -> BoxFuture<'_, Result<Vec<PathBuf>>> {
        async move {
            let tmp = self.root.join("tmp");
            Ok(Self::read_dir_names(&tmp)
                .await?
                .into_iter()
                .map(|(n, _)| tmp.join(n))
                .collect())
        }
        .boxed()
    }

    fn purge_idle<'a>(
        &'a self,
        idle: std::time::Duration,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        async move {
            let old =
                |t: SystemTime| SystemTime::now().duration_since(t).unwrap_or_default() > idle;
            let mut out = Vec::new();
            let uploads = self.root.join("uploads");
            for (id, _) in Self::read_dir_names(&uploads).await? {
                // The data file's mtime is the session's last activity.
                let mtime = match tokio::fs::metadata(uploads.join(&id).join("data")).await {
                    Ok(m) => m.modified()?,
                    Err(_) => match tokio::fs::metadata(uploads.join(&id)).await {
                        Ok(m) => m.modified()?,
                        // Finished or cancelled meanwhile.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e.into()),
                    },
                };
                if old(mtime) {
                    out.push(format!("upload session {id}"));
                    if !dry_run {
                        self.uploads.lock().expect("uploads lock").remove(&id);
                        let _ = tokio::fs::remove_dir_all(uploads.join(&id)).await;
                    }
                }
            }
            let tmp = self.root.join("tmp");
            for (name, mtime) in Self::read_dir_names(&tmp).await? {
                if old(mtime) {
                    out.push(format!("temp file {name}"));
                    if !dry_run {
                        Self::remove_if_exists(&tmp.join(name)).await?;
                    }
                }
            }
            Ok(out)
        }
        .boxed()
    }

    fn scan_links(&self) -> BoxFuture<'_, Result<Vec<super::LinkFile>>> {
        self.scan_links_impl().boxed()
    }

    fn remove_link_file<'a>(&'a self, link: &'a super::LinkFile) -> BoxFuture<'a, Result<bool>> {
        self.remove_link_file_impl(link).boxed()
    }

    fn list_upload_sessions(&self) -> BoxFuture<'_, Result<Vec<super::UploadSessionInfo>>> {
        self.list_upload_sessions_impl().boxed()
    }

    fn remove_upload_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>> {
        self.remove_upload_session_impl(id).boxed()
    }

    fn list_temp_files(&self) -> BoxFuture<'_, Result<Vec<super::TempFile>>> {
        self.list_temp_files_impl().boxed()
    }

    fn remove_temp_file<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<bool>> {
        self.remove_temp_file_impl(path).boxed()
    }

    fn probe(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let path = self
                .root
                .join("tmp")
                .join(format!("readyz-{}", random_id()));
            let result = async {
                tokio::fs::write(&path, super::PROBE_BODY).await?;
                if tokio::fs::read(&path).await? != super::PROBE_BODY {
                    return Err(super::probe_mismatch(&path.display().to_string()));
                }
                Ok(())
            }
            .await;
            let _ = tokio::fs::remove_file(&path).await;
            result
        }
        .boxed()
    }
}
