//! The layer between [`Storage`] (what the registry's services call) and the
//! two backends. A backend implements [`ByteStore`]: its blobs, its small
//! records, its upload sessions and the raw views fsck needs, each in its
//! own medium (paths, renames and fsync; object keys, conditional puts and
//! multipart uploads). What is the same for both is written here once:
//!
//! - the per-repository records (blob and manifest links, tags, referrer
//!   entries, signatures) over one relative layout, `repos/<name>/_tags/<tag>`
//!   and so on, that both backends keep under their root or key prefix;
//! - verify-then-commit: a blob staged by the pull-through cache is hashed
//!   and committed under its digest only when the digests are equal, and a
//!   manifest's link is written only after its content and its repository's
//!   index marker ([`verify`]);
//! - the fsck repairs that remove a record, refusing any unsafe path.
//!
//! Every [`ByteStore`] is a [`Storage`] through the blanket implementation
//! at the bottom, which boxes each future once for the object-safe seam.

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;

use super::inspect::RawViews;
use super::page::Page;
use super::upload::{UploadBody, UploadSessions};
use super::{verify, TempFile};
use super::{
    BlobReader, ByteStream, FreeSpace, LinkFile, LockMode, ResolvedManifest, Result, StagedBlob,
    Storage, StoreGuard, StoredManifest, UploadSessionInfo, UploadStatus,
};
use crate::name::{Digest, Reference, RepoName};

