//! The S3 backend's raw views for fsck (see storage/inspect.rs): listings of
//! `repos/` and `uploads/` split into links and sessions, and the replica's
//! scratch directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use futures_util::{StreamExt, TryStreamExt};

use super::{mtime, S3Storage};
use crate::name::RepoName;
use crate::storage::inspect::{LinkFile, LinkKind, TempFile, UploadSessionInfo};
use crate::storage::Result;

/// Link objects fetched at once (each is a small GET).
const READ_CONCURRENCY: usize = 16;

/// Splits `<repo>/_<kind>/<rest>` (relative to `repos/`). Repository name
/// components never start with `_`, so the first `/_` ends the name.
fn split_link_key(rel: &str) -> Option<(String, LinkKind, String)> {
    let i = rel.find("/_")?;
    let (repo, rest) = (&rel[..i], &rel[i + 1..]);
    let (dir, tail) = rest.split_once('/')?;
    let (kind, name) = match dir {
        "_blobs" => (LinkKind::Blob, tail),
        "_manifests" => (LinkKind::Manifest, tail),
        "_tags" => (LinkKind::Tag, tail),
        "_referrers" => {
            let (subject, name) = tail.split_once('/')?;
            (
                LinkKind::Referrer {
                    subject: subject.to_string(),
                },
                name,
            )
        }
        _ => return None,
    };
    // A deeper key is no link this backend writes; its removal path could
    // not be rebuilt from the components, so it is left to the operator.
    if name.contains('/') || repo.is_empty() {
        return None;
    }
    Some((repo.to_string(), kind, name.to_string()))
}

impl crate::storage::inspect::RawViews for S3Storage {
    async fn scan_links(&self) -> Result<Vec<LinkFile>> {
        let mut found = Vec::new();
        for m in self.list("repos").await? {
            let Some(rel) = self.rel(&m.location).and_then(|r| r.strip_prefix("repos/")) else {
                continue;
            };
            match split_link_key(rel) {
                Some((repo, kind, name)) => found.push((m.location.clone(), repo, kind, name, m)),
                None => tracing::warn!(key = %m.location, "object under repos/ is not a link"),
            }
        }
        let links: Vec<LinkFile> = futures_util::stream::iter(found)
            .map(|(key, repo, kind, name, meta)| async move {
                let content = if kind == LinkKind::Blob {
                    None
                } else {
                    match self.read(&key).await? {
                        Some((b, _)) => Some(b),
                        // Removed since the listing.
                        None => return Ok(None),
                    }
                };
                Ok::<_, crate::storage::StorageError>(Some(LinkFile {
                    repo,
                    kind,
                    name,
                    size: meta.size,
                    modified: mtime(&meta),
                    content,
                }))
            })
            .buffered(READ_CONCURRENCY)
            .try_filter_map(|l| async move { Ok(l) })
            .try_collect()
            .await?;
        Ok(links)
    }

    async fn list_upload_sessions(&self) -> Result<Vec<UploadSessionInfo>> {
        // id -> (bytes, last activity, has session.json)
        let mut by_id: BTreeMap<String, (u64, SystemTime, bool)> = BTreeMap::new();
        for m in self.list("uploads").await? {
            let Some((id, name)) = self
                .rel(&m.location)
                .and_then(|r| r.strip_prefix("uploads/"))
                .and_then(|r| r.split_once('/'))
            else {
                continue;
            };
            let e = by_id
                .entry(id.to_string())
                .or_insert((0, SystemTime::UNIX_EPOCH, false));
            e.0 += m.size;
            e.1 = e.1.max(mtime(&m));
            e.2 |= name == "session.json";
        }
        let mut out = Vec::new();
        for (id, (mut bytes, last, has_record)) in by_id {
            let mut repo = None;
            if has_record {
                // Read as plain JSON: the record's layout belongs to
                // upload.rs, fsck only needs the repository and the parts
                // (which take space but are not listed as objects).
                let key = self.key(&format!("uploads/{id}/session.json"));
                if let Some((body, _)) = self.read(&key).await? {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                        repo = v["repo"].as_str().and_then(RepoName::parse);
                        let parts = v["parts"].as_array().map_or(0, |p| p.len()) as u64;
                        bytes += parts * super::upload::PART_SIZE as u64;
                    }
                }
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

    async fn remove_upload_session(&self, id: &str) -> Result<bool> {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return Ok(false);
        }
        let existed = !self.list(&format!("uploads/{id}")).await?.is_empty();
        self.drop_session(id).await?;
        Ok(existed)
    }

    async fn list_temp_files(&self) -> Result<Vec<TempFile>> {
        let mut out = Vec::new();
        let mut rd = tokio::fs::read_dir(&self.scratch).await?;
        while let Some(e) = rd.next_entry().await? {
            let Ok(meta) = e.metadata().await else {
                continue;
            };
            out.push(TempFile {
                path: e.path(),
                bytes: meta.len(),
                modified: meta.modified()?,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn remove_temp_file(&self, path: &Path) -> Result<bool> {
        let in_scratch = path.parent() == Some(self.scratch.as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n != "." && n != "..");
        if !in_scratch {
            tracing::warn!(path = %path.display(), "refusing to remove a path outside the scratch directory");
            return Ok(false);
        }
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_keys() {
        assert_eq!(
            split_link_key("a/b/_tags/v1"),
            Some(("a/b".into(), LinkKind::Tag, "v1".into()))
        );
        assert_eq!(
            split_link_key("a/_referrers/abc/def"),
            Some((
                "a".into(),
                LinkKind::Referrer {
                    subject: "abc".into()
                },
                "def".into()
            ))
        );
        assert_eq!(split_link_key("a/_manifests/x/y"), None);
        assert_eq!(split_link_key("a/_other/x"), None);
        assert_eq!(split_link_key("a/b/c"), None);
    }
}
