//! kill -9 during 20 concurrent pushes: after a restart no partial blob is
//! visible, fsck finds every blob equal to its digest, and an interrupted
//! upload session resumes.

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tools::serve_binary;
use common::{basic, write_htpasswd, PASSWORD, USER};
use corral_mirror::name::Digest;
use corral_mirror::storage::{FsStorage, Storage};
use corral_test_support::free_port;

async fn start(
    storage: &std::path::Path,
    htpasswd: &std::path::Path,
    port: u16,
) -> tokio::process::Child {
    let child = tokio::process::Command::new(serve_binary(
        storage.parent().expect("storage has a parent"),
    ))
    .args(["--listen", &format!("127.0.0.1:{port}"), "--storage"])
    .arg(storage)
    .arg("--htpasswd")
    .arg(htpasswd)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    for _ in 0..200 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("serve example did not come up");
}

fn blob(i: usize) -> Vec<u8> {
    (0..(2 << 20))
        .map(|j: usize| ((i * 7 + j * 13) % 256) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = write_htpasswd(dir.path());
    let storage = dir.path().join("storage");
    let port = free_port();
    let mut child = start(&storage, &htpasswd, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let auth = basic(USER, PASSWORD);
    let client = reqwest::Client::new();
    let done = Arc::new(AtomicUsize::new(0));
    let chunks_sent = Arc::new(AtomicUsize::new(0));
    let sessions = Arc::new(std::sync::Mutex::new(Vec::new()));

    let mut tasks = Vec::new();
    for i in 0..20 {
        let (client, base, auth, done, sessions) = (
            client.clone(),
            base.clone(),
            auth.clone(),
            done.clone(),
            sessions.clone(),
        );
        let chunks_sent = chunks_sent.clone();
        // Blobs 0 and 1 go first so some pushes complete before the kill.
        let head_start = i >= 2;
        tasks.push(tokio::spawn(async move {
            let data = blob(i);
            let d = Digest::of_bytes(&data);
            if head_start {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let r = client
                .post(format!("{base}/v2/crash/r{i}/blobs/uploads/"))
                .header("authorization", &auth)
                .send()
                .await
                .ok()?;
            let loc = r.headers().get("location")?.to_str().ok()?.to_string();
            sessions.lock().unwrap().push((i, loc.clone()));
            let mut off = 0;
            for chunk in data.chunks(64 << 10) {
                client
                    .patch(format!("{base}{loc}"))
                    .header("authorization", &auth)
                    .header("content-range", format!("{off}-{}", off + chunk.len() - 1))
                    .body(chunk.to_vec())
                    .send()
                    .await
                    .ok()?;
                off += chunk.len();
                chunks_sent.fetch_add(1, Ordering::SeqCst);
            }
            let r = client
                .put(format!("{base}{loc}?digest={d}"))
                .header("authorization", &auth)
                .send()
                .await
                .ok()?;
            if r.status() == 201 {
                done.fetch_add(1, Ordering::SeqCst);
                return Some(d);
            }
            None
        }));
    }
    // Kill once about half the data is in: some pushes done, most mid-flight.
    let t0 = Instant::now();
    while chunks_sent.load(Ordering::SeqCst) < 20 * 32 / 2 && t0.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    let mut committed = Vec::new();
    for t in tasks {
        if let Some(d) = t.await.unwrap() {
            committed.push(d);
        }
    }
    assert!(
        committed.len() < 20,
        "the kill must interrupt some pushes (all {} finished)",
        committed.len()
    );

    // After the crash: every visible blob is whole, committed ones are there.
    let store = FsStorage::open(&storage).unwrap();
    let report = corral_mirror::fsck::check(&store).await.unwrap();
    assert!(!report.damaged(), "{report:?}");
    for d in &committed {
        assert!(store.blob_size(d).await.unwrap().is_some());
    }
    let visible = store.list_blobs().await.unwrap();
    for (d, _) in &visible {
        let i = (0..20)
            .find(|&i| Digest::of_bytes(&blob(i)) == *d)
            .expect("only whole pushed blobs are visible");
        assert_eq!(
            store.blob_size(d).await.unwrap(),
            Some(blob(i).len() as u64)
        );
    }

    // Restart; an interrupted session resumes from its offset.
    let mut child = start(&storage, &htpasswd, port).await;
    let pending: Vec<(usize, String)> = sessions
        .lock()
        .unwrap()
        .iter()
        .filter(|(i, _)| !committed.contains(&Digest::of_bytes(&blob(*i))))
        .cloned()
        .collect();
    // A session whose PUT finished just before the kill is gone (its blob is
    // committed); resume the first one whose blob is not there.
    let visible_digests: Vec<Digest> = visible.iter().map(|(d, _)| d.clone()).collect();
    let mut resumable = None;
    for (i, loc) in pending {
        if visible_digests.contains(&Digest::of_bytes(&blob(i))) {
            continue;
        }
        let st = client
            .get(format!("{base}{loc}"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(
            st.status(),
            204,
            "an interrupted session survives the restart"
        );
        resumable = Some((i, loc, st));
        break;
    }
    let (i, loc, st) = resumable.expect("an interrupted session");
    let range = st.headers()["range"].to_str().unwrap().to_string();
    let end: usize = range.trim_start_matches("0-").parse().unwrap();
    let offset = if end == 0 { 0 } else { end + 1 };
    let data = blob(i);
    assert!(offset <= data.len());
    // A session killed after its last chunk but before its PUT has all
    // its bytes: nothing is left to send but the PUT.
    if offset < data.len() {
        let r = client
            .patch(format!("{base}{loc}"))
            .header("authorization", &auth)
            .header("content-range", format!("{offset}-{}", data.len() - 1))
            .body(data[offset..].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let d = Digest::of_bytes(&data);
    let r = client
        .put(format!("{base}{loc}?digest={d}"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "resumed upload after restart");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let report = corral_mirror::fsck::check(&store).await.unwrap();
    assert!(!report.damaged(), "{report:?}");
}
