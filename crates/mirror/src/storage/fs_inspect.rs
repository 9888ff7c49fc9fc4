//! The filesystem backend's raw views for fsck (see inspect.rs): a walk of
//! `repos/`, `uploads/`, `tmp/` and the signature store's temp files. Each
//! walk runs in one blocking task rather than one task per file.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::fs::FsStorage;
use super::inspect::{LinkFile, LinkKind, TempFile, UploadSessionInfo};
use super::Result;
use crate::name::RepoName;

/// Link files are tiny; a bigger one is malformed and this much of it says so.
const MAX_LINK_READ: u64 = 64 << 10;

/// Entries of `dir`, sorted by name; a missing directory has none.
fn entries(dir: &Path) -> io::Result<Vec<(String, std::fs::Metadata)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e?;
        // Gone between the listing and the stat: a concurrent removal.
        let Ok(meta) = e.metadata() else { continue };
        if let Some(n) = e.file_name().to_str() {
            out.push((n.to_string(), meta));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn read_capped(path: &Path) -> io::Result<Bytes> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_LINK_READ)
        .read_to_end(&mut buf)?;
    Ok(buf.into())
}

/// The link files in one `_blobs`, `_manifests`, `_tags` or
/// `_referrers/<subject>` directory.
fn links_in(dir: &Path, repo: &str, kind: LinkKind, out: &mut Vec<LinkFile>) -> io::Result<()> {
    let read = !matches!(kind, LinkKind::Blob);
    for (name, meta) in entries(dir)? {
        if !meta.is_file() {
            continue;
        }
        let content = if read {
            match read_capped(&dir.join(&name)) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        out.push(LinkFile {
            repo: repo.to_string(),
            kind: kind.clone(),
            name,
            size: meta.len(),
            modified: meta.modified()?,
            content,
        });
    }
    Ok(())
}

fn scan_repos(base: &Path) -> io::Result<Vec<LinkFile>> {
    let mut out = Vec::new();
    // Repositories nest (`a/b` lives under `a/`), so every directory whose
    // name does not start with `_` may hold links and further repositories.
    let mut stack = vec![String::new()];
    while let Some(repo) = stack.pop() {
        let dir = if repo.is_empty() {
            base.to_path_buf()
        } else {
            base.join(&repo)
        };
        for (name, meta) in entries(&dir)? {
            if !meta.is_dir() {
                continue;
            }
            let sub = dir.join(&name);
            match name.as_str() {
                _ if repo.is_empty() && name.starts_with('_') => {}
                "_blobs" => links_in(&sub, &repo, LinkKind::Blob, &mut out)?,
                "_manifests" => links_in(&sub, &repo, LinkKind::Manifest, &mut out)?,
                "_tags" => links_in(&sub, &repo, LinkKind::Tag, &mut out)?,
                "_referrers" => {
                    for (subject, m) in entries(&sub)? {
                        if m.is_dir() {
                            let kind = LinkKind::Referrer {
                                subject: subject.clone(),
                            };
                            links_in(&sub.join(&subject), &repo, kind, &mut out)?;
                        }
                    }
                }
                n if n.starts_with('_') => {}
                _ if repo.is_empty() => stack.push(name.clone()),
                _ => stack.push(format!("{repo}/{name}")),
            }
        }
    }
    out.sort_by_key(|a| a.rel_path());
    Ok(out)
}

fn scan_sessions(base: &Path) -> io::Result<Vec<UploadSessionInfo>> {
    let mut out = Vec::new();
    for (id, meta) in entries(base)? {
        let mut bytes = 0;
        let mut last = meta.modified()?;
        let mut repo = None;
        if meta.is_dir() {
            for (name, m) in entries(&base.join(&id))? {
                bytes += m.len();
                last = last.max(m.modified()?);
                if name == "repo" {
                    repo = std::fs::read_to_string(base.join(&id).join("repo"))
                        .ok()
                        .and_then(|r| RepoName::parse(r.trim()));
                }
            }
        } else {
            bytes = meta.len();
        }
        out.push(UploadSessionInfo {
            id,
            repo,
            bytes,
            last_activity: last,
        });
    }
    Ok(out)
}

/// `.tmp-*` files `put_signature` leaves when interrupted, anywhere under
/// `sigstore/`.
fn signature_temp_files(dir: &Path, out: &mut Vec<TempFile>) -> io::Result<()> {
    for (name, meta) in entries(dir)? {
        let p = dir.join(&name);
        if meta.is_dir() {
            signature_temp_files(&p, out)?;
        } else if name.starts_with(".tmp-") {
            out.push(TempFile {
                path: p,
                bytes: meta.len(),
                modified: meta.modified()?,
            });
        }
    }
    Ok(())
}

fn safe_component(c: &str) -> bool {
    !c.is_empty() && c != "." && c != ".." && !c.contains(['/', '\\'])
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)??)
}

