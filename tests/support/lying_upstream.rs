//! A registry upstream that lies, for the mirror's pull-through tests: a
//! plain HTTP/1.1 server on a loopback port (std only, one thread per
//! connection, `Connection: close`) that serves a few images and, until
//! told to be honest, corrupts some of them:
//!
//! - `library/wrong`: the layer has its length but not its bytes;
//! - `library/short`: the layer's `Content-Length` is its size, but the
//!   connection closes after half of it;
//! - `library/closed`: the layer has no `Content-Length`; the body ends
//!   (connection closed) after three quarters of it, so only the digest can
//!   tell;
//! - `library/liar`: the manifest's `Docker-Content-Digest` header names
//!   another digest, and asked for that digest the upstream answers with a
//!   manifest that does not hash to it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::faults::Image;
use crate::sha256_hex;

pub const LIAR_REPOS: [&str; 4] = [
    "library/wrong",
    "library/short",
    "library/closed",
    "library/liar",
];

/// The digest `library/liar`'s header claims while lying.
pub fn lied_digest() -> String {
    format!(
        "sha256:{}",
        sha256_hex(b"not the manifest you are looking for")
    )
}

pub struct LyingUpstream {
    pub port: u16,
    honest: Arc<AtomicBool>,
    /// Blob GETs answered, by `repo@digest` (how often the mirror asked).
    pub blob_gets: Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
}

struct Shared {
    images: BTreeMap<String, Arc<Image>>,
    honest: Arc<AtomicBool>,
    blob_gets: Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
}

impl LyingUpstream {
    /// Serves `images` (by repository, each tagged `v1`), lying until
    /// [`LyingUpstream::be_honest`].
    pub fn start(images: BTreeMap<String, Arc<Image>>) -> LyingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let port = listener.local_addr().unwrap().port();
        let honest = Arc::new(AtomicBool::new(false));
        let blob_gets = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let shared = Arc::new(Shared {
            images,
            honest: honest.clone(),
            blob_gets: blob_gets.clone(),
        });
        // The thread lives as long as the test process; the port is the
        // test's own.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = handle(&shared, conn);
                });
            }
        });
        LyingUpstream {
            port,
            honest,
            blob_gets,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn be_honest(&self) {
        self.honest.store(true, Ordering::SeqCst);
    }

    pub fn blob_gets(&self, repo: &str, digest: &str) -> usize {
        self.blob_gets
            .lock()
            .unwrap()
            .get(&format!("{repo}@{digest}"))
            .copied()
            .unwrap_or(0)
    }
}

fn handle(shared: &Shared, conn: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("").split('?').next().unwrap_or("");
    let head = method == "HEAD";
    let honest = shared.honest.load(Ordering::SeqCst);
    let mut out = conn;

    if path == "/v2/" || path == "/v2" {
        return respond(&mut out, 200, &[], b"{}", head);
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return respond(&mut out, 404, &[], b"{}", head);
    };
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        let Some(image) = shared.images.get(repo) else {
            return not_found(&mut out, head);
        };
        let real = image.blob(&image.manifest);
        let lying = !honest && repo == "library/liar";
        let body = if reference == "v1" || reference == image.manifest {
            real
        } else if lying && reference == lied_digest() {
            // Asked by digest, answer with other bytes.
            real
        } else {
            return not_found(&mut out, head);
        };
        let digest = if lying {
            lied_digest()
        } else {
            image.manifest.clone()
        };
        return respond(
            &mut out,
            200,
            &[
                (
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
                ("Docker-Content-Digest", digest),
                ("Content-Length", body.len().to_string()),
            ],
            &body,
            head,
        );
    }
    if let Some((repo, digest)) = rest.rsplit_once("/blobs/") {
        let Some(image) = shared.images.get(repo) else {
            return not_found(&mut out, head);
        };
        if !image.blobs.contains(&digest.to_string()) {
            return not_found(&mut out, head);
        }
        let bytes = image.blob(digest);
        let is_layer = image.blobs.last().map(String::as_str) == Some(digest);
        if !head {
            *shared
                .blob_gets
                .lock()
                .unwrap()
                .entry(format!("{repo}@{digest}"))
                .or_default() += 1;
        }
        let full_length = ("Content-Length", bytes.len().to_string());
        let octets = ("Content-Type", "application/octet-stream".to_string());
        if honest || !is_layer || head {
            return respond(&mut out, 200, &[octets, full_length], &bytes, head);
        }
        return match repo {
            "library/wrong" => {
                let mut lie = bytes.clone();
                let mid = lie.len() / 2;
                lie[mid] ^= 0xff;
                respond(&mut out, 200, &[octets, full_length], &lie, false)
            }
            "library/short" => {
                // The header promises it all; half arrives, then the
                // connection closes.
                write_head(&mut out, 200, &[octets, full_length])?;
                out.write_all(&bytes[..bytes.len() / 2])?;
                out.flush()?;
                out.shutdown(std::net::Shutdown::Both)
            }
            "library/closed" => {
                // No length at all: the end of the connection ends the body.
                write_head(&mut out, 200, &[octets])?;
                out.write_all(&bytes[..bytes.len() * 3 / 4])?;
                out.flush()?;
                out.shutdown(std::net::Shutdown::Both)
            }
            _ => respond(&mut out, 200, &[octets, full_length], &bytes, false),
        };
    }
    not_found(&mut out, head)
}

fn not_found(out: &mut TcpStream, head: bool) -> std::io::Result<()> {
    let body = br#"{"errors":[{"code":"NOT_FOUND","message":"not here"}]}"#;
    respond(
        out,
        404,
        &[
            ("Content-Type", "application/json".into()),
            ("Content-Length", body.len().to_string()),
        ],
        body,
        head,
    )
}

fn write_head(out: &mut TcpStream, status: u16, headers: &[(&str, String)]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Other",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    let mut headers = headers.to_vec();
    if !headers.iter().any(|(k, _)| *k == "Content-Length") {
        headers.push(("Content-Length", body.len().to_string()));
    }
    write_head(out, status, &headers)?;
    if !head {
        out.write_all(body)?;
    }
    out.flush()
}
