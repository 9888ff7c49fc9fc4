//! Resumable upload sessions on the filesystem backend. A session is a
//! directory `uploads/<id>/` holding the repository name and the data received
//! so far; the running hash lives in memory and is rebuilt by re-hashing the
//! data after a restart.

use std::io;
use std::sync::Arc;

use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::fs::{random_id, FsStorage};
use super::{ByteStream, Result, StorageError, UploadStatus};
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

    pub(super) async fn upload_start_impl(&self, repo: &RepoName) -> Result<String> {
        let id = random_id();
        let dir = self.upload_dir(&id).expect("valid id");
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::File::create(dir.join("data")).await?;
        tokio::fs::write(dir.join("repo"), repo.as_str()).await?;
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

    pub(super) async fn upload_status_impl(&self, id: &str) -> Result<UploadStatus> {
        let s = self.session(id).await?;
        let s = s.lock().await;
        Ok(UploadStatus {
            repo: s.repo.clone(),
            offset: s.offset,
        })
    }

    pub(super) async fn upload_append_impl(
        &self,
        id: &str,
        start: Option<u64>,
        mut body: ByteStream,
        limit: u64,
    ) -> Result<Result<u64, u64>> {
        let s = self.session(id).await?;
        let mut s = s.lock().await;
        if let Some(start) = start {
            if start != s.offset {
                return Ok(Err(s.offset));
            }
        }
        let dir = self.upload_dir(id).ok_or(StorageError::UploadUnknown)?;
        let mut f = tokio::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("data"))
            .await?;
        let mut result = Ok(());
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            if s.offset + chunk.len() as u64 > limit {
                result = Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    "upload exceeds the size limit",
                ));
                break;
            }
            f.write_all(&chunk).await?;
            if let Some(h) = s.hasher.as_mut() {
                h.update(&chunk);
            }
            s.offset += chunk.len() as u64;
        }
        f.flush().await?;
        result?;
        Ok(Ok(s.offset))
    }

    pub(super) async fn upload_finish_impl(&self, id: &str, expected: &Digest) -> Result<()> {
        let s = self.session(id).await?;
        let mut s = s.lock().await;
        let dir = self.upload_dir(id).ok_or(StorageError::UploadUnknown)?;
        let data = dir.join("data");
        let actual = match s.hasher.clone() {
            Some(h) => hex::encode(h.finalize()),
            None => {
                let p = data.clone();
                let h = tokio::task::spawn_blocking(move || -> io::Result<Sha256> {
                    let mut h = Sha256::new();
                    io::copy(&mut std::fs::File::open(p)?, &mut h)?;
                    Ok(h)
                })
                .await
                .map_err(io::Error::other)??;
                s.hasher = Some(h.clone());
                hex::encode(h.finalize())
            }
        };
        if actual != expected.hex() {
            return Err(StorageError::DigestMismatch {
                expected: expected.to_string(),
                actual: format!("sha256:{actual}"),
            });
        }
        tokio::fs::File::open(&data).await?.sync_all().await?;
        self.install_blob(&data, expected).await?;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        self.uploads.lock().expect("uploads lock").remove(id);
        Ok(())
    }

    pub(super) async fn upload_cancel_impl(&self, id: &str) -> Result<()> {
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
    use crate::storage::Storage;
    use bytes::Bytes;

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