/// What a backend stores and how, with its upload sessions
/// ([`UploadSessions`]) and the raw views fsck reads ([`RawViews`]). The
/// methods without a default are the backend's own; the layer above builds
/// the rest of [`Storage`] from them.
pub trait ByteStore: UploadSessions + RawViews + Send + Sync + 'static {
    /// The store-wide lock between writers and GC (docs/mirror.md).
    fn lock(&self, mode: LockMode) -> impl Future<Output = Result<StoreGuard>> + Send;

    // --- records: small objects at a path relative to the root (or the
    // bucket prefix), the same layout in both backends
    /// A record's content and when it was last written; `None` if missing.
    fn read_record(
        &self,
        rel: &str,
    ) -> impl Future<Output = Result<Option<(Bytes, SystemTime)>>> + Send;
    fn has_record(&self, rel: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Writes a record atomically and durably. Its time is refreshed even
    /// when the content is unchanged: GC goes by it.
    fn write_record(&self, rel: &str, data: Bytes) -> impl Future<Output = Result<()>> + Send;
    /// Writes a record unless one is there; whether it was written.
    fn create_record(&self, rel: &str, data: Bytes) -> impl Future<Output = Result<bool>> + Send;
    /// Removes a record; whether it existed.
    fn remove_record(&self, rel: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Names (last component) and times of the records in directory `dir`.
    fn list_records(
        &self,
        dir: &str,
    ) -> impl Future<Output = Result<Vec<(String, SystemTime)>>> + Send;
    /// Makes sure `repo` is in the repository index (before its first
    /// manifest link, so the index never misses a repository).
    fn index_repo(&self, repo: &RepoName) -> impl Future<Output = Result<()>> + Send;

    // --- blobs
    fn blob_size(&self, d: &Digest) -> impl Future<Output = Result<Option<u64>>> + Send;
    fn open_blob(
        &self,
        d: &Digest,
        offset: u64,
    ) -> impl Future<Output = Result<Option<(u64, BlobReader)>>> + Send;
    fn blob_stream(
        &self,
        d: &Digest,
        offset: u64,
        len: u64,
    ) -> impl Future<Output = Result<Option<ByteStream>>> + Send {
        async move {
            use futures_util::StreamExt;
            use tokio::io::AsyncReadExt;
            Ok(self.open_blob(d, offset).await?.map(|(_, reader)| {
                tokio_util::io::ReaderStream::with_capacity(reader.take(len), 256 << 10).boxed()
            }))
        }
    }
    /// The committed blob's file, for backends that keep blobs as local
    /// files (the body is then sent with `sendfile` where the connection
    /// allows); `None` otherwise, or when the blob is not there.
    fn blob_file(&self, d: &Digest) -> impl Future<Output = Result<Option<std::fs::File>>> + Send {
        let _ = d;
        async { Ok(None) }
    }
    /// Stores small content (a manifest) under its digest.
    fn put_blob(&self, data: Bytes) -> impl Future<Output = Result<Digest>> + Send;
    fn stage_blob(&self) -> impl Future<Output = Result<StagedBlob>> + Send;
    /// Commits a local file already verified to hash to `d` (`size` bytes)
    /// under that digest, durably. The file is gone afterwards, committed or
    /// not.
    fn install_file(
        &self,
        file: &Path,
        d: &Digest,
        size: u64,
    ) -> impl Future<Output = Result<()>> + Send;
    fn delete_blob(&self, d: &Digest) -> impl Future<Output = Result<()>> + Send;
    fn list_blobs(&self) -> impl Future<Output = Result<Vec<(Digest, SystemTime)>>> + Send;

    // --- manifests, tags and repositories where the backends read or list
    // in their own way
    fn get_manifest(
        &self,
        repo: &RepoName,
        d: &Digest,
    ) -> impl Future<Output = Result<Option<StoredManifest>>> + Send;
    fn resolve_manifest(
        &self,
        repo: &RepoName,
        r: &Reference,
    ) -> impl Future<Output = Result<Option<ResolvedManifest>>> + Send {
        async move {
            let (d, tagged_at) = match r {
                Reference::Digest(d) => (d.clone(), None),
                Reference::Tag(t) => match get_tag(self, repo, t).await? {
                    Some((d, at)) => (d, Some(at)),
                    None => return Ok(None),
                },
            };
            Ok(self
                .get_manifest(repo, &d)
                .await?
                .map(|manifest| ResolvedManifest {
                    digest: d,
                    manifest,
                    tagged_at,
                }))
        }
    }
    /// Removes a manifest link with the tags and referrer entries naming it.
    fn delete_manifest(
        &self,
        repo: &RepoName,
        d: &Digest,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// The repository's tag names after `last` in lexical order, read only
    /// as far as the caller pulls (names that are no valid tag are
    /// skipped above).
    fn tags_after(
        &self,
        repo: &RepoName,
        last: Option<&str>,
    ) -> impl Future<Output = Result<NameStream>> + Send;
    fn list_repos(&self) -> impl Future<Output = Result<Vec<RepoName>>> + Send;
    fn repos_page(
        &self,
        last: Option<&str>,
        n: Option<usize>,
    ) -> impl Future<Output = Result<Page<RepoName>>> + Send;
    fn unindexed_repos(&self) -> impl Future<Output = Result<Vec<RepoName>>> + Send;
    fn index_repos(&self, repos: &[RepoName]) -> impl Future<Output = Result<()>> + Send;
    fn list_linking_repos(&self) -> impl Future<Output = Result<Vec<RepoName>>> + Send;

    // --- maintenance
    fn free_space(&self) -> impl Future<Output = Result<Option<FreeSpace>>> + Send {
        async { Ok(None) }
    }
    fn leftover_temp_files(&self) -> impl Future<Output = Result<Vec<PathBuf>>> + Send;
    fn purge_idle(
        &self,
        idle: std::time::Duration,
        dry_run: bool,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;
    fn probe(&self) -> impl Future<Output = Result<()>> + Send;
}

/// The repositories whose index marker this process has written, so a
/// push writes its repository's marker once, not with every manifest.
#[derive(Default)]
pub(crate) struct IndexedRepos(Mutex<HashSet<RepoName>>);

impl IndexedRepos {
    /// Runs `write` (the marker's write) unless `repo` is marked already.
    pub(crate) async fn mark(
        &self,
        repo: &RepoName,
        write: impl Future<Output = Result<()>>,
    ) -> Result<()> {
        if self.0.lock().expect("index lock").contains(repo) {
            return Ok(());
        }
        write.await?;
        self.0.lock().expect("index lock").insert(repo.clone());
        Ok(())
    }

    /// Forgets `repo`, so its marker is written again (fsck's repair).
    pub(crate) fn forget(&self, repo: &RepoName) {
        self.0.lock().expect("index lock").remove(repo);
    }
}

/// Names from a sorted listing, as a backend reads them.
pub(crate) type NameStream = BoxStream<'static, Result<String>>;

/// A page of `repo`'s tags.
async fn tags_page<B: ByteStore>(
    b: &B,
    repo: &RepoName,
    last: Option<&str>,
    n: Option<usize>,
) -> Result<Page<String>> {
    let names = b.tags_after(repo, last).await?;
    Page::of_stream(names.map_ok(|t| crate::name::valid_tag(&t).then_some(t)), n).await
}

fn link(repo: &RepoName, kind: &str, d: &Digest) -> String {
    format!("repos/{repo}/{kind}/{}", d.hex())
}

fn tag_record(repo: &RepoName, tag: &str) -> String {
    format!("repos/{repo}/_tags/{tag}")
}

fn referrers_dir(repo: &RepoName, subject: &Digest) -> String {
    format!("repos/{repo}/_referrers/{}", subject.hex())
}

fn signature_record(repo: &RepoName, hex: &str, n: u32) -> String {
    format!("sigstore/{repo}/sha256={hex}/signature-{n}")
}

pub(super) fn digests(names: Vec<(String, SystemTime)>) -> Vec<(Digest, SystemTime)> {
    names
        .into_iter()
        .filter_map(|(n, t)| Digest::from_hex(&n).map(|d| (d, t)))
        .collect()
}

async fn get_tag<B: ByteStore + ?Sized>(
    b: &B,
    repo: &RepoName,
    tag: &str,
) -> Result<Option<(Digest, SystemTime)>> {
    let Some((body, t)) = b.read_record(&tag_record(repo, tag)).await? else {
        return Ok(None);
    };
    Ok(String::from_utf8_lossy(&body)
        .trim()
        .parse()
        .ok()
        .map(|d| (d, t)))
}

async fn put_manifest<B: ByteStore>(
    b: &B,
    repo: &RepoName,
    media_type: &str,
    body: Bytes,
) -> Result<Digest> {
    let d = b.put_blob(body).await?;
    // The index marker first: a crash before the link leaves a marker that
    // listings skip, never a repository they miss. The link only after the
    // content is durable: a crash between the two leaves an unreferenced
    // blob (for GC), never a dangling link.
    b.index_repo(repo).await?;
    let media_type = Bytes::copy_from_slice(media_type.as_bytes());
    b.write_record(&link(repo, "_manifests", &d), media_type)
        .await?;
    Ok(d)
}

async fn list_referrers<B: ByteStore>(
    b: &B,
    repo: &RepoName,
    subject: &Digest,
) -> Result<Vec<serde_json::Value>> {
    let dir = referrers_dir(repo, subject);
    let mut out = Vec::new();
    for (name, _) in b.list_records(&dir).await? {
        if let Some((body, _)) = b.read_record(&format!("{dir}/{name}")).await? {
            if let Ok(v) = serde_json::from_slice(&body) {
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// Verifies a staged file and commits it; a mismatched one is removed.
async fn commit_staged<B: ByteStore>(
    b: &B,
    staged: PathBuf,
    expected: &Digest,
    hashed: Option<(String, u64)>,
) -> Result<()> {
    let hashed = match hashed {
        Some(h) => Ok(h),
        None => verify::hash_file(&staged).await,
    };
    let checked = match hashed {
        Ok((actual, size)) => verify::digest_matches(expected, &actual).map(|()| size),
        Err(e) => Err(e),
    };
    match checked {
        Ok(size) => b.install_file(&staged, expected, size).await,
        Err(e) => {
            let _ = tokio::fs::remove_file(&staged).await;
            Err(e)
        }
    }
}

async fn remove_link_file<B: ByteStore>(b: &B, link: &LinkFile) -> Result<bool> {
    if !link.components_safe() {
        tracing::warn!(path = %link.rel_path(), "refusing to remove a link with an unsafe path");
        return Ok(false);
    }
    b.remove_record(&link.rel_path()).await
}

impl<B: ByteStore> Storage for B {
    fn lock(&self, mode: LockMode) -> BoxFuture<'_, Result<StoreGuard>> {
        Box::pin(ByteStore::lock(self, mode))
    }

    fn blob_size<'a>(&'a self, d: &'a Digest) -> BoxFuture<'a, Result<Option<u64>>> {
        Box::pin(ByteStore::blob_size(self, d))
    }
    fn open_blob<'a>(
        &'a self,
        d: &'a Digest,
        offset: u64,
    ) -> BoxFuture<'a, Result<Option<(u64, BlobReader)>>> {
        Box::pin(ByteStore::open_blob(self, d, offset))
    }
    fn blob_stream<'a>(
        &'a self,
        d: &'a Digest,
        offset: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<Option<ByteStream>>> {
        Box::pin(ByteStore::blob_stream(self, d, offset, len))
    }
    fn blob_file<'a>(&'a self, d: &'a Digest) -> BoxFuture<'a, Result<Option<std::fs::File>>> {
        Box::pin(ByteStore::blob_file(self, d))
    }
    fn put_blob<'a>(&'a self, data: Bytes) -> BoxFuture<'a, Result<Digest>> {
        Box::pin(ByteStore::put_blob(self, data))
    }
    fn stage_blob(&self) -> BoxFuture<'_, Result<StagedBlob>> {
        Box::pin(ByteStore::stage_blob(self))
    }
    fn commit_staged<'a>(
        &'a self,
        staged: PathBuf,
        expected: &'a Digest,
        hashed: Option<(String, u64)>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(commit_staged(self, staged, expected, hashed))
    }
    fn delete_blob<'a>(&'a self, d: &'a Digest) -> BoxFuture<'a, Result<()>> {
        Box::pin(ByteStore::delete_blob(self, d))
    }
    fn list_blobs(&self) -> BoxFuture<'_, Result<Vec<(Digest, SystemTime)>>> {
        Box::pin(ByteStore::list_blobs(self))
    }

    fn link_blob<'a>(&'a self, repo: &'a RepoName, d: &'a Digest) -> BoxFuture<'a, Result<()>> {
        // Written even when it exists: the new time keeps the link young
        // for a GC racing the push that relies on it.
        let rel = link(repo, "_blobs", d);
        Box::pin(async move { self.write_record(&rel, Bytes::new()).await })
    }
    fn has_blob_link<'a>(
        &'a self,
        repo: &'a RepoName,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.has_record(&link(repo, "_blobs", d)).await })
    }
    fn unlink_blob<'a>(&'a self, repo: &'a RepoName, d: &'a Digest) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.remove_record(&link(repo, "_blobs", d)).await })
    }
    fn list_blob_links<'a>(
        &'a self,
        repo: &'a RepoName,
    ) -> BoxFuture<'a, Result<Vec<(Digest, SystemTime)>>> {
        Box::pin(async move {
            Ok(digests(
                self.list_records(&format!("repos/{repo}/_blobs")).await?,
            ))
        })
    }

    fn put_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        media_type: &'a str,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Digest>> {
        Box::pin(put_manifest(self, repo, media_type, body))
    }
    fn get_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<Option<StoredManifest>>> {
        Box::pin(ByteStore::get_manifest(self, repo, d))
    }
    fn resolve_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        reference: &'a Reference,
    ) -> BoxFuture<'a, Result<Option<ResolvedManifest>>> {
        Box::pin(ByteStore::resolve_manifest(self, repo, reference))
    }
    fn delete_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(ByteStore::delete_manifest(self, repo, d))
    }
    fn list_manifests<'a>(
        &'a self,
        repo: &'a RepoName,
    ) -> BoxFuture<'a, Result<Vec<(Digest, SystemTime)>>> {
        Box::pin(async move {
            let dir = format!("repos/{repo}/_manifests");
            Ok(digests(self.list_records(&dir).await?))
        })
    }

    fn set_tag<'a>(
        &'a self,
        repo: &'a RepoName,
        tag: &'a str,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<()>> {
        let (rel, body) = (tag_record(repo, tag), Bytes::from(d.to_string()));
        Box::pin(async move { self.write_record(&rel, body).await })
    }
    fn get_tag<'a>(
        &'a self,
        repo: &'a RepoName,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Digest, SystemTime)>>> {
        Box::pin(get_tag(self, repo, tag))
    }
    fn touch_tag<'a>(&'a self, repo: &'a RepoName, tag: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if let Some((d, _)) = get_tag(self, repo, tag).await? {
                self.write_record(&tag_record(repo, tag), d.to_string().into())
                    .await?;
            }
            Ok(())
        })
    }
    fn delete_tag<'a>(&'a self, repo: &'a RepoName, tag: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move { self.remove_record(&tag_record(repo, tag)).await })
    }
    fn list_tags<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move { Ok(tags_page(self, repo, None, None).await?.items) })
    }
    fn tags_page<'a>(
        &'a self,
        repo: &'a RepoName,
        last: Option<&'a str>,
        n: Option<usize>,
    ) -> BoxFuture<'a, Result<Page<String>>> {
        Box::pin(tags_page(self, repo, last, n))
    }

    fn add_referrer<'a>(
        &'a self,
        repo: &'a RepoName,
        subject: &'a Digest,
        referrer: &'a Digest,
        descriptor: serde_json::Value,
    ) -> BoxFuture<'a, Result<()>> {
        let rel = format!("{}/{}", referrers_dir(repo, subject), referrer.hex());
        let body = Bytes::from(descriptor.to_string());
        Box::pin(async move { self.write_record(&rel, body).await })
    }
    fn remove_referrer<'a>(
        &'a self,
        repo: &'a RepoName,
        subject: &'a Digest,
        referrer: &'a Digest,
    ) -> BoxFuture<'a, Result<()>> {
        let rel = format!("{}/{}", referrers_dir(repo, subject), referrer.hex());
        Box::pin(async move { self.remove_record(&rel).await.map(drop) })
    }
    fn list_referrers<'a>(
        &'a self,
        repo: &'a RepoName,
        subject: &'a Digest,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>>> {
        Box::pin(list_referrers(self, repo, subject))
    }

    fn list_repos(&self) -> BoxFuture<'_, Result<Vec<RepoName>>> {
        Box::pin(ByteStore::list_repos(self))
    }
    fn repos_page<'a>(
        &'a self,
        last: Option<&'a str>,
        n: Option<usize>,
    ) -> BoxFuture<'a, Result<Page<RepoName>>> {
        Box::pin(ByteStore::repos_page(self, last, n))
    }
    fn unindexed_repos(&self) -> BoxFuture<'_, Result<Vec<RepoName>>> {
        Box::pin(ByteStore::unindexed_repos(self))
    }
    fn index_repos<'a>(&'a self, repos: &'a [RepoName]) -> BoxFuture<'a, Result<()>> {
        Box::pin(ByteStore::index_repos(self, repos))
    }
    fn list_linking_repos(&self) -> BoxFuture<'_, Result<Vec<RepoName>>> {
        Box::pin(ByteStore::list_linking_repos(self))
    }

    fn get_signature<'a>(
        &'a self,
        repo: &'a RepoName,
        hex: &'a str,
        n: u32,
    ) -> BoxFuture<'a, Result<Option<Bytes>>> {
        let rel = signature_record(repo, hex, n);
        Box::pin(async move { Ok(self.read_record(&rel).await?.map(|(b, _)| b)) })
    }
    fn put_signature<'a>(
        &'a self,
        repo: &'a RepoName,
        hex: &'a str,
        n: u32,
        data: Bytes,
    ) -> BoxFuture<'a, Result<bool>> {
        let rel = signature_record(repo, hex, n);
        Box::pin(async move { self.create_record(&rel, data).await })
    }

    fn upload_start<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<String>> {
        Box::pin(UploadSessions::upload_start(self, repo))
    }
    fn upload_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<UploadStatus>> {
        Box::pin(UploadSessions::upload_status(self, id))
    }
    fn upload_append<'a>(
        &'a self,
        id: &'a str,
        start: Option<u64>,
        body: ByteStream,
        limit: u64,
    ) -> BoxFuture<'a, Result<Result<u64, u64>>> {
        let body = UploadBody::new(body, start, limit);
        Box::pin(UploadSessions::upload_append(self, id, body))
    }
    fn upload_finish<'a>(&'a self, id: &'a str, expected: &'a Digest) -> BoxFuture<'a, Result<()>> {
        Box::pin(UploadSessions::upload_finish(self, id, expected))
    }
    fn upload_cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(UploadSessions::upload_cancel(self, id))
    }

    fn free_space(&self) -> BoxFuture<'_, Result<Option<FreeSpace>>> {
        Box::pin(ByteStore::free_space(self))
    }
    fn leftover_temp_files(&self) -> BoxFuture<'_, Result<Vec<PathBuf>>> {
        Box::pin(ByteStore::leftover_temp_files(self))
    }
    fn purge_idle<'a>(
        &'a self,
        idle: std::time::Duration,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(ByteStore::purge_idle(self, idle, dry_run))
    }
    fn scan_links(&self) -> BoxFuture<'_, Result<Vec<LinkFile>>> {
        Box::pin(RawViews::scan_links(self))
    }
    fn remove_link_file<'a>(&'a self, link: &'a LinkFile) -> BoxFuture<'a, Result<bool>> {
        Box::pin(remove_link_file(self, link))
    }
    fn list_upload_sessions(&self) -> BoxFuture<'_, Result<Vec<UploadSessionInfo>>> {
        Box::pin(RawViews::list_upload_sessions(self))
    }
    fn remove_upload_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(RawViews::remove_upload_session(self, id))
    }
    fn list_temp_files(&self) -> BoxFuture<'_, Result<Vec<TempFile>>> {
        Box::pin(RawViews::list_temp_files(self))
    }
    fn remove_temp_file<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<bool>> {
        Box::pin(RawViews::remove_temp_file(self, path))
    }
    fn probe(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(ByteStore::probe(self))
    }
}
