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

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncSeekExt;

use super::chunks::ChunkPool;
use super::fs_index::{self, DirCache};
use super::fs_upload::UploadState;
use super::page::Page;
use super::store::{ByteStore, IndexedRepos, NameStream};
use super::{durable, random_id, verify};
use super::{
    BlobReader, ByteStream, FreeSpace, LockMode, ResolvedManifest, Result, StagedBlob, Storage,
    StorageError, StoreGuard, StoredManifest,
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
    indexed: IndexedRepos,
    /// The read buffers of blob bodies (see chunks.rs).
    chunks: Arc<ChunkPool>,
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
            indexed: IndexedRepos::default(),
            chunks: ChunkPool::new(BLOB_CHUNK as usize),
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

    /// Moves a complete, verified file of `size` bytes to `d`'s place,
    /// fsynced first. A blob already there is kept when it has that size (its mtime
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
            // Durable before it is visible.
            let synced = std::fs::File::open(&from).and_then(|f| f.sync_all());
            if let Err(e) = synced {
                let _ = std::fs::remove_file(&from);
                return Err(durable::error_at("syncing", &from, e));
            }
            durable::rename_into_place(&from, &dest)
        })
        .await
    }

    /// The repository's tags, sorted, from the listing cache.
    async fn sorted_tags(&self, repo: &RepoName) -> Result<Arc<Vec<String>>> {
        let (cache, dir) = (self.listings.clone(), self.repo_dir(repo).join("_tags"));
        blocking(move || {
            Ok(cache.sorted_names(&dir, |n| crate::name::valid_tag(n).then(|| n.to_string()))?)
        })
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

impl ByteStore for FsStorage {
    async fn lock(&self, mode: LockMode) -> Result<StoreGuard> {
        super::lock::lock_dir(self.root.clone(), mode).await
    }

    async fn read_record(&self, rel: &str) -> Result<Option<(Bytes, SystemTime)>> {
        let path = self.root.join(rel);
        blocking(move || {
            let mut f = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(durable::error_at("reading", &path, e)),
            };
            let at = |e| durable::error_at("reading", &path, e);
            let mtime = f.metadata().and_then(|m| m.modified()).map_err(at)?;
            let mut data = Vec::new();
            io::Read::read_to_end(&mut f, &mut data).map_err(at)?;
            Ok(Some((data.into(), mtime)))
        })
        .await
    }

    async fn has_record(&self, rel: &str) -> Result<bool> {
        Ok(Self::exists(&self.root.join(rel)).await?)
    }

    /// Identical content is only touched, so it needs no space.
    async fn write_record(&self, rel: &str, data: Bytes) -> Result<()> {
        let (tmp, dest) = (self.tmp_path(), self.root.join(rel));
        blocking(move || durable::replace_if_changed(&tmp, &dest, &data).map(drop)).await
    }

    async fn create_record(&self, rel: &str, data: Bytes) -> Result<bool> {
        // hard_link is the atomic create-if-absent.
        let dest = self.root.join(rel);
        let dir = dest
            .parent()
            .expect("a record has a directory")
            .to_path_buf();
        let tmp = dir.join(format!(".tmp-{}", random_id()));
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

    async fn remove_record(&self, rel: &str) -> Result<bool> {
        Ok(Self::remove_if_exists(&self.root.join(rel)).await?)
    }

    async fn list_records(&self, dir: &str) -> Result<Vec<(String, SystemTime)>> {
        Ok(Self::read_dir_names(&self.root.join(dir)).await?)
    }

    async fn index_repo(&self, repo: &RepoName) -> Result<()> {
        let (root, tmp, r) = (self.root.clone(), self.tmp_path(), repo.clone());
        let write = blocking(move || fs_index::write_marker(&root, &tmp, &r));
        self.indexed.mark(repo, write).await
    }

    async fn blob_size(&self, d: &Digest) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.blob_path(d)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn open_blob(&self, d: &Digest, offset: u64) -> Result<Option<(u64, BlobReader)>> {
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

    async fn blob_stream(&self, d: &Digest, offset: u64, len: u64) -> Result<Option<ByteStream>> {
        let path = self.blob_path(d);
        let file = match blocking(move || Ok(std::fs::File::open(path))).await? {
            Ok(f) => Arc::new(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // Positioned reads of BLOB_CHUNK straight into the buffers the
        // body sends (no copy through an intermediate buffer as
        // tokio::fs::File makes), the next chunk read while this one is
        // written to the socket. The buffers come from, and go back to,
        // the storage's pool.
        let chunks = (0..len.div_ceil(BLOB_CHUNK)).map(move |i| {
            let start = offset + i * BLOB_CHUNK;
            (start, BLOB_CHUNK.min(offset + len - start) as usize)
        });
        let pool = self.chunks.clone();
        let stream = futures_util::stream::iter(chunks)
            .map(move |(start, n)| {
                let (file, pool) = (file.clone(), pool.clone());
                async move {
                    tokio::task::spawn_blocking(move || {
                        pool.fill(n, |buf| {
                            std::os::unix::fs::FileExt::read_exact_at(&*file, buf, start)
                        })
                    })
                    .await
                    .map_err(io::Error::other)?
                }
            })
            .buffered(2);
        Ok(Some(stream.boxed()))
    }

    async fn blob_file(&self, d: &Digest) -> Result<Option<std::fs::File>> {
        let path = self.blob_path(d);
        match blocking(move || Ok(std::fs::File::open(path))).await? {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn put_blob(&self, data: Bytes) -> Result<Digest> {
        let d = verify::digest_of(&data).await?;
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

    async fn stage_blob(&self) -> Result<StagedBlob> {
        let path = self.tmp_path();
        let file = tokio::fs::File::create(&path).await?;
        Ok(StagedBlob { path, file })
    }

    async fn install_file(&self, file: &Path, d: &Digest, size: u64) -> Result<()> {
        self.install_blob(file, d, size).await
    }

    async fn delete_blob(&self, d: &Digest) -> Result<()> {
        Self::remove_if_exists(&self.blob_path(d)).await?;
        Ok(())
    }

    async fn list_blobs(&self) -> Result<Vec<(Digest, SystemTime)>> {
        let mut out = Vec::new();
        let base = self.root.join("blobs/sha256");
        for (prefix, _) in Self::read_dir_names(&base).await? {
            out.extend(super::store::digests(
                Self::read_dir_names(&base.join(prefix)).await?,
            ));
        }
        Ok(out)
    }

    async fn get_manifest(&self, repo: &RepoName, d: &Digest) -> Result<Option<StoredManifest>> {
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

    async fn resolve_manifest(
        &self,
        repo: &RepoName,
        r: &Reference,
    ) -> Result<Option<ResolvedManifest>> {
        // One blocking task for tag, link and body instead of one per file.
        let dir = self.repo_dir(repo);
        let blobs = self.root.join("blobs/sha256");
        let r = r.clone();
        let found = tokio::task::spawn_blocking(move || -> io::Result<Option<ResolvedManifest>> {
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
            let body = match std::fs::read(blobs.join(&digest.hex()[..2]).join(digest.hex())) {
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

    async fn delete_manifest(&self, repo: &RepoName, d: &Digest) -> Result<bool> {
        let removed =
            Self::remove_if_exists(&self.repo_dir(repo).join("_manifests").join(d.hex())).await?;
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

    async fn tags_after(&self, repo: &RepoName, last: Option<&str>) -> Result<NameStream> {
        // From the listing cache: a binary search for `last`, then only
        // as many names as the page takes.
        let tags = self.sorted_tags(repo).await?;
        let start = last.map_or(0, |l| tags.partition_point(|t| t.as_str() <= l));
        let names = (start..tags.len()).map(move |i| Ok(tags[i].clone()));
        Ok(futures_util::stream::iter(names).boxed())
    }

    async fn list_repos(&self) -> Result<Vec<RepoName>> {
        self.repos_having(&["_manifests"]).await
    }

    async fn repos_page(&self, last: Option<&str>, n: Option<usize>) -> Result<Page<RepoName>> {
        let (cache, root) = (self.listings.clone(), self.root.clone());
        let last = last.map(str::to_string);
        blocking(move || fs_index::repos_page(&cache, &root, last.as_deref(), n)).await
    }

    async fn unindexed_repos(&self) -> Result<Vec<RepoName>> {
        let root = self.root.clone();
        blocking(move || Ok(fs_index::missing_markers(&root)?)).await
    }

    async fn index_repos(&self, repos: &[RepoName]) -> Result<()> {
        for r in repos {
            self.indexed.forget(r);
            ByteStore::index_repo(self, r).await?;
        }
        let root = self.root.clone();
        let tmp = root.join("tmp");
        blocking(move || fs_index::ensure_repo_index(&root, || tmp.join(random_id())).map(drop))
            .await
    }

    async fn list_linking_repos(&self) -> Result<Vec<RepoName>> {
        self.repos_having(&["_manifests", "_blobs"]).await
    }

    async fn free_space(&self) -> Result<Option<FreeSpace>> {
        let root = self.root.clone();
        blocking(move || {
            FreeSpace::of(&root)
                .map(Some)
                .map_err(|e| durable::error_at("statvfs", &root, e))
        })
        .await
    }

    async fn leftover_temp_files(&self) -> Result<Vec<PathBuf>> {
        let tmp = self.root.join("tmp");
        Ok(Self::read_dir_names(&tmp)
            .await?
            .into_iter()
            .map(|(n, _)| tmp.join(n))
            .collect())
    }

    async fn purge_idle(&self, idle: std::time::Duration, dry_run: bool) -> Result<Vec<String>> {
        let old = |t: SystemTime| SystemTime::now().duration_since(t).unwrap_or_default() > idle;
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

    async fn probe(&self) -> Result<()> {
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
}
