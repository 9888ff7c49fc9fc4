//! GC while clients push: `gc::collect` loops against the store while 20
//! clients push images through the in-process router (chunked uploads,
//! cross-repository mounts, re-uploads of existing blobs, manifest PUTs by
//! tag). Afterwards every push that was acknowledged with 201 must pull back
//! byte-identical, fsck must be clean, and one more GC must leave all of it
//! in place. Run for the filesystem backend and for the S3 backend with two
//! replicas sharing one object store (in memory, and on Garage when the
//! binary is installed).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use common::{basic, write_htpasswd, OCI_MANIFEST, PASSWORD, USER};
use corral_mirror::api::{router, App};
use corral_mirror::config::Config;
use corral_mirror::gc::GcReport;
use corral_mirror::name::{Digest, RepoName};
use corral_mirror::storage::{FsStorage, ObjectBackend, S3Storage, Storage};
use corral_test_support::Garage;
use object_store::memory::InMemory;
use tower::ServiceExt;

const CLIENTS: usize = 20;
const ROUNDS: usize = 4;
const REPOS: usize = 4;
/// Content every image has as its first layer: re-uploaded or mounted by
/// every client, so its blob and links are refreshed while GC runs.
const BASE: &[u8] = b"base layer shared by every image in this test";
/// Pauses between GC runs. With grace 0 every push racing a GC run is
/// refused (its upload session or unreferenced blobs go), so GC runs less
/// often there for pushes to get through at all.
const FREQUENT: Duration = Duration::from_millis(5);
const SPACED: Duration = Duration::from_millis(150);

/// The registry under test: one router per replica, and the store GC runs on.
struct Cluster {
    replicas: Vec<Router>,
    store: Arc<dyn Storage>,
    _dir: tempfile::TempDir,
}

fn app(dir: &Path, store: Arc<dyn Storage>) -> Router {
    let mut config = Config {
        listen: "127.0.0.1:5000".parse().unwrap(),
        storage: dir.join("unused"),
        ..Default::default()
    };
    config.auth.htpasswd = Some(write_htpasswd(dir));
    router(Arc::new(App::new(config, store).unwrap()))
}

fn fs_cluster() -> (Cluster, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let store: Arc<dyn Storage> = Arc::new(FsStorage::open(&root).unwrap());
    let cluster = Cluster {
        replicas: vec![app(dir.path(), store.clone())],
        store,
        _dir: dir,
    };
    (cluster, root)
}

struct Resp {
    status: StatusCode,
    location: Option<String>,
    body: Bytes,
}

async fn send(r: &Router, method: Method, uri: &str, ctype: Option<&str>, body: Bytes) -> Resp {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "registry.test:5000")
        .header("authorization", basic(USER, PASSWORD));
    if let Some(c) = ctype {
        b = b.header("content-type", c);
    }
    let resp = r
        .clone()
        .oneshot(b.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Resp {
        status,
        location,
        body,
    }
}

fn failure(what: &str, r: &Resp) -> String {
    format!("{what}: {} {}", r.status, String::from_utf8_lossy(&r.body))
}

/// A chunked upload (POST, PATCH, PUT), as skopeo and docker push.
async fn upload(r: &Router, repo: &str, data: &[u8]) -> Result<Digest, String> {
    let d = Digest::of_bytes(data);
    let start = send(
        r,
        Method::POST,
        &format!("/v2/{repo}/blobs/uploads/"),
        None,
        Bytes::new(),
    )
    .await;
    if start.status != StatusCode::ACCEPTED {
        return Err(failure("upload start", &start));
    }
    let loc = start.location.expect("session location");
    let patch = send(r, Method::PATCH, &loc, None, Bytes::copy_from_slice(data)).await;
    if patch.status != StatusCode::ACCEPTED {
        return Err(failure("upload patch", &patch));
    }
    let loc = patch.location.expect("session location");
    let sep = if loc.contains('?') { '&' } else { '?' };
    let put = send(
        r,
        Method::PUT,
        &format!("{loc}{sep}digest={d}"),
        None,
        Bytes::new(),
    )
    .await;
    if put.status != StatusCode::CREATED {
        return Err(failure("upload finish", &put));
    }
    Ok(d)
}

