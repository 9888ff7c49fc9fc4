//! Blob bodies sent with `sendfile` (crates/mirror/src/zerocopy.rs), over
//! real sockets: blobs of several spans read together and again, ranges
//! across a span's edge, and pipelined requests on one connection whose
//! responses mix file-sent bodies with ordinary ones all come back exact;
//! the metrics say the bytes went out with `sendfile`.

use std::io::{Read, Write};
use std::net::TcpStream;

mod common;

use common::{server_config_with_auth, PASSWORD, USER};
use corral_mirror::name::Digest;
use corral_test_support::patterned_bytes;

async fn push(client: &reqwest::Client, base: &str, repo: &str, data: &[u8]) -> Digest {
    let d = Digest::of_bytes(data);
    let resp = client
        .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={d}"))
        .basic_auth(USER, Some(PASSWORD))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
    d
}

fn sendfile_bytes(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("corral_mirror_bytes_sendfile_total "))
        .expect("the sendfile counter")
        .parse()
        .unwrap()
}

/// Reads one HTTP/1.1 response (headers and a Content-Length body).
fn read_response(stream: &mut TcpStream, head_request: bool) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; if head_request { 0 } else { len }];
    stream.read_exact(&mut body).unwrap();
    (head, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_bodies_sent_from_their_files_come_back_exact() {
    let dir = tempfile::tempdir().unwrap();
    let config = server_config_with_auth(dir.path());
    let server = corral_mirror::server::start(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let client = reqwest::Client::new();

    // Two blobs of several 8 MiB spans (and a short last one).
    let (a, b) = (
        patterned_bytes(1, (17 << 20) + 123),
        patterned_bytes(2, (9 << 20) + 7),
    );
    let da = push(&client, &base, "zc/a", &a).await;
    let db = push(&client, &base, "zc/b", &b).await;
    let (ua, ub) = (
        format!("{base}/v2/zc/a/blobs/{da}"),
        format!("{base}/v2/zc/b/blobs/{db}"),
    );
    let mut served = 0u64;
    for _ in 0..3 {
        let (ga, gb) = tokio::join!(client.get(&ua).send(), client.get(&ub).send());
        let (ga, gb) = (ga.unwrap(), gb.unwrap());
        assert_eq!(ga.status(), 200);
        assert_eq!(gb.status(), 200);
        let (ga, gb) = tokio::join!(ga.bytes(), gb.bytes());
        assert!(ga.unwrap()[..] == a[..], "blob a came back different");
        assert!(gb.unwrap()[..] == b[..], "blob b came back different");
        served += (a.len() + b.len()) as u64;
    }

    // Pipelined on one connection: HEAD, a range across the first span's
    // edge, the liveness page, the whole of b; each response in order.
    let (start, end) = ((8 << 20) - 5, (16 << 20) + 9);
    let port = server.addr.port();
    let (da2, db2) = (da.to_string(), db.to_string());
    let (a2, b2) = (a.clone(), b.clone());
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let host = format!("127.0.0.1:{port}");
        let requests = format!(
            "HEAD /v2/zc/a/blobs/{da2} HTTP/1.1\r\nHost: {host}\r\n\r\n\
             GET /v2/zc/a/blobs/{da2} HTTP/1.1\r\nHost: {host}\r\nRange: bytes={start}-{end}\r\n\r\n\
             GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n\
             GET /v2/zc/b/blobs/{db2} HTTP/1.1\r\nHost: {host}\r\n\r\n"
        );
        s.write_all(requests.as_bytes()).unwrap();
        let (head, body) = read_response(&mut s, true);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(body.is_empty());
        let (head, body) = read_response(&mut s, false);
        assert!(head.starts_with("HTTP/1.1 206"), "{head}");
        assert!(body == a2[start..=end], "the range came back different");
        let (head, body) = read_response(&mut s, false);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"ok\n");
        let (head, body) = read_response(&mut s, false);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(body == b2, "blob b came back different after the others");
    })
    .await
    .unwrap();
    served += (end - start + 1) as u64 + b.len() as u64;

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sendfile_bytes(&metrics),
        served,
        "every blob byte went out with sendfile"
    );
    server.stop().await.unwrap();
}
