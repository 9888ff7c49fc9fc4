//! The filesystem backend's raw views for fsck (see inspect.rs): a walk of
//! `repos/`, `uploads/`, `tmp/` and the signature store's temp files. Each
//! walk runs in one blocking task rather than one task per file.

use std::io;
use std::path::Path;

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
        let dir = base.join(&id);
        let mut session = UploadSessionInfo {
            id,
            repo: None,
            bytes: meta.len(),
            last_activity: meta.modified()?,
        };
        if meta.is_dir() {
            // A session directory: what its files hold, and the newest write.
            session.bytes = 0;
            for (name, m) in entries(&dir)? {
                session.bytes += m.len();
                session.last_activity = session.last_activity.max(m.modified()?);
                if name == "repo" {
                    session.repo = std::fs::read_to_string(dir.join("repo"))
                        .ok()
                        .and_then(|r| RepoName::parse(r.trim()));
                }
            }
        }
        out.push(session);
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

/// Removes a file or a whole directory; whether it existed.
async fn remove_entry(path: &Path) -> Result<bool> {
    let removed = match tokio::fs::symlink_metadata(path).await {
        Ok(m) if m.is_dir() => tokio::fs::remove_dir_all(path).await,
        Ok(_) => tokio::fs::remove_file(path).await,
        Err(e) => Err(e),
    };
    match removed {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

impl FsStorage {
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
}

impl super::inspect::RawViews for FsStorage {
    async fn scan_links(&self) -> Result<Vec<LinkFile>> {
        let base = self.root().join("repos");
        blocking(move || scan_repos(&base)).await
    }

    async fn list_upload_sessions(&self) -> Result<Vec<UploadSessionInfo>> {
        let base = self.root().join("uploads");
        blocking(move || scan_sessions(&base)).await
    }

    async fn remove_upload_session(&self, id: &str) -> Result<bool> {
        if !safe_component(id) {
            return Ok(false);
        }
        self.uploads.lock().expect("uploads lock").remove(id);
        remove_entry(&self.root().join("uploads").join(id)).await
    }

    async fn list_temp_files(&self) -> Result<Vec<TempFile>> {
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

    async fn remove_temp_file(&self, path: &Path) -> Result<bool> {
        if !self.is_temp_path(path) {
            tracing::warn!(path = %path.display(), "refusing to remove a path outside the temp areas");
            return Ok(false);
        }
        // A stray directory in tmp/ is a leftover too.
        remove_entry(path).await
    }
}