/// Mounts `data`'s blob from the `base` repository, or uploads it when the
/// registry does not have it there (202 instead of 201).
async fn mount_or_upload(r: &Router, repo: &str, data: &[u8]) -> Result<Digest, String> {
    let d = Digest::of_bytes(data);
    let m = send(
        r,
        Method::POST,
        &format!("/v2/{repo}/blobs/uploads/?mount={d}&from=base"),
        None,
        Bytes::new(),
    )
    .await;
    match m.status {
        StatusCode::CREATED => Ok(d),
        StatusCode::ACCEPTED => {
            let _ = send(
                r,
                Method::DELETE,
                &m.location.expect("location"),
                None,
                Bytes::new(),
            )
            .await;
            upload(r, repo, data).await
        }
        _ => Err(failure("mount", &m)),
    }
}

/// One image the test pushed and the registry acknowledged.
#[derive(Debug, Clone)]
struct Pushed {
    repo: String,
    tag: String,
    manifest: Bytes,
    blobs: Vec<Bytes>,
}

fn image(client: usize, round: usize) -> (Vec<Bytes>, Vec<u8>) {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"client":{client},"round":{round}}}"#
    );
    let layer = format!("layer of client {client} round {round} ").repeat(50);
    let blobs = vec![
        Bytes::from(config),
        Bytes::from_static(BASE),
        Bytes::from(layer),
    ];
    let desc = |b: &Bytes, mt: &str| serde_json::json!({"mediaType": mt, "digest": Digest::of_bytes(b).to_string(), "size": b.len()});
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(&blobs[0], "application/vnd.oci.image.config.v1+json"),
        "layers": [
            desc(&blobs[1], "application/vnd.oci.image.layer.v1.tar"),
            desc(&blobs[2], "application/vnd.oci.image.layer.v1.tar"),
        ],
    }))
    .unwrap();
    (blobs, manifest)
}

/// Pushes one image: its blobs through `up` and the manifest through
/// `manifest_via` (another replica, when there are several).
async fn push(
    up: &Router,
    manifest_via: &Router,
    client: usize,
    round: usize,
) -> Result<Pushed, String> {
    let repo = format!("team{}/app", client % REPOS);
    let tag = format!("c{client}-r{round}");
    let (blobs, manifest) = image(client, round);
    upload(up, &repo, &blobs[0]).await?;
    tokio::time::sleep(Duration::from_millis(1)).await;
    if client % 2 == 0 {
        mount_or_upload(up, &repo, &blobs[1]).await?;
    } else {
        upload(up, &repo, &blobs[1]).await?;
    }
    upload(up, &repo, &blobs[2]).await?;
    // A client's round trip: room for a GC between the blobs and the
    // manifest that references them.
    tokio::time::sleep(Duration::from_millis(3)).await;
    let r = send(
        manifest_via,
        Method::PUT,
        &format!("/v2/{repo}/manifests/{tag}"),
        Some(OCI_MANIFEST),
        Bytes::from(manifest.clone()),
    )
    .await;
    if r.status != StatusCode::CREATED {
        return Err(failure("manifest put", &r));
    }
    Ok(Pushed {
        repo,
        tag,
        manifest: manifest.into(),
        blobs,
    })
}

/// What a run of pushes under a GC loop produced.
struct Outcome {
    pushed: Vec<Pushed>,
    /// Pushes that failed (each attempt counts).
    refused: Vec<String>,
    gc_runs: usize,
    /// GC runs that failed.
    gc_errors: Vec<String>,
    /// Longest and total time GC held the exclusive lock.
    locked_max_ms: u64,
    locked_total_ms: u64,
    /// Everything the GC runs reported removing (upload sessions and
    /// temporary files included).
    removed: BTreeSet<String>,
}

