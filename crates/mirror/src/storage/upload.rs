//! The rules every upload session follows, whatever keeps its bytes: a
//! chunk that says where it starts must start at the session's offset, a
//! body is read only up to the size limit, and what arrived before a body
//! broke off is kept (the client may resume from it). `fs_upload.rs` and
//! `s3/upload.rs` keep the bytes.

use std::future::Future;

use bytes::Bytes;
use futures_util::StreamExt;

use super::{ByteStream, Result, StorageError, UploadStatus};
use crate::name::{Digest, RepoName};

/// Upload sessions as a backend keeps them: persisted, so they survive a
/// restart (and, in a bucket, can go on at another replica).
pub trait UploadSessions {
    fn upload_start(&self, repo: &RepoName) -> impl Future<Output = Result<String>> + Send;
    fn upload_status(&self, id: &str) -> impl Future<Output = Result<UploadStatus>> + Send;
    /// Appends a body after [`UploadBody::begin_at`] accepted the session's
    /// offset; `Ok(Err(offset))` when it did not.
    fn upload_append(
        &self,
        id: &str,
        body: UploadBody,
    ) -> impl Future<Output = Result<Result<u64, u64>>> + Send;
    /// Verifies the upload hashes to `expected` and commits it as a blob.
    fn upload_finish(&self, id: &str, expected: &Digest)
        -> impl Future<Output = Result<()>> + Send;
    fn upload_cancel(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
}

/// A PATCH or PUT body read chunk by chunk against the size limit.
pub struct UploadBody {
    body: ByteStream,
    /// Where the client says the body starts, if it says.
    start: Option<u64>,
    received: u64,
    limit: u64,
    ended: Result<()>,
}

impl UploadBody {
    pub(crate) fn new(body: ByteStream, start: Option<u64>, limit: u64) -> UploadBody {
        UploadBody {
            body,
            start,
            received: 0,
            limit,
            ended: Ok(()),
        }
    }

    /// Accepts the session's current `offset`: `Err(offset)` when the
    /// body claims to start anywhere else.
    pub(crate) fn begin_at(&mut self, offset: u64) -> Result<(), u64> {
        if self.start.is_some_and(|s| s != offset) {
            return Err(offset);
        }
        self.received = offset;
        Ok(())
    }

    /// The next chunk; `None` at the end, when the body broke off, or
    /// when the chunk would pass the limit (it is not returned).
    pub(crate) async fn next(&mut self) -> Option<Bytes> {
        if self.ended.is_err() {
            return None;
        }
        let chunk = match self.body.next().await? {
            Ok(c) => c,
            Err(e) => {
                self.ended = Err(StorageError::UploadBody(e));
                return None;
            }
        };
        if self.received + chunk.len() as u64 > self.limit {
            self.ended = Err(StorageError::UploadTooLarge { limit: self.limit });
            return None;
        }
        self.received += chunk.len() as u64;
        Some(chunk)
    }

    /// The session's offset counting every chunk returned.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// How the body ended: `Ok` when it was read to its end. Called once
    /// what arrived is kept.
    pub(crate) fn end(self) -> Result<()> {
        self.ended
    }
}
