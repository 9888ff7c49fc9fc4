//! Resumable upload sessions on the filesystem backend. A session is a
//! directory `uploads/<id>/` holding the repository name and the data received
//! so far; the running hash lives in memory and is rebuilt by re-hashing the
//! data after a restart.
//!
//! A chunk is accounted (offset, hash) only once its write has succeeded,
//! and a PATCH is answered only after the data is fsynced. When a write
//! fails the in-memory state is dropped, so it is rebuilt from what is
//! really on disk; a full disk ends the session (see `api::uploads`). The
//! rules every session follows are in upload.rs.

use std::io;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::fs::FsStorage;
use super::upload::UploadBody;
use super::{durable, random_id, verify};
use super::{Result, StorageError, UploadStatus};
use crate::name::{Digest, RepoName};

pub(crate) struct UploadState {
    repo: RepoName,
    offset: u64,
    /// `None` after a restart until the data is re-hashed.
    hasher: Option<Sha256>,
}

impl FsStorage {
    async fn session(&self, id: &str) -> Result<Arc<tokio::sync::Mutex<UploadState>>> {
        if let Some(s) = self.uploads.lock().expect("uploads lock").get(id) {
            return Ok(s.clone());
        }
        let dir = self.upload_dir(id).ok_or(StorageError::UploadUnknown)?;
        let repo = match tokio::fs::read_to_string(dir.join("repo")).await {
            Ok(r) => RepoName::parse(r.trim()).ok_or(StorageError::UploadUnknown)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::UploadUnknown)
            }
            Err(e) => return Err(e.into()),
        };
        let offset = tokio::fs::metadata(dir.join("data")).await?.len();
        let state = Arc::new(tokio::sync::Mutex::new(UploadState {
            repo,
            offset,
            hasher: None,
        }));
        Ok(self
            .uploads
            .lock()
            .expect("uploads lock")
            .entry(id.to_string())
            .or_insert(state)
            .clone())
    }

    /// Forgets the in-memory state of a session, so the next request
    /// rebuilds it from the data on disk.
    fn forget(&self, id: &str) {
        self.uploads.lock().expect("uploads lock").remove(id);
    }
}