/// Runs `CLIENTS` clients for `ROUNDS` rounds each while GC loops with
/// `grace`. A failed push is retried up to `attempts` times, as a client
/// would.
/// `pause` is the time between two GC runs.
async fn pushes_under_gc(
    c: &Cluster,
    grace: Duration,
    pause: Duration,
    attempts: usize,
) -> Outcome {
    pushes_under_gc_for(c, grace, pause, attempts, ROUNDS).await
}

async fn pushes_under_gc_for(
    c: &Cluster,
    grace: Duration,
    pause: Duration,
    attempts: usize,
    rounds: usize,
) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let gc = {
        let (store, stop) = (c.store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut reports: Vec<GcReport> = Vec::new();
            let mut errors = Vec::new();
            // Looping on as an operator's cron would; errors are checked
            // after the pushes are.
            while !stop.load(Ordering::Relaxed) {
                match corral_mirror::gc::collect(store.as_ref(), grace, false).await {
                    Ok(report) => reports.push(report),
                    Err(e) => errors.push(format!("{e:#}")),
                }
                tokio::time::sleep(pause).await;
            }
            (reports, errors)
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let replicas = c.replicas.clone();
            tokio::spawn(async move {
                let mut pushed = Vec::new();
                let mut refused = Vec::new();
                for round in 0..rounds {
                    let up = &replicas[(client + round) % replicas.len()];
                    let via = &replicas[(client + round + 1) % replicas.len()];
                    for _ in 0..attempts {
                        match push(up, via, client, round).await {
                            Ok(p) => {
                                pushed.push(p);
                                break;
                            }
                            Err(e) => refused.push(format!("c{client}-r{round}: {e}")),
                        }
                    }
                }
                (pushed, refused)
            })
        })
        .collect();
    let mut out = Outcome {
        pushed: Vec::new(),
        refused: Vec::new(),
        gc_runs: 0,
        gc_errors: Vec::new(),
        locked_max_ms: 0,
        locked_total_ms: 0,
        removed: BTreeSet::new(),
    };
    for c in clients {
        let (p, r) = c.await.unwrap();
        out.pushed.extend(p);
        out.refused.extend(r);
    }
    stop.store(true, Ordering::Relaxed);
    let (reports, errors) = gc.await.unwrap();
    out.gc_errors = errors;
    for r in reports {
        out.gc_runs += 1;
        out.locked_max_ms = out.locked_max_ms.max(r.locked_ms);
        out.locked_total_ms += r.locked_ms;
        out.removed
            .extend(r.blob_links.iter().map(|l| format!("blob link {l}")));
        out.removed
            .extend(r.blobs.iter().map(|b| format!("blob {b}")));
        out.removed
            .extend(r.manifests.iter().map(|m| format!("manifest {m}")));
        // Upload sessions still in use that a zero grace period lets GC
        // take (the refused pushes): the race shows there too.
        out.removed.extend(
            r.idle
                .iter()
                .map(|u| format!("upload or temporary file {u}")),
        );
    }
    out
}

impl Outcome {
    fn print(&self, what: &str) {
        eprintln!(
            "{what}: {} pushes acknowledged, {} attempts refused; {} gc runs ({} failed) held \
             the lock {} ms at most, {} ms on average; {} removals",
            self.pushed.len(),
            self.refused.len(),
            self.gc_runs,
            self.gc_errors.len(),
            self.locked_max_ms,
            self.locked_total_ms / self.gc_runs.max(1) as u64,
            self.removed.len()
        );
    }

    /// GC raced the pushes and enough of them got through to mean something.
    fn assert_raced(&self) {
        assert!(self.gc_runs >= 2, "gc ran only {} times", self.gc_runs);
        assert!(
            self.pushed.len() >= CLIENTS * ROUNDS / 4,
            "too few pushes got through to test anything: {} of {}; refused: {:#?}",
            self.pushed.len(),
            CLIENTS * ROUNDS,
            self.refused
        );
        assert!(
            !self.removed.is_empty(),
            "gc removed nothing: it never raced"
        );
    }
}

