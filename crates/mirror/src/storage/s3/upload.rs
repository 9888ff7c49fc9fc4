//! Resumable upload sessions on the S3 backend. A session is the object
//! `uploads/<id>/session.json`; the data goes into an S3 multipart upload of
//! `uploads/<id>/data` in fixed [`PART_SIZE`] parts, and the bytes after the
//! last full part into a `tail-<n>` object. Everything is in the bucket, so
//! a PATCH or the final PUT can go to any replica.
//!
//! The session record is written after each part and tail: a replica killed
//! mid-PATCH leaves a session at its last recorded offset, which the client
//! reads back (GET on the session URL) and resumes from. A part uploaded but
//! not recorded is simply uploaded again under the same part number.
//!
//! The running sha256 is not kept (its state cannot be serialised with the
//! sha2 crate): finishing re-reads the assembled object and hashes it.

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use object_store::multipart::PartId;
use serde::{Deserialize, Serialize};

use super::{store_error, S3Storage};
use crate::name::{Digest, RepoName};
use crate::storage::upload::UploadBody;
use crate::storage::{verify, Result, StorageError, UploadStatus};

/// Size of every part but the last (S3's minimum is 5 MiB; some stores want
/// all parts equal).
pub(super) const PART_SIZE: usize = 8 << 20;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Session {
    repo: String,
    /// The multipart upload of `data`, created with the first full part.
    multipart: Option<String>,
    /// ETags of the uploaded parts, in order; each is [`PART_SIZE`] bytes.
    parts: Vec<String>,
    /// The bytes after the last part: key suffix and size.
    tail: Option<(u64, u64)>,
    /// Tails are written under fresh names so a crash between writing a tail
    /// and recording it leaves the recorded one intact.
    next_tail: u64,
}

impl Session {
    fn offset(&self) -> u64 {
        self.parts.len() as u64 * PART_SIZE as u64 + self.tail.map_or(0, |(_, n)| n)
    }
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit())
}

impl S3Storage {
    fn session_key(&self, id: &str, name: &str) -> object_store::path::Path {
        self.key(&format!("uploads/{id}/{name}"))
    }

    fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    fn forget(&self, id: &str) {
        self.sessions.lock().expect("sessions lock").remove(id);
    }

    async fn load(&self, id: &str) -> Result<Session> {
        if !valid_id(id) {
            return Err(StorageError::UploadUnknown);
        }
        let Some((body, _)) = self.read(&self.session_key(id, "session.json")).await? else {
            return Err(StorageError::UploadUnknown);
        };
        serde_json::from_slice(&body).map_err(|e| StorageError::Io(io::Error::other(e)))
    }

    async fn save(&self, id: &str, s: &Session) -> Result<()> {
        let body = serde_json::to_vec(s).map_err(|e| StorageError::Io(io::Error::other(e)))?;
        self.write(&self.session_key(id, "session.json"), body)
            .await
    }

    async fn tail_bytes(&self, id: &str, s: &Session) -> Result<Bytes> {
        let Some((n, size)) = s.tail else {
            return Ok(Bytes::new());
        };
        match self
            .read(&self.session_key(id, &format!("tail-{n}")))
            .await?
        {
            Some((b, _)) if b.len() as u64 == size => Ok(b),
            _ => Err(StorageError::Io(io::Error::other(format!(
                "upload {id}: tail-{n} is missing or short"
            )))),
        }
    }

    /// Uploads one full part and records it.
    async fn push_part(&self, id: &str, s: &mut Session, data: Bytes) -> Result<()> {
        let data_key = self.session_key(id, "data");
        let mp = match &s.multipart {
            Some(m) => m.clone(),
            None => {
                let m = self
                    .store
                    .create_multipart(&data_key)
                    .await
                    .map_err(store_error)?;
                s.multipart = Some(m.clone());
                m
            }
        };
        let part = self
            .store
            .put_part(&data_key, &mp, s.parts.len(), data.into())
            .await
            .map_err(store_error)?;
        s.parts.push(part.content_id);
        s.tail = None;
        self.save(id, s).await
    }

