//! Fault injection against `corral mirror serve` (the real binary), with
//! skopeo as the client. The mirror must never lose what it acknowledged:
//! each case keeps a ledger of the pushes skopeo acknowledged (exit 0),
//! injects a fault while pushes run, then pulls every acknowledged tag back
//! and compares its manifest and every blob byte for byte with the pushed
//! layout, and runs `corral mirror fsck --json`.
//!
//! - kill -9 of the mirror during 20 concurrent pushes, several rounds;
//! - `corral mirror gc` in a loop during 20 concurrent pushes, with
//!   `--grace-period 0` and with the default grace period;
//! - the same on the S3 backend (a 3-node Garage cluster): two replicas
//!   share the bucket, pushes go to both, gc runs as a third process;
//! - a full disk (a small tmpfs): pushes and re-pushes until failures,
//!   then space is freed and everything pushes;
//! - kill -9 of the mirror during cold pulls through it, the moment a
//!   client has a whole blob (so while the mirror syncs and commits it):
//!   stored blobs stay whole and the restarted mirror fetches again;
//! - a lying upstream for pull-through: wrong bytes, truncated bodies, a
//!   manifest whose digest header lies. crates/mirror/tests/pull_through.rs
//!   covers wrong bytes in-process; this adds truncation, the manifest
//!   lies, healing by an honest upstream, and skopeo against the binary.
//!
//! Round counts are the constants below. A release build
//! (`cargo test --release -p corral --test mirror_faults`) makes the races
//! more like production's.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_test_support::faults::{
    assert_no_problems, bytes_from, corral_mirror, empty_files, fsck_noticing, fsck_problems,
    htpasswd, push, push_recorded, status_of, verify_ledger, Image, Ledger, Serve, CREDS,
};
use corral_test_support::lying_upstream::{lied_digest, LyingUpstream, LIAR_REPOS};
use corral_test_support::Garage;
use corral_test_support::Skopeo;
use corral_test_support::{
    free_port, layout_manifest_digest, require_tool, run_ok, scratch, sha256_hex,
};

/// Concurrent pushes while a fault is injected.
const PUSHERS: usize = 20;
/// Rounds of kill -9 and restart.
const KILL_ROUNDS: usize = 5;
/// Rounds of concurrent pushes with gc looping (filesystem storage).
const GC_ROUNDS: usize = 5;
/// Pushes per pusher and round while gc loops.
const PUSHES_PER_ROUND: usize = 2;
/// Rounds of concurrent pushes with gc looping (S3 storage).
const S3_ROUNDS: usize = 3;
/// Size of each image's own layer; each image also has a shared base layer.
const LAYER_BYTES: usize = 160 << 10;
const BASE_BYTES: usize = 96 << 10;

/// Images named `{prefix}{i}` under `dir`, each with the shared `base`
/// layer and a layer of its own.
fn images(dir: &Path, prefix: &str, seed: u64, n: usize, base: &[u8]) -> Vec<Arc<Image>> {
    (0..n)
        .map(|i| {
            let own = bytes_from(seed * 1000 + i as u64 + 1, LAYER_BYTES);
            Arc::new(Image::write(dir, &format!("{prefix}{i}"), &[base, &own]))
        })
        .collect()
}

/// A grace period GC can use while clients push: longer than any upload
/// session sits idle between two requests, even on a loaded machine.
const SHORT_GRACE: u64 = 10;

/// On S3 an upload session's age is its record's, written when it starts,
/// not its last request's: a grace period shorter than a whole push through
/// Garage on a loaded machine ends pushes in flight (a known gap, noted in
/// docs/mirror.md).
const S3_GRACE: u64 = 120;

fn storage_target(storage: &Path) -> Vec<OsString> {
    vec!["--storage".into(), storage.into()]
}

/// Statistics of one `corral mirror gc` loop.
#[derive(Debug, Default)]
struct GcStats {
    runs: usize,
    blobs_deleted: usize,
    failures: Vec<String>,
}