impl super::upload::UploadSessions for FsStorage {
    async fn upload_start(&self, repo: &RepoName) -> Result<String> {
        let id = random_id();
        let dir = self.upload_dir(&id).expect("valid id");
        let (d, name, tmp) = (dir.clone(), repo.to_string(), self.tmp_path());
        let created = tokio::task::spawn_blocking(move || {
            durable::create_dirs(&d)?;
            durable::write_new(&d.join("data"), b"")?;
            // `repo` last: a session without it is unknown, never half-made.
            durable::replace_file(&tmp, &d.join("repo"), name.as_bytes())
        })
        .await
        .map_err(io::Error::other)?;
        if let Err(e) = created {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return Err(e);
        }
        let state = UploadState {
            repo: repo.clone(),
            offset: 0,
            hasher: Some(Sha256::new()),
        };
        self.uploads
            .lock()
            .expect("uploads lock")
            .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(state)));
        Ok(id)
    }

    async fn upload_status(&self, id: &str) -> Result<UploadStatus> {
        let s = self.session(id).await?;
        let s = s.lock().await;
        Ok(UploadStatus {
            repo: s.repo.clone(),
            offset: s.offset,
        })
    }

    async fn upload_append(&self, id: &str, mut body: UploadBody) -> Result<Result<u64, u64>> {
        let s = self.session(id).await?;
        let mut s = s.lock().await;
        if let Err(offset) = body.begin_at(s.offset) {
            return Ok(Err(offset));
        }
        let dir = self.upload_dir(id).ok_or(StorageError::UploadUnknown)?;
        let path = dir.join("data");
        let mut f = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await
            .map_err(|e| durable::error_at("opening", &path, e))?;
        while let Some(chunk) = body.next().await {
            // tokio's File reports a failed write only on the next call:
            // flush, so the chunk is on disk before it is accounted.
            let written = async {
                f.write_all(&chunk).await?;
                f.flush().await
            }
            .await;
            if let Err(e) = written {
                self.forget(id);
                return Err(durable::error_at("writing", &path, e));
            }
            if let Some(h) = s.hasher.as_mut() {
                h.update(&chunk);
            }
            s.offset += chunk.len() as u64;
        }
        // What was received is kept, even from an interrupted body (the
        // client may resume), and durable before anything is acknowledged.
        if let Err(e) = f.sync_data().await {
            self.forget(id);
            return Err(durable::error_at("syncing", &path, e));
        }
        body.end()?;
        Ok(Ok(s.offset))
    }

    async fn upload_finish(&self, id: &str, expected: &Digest) -> Result<()> {
        let s = self.session(id).await?;
        let mut s = s.lock().await;
        let dir = self.upload_dir(id).ok_or(StorageError::UploadUnknown)?;
        let data = dir.join("data");
        let on_disk = tokio::fs::metadata(&data)
            .await
            .map_err(|e| durable::error_at("reading", &data, e))?
            .len();
        if on_disk != s.offset {
            // Never trust a running hash over bytes that are not there.
            tracing::warn!(
                upload = id,
                on_disk,
                offset = s.offset,
                "upload data differs from its record; re-hashing"
            );
            s.offset = on_disk;
            s.hasher = None;
        }
        let size = s.offset;
        let actual = match s.hasher.clone() {
            Some(h) => hex::encode(h.finalize()),
            None => verify::hash_file(&data).await?.0,
        };
        verify::digest_matches(expected, &actual)?;
        let installed = self.install_blob(&data, expected, size).await;
        // Installed or not, the data file is gone (moved, or removed on
        // error): the session cannot go on.
        let _ = tokio::fs::remove_dir_all(&dir).await;
        self.forget(id);
        installed
    }

    async fn upload_cancel(&self, id: &str) -> Result<()> {
        let s = self.session(id).await?;
        let _guard = s.lock().await;
        let dir = self.upload_dir(id).ok_or(StorageError::UploadUnknown)?;
        tokio::fs::remove_dir_all(&dir).await?;
        self.uploads.lock().expect("uploads lock").remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{ByteStream, Storage};
    use bytes::Bytes;
    use futures_util::StreamExt;

    fn stream(chunks: &[&'static [u8]]) -> ByteStream {
        futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    #[tokio::test]
    async fn session_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let repo = RepoName::parse("a/b").unwrap();
        let id = {
            let st = FsStorage::open(dir.path()).unwrap();
            let id = st.upload_start(&repo).await.unwrap();
            assert_eq!(
                st.upload_append(&id, Some(0), stream(&[b"hello "]), 1 << 20)
                    .await
                    .unwrap(),
                Ok(6)
            );
            id
        };
        // A new instance (a restart) resumes from the data on disk.
        let st = FsStorage::open(dir.path()).unwrap();
        assert_eq!(st.upload_status(&id).await.unwrap().offset, 6);
        assert_eq!(
            st.upload_append(&id, Some(3), stream(&[b"x"]), 1 << 20)
                .await
                .unwrap(),
            Err(6)
        );
        assert_eq!(
            st.upload_append(&id, Some(6), stream(&[b"world"]), 1 << 20)
                .await
                .unwrap(),
            Ok(11)
        );
        let want = Digest::of_bytes(b"hello world");
        let wrong = Digest::of_bytes(b"nope");
        assert!(matches!(
            st.upload_finish(&id, &wrong).await,
            Err(StorageError::DigestMismatch { .. })
        ));
        st.upload_finish(&id, &want).await.unwrap();
        assert_eq!(st.blob_size(&want).await.unwrap(), Some(11));
        assert!(matches!(
            st.upload_status(&id).await,
            Err(StorageError::UploadUnknown)
        ));
        assert!(st.leftover_temp_files().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let st = FsStorage::open(dir.path()).unwrap();
        let id = st
            .upload_start(&RepoName::parse("a").unwrap())
            .await
            .unwrap();
        assert!(st
            .upload_append(&id, None, stream(&[b"12345"]), 4)
            .await
            .is_err());
    }
}