    /// Writes `data` as the new tail and records it.
    async fn put_tail(&self, id: &str, s: &mut Session, data: Bytes) -> Result<()> {
        if data.is_empty() {
            s.tail = None;
        } else {
            let n = s.next_tail;
            s.next_tail += 1;
            let size = data.len() as u64;
            self.write(&self.session_key(id, &format!("tail-{n}")), data)
                .await?;
            s.tail = Some((n, size));
        }
        self.save(id, s).await
    }

    /// Removes a session's objects and aborts its multipart upload.
    pub(super) async fn drop_session(&self, id: &str) -> Result<()> {
        if let Ok(s) = self.load(id).await {
            if let Some(mp) = &s.multipart {
                let _ = self
                    .store
                    .abort_multipart(&self.session_key(id, "data"), mp)
                    .await;
            }
        }
        for m in self.list(&format!("uploads/{id}")).await? {
            self.remove(&m.location).await?;
        }
        self.forget(id);
        Ok(())
    }
}

impl crate::storage::upload::UploadSessions for S3Storage {
    async fn upload_start(&self, repo: &RepoName) -> Result<String> {
        let id = crate::storage::random_id();
        let s = Session {
            repo: repo.to_string(),
            ..Default::default()
        };
        self.save(&id, &s).await?;
        Ok(id)
    }

