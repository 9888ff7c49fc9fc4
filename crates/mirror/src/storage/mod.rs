//! Where the registry keeps its data, in three layers:
//!
//! - [`Storage`], the object-safe seam the services call (the server holds
//!   an `Arc<dyn Storage>`);
//! - `store.rs`, written once above both backends: the per-repository
//!   records (links, tags, referrers, signatures), verify-then-commit of
//!   staged blobs and manifests (`verify.rs`), the rules of upload sessions
//!   (`upload.rs`), and the blanket implementation that makes every
//!   `ByteStore` a [`Storage`];
//! - `ByteStore`, what a backend really does: [`FsStorage`] keeps
//!   everything on a local filesystem (the default: `fs*.rs`), [`S3Storage`]
//!   in an S3-compatible bucket that several replicas share (`s3/`).
//!
//! [`open`] picks a backend from the configuration.
//!
//! [`Storage::lock`] is the store-wide lock that makes GC safe while clients
//! write ([`lock`] for the filesystem, `s3/lock.rs` for buckets).
//!
//! Every method that makes content visible does so atomically and only after
//! the content is verified and durable: a crash never leaves a partial blob
//! under its digest, and a write that fails (a full disk above all) returns
//! an error and leaves what was there before. [`space`] holds the free-space
//! floor below which new blob data is refused.

pub(crate) mod chunks;
pub(crate) mod durable;
mod fs;
mod fs_index;
mod fs_inspect;
mod fs_upload;
mod inspect;
mod lock;
mod open;
mod page;
mod s3;
pub mod space;
mod store;
mod upload;
mod verify;

use std::io;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::io::AsyncRead;

pub use fs::FsStorage;
pub use inspect::{LinkFile, LinkKind, TempFile, UploadSessionInfo};
pub use lock::{LockMode, StoreGuard};
pub use open::{open, open_bucket};
pub use page::Page;
#[cfg(test)]
pub(crate) use s3::failover::tests::Node as FaultyNode;
pub use s3::failover::FailoverStore;
pub use s3::{ObjectBackend, S3Storage};
pub use space::FreeSpace;

use crate::name::{Digest, RepoName};

/// A reader over (part of) a blob.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// A body being uploaded, chunk by chunk.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("blob unknown: {0}")]
    BlobUnknown(Digest),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("upload session unknown")]
    UploadUnknown,
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    /// The disk (or quota) is full, or free space is below the floor; what
    /// was being written is not stored and nothing that was there changed.
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    /// The client's upload body broke off (its fault, unlike a failed write).
    #[error("upload body interrupted: {0}")]
    UploadBody(#[source] io::Error),
    #[error("upload exceeds the size limit of {limit} bytes")]
    UploadTooLarge { limit: u64 },
    #[error(transparent)]
    Io(io::Error),
    /// The store lock may have passed to another process (an S3 lock
    /// object not refreshed in time): the holder must stop.
    #[error("store lock {0} lost: not refreshed in time")]
    LockLost(String),
}