/// Every acknowledged push pulls back byte-identical, through every replica.
async fn assert_pulls_back(c: &Cluster, pushed: &[Pushed]) {
    let mut broken = Vec::new();
    for p in pushed {
        for r in &c.replicas {
            let m = send(
                r,
                Method::GET,
                &format!("/v2/{}/manifests/{}", p.repo, p.tag),
                None,
                Bytes::new(),
            )
            .await;
            if m.status != StatusCode::OK || m.body != p.manifest {
                broken.push(format!("{}:{} manifest: {}", p.repo, p.tag, m.status));
                continue;
            }
            for b in &p.blobs {
                let d = Digest::of_bytes(b);
                let got = send(
                    r,
                    Method::GET,
                    &format!("/v2/{}/blobs/{d}", p.repo),
                    None,
                    Bytes::new(),
                )
                .await;
                if got.status != StatusCode::OK || got.body != b {
                    let repo = RepoName::parse(&p.repo).unwrap();
                    let linked = c.store.has_blob_link(&repo, &d).await.unwrap();
                    let size = c.store.blob_size(&d).await.unwrap();
                    broken.push(format!(
                        "{}:{} blob {d}: {} (linked: {linked}, stored: {size:?})",
                        p.repo, p.tag, got.status
                    ));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} of {} acknowledged pushes do not pull back: {broken:#?}",
        broken.len(),
        pushed.len()
    );
}

/// After the pushes: pulls, fsck, and a last GC (grace 0) that removes
/// nothing acknowledged.
async fn assert_intact(c: &Cluster, out: &Outcome) {
    let pushed = &out.pushed;
    assert_pulls_back(c, pushed).await;
    let fsck = corral_mirror::fsck::check(c.store.as_ref()).await.unwrap();
    assert!(!fsck.damaged(), "fsck: {fsck:?}");
    let last = corral_mirror::gc::collect(c.store.as_ref(), Duration::ZERO, false)
        .await
        .unwrap();
    let acked: BTreeSet<String> = pushed
        .iter()
        .flat_map(|p| {
            p.blobs
                .iter()
                .map(|b| Digest::of_bytes(b).to_string())
                .chain([Digest::of_bytes(&p.manifest).to_string()])
        })
        .collect();
    let swept: Vec<_> = last.blobs.iter().filter(|b| acked.contains(*b)).collect();
    assert!(swept.is_empty(), "a GC after the pushes removed {swept:?}");
    assert_pulls_back(c, pushed).await;
    assert!(
        out.gc_errors.is_empty(),
        "gc failed while clients pushed: {:#?}",
        out.gc_errors
    );
}

/// Ages `path` as if written two hours ago.
fn age(path: &Path) {
    let then = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .append(true)
        .open(path)
        .unwrap()
        .set_modified(then)
        .unwrap();
}

/// The issue's scenario: the default grace period, and a base layer that
/// is old and unreferenced (its image was deleted long ago) but still linked
/// in the `base` repository. Clients re-upload or mount it while GC loops.
/// Every push must be acknowledged (nothing they depend on is garbage once
/// they refreshed it) and pull back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_gc_loop_with_default_grace_refuses_and_breaks_nothing() {
    let (c, root) = fs_cluster();
    let r = &c.replicas[0];
    let base = upload(r, "base", BASE).await.unwrap();
    for i in 0..REPOS {
        upload(r, &format!("team{i}/app"), BASE).await.unwrap();
    }
    let hex = base.hex();
    age(&root.join("blobs/sha256").join(&hex[..2]).join(hex));
    age(&root.join("repos/base/_blobs").join(hex));
    for i in 0..REPOS {
        age(&root.join(format!("repos/team{i}/app/_blobs")).join(hex));
    }

    let out = pushes_under_gc(&c, Duration::from_secs(3600), FREQUENT, 1).await;
    out.print("fs, grace 1h");
    assert!(out.gc_runs >= 3, "gc ran only {} times", out.gc_runs);
    assert!(
        out.refused.is_empty(),
        "{} pushes refused: {:#?}",
        out.refused.len(),
        out.refused
    );
    assert_eq!(out.pushed.len(), CLIENTS * ROUNDS);
    assert_intact(&c, &out).await;
}

/// Grace 0: anything unreferenced may go at once, so pushes racing GC can
/// be refused (and are retried), but none that was acknowledged may break.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_gc_loop_with_zero_grace_breaks_no_acknowledged_push() {
    let (c, _root) = fs_cluster();
    let out = pushes_under_gc(&c, Duration::ZERO, SPACED, 20).await;
    out.print("fs, grace 0");
    assert_intact(&c, &out).await;
    out.assert_raced();
}

/// Two replicas (each its own `S3Storage` and router, as two processes
/// would have) and a GC, all on one object store.
fn s3_cluster(store: Arc<dyn ObjectBackend>, scratch: &Path, dir: tempfile::TempDir) -> Cluster {
    let open = |name: &str| -> Arc<dyn Storage> {
        Arc::new(S3Storage::new(store.clone(), "mirror", scratch.join(name)).unwrap())
    };
    Cluster {
        replicas: vec![app(dir.path(), open("a")), app(dir.path(), open("b"))],
        store: open("gc"),
        _dir: dir,
    }
}

/// The S3 backend with two replicas: blobs go through one replica and the
/// manifest through the other, while GC loops on a third client of the
/// bucket. Grace 0, so only the lock keeps acknowledged pushes whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_replicas_gc_loop_with_zero_grace_breaks_no_acknowledged_push() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    let c = s3_cluster(Arc::new(InMemory::new()), &scratch, dir);
    // Pushes to memory are quick: GC more often to race them.
    let out = pushes_under_gc(&c, Duration::ZERO, Duration::from_millis(40), 20).await;
    out.print("s3 in memory, grace 0");
    assert_intact(&c, &out).await;
    out.assert_raced();
}