    async fn upload_status(&self, id: &str) -> Result<UploadStatus> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let s = self.load(id).await?;
        Ok(UploadStatus {
            repo: RepoName::parse(&s.repo).ok_or(StorageError::UploadUnknown)?,
            offset: s.offset(),
        })
    }

    async fn upload_append(&self, id: &str, mut body: UploadBody) -> Result<Result<u64, u64>> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let mut s = self.load(id).await?;
        let offset = s.offset();
        if let Err(offset) = body.begin_at(offset) {
            return Ok(Err(offset));
        }
        let old_tail = s.tail;
        let mut buf = BytesMut::from(self.tail_bytes(id, &s).await?);
        while let Some(chunk) = body.next().await {
            buf.extend_from_slice(&chunk);
            while buf.len() >= PART_SIZE {
                let part = buf.split_to(PART_SIZE).freeze();
                self.push_part(id, &mut s, part).await?;
            }
        }
        // Keep what arrived, even from an interrupted body: the client can
        // ask for the offset and go on from there.
        let changed = body.received() != offset || s.tail.is_none() != buf.is_empty();
        if changed {
            self.put_tail(id, &mut s, buf.freeze()).await?;
        }
        // The old tail is in a part or the new tail now.
        if let Some((n, _)) = old_tail {
            if s.tail.map(|(m, _)| m) != Some(n) {
                let _ = self
                    .remove(&self.session_key(id, &format!("tail-{n}")))
                    .await;
            }
        }
        body.end()?;
        Ok(Ok(s.offset()))
    }

    async fn upload_finish(&self, id: &str, expected: &Digest) -> Result<()> {
        let lock = self.lock(id);
        // The caller holds the store lock, and another request of this
        // session may be reading a client's body at any pace: waiting for
        // it without end would hold GC, and every writer behind GC, too.
        let Ok(_guard) = tokio::time::timeout(self.session_wait, lock.lock()).await else {
            return Err(StorageError::Io(io::Error::other(format!(
                "upload {id}: busy with another request for {}s",
                self.session_wait.as_secs_f64()
            ))));
        };
        let s = self.load(id).await?;
        let data_key = self.session_key(id, "data");
        // The assembled object: the multipart upload with the tail as its
        // last part, the tail alone, or nothing (the empty blob).
        let assembled = match (&s.multipart, s.tail) {
            (Some(mp), tail) => {
                let mut parts: Vec<PartId> = s
                    .parts
                    .iter()
                    .map(|p| PartId {
                        content_id: p.clone(),
                    })
                    .collect();
                if tail.is_some() {
                    let bytes = self.tail_bytes(id, &s).await?;
                    let p = self
                        .store
                        .put_part(&data_key, mp, parts.len(), bytes.into())
                        .await
                        .map_err(store_error)?;
                    parts.push(p);
                }
                self.store
                    .complete_multipart(&data_key, mp, parts)
                    .await
                    .map_err(store_error)?;
                // The session now names a finished upload; it must not be
                // completed twice.
                let done = Session {
                    repo: s.repo.clone(),
                    ..Default::default()
                };
                self.save(id, &done).await?;
                data_key
            }
            (None, Some((n, _))) => self.session_key(id, &format!("tail-{n}")),
            (None, None) => {
                self.write(&data_key, Bytes::new()).await?;
                data_key
            }
        };
        let (actual, size) = self.hash_object(&assembled).await?;
        if let Err(e) = verify::digest_matches(expected, &actual) {
            // The data cannot be appended to any more; the session goes.
            self.drop_session(id).await?;
            return Err(e);
        }
        // Verified: now it becomes visible. Copying over an existing blob
        // writes the same bytes and refreshes its time, so a GC running on
        // another replica sees it as young.
        self.store
            .copy(&assembled, &self.blob_key(expected))
            .await
            .map_err(store_error)?;
        tracing::debug!(digest = %expected, bytes = size, "upload committed");
        self.drop_session(id).await?;
        Ok(())
    }

    async fn upload_cancel(&self, id: &str) -> Result<()> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.load(id).await?;
        self.drop_session(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::memory_store;
    use super::*;
    use crate::storage::{ByteStream, Storage};
    use futures_util::StreamExt;

    fn stream(chunks: Vec<Bytes>) -> ByteStream {
        futures_util::stream::iter(chunks.into_iter().map(Ok).collect::<Vec<_>>()).boxed()
    }

    /// A new upload session to repository `a`.
    async fn session_in_a(st: &S3Storage) -> String {
        st.upload_start(&RepoName::parse("a").unwrap())
            .await
            .unwrap()
    }

    fn pattern(n: usize) -> Bytes {
        (0..n)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>()
            .into()
    }

    #[tokio::test]
    async fn small_upload_resumes_on_another_instance() {
        let dir = tempfile::tempdir().unwrap();
        let a = memory_store(dir.path());
        let repo = RepoName::parse("a/b").unwrap();
        let id = a.upload_start(&repo).await.unwrap();
        let hello = Bytes::from_static(b"hello ");
        assert_eq!(
            a.upload_append(&id, Some(0), stream(vec![hello]), 1 << 30)
                .await
                .unwrap(),
            Ok(6)
        );
        // A second replica on the same store: no shared memory.
        let b = S3Storage {
            store: a.store.clone(),
            raw: a.raw.clone(),
            session_wait: a.session_wait,
            prefix: a.prefix.clone(),
            scratch: dir.path().join("scratch-b"),
            sessions: Default::default(),
            lock_timing: Default::default(),
            indexed: Default::default(),
            index_complete: Default::default(),
        };
        assert_eq!(b.upload_status(&id).await.unwrap().offset, 6);
        assert_eq!(b.upload_status(&id).await.unwrap().repo, repo);
        assert_eq!(
            b.upload_append(
                &id,
                Some(3),
                stream(vec![Bytes::from_static(b"x")]),
                1 << 30
            )
            .await
            .unwrap(),
            Err(6)
        );
        b.upload_append(
            &id,
            Some(6),
            stream(vec![Bytes::from_static(b"world")]),
            1 << 30,
        )
        .await
        .unwrap()
        .unwrap();
        let want = Digest::of_bytes(b"hello world");
        b.upload_finish(&id, &want).await.unwrap();
        assert_eq!(a.blob_size(&want).await.unwrap(), Some(11));
        assert!(matches!(
            a.upload_status(&id).await,
            Err(StorageError::UploadUnknown)
        ));
        assert!(a.list("uploads").await.unwrap().is_empty());
    }

    /// Finishing runs under the store lock: it must not wait without end
    /// for another request of the same session (one still reading a
    /// client's body, say), or GC and every writer behind it wait too.
    #[tokio::test]
    async fn finishing_waits_for_a_busy_session_only_so_long() {
        let dir = tempfile::tempdir().unwrap();
        let st =
            memory_store(dir.path()).with_request_timeout(std::time::Duration::from_millis(300));
        let id = session_in_a(&st).await;
        let session = st.lock(&id);
        let busy = session.lock().await;
        let empty = Digest::of_bytes(b"");
        let finish = st.upload_finish(&id, &empty);
        let e = tokio::time::timeout(std::time::Duration::from_secs(20), finish)
            .await
            .expect("finishing waited forever for a busy session")
            .unwrap_err();
        assert!(e.to_string().contains("busy with another request"), "{e}");
        drop(busy);
        st.upload_finish(&id, &empty).await.unwrap();
    }

    #[tokio::test]
    async fn multipart_upload_across_parts() {
        let dir = tempfile::tempdir().unwrap();
        let st = memory_store(dir.path());
        let repo = RepoName::parse("big").unwrap();
        let data = pattern(2 * PART_SIZE + 12345);
        let id = st.upload_start(&repo).await.unwrap();
        // Unaligned chunks: the tail carries over between PATCHes.
        let cut = PART_SIZE + 777;
        st.upload_append(&id, Some(0), stream(vec![data.slice(..cut)]), u64::MAX)
            .await
            .unwrap()
            .unwrap();
        let s = st.load(&id).await.unwrap();
        assert_eq!((s.parts.len(), s.offset()), (1, cut as u64));
        st.upload_append(
            &id,
            Some(cut as u64),
            stream(vec![data.slice(cut..cut + 10), data.slice(cut + 10..)]),
            u64::MAX,
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(st.load(&id).await.unwrap().parts.len(), 2);
        let d = Digest::of_bytes(&data);
        st.upload_finish(&id, &d).await.unwrap();
        let (size, mut r) = st.open_blob(&d, 0).await.unwrap().unwrap();
        assert_eq!(size, data.len() as u64);
        let mut back = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut r, &mut back)
            .await
            .unwrap();
        assert!(back == data, "blob content differs");
        assert!(st.list("uploads").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn concurrent_writers_of_one_blob() {
        let dir = tempfile::tempdir().unwrap();
        let st = Arc::new(memory_store(dir.path()));
        let data = pattern(PART_SIZE + 99);
        let d = Digest::of_bytes(&data);
        let writers: Vec<_> = (0..4)
            .map(|i| {
                let (st, data, d) = (st.clone(), data.clone(), d.clone());
                tokio::spawn(async move {
                    let repo = RepoName::parse(&format!("r{i}")).unwrap();
                    let id = st.upload_start(&repo).await?;
                    st.upload_append(&id, Some(0), stream(vec![data]), u64::MAX)
                        .await?
                        .expect("in order");
                    st.upload_finish(&id, &d).await
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap().unwrap();
        }
        let blobs = st.list_blobs().await.unwrap();
        assert_eq!(blobs.len(), 1, "one key for one content");
        assert_eq!(st.blob_size(&d).await.unwrap(), Some(data.len() as u64));
        assert!(st.list("uploads").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn wrong_digest_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let st = memory_store(dir.path());
        let id = session_in_a(&st).await;
        st.upload_append(&id, None, stream(vec![Bytes::from_static(b"data")]), 100)
            .await
            .unwrap()
            .unwrap();
        let wrong = Digest::of_bytes(b"nope");
        assert!(matches!(
            st.upload_finish(&id, &wrong).await,
            Err(StorageError::DigestMismatch { .. })
        ));
        assert_eq!(st.blob_size(&wrong).await.unwrap(), None);
        assert!(st.list_blobs().await.unwrap().is_empty());
        assert!(st
            .upload_append(&id, None, stream(vec![Bytes::from_static(b"x")]), 100)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn size_limit_and_cancel() {
        let dir = tempfile::tempdir().unwrap();
        let st = memory_store(dir.path());
        let id = session_in_a(&st).await;
        assert!(st
            .upload_append(&id, None, stream(vec![Bytes::from_static(b"12345")]), 4)
            .await
            .is_err());
        st.upload_cancel(&id).await.unwrap();
        assert!(matches!(
            st.upload_status(&id).await,
            Err(StorageError::UploadUnknown)
        ));
    }

    #[tokio::test]
    async fn idle_sessions_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let st = memory_store(dir.path());
        let id = session_in_a(&st).await;
        let long = std::time::Duration::from_secs(3600);
        assert!(st.purge_idle(long, false).await.unwrap().is_empty());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let zero = std::time::Duration::from_millis(1);
        let report = st.purge_idle(zero, true).await.unwrap();
        assert_eq!(report, vec![format!("upload session {id}")]);
        assert!(st.upload_status(&id).await.is_ok(), "dry run keeps it");
        st.purge_idle(zero, false).await.unwrap();
        assert!(st.upload_status(&id).await.is_err());
    }
}