impl FsStorage {
    pub(super) async fn scan_links_impl(&self) -> Result<Vec<LinkFile>> {
        let base = self.root().join("repos");
        blocking(move || scan_repos(&base)).await
    }

    pub(super) async fn remove_link_file_impl(&self, link: &LinkFile) -> Result<bool> {
        if !link.components_safe() {
            tracing::warn!(path = %link.rel_path(), "refusing to remove a link with an unsafe path");
            return Ok(false);
        }
        let p = self.root().join(link.rel_path());
        match tokio::fs::remove_file(&p).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn list_upload_sessions_impl(&self) -> Result<Vec<UploadSessionInfo>> {
        let base = self.root().join("uploads");
        blocking(move || scan_sessions(&base)).await
    }

    pub(super) async fn remove_upload_session_impl(&self, id: &str) -> Result<bool> {
        if !safe_component(id) {
            return Ok(false);
        }
        self.uploads.lock().expect("uploads lock").remove(id);
        let p = self.root().join("uploads").join(id);
        let removed = match tokio::fs::symlink_metadata(&p).await {
            Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(&p).await,
            Ok(_) => tokio::fs::remove_file(&p).await,
            Err(e) => Err(e),
        };
        match removed {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn list_temp_files_impl(&self) -> Result<Vec<TempFile>> {
        let root = self.root().to_path_buf();
        blocking(move || {
            let mut out = Vec::new();
            let tmp = root.join("tmp");
            for (name, meta) in entries(&tmp)? {
                out.push(TempFile {
                    path: tmp.join(name),
                    bytes: meta.len(),
                    modified: meta.modified()?,
                });
            }
            signature_temp_files(&root.join("sigstore"), &mut out)?;
            Ok(out)
        })
        .await
    }

    /// Only `tmp/<name>` and `sigstore/**/.tmp-*` are temp files.
    fn is_temp_path(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(self.root()) else {
            return false;
        };
        let parts: Vec<&str> = rel
            .components()
            .map(|c| c.as_os_str().to_str().unwrap_or(".."))
            .collect();
        if !parts.iter().all(|c| safe_component(c)) {
            return false;
        }
        match parts.as_slice() {
            ["tmp", _] => true,
            ["sigstore", .., name] if parts.len() > 2 => name.starts_with(".tmp-"),
            _ => false,
        }
    }

    pub(super) async fn remove_temp_file_impl(&self, path: &Path) -> Result<bool> {
        if !self.is_temp_path(path) {
            tracing::warn!(path = %path.display(), "refusing to remove a path outside the temp areas");
            return Ok(false);
        }
        let p: PathBuf = path.to_path_buf();
        let removed = match tokio::fs::symlink_metadata(&p).await {
            // A stray directory in tmp/ is a leftover too.
            Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(&p).await,
            Ok(_) => tokio::fs::remove_file(&p).await,
            Err(e) => Err(e),
        };
        match removed {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