impl From<io::Error> for StorageError {
    /// Out of space is its own error wherever it comes from.
    fn from(e: io::Error) -> Self {
        if durable::is_out_of_space(&e) {
            StorageError::InsufficientStorage(e.to_string())
        } else {
            StorageError::Io(e)
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The state of a resumable upload session.
#[derive(Debug, Clone)]
pub struct UploadStatus {
    pub repo: RepoName,
    /// Bytes received so far.
    pub offset: u64,
}

/// A manifest as stored: its media type and raw bytes.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub media_type: String,
    pub body: Bytes,
}

/// A manifest found by [`Storage::resolve_manifest`].
#[derive(Debug, Clone)]
pub struct ResolvedManifest {
    pub digest: Digest,
    pub manifest: StoredManifest,
    /// When the tag was last written (`None` when resolved by digest).
    pub tagged_at: Option<SystemTime>,
}

/// A blob being written outside an upload session (the pull-through cache):
/// readers may follow `path` while it grows.
pub struct StagedBlob {
    pub path: std::path::PathBuf,
    pub file: tokio::fs::File,
}

/// The operations the registry needs from a backend. Object-safe so the server
/// holds an `Arc<dyn Storage>`.
pub trait Storage: Send + Sync + 'static {
    // --- the store-wide lock between writers and GC (docs/mirror.md)
    /// Takes the store lock: shared for an operation that depends on
    /// content already in the store, exclusive for GC's sweep. Waits as
    /// long as the other side holds it.
    fn lock(&self, mode: LockMode) -> BoxFuture<'_, Result<StoreGuard>>;
    fn lock_shared(&self) -> BoxFuture<'_, Result<StoreGuard>> {
        self.lock(LockMode::Shared)
    }
    fn lock_exclusive(&self) -> BoxFuture<'_, Result<StoreGuard>> {
        self.lock(LockMode::Exclusive)
    }

    // --- blobs (global, content-addressed)
    fn blob_size<'a>(&'a self, d: &'a Digest) -> BoxFuture<'a, Result<Option<u64>>>;
    /// Opens a blob at `offset`; returns the blob's full size and a reader.
    fn open_blob<'a>(
        &'a self,
        d: &'a Digest,
        offset: u64,
    ) -> BoxFuture<'a, Result<Option<(u64, BlobReader)>>>;
    /// `len` bytes of a blob from `offset`, as a stream of large chunks (the
    /// body of a blob GET).
    fn blob_stream<'a>(
        &'a self,
        d: &'a Digest,
        offset: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<Option<ByteStream>>>;
    /// The committed blob's file, when the backend keeps blobs as local
    /// files; `None` otherwise or when it is not there.
    fn blob_file<'a>(&'a self, d: &'a Digest) -> BoxFuture<'a, Result<Option<std::fs::File>>>;
    /// Stores `data` as a blob and returns its digest.
    fn put_blob<'a>(&'a self, data: Bytes) -> BoxFuture<'a, Result<Digest>>;
    fn stage_blob(&self) -> BoxFuture<'_, Result<StagedBlob>>;
    /// Commits a staged blob after checking it hashes to `expected`; a
    /// mismatched one is removed. `hashed` is the sha256 (hex) and size
    /// of the bytes the caller wrote to the file, when it hashed them on
    /// the way in; without it the file is read back and hashed.
    fn commit_staged<'a>(
        &'a self,
        staged: std::path::PathBuf,
        expected: &'a Digest,
        hashed: Option<(String, u64)>,
    ) -> BoxFuture<'a, Result<()>>;
    fn delete_blob<'a>(&'a self, d: &'a Digest) -> BoxFuture<'a, Result<()>>;
    /// All blobs with their modification time (for GC and fsck).
    fn list_blobs(&self) -> BoxFuture<'_, Result<Vec<(Digest, SystemTime)>>>;

    // --- per-repository links
    /// Links an existing blob into `repo`; an existing link is refreshed
    /// (its time set to now), so GC sees it as young.
    fn link_blob<'a>(&'a self, repo: &'a RepoName, d: &'a Digest) -> BoxFuture<'a, Result<()>>;
    fn has_blob_link<'a>(
        &'a self,
        repo: &'a RepoName,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<bool>>;
    fn unlink_blob<'a>(&'a self, repo: &'a RepoName, d: &'a Digest) -> BoxFuture<'a, Result<bool>>;
    /// The repository's blob links with their modification time (a link is
    /// rewritten, so made young again, whenever a push links it).
    fn list_blob_links<'a>(
        &'a self,
        repo: &'a RepoName,
    ) -> BoxFuture<'a, Result<Vec<(Digest, SystemTime)>>>;

    // --- manifests
    fn put_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        media_type: &'a str,
        body: Bytes,
    ) -> BoxFuture<'a, Result<Digest>>;
    fn get_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<Option<StoredManifest>>>;
    /// Resolves a tag or digest to its manifest in one step (the hot path of
    /// every pull). Returns the tag's last write time for tags.
    fn resolve_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        reference: &'a crate::name::Reference,
    ) -> BoxFuture<'a, Result<Option<ResolvedManifest>>>;
    fn delete_manifest<'a>(
        &'a self,
        repo: &'a RepoName,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Manifest digests linked in `repo`, with the link's modification time.
    fn list_manifests<'a>(
        &'a self,
        repo: &'a RepoName,
    ) -> BoxFuture<'a, Result<Vec<(Digest, SystemTime)>>>;

    // --- tags
    fn set_tag<'a>(
        &'a self,
        repo: &'a RepoName,
        tag: &'a str,
        d: &'a Digest,
    ) -> BoxFuture<'a, Result<()>>;
    /// The tag's digest and when it was last written (for upstream TTLs).
    fn get_tag<'a>(
        &'a self,
        repo: &'a RepoName,
        tag: &'a str,
    ) -> BoxFuture<'a, Result<Option<(Digest, SystemTime)>>>;
    fn touch_tag<'a>(&'a self, repo: &'a RepoName, tag: &'a str) -> BoxFuture<'a, Result<()>>;
    fn delete_tag<'a>(&'a self, repo: &'a RepoName, tag: &'a str) -> BoxFuture<'a, Result<bool>>;
    /// Tags in lexical order.
    fn list_tags<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<Vec<String>>>;
    /// The tags after `last`, at most `n`, in lexical order: one page of
    /// `tags/list`, at the cost of the page where the backend keeps an
    /// index (both do).
    fn tags_page<'a>(
        &'a self,
        repo: &'a RepoName,
        last: Option<&'a str>,
        n: Option<usize>,
    ) -> BoxFuture<'a, Result<Page<String>>>;

    // --- referrers: descriptors of manifests whose `subject` is a digest
    fn add_referrer<'a>(
        &'a self,
        repo: &'a RepoName,
        subject: &'a Digest,
        referrer: &'a Digest,
        descriptor: serde_json::Value,
    ) -> BoxFuture<'a, Result<()>>;
    fn remove_referrer<'a>(
        &'a self,
        repo: &'a RepoName,
        subject: &'a Digest,
        referrer: &'a Digest,
    ) -> BoxFuture<'a, Result<()>>;
    fn list_referrers<'a>(
        &'a self,
        repo: &'a RepoName,
        subject: &'a Digest,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>>>;

    /// Repositories in lexical order, found by walking the store (the
    /// authority GC and fsck go by).
    fn list_repos(&self) -> BoxFuture<'_, Result<Vec<RepoName>>>;
    /// The repositories after `last`, at most `n`: one page of `_catalog`,
    /// served from the backend's repository index.
    fn repos_page<'a>(
        &'a self,
        last: Option<&'a str>,
        n: Option<usize>,
    ) -> BoxFuture<'a, Result<Page<RepoName>>>;
    /// Repositories with a manifest that the index behind
    /// [`Storage::repos_page`] misses (fsck's check).
    fn unindexed_repos(&self) -> BoxFuture<'_, Result<Vec<RepoName>>>;
    /// Adds repositories to that index (fsck's repair).
    fn index_repos<'a>(&'a self, repos: &'a [RepoName]) -> BoxFuture<'a, Result<()>>;
    /// Repositories with any link, manifest or blob, in lexical order (GC
    /// must see the blob links of a repository that has no manifest yet).
    fn list_linking_repos(&self) -> BoxFuture<'_, Result<Vec<RepoName>>>;

    // --- lookaside signatures (`signature-<n>` of `repo@sha256:<hex>`)
    fn get_signature<'a>(
        &'a self,
        repo: &'a RepoName,
        hex: &'a str,
        n: u32,
    ) -> BoxFuture<'a, Result<Option<Bytes>>>;
    /// Stores a signature unless that number is taken; whether it was stored.
    fn put_signature<'a>(
        &'a self,
        repo: &'a RepoName,
        hex: &'a str,
        n: u32,
        data: Bytes,
    ) -> BoxFuture<'a, Result<bool>>;

    // --- upload sessions (persisted; survive a restart)
    fn upload_start<'a>(&'a self, repo: &'a RepoName) -> BoxFuture<'a, Result<String>>;
    fn upload_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<UploadStatus>>;
    /// Appends a chunk. With `start`, the chunk must begin at the current
    /// offset; otherwise `Ok(Err(offset))` reports the offset expected.
    fn upload_append<'a>(
        &'a self,
        id: &'a str,
        start: Option<u64>,
        body: ByteStream,
        limit: u64,
    ) -> BoxFuture<'a, Result<Result<u64, u64>>>;
    /// Verifies the upload hashes to `expected` and commits it as a blob.
    fn upload_finish<'a>(&'a self, id: &'a str, expected: &'a Digest) -> BoxFuture<'a, Result<()>>;
    fn upload_cancel<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Free space where new content would be written, for the floor check;
    /// `None` when the backend cannot tell (an S3 bucket).
    fn free_space(&self) -> BoxFuture<'_, Result<Option<FreeSpace>>>;

    /// Files left behind by interrupted writes (reported by fsck).
    fn leftover_temp_files(&self) -> BoxFuture<'_, Result<Vec<std::path::PathBuf>>>;
    /// Removes (unless `dry_run`) upload sessions and temporary files not
    /// written to for `idle`; returns what was (or would be) removed.
    fn purge_idle<'a>(
        &'a self,
        idle: std::time::Duration,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Vec<String>>>;

    // --- raw views for fsck (inspect.rs): what the typed listings skip
    /// Every link file of every repository as stored, malformed ones included.
    fn scan_links(&self) -> BoxFuture<'_, Result<Vec<LinkFile>>>;
    /// Removes a link file [`Storage::scan_links`] found; whether it existed.
    fn remove_link_file<'a>(&'a self, link: &'a LinkFile) -> BoxFuture<'a, Result<bool>>;
    /// Every upload session, including ones without a readable record.
    fn list_upload_sessions(&self) -> BoxFuture<'_, Result<Vec<UploadSessionInfo>>>;
    /// Removes a session and everything it holds; whether it existed.
    fn remove_upload_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool>>;
    /// Temporary files with their size and age.
    fn list_temp_files(&self) -> BoxFuture<'_, Result<Vec<TempFile>>>;
    /// Removes a temporary file [`Storage::list_temp_files`] found; refuses
    /// (`Ok(false)`) any other path.
    fn remove_temp_file<'a>(&'a self, path: &'a std::path::Path) -> BoxFuture<'a, Result<bool>>;
    /// Writes a small object where uploads write, reads it back and removes
    /// it: whether this backend can serve at all right now (`/readyz`).
    fn probe(&self) -> BoxFuture<'_, Result<()>>;
}

/// A fresh random name (upload session ids, temporary files, lock
/// objects, probes): 32 hex digits.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).expect("system random source");
    hex::encode(b)
}

/// The content a readiness probe writes (with a random name).
pub(crate) const PROBE_BODY: &[u8] = b"corral mirror readiness probe\n";

pub(crate) fn probe_mismatch(what: &str) -> StorageError {
    StorageError::Io(io::Error::other(format!(
        "readiness probe {what} read back different content"
    )))
}
