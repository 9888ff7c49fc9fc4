//! Blob bodies sent with `sendfile(2)` on plain HTTP/1.1 connections.
//!
//! A blob GET otherwise copies every byte twice in the kernel: `pread`
//! into a buffer of ours, then `write` from it into the socket. `sendfile`
//! hands the page cache's pages to the socket, so the mirror's copies go.
//! The HTTP library writes response bodies from `Bytes` frames and cannot
//! be handed a file, so the body carries placeholders instead:
//!
//! - [`ZeroCopy::body`] yields, for each span of the file, a frame whose
//!   bytes are a slice of [`PLACEHOLDER`] (a static that is never sent)
//!   and queues the span (file, offset, length) on the connection;
//! - the connection's stream, [`ZeroCopyStream`], recognises a write of
//!   placeholder bytes by their address and sends the span at the head of
//!   the queue from the file instead, with `sendfile`; every other write
//!   (status line, headers, manifests, pages) goes to the socket as is.
//!
//! The HTTP library passes body frames to the stream unchanged and in
//! order when it writes with vectored writes (its "queue" strategy, which
//! [`crate::server`] sets on these connections): it never copies them into
//! a buffer of its own, which would turn the placeholder into bytes sent.
//! Each write checks that the placeholder bytes it is given are exactly
//! what is left of the span at the head of the queue; anything else
//! fails the connection, so a client gets a short body (which it rejects),
//! never wrong bytes. A blob file shorter than its span (cut under the
//! mirror) fails the same way. For the same reason no layer of the
//! router may read or transform response bodies (compression, say): it
//! would see the placeholder's bytes. `tests/zero_copy.rs` compares every
//! byte served through the whole router with the blob's.
//!
//! `sendfile` reads the page cache on the runtime thread that serves the
//! connection; each frame asks the kernel to read its span and the next
//! ahead (`fadvise(WILLNEED)`), so on a cold cache it waits for the disk
//! little. TLS connections encrypt in user space: they keep the
//! read-and-write path (crates/mirror/src/storage/fs.rs), as do backends
//! whose blobs are not local files (S3).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::storage::ByteStream;

/// The most one placeholder frame stands for.
const SPAN: usize = 1 << 23;

/// The bytes placeholder frames point into. Never read, never sent: the
/// stream replaces them with the file's bytes.
static PLACEHOLDER: [u8; SPAN] = [0; SPAN];

fn is_placeholder(buf: &[u8]) -> bool {
    let start = PLACEHOLDER.as_ptr() as usize;
    let at = buf.as_ptr() as usize;
    !buf.is_empty() && at >= start && at < start + SPAN
}

/// A part of a file a placeholder frame stands for.
struct Span {
    file: Arc<File>,
    offset: u64,
    len: usize,
}

/// The spans a connection's placeholder frames stand for, in the order the
/// body yielded them.
#[derive(Default)]
struct Spans(Mutex<VecDeque<Span>>);