/// One `corral mirror gc --json TARGET [--grace-period G]` (`None`: the
/// configured default); the number of blobs it deleted.
fn gc_once(target: &[OsString], grace: Option<u64>) -> Result<usize, String> {
    let mut args = target.to_vec();
    if let Some(g) = grace {
        args.extend(["--grace-period".into(), g.to_string().into()]);
    }
    let out = corral_mirror("gc", &args).output().unwrap();
    if !out.status.success() {
        return Err(format!(
            "gc (grace {grace:?}) exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("gc printed no JSON report: {e}"))?;
    Ok(report["blobs"].as_array().map_or(0, Vec::len))
}

impl GcStats {
    fn add(&mut self, run: Result<usize, String>) {
        self.runs += 1;
        match run {
            Ok(n) => self.blobs_deleted += n,
            Err(e) => self.failures.push(e),
        }
    }

    fn merge(&mut self, other: GcStats) {
        self.runs += other.runs;
        self.blobs_deleted += other.blobs_deleted;
        self.failures.extend(other.failures);
    }
}

/// Runs gc until `stop`, cycling through `graces`, with a short pause
/// between runs.
fn gc_loop(target: &[OsString], graces: &[Option<u64>], stop: &AtomicBool) -> GcStats {
    let mut stats = GcStats::default();
    while !stop.load(Ordering::SeqCst) {
        stats.add(gc_once(target, graces[stats.runs % graces.len()]));
        std::thread::sleep(Duration::from_millis(150));
    }
    stats
}

#[test]
fn acknowledged_pushes_survive_kill_9_during_concurrent_pushes() {
    let skopeo = Skopeo::new();
    let work = scratch();
    let storage = work.path().join("storage");
    let mut mirror = Serve::on_storage(work.path(), &storage, &[]);
    let host = mirror.host();
    let base = bytes_from(7, BASE_BYTES);
    let ledger = Ledger::default();
    let mut interrupted = 0;
    for round in 0..KILL_ROUNDS {
        let batch = images(
            work.path(),
            &format!("kill-r{round}-"),
            round as u64 + 1,
            PUSHERS,
            &base,
        );
        let acked = AtomicUsize::new(0);
        let finished = AtomicUsize::new(0);
        // Kill earlier or later from round to round: after the first
        // acknowledged push, then after a quarter, then half of them.
        let kill_after = (round * PUSHERS / (2 * KILL_ROUNDS.max(2) - 2)).max(1);
        std::thread::scope(|s| {
            for (i, image) in batch.iter().enumerate() {
                let (ledger, skopeo, host) = (&ledger, &skopeo, &host);
                let (acked, finished) = (&acked, &finished);
                s.spawn(move || {
                    let reference = format!("faults/kill{i}:r{round}");
                    if push_recorded(ledger, skopeo, image, host, &reference, Some(CREDS)) {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
            let deadline = Instant::now() + Duration::from_secs(120);
            while acked.load(Ordering::SeqCst) < kill_after
                && finished.load(Ordering::SeqCst) < PUSHERS
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            mirror.kill9();
        });
        let n = acked.load(Ordering::SeqCst);
        eprintln!("round {round}: killed after {kill_after} wanted, {n} of {PUSHERS} acknowledged");
        interrupted += PUSHERS - n;
        mirror.restart();
    }
    assert!(
        interrupted > 0,
        "every push finished before its kill: the test injected no fault"
    );
    let mut problems = verify_ledger(&ledger, &skopeo, &|_| host.clone(), None, work.path());
    let fsck = fsck_noticing(&storage_target(&storage), &problems);
    problems.extend(fsck);
    problems.extend(empty_files(&storage));
    let summary = format!(
        "{} acknowledged, {interrupted} interrupted over {KILL_ROUNDS} rounds",
        ledger.acknowledged()
    );
    eprintln!("kill -9: {summary}\n{}", ledger.failure_summary());
    assert!(ledger.acknowledged() > 0, "no push was acknowledged");
    assert_no_problems("kill -9", &summary, &problems, &mirror.log_tail(40));
}

/// 20 pushers, `PUSHES_PER_ROUND` pushes each per round, gc looping with
/// `graces` against the filesystem storage of a running mirror.
fn gc_during_pushes(name: &str, graces: &[Option<u64>]) {
    let skopeo = Skopeo::new();
    let work = scratch();
    let storage = work.path().join("storage");
    let mirror = Serve::on_storage(work.path(), &storage, &[]);
    let host = mirror.host();
    let base = bytes_from(11, BASE_BYTES);
    let ledger = Ledger::default();
    let target = storage_target(&storage);
    let mut gc = GcStats::default();
    for round in 0..GC_ROUNDS {
        let batch = images(
            work.path(),
            &format!("gc-r{round}-"),
            round as u64 + 1,
            PUSHERS * PUSHES_PER_ROUND,
            &base,
        );
        let stop = AtomicBool::new(false);
        let stats = std::thread::scope(|s| {
            let gc_thread = s.spawn(|| gc_loop(&target, graces, &stop));
            let pushers: Vec<_> = batch
                .chunks(PUSHES_PER_ROUND)
                .enumerate()
                .map(|(i, mine)| {
                    let (ledger, skopeo, host) = (&ledger, &skopeo, &host);
                    s.spawn(move || {
                        for (k, image) in mine.iter().enumerate() {
                            let reference = format!("faults/gc{i}:r{round}-{k}");
                            push_recorded(ledger, skopeo, image, host, &reference, Some(CREDS));
                        }
                    })
                })
                .collect();
            for p in pushers {
                p.join().unwrap();
            }
            stop.store(true, Ordering::SeqCst);
            gc_thread.join().unwrap()
        });
        gc.merge(stats);
    }
    // One more collection with nothing running: what it deletes must be
    // unreachable too.
    gc.add(gc_once(&target, graces[0]));
    let mut problems = verify_ledger(&ledger, &skopeo, &|_| host.clone(), None, work.path());
    let fsck = fsck_noticing(&target, &problems);
    problems.extend(fsck);
    problems.extend(empty_files(&storage));
    problems.extend(gc.failures.iter().cloned());
    let summary = format!(
        "{} of {} pushes acknowledged; {} gc runs deleted {} blobs",
        ledger.acknowledged(),
        GC_ROUNDS * PUSHERS * PUSHES_PER_ROUND,
        gc.runs,
        gc.blobs_deleted
    );
    eprintln!("{name}: {summary}\n{}", ledger.failure_summary());
    assert!(ledger.acknowledged() > 0, "no push was acknowledged");
    assert!(gc.runs >= GC_ROUNDS, "gc ran only {} times", gc.runs);
    assert_no_problems(name, &summary, &problems, &mirror.log_tail(40));
}

#[test]
fn gc_with_a_short_grace_period_during_concurrent_pushes() {
    // Not 0: GC also ends upload sessions idle for longer than the grace
    // period, so with 0 it ends every push in flight (docs/mirror.md); on a
    // loaded machine then nothing is acknowledged and the test proves
    // nothing. 10 s still sweeps what earlier rounds left unreferenced.
    gc_during_pushes("gc --grace-period 10", &[Some(SHORT_GRACE)]);
}

#[test]
fn gc_with_the_default_grace_period_during_concurrent_pushes() {
    gc_during_pushes("gc (default grace period)", &[None]);
}

/// A mirror config on `garage` node `node`'s S3 API listening on `port`,
/// pushes allowed to `user:pass`, scratch space under `dir`.
fn mirror_config(garage: &Garage, dir: &Path, node: u8, port: u16) -> PathBuf {
    let mut text = garage.mirror_config_on(&[node], port, &htpasswd(dir));
    // [s3] is the last table the config has.
    text.push_str(&format!(
        "scratch = \"{}\"\n",
        dir.join("scratch").display()
    ));
    let config = dir.join("mirror.toml");
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn gc_on_the_shared_bucket_during_pushes_to_two_replicas() {
    let skopeo = Skopeo::new();
    let garage = Garage::start();
    let work = scratch();
    let replica = |n: u8| {
        let dir = work.path().join(format!("replica{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let config = mirror_config(&garage, &dir, n, port);
        (
            config.clone(),
            Serve::on_config(dir.join("mirror.log"), port, &config),
        )
    };
    let (_, a) = replica(1);
    let (_, b) = replica(2);
    // The gc process talks to the third node; no server runs on its config.
    let gc_dir = work.path().join("gc");
    std::fs::create_dir_all(&gc_dir).unwrap();
    let gc_config = mirror_config(&garage, &gc_dir, 3, free_port());
    let target: Vec<OsString> = vec!["--config".into(), gc_config.into()];
    let (host_a, host_b) = (a.host(), b.host());
    let creds = Some(CREDS);
    let base = bytes_from(13, BASE_BYTES);
    let ledger = Ledger::default();
    let mut gc = GcStats::default();
    for round in 0..S3_ROUNDS {
        let batch = images(
            work.path(),
            &format!("s3-r{round}-"),
            round as u64 + 1,
            PUSHERS,
            &base,
        );
        let stop = AtomicBool::new(false);
        let stats = std::thread::scope(|s| {
            let gc_thread = s.spawn(|| gc_loop(&target, &[Some(S3_GRACE), None], &stop));
            let pushers: Vec<_> = batch
                .iter()
                .enumerate()
                .map(|(i, image)| {
                    let host = if i % 2 == 0 { &host_a } else { &host_b };
                    let (ledger, skopeo) = (&ledger, &skopeo);
                    s.spawn(move || {
                        let reference = format!("faults/s3-{i}:r{round}");
                        push_recorded(ledger, skopeo, image, host, &reference, creds);
                    })
                })
                .collect();
            for p in pushers {
                p.join().unwrap();
            }
            stop.store(true, Ordering::SeqCst);
            gc_thread.join().unwrap()
        });
        gc.merge(stats);
    }
    // Pull each tag from the replica it was not pushed to.
    let pick = |reference: &str| {
        let i: usize = reference["faults/s3-".len()..]
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        if i % 2 == 0 {
            host_b.clone()
        } else {
            host_a.clone()
        }
    };
    let mut problems = verify_ledger(&ledger, &skopeo, &pick, creds, work.path());
    let fsck = fsck_noticing(&target, &problems);
    problems.extend(fsck);
    problems.extend(gc.failures.iter().cloned());
    let summary = format!(
        "{} of {} pushes acknowledged; {} gc runs deleted {} blobs",
        ledger.acknowledged(),
        S3_ROUNDS * PUSHERS,
        gc.runs,
        gc.blobs_deleted
    );
    eprintln!("s3 gc: {summary}\n{}", ledger.failure_summary());
    assert!(ledger.acknowledged() > 0, "no push was acknowledged");
    let tails = format!("{}\n--- replica B:\n{}", a.log_tail(30), b.log_tail(30));
    assert_no_problems("gc on the shared bucket", &summary, &problems, &tails);
}

/// A tmpfs of `size_mib` mounted for one test; unmounted on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: PathBuf, size_mib: u64) -> Tmpfs {
        std::fs::create_dir_all(&path).unwrap();
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={size_mib}m,mode=0755"))
                .arg("tmpfs")
                .arg(&path),
        );
        Tmpfs { path }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the filesystem of `path` up to the last byte, then frees `leave`
/// bytes; returns the filler's size.
fn fill_leaving(path: &Path, leave: u64) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 64 << 10];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let size = written.saturating_sub(leave);
    f.set_len(size).unwrap();
    f.sync_all().unwrap();
    size
}

#[test]
fn a_full_disk_loses_nothing_acknowledged() {
    require_tool("mount");
    require_tool("curl");
    let skopeo = Skopeo::new();
    let work = scratch();
    let disk = Tmpfs::mount(work.path().join("disk"), 24);
    let storage = disk.path.join("storage");
    let mirror = Serve::on_storage(work.path(), &storage, &[]);
    let host = mirror.host();
    let base = bytes_from(17, BASE_BYTES);
    let ledger = Ledger::default();
    let mut problems = Vec::new();

    // Before the disk fills: a few images that later get re-pushed.
    let first = images(work.path(), "disk-first-", 1, 4, &base);
    for (i, image) in first.iter().enumerate() {
        let reference = format!("faults/disk{i}:v1");
        let pushed = push(&skopeo, image, &host, &reference, Some(CREDS));
        assert!(pushed.is_ok(), "push with space to spare: {pushed:?}");
        ledger.record(&reference, image.clone(), true);
    }

    // About four images' worth of space left for twenty pushes, plus
    // re-pushes of the first images: the same content for two, new content
    // (the tag moves) for the other two.
    let filler = disk.path.join("filler");
    fill_leaving(&filler, 3 * (LAYER_BYTES as u64));
    let fresh = images(work.path(), "disk-fresh-", 2, PUSHERS, &base);
    let moved = images(work.path(), "disk-moved-", 3, 2, &base);
    let failures = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let mut jobs: Vec<(String, Arc<Image>)> = fresh
            .iter()
            .enumerate()
            .map(|(i, im)| (format!("faults/full{i}:v1"), im.clone()))
            .collect();
        jobs.push(("faults/disk0:v1".into(), first[0].clone()));
        jobs.push(("faults/disk1:v1".into(), first[1].clone()));
        jobs.push(("faults/disk2:v1".into(), moved[0].clone()));
        jobs.push(("faults/disk3:v1".into(), moved[1].clone()));
        for (reference, image) in jobs {
            let (ledger, skopeo, host, failures) = (&ledger, &skopeo, &host, &failures);
            s.spawn(move || {
                if !push_recorded(ledger, skopeo, &image, host, &reference, Some(CREDS)) {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    let failed_while_full = failures.load(Ordering::SeqCst);
    assert!(
        failed_while_full > 0,
        "every push fit: the disk was not full (test setup)"
    );

    // A blob that cannot fit is refused as such: 507, not a generic 500.
    let big = work.path().join("big");
    let big_bytes = bytes_from(19, 2 << 20);
    std::fs::write(&big, &big_bytes).unwrap();
    let url = format!(
        "{}/v2/faults/big/blobs/uploads/?digest=sha256:{}",
        mirror.url(),
        sha256_hex(&big_bytes)
    );
    let data = format!("@{}", big.display());
    let status = status_of(
        &url,
        &[
            "-u",
            CREDS,
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &data,
        ],
    );
    if status != 507 {
        problems.push(format!(
            "a 2 MiB blob upload on a full disk answered {status}, not 507 Insufficient Storage"
        ));
    }

    // While the disk is still full, reads work and nothing is half-written.
    problems.extend(
        verify_ledger(&ledger, &skopeo, &|_| host.clone(), None, work.path())
            .into_iter()
            .map(|p| format!("while full: {p}")),
    );
    problems.extend(empty_files(&storage));

    // Space again: every push that failed goes through now, without a
    // restart.
    std::fs::remove_file(&filler).unwrap();
    for (reference, image) in ledger.unacknowledged() {
        if let Err(e) = push(&skopeo, &image, &host, &reference, Some(CREDS)) {
            problems.push(format!(
                "{reference}: push after space was freed failed: {e}"
            ));
        } else {
            ledger.record(&reference, image, true);
        }
    }
    problems.extend(verify_ledger(
        &ledger,
        &skopeo,
        &|_| host.clone(),
        None,
        work.path(),
    ));
    let fsck = fsck_noticing(&storage_target(&storage), &problems);
    problems.extend(fsck);
    problems.extend(empty_files(&storage));
    let summary = format!(
        "{failed_while_full} of {} pushes failed while full; {} tags acknowledged in the end",
        PUSHERS + 4,
        ledger.acknowledged()
    );
    eprintln!("full disk: {summary}\n{}", ledger.failure_summary());
    assert_no_problems("full disk", &summary, &problems, &mirror.log_tail(40));
}

/// What a client got for one GET: curl's exit code, the status and the body.
fn curl_get(url: &str) -> (i32, u16, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "-w",
            "\n%{http_code}",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(url)
        .output()
        .expect("running curl");
    let mut body = out.stdout;
    let cut = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&body[cut..])
        .trim()
        .parse()
        .unwrap_or(0);
    body.truncate(cut);
    (out.status.code().unwrap_or(-1), status, body)
}

/// `sha256:…` of the response's Docker-Content-Digest header and the body.
fn manifest_with_digest(url: &str) -> (u16, Option<String>, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-i",
            "--max-time",
            "30",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(url)
        .output()
        .expect("running curl");
    let text = out.stdout;
    let split = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(text.len().saturating_sub(4));
    let head = String::from_utf8_lossy(&text[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let digest = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("docker-content-digest")
            .then(|| v.trim().to_string())
    });
    (status, digest, text[(split + 4).min(text.len())..].to_vec())
}

fn blob_file(storage: &Path, digest: &str) -> PathBuf {
    let hex = &digest["sha256:".len()..];
    storage.join("blobs/sha256").join(&hex[..2]).join(hex)
}

#[test]
fn a_lying_upstream_never_poisons_the_cache() {
    require_tool("curl");
    let skopeo = Skopeo::new();
    let work = scratch();
    let sources: BTreeMap<String, Arc<Image>> = LIAR_REPOS
        .iter()
        .enumerate()
        .map(|(i, repo)| {
            let layer = bytes_from(100 + i as u64, LAYER_BYTES);
            let image = Image::write(work.path(), &format!("liar-{i}"), &[&layer]);
            (repo.to_string(), Arc::new(image))
        })
        .collect();
    let upstream = LyingUpstream::start(sources.clone());
    let storage = work.path().join("storage");
    let upstream_flag = format!("library={}", upstream.url());
    let mirror = Serve::on_storage(work.path(), &storage, &["--upstream", &upstream_flag]);
    let host = mirror.host();
    let mut problems = Vec::new();

    // Lying blobs: the client sees an error (a status or a broken
    // transfer), never the whole wrong blob under the digest; nothing is
    // cached; asking again gives an error again.
    for repo in ["library/wrong", "library/short", "library/closed"] {
        let image = &sources[repo];
        let layer = image.blobs.last().unwrap();
        for attempt in 1..=2 {
            let (curl_exit, status, body) =
                curl_get(&format!("{}/v2/{repo}/blobs/{layer}", mirror.url()));
            let complete = curl_exit == 0 && status == 200;
            if complete {
                problems.push(format!(
                    "{repo}: attempt {attempt}: the mirror served {} bytes (sha256:{}) under {layer} with a clean end",
                    body.len(),
                    sha256_hex(&body)
                ));
            }
        }
        if blob_file(&storage, layer).exists() {
            problems.push(format!("{repo}: the lying upstream's {layer} was cached"));
        }
        let dest = format!(
            "oci:{}:x",
            work.path()
                .join(format!("refused-{}", &repo[8..]))
                .display()
        );
        let src = format!("docker://{host}/{repo}:v1");
        let pulled = skopeo
            .copy(None, &["--src-tls-verify=false", &src, &dest])
            .output()
            .unwrap();
        if pulled.status.success() {
            problems.push(format!("{repo}: skopeo pulled it through a lying upstream"));
        }
    }

    // A manifest whose digest header lies: by tag the mirror answers with
    // the digest of the bytes it serves; by the lied digest it answers
    // with no manifest at all.
    let liar = &sources["library/liar"];
    let (status, digest, body) =
        manifest_with_digest(&format!("{}/v2/library/liar/manifests/v1", mirror.url()));
    let body_digest = format!("sha256:{}", sha256_hex(&body));
    if status != 200
        || digest.as_deref() != Some(body_digest.as_str())
        || body_digest != liar.manifest
    {
        problems.push(format!(
            "library/liar:v1 answered {status} with digest header {digest:?} for a body of {body_digest} (the real manifest is {})",
            liar.manifest
        ));
    }
    let lied = lied_digest();
    let (status, _, body) = manifest_with_digest(&format!(
        "{}/v2/library/liar/manifests/{lied}",
        mirror.url()
    ));
    if status == 200 {
        problems.push(format!(
            "library/liar@{lied} answered 200 with bytes hashing to sha256:{}",
            sha256_hex(&body)
        ));
    }
    if blob_file(&storage, &lied).exists() {
        problems.push(format!("a blob is stored under the lied digest {lied}"));
    }
    if storage
        .join("repos/library/liar/_manifests")
        .join(&lied["sha256:".len()..])
        .exists()
    {
        problems.push(format!(
            "library/liar links a manifest under the lied digest {lied}"
        ));
    }
    // fsck is told which repositories are mirrored, as the mirror was: what
    // their manifests name and the cache has not fetched is not damage.
    let fsck_config = work.path().join("fsck.toml");
    std::fs::write(
        &fsck_config,
        format!(
            "[[upstream]]\nprefix = \"library\"\nurl = \"{}\"\n",
            upstream.url()
        ),
    )
    .unwrap();
    let mut target: Vec<OsString> = vec!["--config".into(), fsck_config.clone().into()];
    target.extend(storage_target(&storage));
    problems.extend(
        fsck_problems(&target)
            .into_iter()
            .map(|p| format!("while lying: {p}")),
    );

    // An honest upstream heals everything: each image pulls through
    // byte-identical, and the lied-about layers were fetched again.
    let lied_gets: BTreeMap<&str, usize> = ["library/wrong", "library/short", "library/closed"]
        .into_iter()
        .map(|repo| {
            (
                repo,
                upstream.blob_gets(repo, sources[repo].blobs.last().unwrap()),
            )
        })
        .collect();
    upstream.be_honest();
    let ledger = Ledger::default();
    for (repo, image) in &sources {
        ledger.record(&format!("{repo}:v1"), image.clone(), true);
    }
    problems.extend(verify_ledger(
        &ledger,
        &skopeo,
        &|_| host.clone(),
        None,
        work.path(),
    ));
    for repo in ["library/wrong", "library/short", "library/closed"] {
        let layer = sources[repo].blobs.last().unwrap();
        if upstream.blob_gets(repo, layer) <= lied_gets[repo] {
            problems.push(format!(
                "{repo}: the mirror never asked the honest upstream for {layer}"
            ));
        }
        match std::fs::read(blob_file(&storage, layer)) {
            Ok(cached) if format!("sha256:{}", sha256_hex(&cached)) == *layer => {}
            Ok(cached) => problems.push(format!(
                "{repo}: cached {layer} hashes to sha256:{}",
                sha256_hex(&cached)
            )),
            Err(e) => problems.push(format!(
                "{repo}: {layer} not cached after an honest pull: {e}"
            )),
        }
    }
    // The manifest pulled through matches what the honest upstream holds.
    let pulled = work.path().join("liar-pulled");
    run_ok(&mut skopeo.copy(
        None,
        &[
            "--src-tls-verify=false",
            "--preserve-digests",
            &format!("docker://{host}/library/liar:v1"),
            &format!("oci:{}:p", pulled.display()),
        ],
    ));
    assert_eq!(layout_manifest_digest(&pulled, "p"), liar.manifest);
    let fsck = fsck_noticing(&storage_target(&storage), &problems);
    problems.extend(fsck);
    let summary = format!("{} lying repositories", LIAR_REPOS.len());
    assert_no_problems("lying upstream", &summary, &problems, &mirror.log_tail(40));
}

/// Rounds of kill -9 during cold pulls through the mirror.
const COLD_KILL_ROUNDS: usize = 4;
/// Blobs pulled through at once in each round.
const COLD_BLOBS: usize = 4;
/// Size of each of those blobs: large enough that syncing one takes a
/// moment after its last byte went out.
const COLD_BLOB_BYTES: usize = 16 << 20;

/// What a client saw of one blob GET.
#[derive(Debug, Default, Clone, Copy)]
struct Received {
    /// Every byte of the blob arrived and hashed to its digest.
    whole: bool,
    /// The status code, 0 when no answer came.
    status: u16,
    /// Body bytes received.
    got: usize,
}

/// A plain HTTP/1.1 GET of a blob through the mirror, hashing the body as
/// it arrives; `done` is told when the whole blob has come.
fn get_blob_whole(
    port: u16,
    repo: &str,
    digest: &str,
    len: usize,
    done: &std::sync::mpsc::Sender<()>,
) -> Received {
    use sha2::Digest as _;
    use std::io::{BufRead, BufReader, Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return Received::default();
    };
    let request = format!(
        "GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    if conn.write_all(request.as_bytes()).is_err() {
        return Received::default();
    }
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    let mut status = 0;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => {
                return Received {
                    status,
                    ..Received::default()
                }
            }
            Ok(_) if line == "\r\n" => break,
            Ok(_) if status == 0 => {
                status = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            }
            Ok(_) => {}
        }
    }
    let (mut hasher, mut got, mut buf) = (sha2::Sha256::new(), 0usize, vec![0u8; 1 << 16]);
    while got < len {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                got += n;
            }
        }
    }
    let whole = status == 200
        && got == len
        && format!("sha256:{}", hex::encode(hasher.finalize())) == digest;
    if whole {
        let _ = done.send(());
    }
    Received { whole, status, got }
}

/// Every file under the storage's blob directory hashes to its name:
/// nothing half-written sits where a whole blob is looked for.
fn misnamed_blobs(storage: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(prefixes) = std::fs::read_dir(storage.join("blobs/sha256")) else {
        return problems;
    };
    for prefix in prefixes.flatten() {
        for file in std::fs::read_dir(prefix.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = file.file_name().to_string_lossy().into_owned();
            let data = std::fs::read(file.path()).unwrap_or_default();
            if sha256_hex(&data) != name {
                problems.push(format!(
                    "{} holds {} bytes hashing to sha256:{}",
                    file.path().display(),
                    data.len(),
                    sha256_hex(&data)
                ));
            }
        }
    }
    problems
}

/// kill -9 of the mirror the moment a client has received a whole blob
/// pulled through from the upstream: the mirror hands out a blob's last
/// bytes once they hash to the digest and then syncs and commits it, so
/// the kill lands in that window, or while the other blobs still stream
/// in. After each kill every stored blob is whole, fsck finds nothing, and
/// the restarted mirror serves every blob (fetching again what it had not
/// committed).
#[test]
fn kill_9_during_cold_pulls_leaves_only_whole_blobs() {
    require_tool("skopeo");
    let skopeo = Skopeo::new();
    let work = scratch();
    let upstream = corral_test_support::Upstream::start();
    // One image per blob, pushed to distribution, the mirror's upstream.
    let mut blobs: Vec<Vec<(String, String)>> = Vec::new();
    for round in 0..COLD_KILL_ROUNDS {
        let mut this_round = Vec::new();
        for i in 0..COLD_BLOBS {
            let layer = bytes_from((1000 + round * COLD_BLOBS + i) as u64, COLD_BLOB_BYTES);
            let image = Image::write(work.path(), &format!("cold-{round}-{i}"), &[&layer]);
            let repo = format!("library/cold{round}x{i}");
            run_ok(&mut skopeo.copy(
                None,
                &[
                    "--dest-tls-verify=false",
                    // as it is: skopeo would otherwise compress the layer
                    "--preserve-digests",
                    &format!("oci:{}:src", image.layout.display()),
                    &format!("docker://127.0.0.1:{}/{repo}:v1", upstream.port),
                ],
            ));
            this_round.push((repo, image.blobs.last().unwrap().clone()));
        }
        blobs.push(this_round);
    }

    let storage = work.path().join("storage");
    let upstream_flag = format!("library={}", upstream.url());
    let mut mirror = Serve::on_storage(work.path(), &storage, &["--upstream", &upstream_flag]);
    let mut problems = Vec::new();
    let (mut in_window, mut mid_stream) = (0usize, 0usize);
    for (round, round_blobs) in blobs.iter().enumerate() {
        let (tx, rx) = std::sync::mpsc::channel();
        let port = mirror.port;
        let clients: Vec<_> = round_blobs
            .iter()
            .cloned()
            .map(|(repo, digest)| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    get_blob_whole(port, &repo, &digest, COLD_BLOB_BYTES, &tx)
                })
            })
            .collect();
        drop(tx);
        // The first whole blob: kill at once.
        let first = rx.recv_timeout(Duration::from_secs(120));
        mirror.kill9();
        let seen: Vec<Received> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        if first.is_err() {
            problems.push(format!("round {round}: no client received a whole blob"));
        }
        for ((repo, digest), got) in round_blobs.iter().zip(&seen) {
            let cached = blob_file(&storage, digest).exists();
            if got.whole && !cached {
                in_window += 1;
            }
            if !got.whole {
                mid_stream += 1;
            }
            eprintln!(
                "round {round}: {repo}: status {}, {} bytes, whole: {}, cached: {cached}",
                got.status, got.got, got.whole
            );
        }
        problems.extend(
            misnamed_blobs(&storage)
                .into_iter()
                .map(|p| format!("round {round}, after the kill: {p}")),
        );
        problems.extend(
            fsck_problems(&storage_target(&storage))
                .into_iter()
                .map(|p| format!("round {round}, after the kill: {p}")),
        );
        mirror.restart();
        // The restarted mirror serves every blob of the round whole.
        let (tx, _rx) = std::sync::mpsc::channel();
        for (repo, digest) in round_blobs {
            let again = get_blob_whole(mirror.port, repo, digest, COLD_BLOB_BYTES, &tx);
            if !again.whole {
                problems.push(format!(
                    "round {round}: {repo}@{digest} is not served whole after the restart: \
                     status {}, {} of {COLD_BLOB_BYTES} bytes",
                    again.status, again.got
                ));
            }
        }
    }
    eprintln!(
        "cold pulls: {in_window} blobs served whole but not yet committed at the kill, \
         {mid_stream} cut mid-stream"
    );
    // Each round's kill follows a whole blob at once; that the window
    // was hit at least once over the rounds is what this test is for.
    assert!(
        in_window > 0,
        "no kill landed between a blob's last byte going out and its commit \
         ({mid_stream} pulls cut mid-stream): the test injected no fault there"
    );
    problems.extend(misnamed_blobs(&storage));
    let fsck = fsck_noticing(&storage_target(&storage), &problems);
    problems.extend(fsck);
    let summary = format!("{COLD_KILL_ROUNDS} rounds of {COLD_BLOBS} cold pulls");
    assert_no_problems(
        "kill -9 during cold pulls",
        &summary,
        &problems,
        &mirror.log_tail(40),
    );
}