/// The S3 backend with the default grace period: nothing is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_replicas_gc_loop_with_default_grace_refuses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    let c = s3_cluster(Arc::new(InMemory::new()), &scratch, dir);
    let out = pushes_under_gc(&c, Duration::from_secs(3600), FREQUENT, 1).await;
    out.print("s3 in memory, grace 1h");
    assert!(out.gc_runs >= 3, "gc ran only {} times", out.gc_runs);
    assert!(out.refused.is_empty(), "refused: {:#?}", out.refused);
    assert_eq!(out.pushed.len(), CLIENTS * ROUNDS);
    assert_intact(&c, &out).await;
}

/// An object store client on Garage node `n`'s S3 API.
fn garage_client(garage: &Garage, n: u8) -> Arc<dyn ObjectBackend> {
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(garage.endpoint(n))
        .with_allow_http(true)
        .with_bucket_name(corral_test_support::garage::BUCKET)
        .with_region(corral_test_support::garage::REGION)
        .with_access_key_id(&garage.access_key_id)
        .with_secret_access_key(&garage.secret_access_key)
        .build()
        .unwrap();
    Arc::new(s3)
}

/// Two replicas on different Garage nodes, GC on the third: the lock
/// objects go through Garage's own replication, so this exercises the
/// PUT-then-LIST consistency the lock relies on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_replicas_gc_loop_breaks_no_acknowledged_push() {
    let garage = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    let open = |n: u8, name: &str| -> Arc<dyn Storage> {
        Arc::new(S3Storage::new(garage_client(&garage, n), "mirror", scratch.join(name)).unwrap())
    };
    let c = Cluster {
        replicas: vec![app(dir.path(), open(1, "a")), app(dir.path(), open(2, "b"))],
        store: open(3, "gc"),
        _dir: dir,
    };
    // Every request is a network round trip to Garage (and a locked one
    // three more), and GC holds the lock for seconds here: with grace 0 it
    // drops every upload session between two PATCHes. With 30 s nothing a
    // push uploaded may go, so nothing may be refused.
    let out = pushes_under_gc_for(&c, Duration::from_secs(30), Duration::from_secs(1), 1, 1).await;
    out.print("s3 on garage, grace 30 s");
    assert!(out.gc_runs >= 2, "gc ran only {} times", out.gc_runs);
    assert!(out.refused.is_empty(), "refused: {:#?}", out.refused);
    assert_eq!(out.pushed.len(), CLIENTS);
    assert_intact(&c, &out).await;
}