impl Spans {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Span>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A request's handle on its connection's zero-copy path (a request
/// extension, present only on connections that have one).
#[derive(Clone)]
pub(crate) struct ZeroCopy(Arc<Spans>);

impl ZeroCopy {
    /// `len` bytes of `file` from `offset` as placeholder frames.
    pub(crate) fn body(&self, file: File, offset: u64, len: u64) -> ByteStream {
        let (file, spans) = (Arc::new(file), self.0.clone());
        let parts = (0..len.div_ceil(SPAN as u64)).map(move |i| {
            let start = offset + i * SPAN as u64;
            (start, (SPAN as u64).min(offset + len - start) as usize)
        });
        let end = offset + len;
        futures_util::stream::iter(parts)
            .map(move |(start, n)| {
                // Start reading this span and the next from disk, so
                // `sendfile` mostly finds them in the page cache (a hint:
                // it does not wait for the disk; `sendfile` does, on a
                // page not read yet).
                let ahead = (end - start).min(2 * SPAN as u64);
                if let Err(e) = rustix::fs::fadvise(
                    &*file,
                    start,
                    std::num::NonZeroU64::new(ahead),
                    rustix::fs::Advice::WillNeed,
                ) {
                    tracing::debug!(error = %e, "fadvise(WILLNEED) on a blob");
                }
                // queued as the body yields the frame, so in the order the
                // connection writes them
                spans.lock().push_back(Span {
                    file: file.clone(),
                    offset: start,
                    len: n,
                });
                Ok(Bytes::from_static(&PLACEHOLDER[..n]))
            })
            .boxed()
    }
}

/// A plain TCP connection whose placeholder writes are sent from files.
pub(crate) struct ZeroCopyStream {
    tcp: TcpStream,
    spans: Arc<Spans>,
}

impl ZeroCopyStream {
    /// The stream, and the handle its requests carry.
    pub(crate) fn new(tcp: TcpStream) -> (ZeroCopyStream, ZeroCopy) {
        let spans = Arc::new(Spans::default());
        (
            ZeroCopyStream {
                tcp,
                spans: spans.clone(),
            },
            ZeroCopy(spans),
        )
    }

    /// Sends what `placeholder` stands for (the rest of the span at the
    /// head of the queue) from its file.
    fn poll_send_span(&self, cx: &mut Context<'_>, placeholder: &[u8]) -> Poll<io::Result<usize>> {
        let done = placeholder.as_ptr() as usize - PLACEHOLDER.as_ptr() as usize;
        let (file, offset, span_len) = {
            let spans = self.spans.lock();
            let Some(head) = spans.front() else {
                return Poll::Ready(Err(io::Error::other(
                    "a placeholder frame was written with no blob span queued",
                )));
            };
            if done + placeholder.len() != head.len {
                return Poll::Ready(Err(io::Error::other(format!(
                    "a placeholder frame of {} bytes at {done} does not end the queued span of {}",
                    placeholder.len(),
                    head.len
                ))));
            }
            (head.file.clone(), head.offset + done as u64, head.len)
        };
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                let mut at = offset;
                rustix::fs::sendfile(&self.tcp, &*file, Some(&mut at), placeholder.len())
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the blob file ends before its length",
                    )))
                }
                Ok(n) => {
                    if done + n == span_len {
                        self.spans.lock().pop_front();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for ZeroCopyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ZeroCopyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if is_placeholder(buf) {
            return this.poll_send_span(cx, buf);
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    /// The slices before the first placeholder go out in one `writev`; a
    /// placeholder at the front is sent from its file.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let bufs: Vec<&[u8]> = bufs
            .iter()
            .map(|b| &**b)
            .filter(|b| !b.is_empty())
            .collect();
        let Some(first) = bufs.first() else {
            return Poll::Ready(Ok(0));
        };
        if is_placeholder(first) {
            return this.poll_send_span(cx, first);
        }
        let plain: Vec<IoSlice<'_>> = bufs
            .iter()
            .take_while(|b| !is_placeholder(b))
            .map(|b| IoSlice::new(b))
            .collect();
        Pin::new(&mut this.tcp).poll_write_vectored(cx, &plain)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A file of `len` bytes that differ from their neighbours.
    fn patterned(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        (f, data)
    }

    async fn pair() -> (ZeroCopyStream, ZeroCopy, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (stream, handle) = ZeroCopyStream::new(server.unwrap().0);
        (stream, handle, client.unwrap())
    }

    /// Writes the frames as the HTTP library does: each one, slice by
    /// slice, advancing by what each write took (partial writes included,
    /// as the reader is slower than the writer).
    async fn write_frames(stream: &mut ZeroCopyStream, frames: Vec<Bytes>) {
        for mut frame in frames {
            while !frame.is_empty() {
                let n = futures_util::future::poll_fn(|cx| {
                    Pin::new(&mut *stream).poll_write_vectored(cx, &[IoSlice::new(&frame)])
                })
                .await
                .unwrap();
                assert!(n > 0);
                frame = frame.slice(n..);
            }
        }
        stream.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn placeholders_become_the_files_bytes_between_plain_writes() {
        let (file, data) = patterned(2 * SPAN + 12_345);
        let (mut stream, handle, mut client) = pair().await;
        // a range that starts inside the file and crosses two span edges
        let (offset, len) = (777u64, (2 * SPAN + 5_000) as u64);
        let body: Vec<Bytes> = handle
            .body(File::open(file.path()).unwrap(), offset, len)
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(body.len(), 3);
        assert!(body.iter().all(|b| is_placeholder(b)));
        let mut frames = vec![Bytes::from_static(b"head\r\n")];
        frames.extend(body);
        frames.push(Bytes::from_static(b"tail"));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        write_frames(&mut stream, frames).await;
        let got = reader.await.unwrap();
        let mut want = b"head\r\n".to_vec();
        want.extend_from_slice(&data[offset as usize..(offset + len) as usize]);
        want.extend_from_slice(b"tail");
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the bytes sent differ from the file's");
        assert!(stream.spans.lock().is_empty());
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_span_fails_the_write_instead_of_sending_zeros() {
        let (file, _) = patterned(1000);
        let (mut stream, handle, _client) = pair().await;
        let mut body = handle.body(File::open(file.path()).unwrap(), 0, 4000);
        let frame = body.next().await.unwrap().unwrap();
        assert_eq!(frame.len(), 4000);
        let mut frame = frame;
        let err = loop {
            match futures_util::future::poll_fn(|cx| {
                Pin::new(&mut stream).poll_write_vectored(cx, &[IoSlice::new(&frame)])
            })
            .await
            {
                Ok(n) => frame = frame.slice(n..),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(frame.len(), 3000, "the file's 1000 bytes went out first");
    }

    #[tokio::test]
    async fn a_placeholder_with_nothing_queued_fails_the_write() {
        let (mut stream, _handle, _client) = pair().await;
        let err = futures_util::future::poll_fn(|cx| {
            Pin::new(&mut stream).poll_write(cx, &PLACEHOLDER[..10])
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no blob span queued"), "{err}");
    }
}
