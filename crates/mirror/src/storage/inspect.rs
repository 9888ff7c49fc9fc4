//! Raw views of the store for fsck: link files as they are (not as the typed
//! API would parse them), upload sessions with their size and age, and
//! temporary files. The typed listings skip what they cannot parse, which is
//! exactly what a checker must see.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;

use super::Result;
use crate::name::RepoName;

/// The raw views of a backend (fs_inspect.rs, s3/inspect.rs).
pub trait RawViews {
    /// Every link file of every repository as stored, malformed ones included.
    fn scan_links(&self) -> impl Future<Output = Result<Vec<LinkFile>>> + Send;
    /// Every upload session, including ones without a readable record.
    fn list_upload_sessions(&self) -> impl Future<Output = Result<Vec<UploadSessionInfo>>> + Send;
    /// Removes a session and everything it holds; whether it existed.
    fn remove_upload_session(&self, id: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Temporary files with their size and age.
    fn list_temp_files(&self) -> impl Future<Output = Result<Vec<TempFile>>> + Send;
    /// Removes a temporary file `list_temp_files` found; refuses
    /// (`Ok(false)`) any other path.
    fn remove_temp_file(&self, path: &Path) -> impl Future<Output = Result<bool>> + Send;
}

/// Which kind of per-repository link a [`LinkFile`] is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkKind {
    /// `_blobs/<hex>`: the repository has this blob (empty by design).
    Blob,
    /// `_manifests/<hex>`: the repository has this manifest; content: media type.
    Manifest,
    /// `_tags/<tag>`: content: a digest.
    Tag,
    /// `_referrers/<subject>/<hex>`: content: a descriptor of the referrer.
    Referrer { subject: String },
}

/// A link file as stored, whether or not its name and content are valid.
#[derive(Debug, Clone)]
pub struct LinkFile {
    /// The repository directory (or key prefix) it sits in, as stored.
    pub repo: String,
    pub kind: LinkKind,
    /// The last path component: a hex digest or a tag, if well-formed.
    pub name: String,
    pub size: u64,
    pub modified: SystemTime,
    /// The content of tags, manifest links and referrer entries (blob links
    /// are empty by design and are not read).
    pub content: Option<Bytes>,
}

impl LinkFile {
    /// The path relative to the storage root (or bucket prefix), for reports.
    pub fn rel_path(&self) -> String {
        match &self.kind {
            LinkKind::Blob => format!("repos/{}/_blobs/{}", self.repo, self.name),
            LinkKind::Manifest => format!("repos/{}/_manifests/{}", self.repo, self.name),
            LinkKind::Tag => format!("repos/{}/_tags/{}", self.repo, self.name),
            LinkKind::Referrer { subject } => {
                format!("repos/{}/_referrers/{subject}/{}", self.repo, self.name)
            }
        }
    }

    /// Whether every component is safe to join onto the root: the values
    /// come from a listing, but a removal must never climb out of `repos/`.
    pub(crate) fn components_safe(&self) -> bool {
        let ok = |c: &str| !c.is_empty() && c != "." && c != ".." && !c.contains(['/', '\\']);
        let subject_ok = match &self.kind {
            LinkKind::Referrer { subject } => ok(subject),
            _ => true,
        };
        ok(&self.name) && subject_ok && self.repo.split('/').all(ok)
    }
}

/// A resumable upload session as stored.
#[derive(Debug, Clone)]
pub struct UploadSessionInfo {
    /// The session id (the directory or key component under `uploads/`).
    pub id: String,
    /// The repository it uploads to; `None` when the record naming it is
    /// missing or unreadable, so the session can be neither resumed nor
    /// finished.
    pub repo: Option<RepoName>,
    /// Bytes the session occupies (data received, parts and records).
    pub bytes: u64,
    /// The last write to any of its files or objects.
    pub last_activity: SystemTime,
}

/// A temporary file left by a write (finished, running or interrupted).
#[derive(Debug, Clone)]
pub struct TempFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub modified: SystemTime,
}
