//! End-to-end tests of mirror replicas sharing an S3 bucket: a 3-node Garage
//! cluster (scripts/garage.sh, the real `garage` binary) and two
//! `corral mirror serve` processes on it. Pushes go to one replica and pulls
//! to the other; a replica is killed mid-push and the push finishes on the
//! other; a Garage node is stopped while pulls go on; GC runs against the
//! shared bucket; pull-through from both replicas at once; a replica
//! configured with two nodes' endpoints keeps pushing and pulling when the
//! first node stops; an OSTree repository and disk images published once
//! are served by every replica.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use corral_test_support::faults::{htpasswd, Serve};
use corral_test_support::{
    busybox_image, corral_bin, free_port, http_get, layout_json, layout_manifest_digest,
    require_tool, run_ok, scratch, sha256_hex, Garage, Skopeo, Upstream,
};

/// `corral mirror serve --config` on the Garage bucket.
struct Replica {
    serve: Serve,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Replica {
    /// Starts a replica talking to Garage node `node`; `extra_tables` is
    /// TOML appended to its config (e.g. `[[upstream]]` tables).
    fn start(garage: &Garage, node: u8, extra_tables: &str) -> Replica {
        Replica::start_on(garage, &[node], "", extra_tables)
    }

    /// Starts a replica with the S3 endpoints of `nodes` (preferred
    /// first); `s3_keys` is TOML added to its `[s3]` table.
    fn start_on(garage: &Garage, nodes: &[u8], s3_keys: &str, extra_tables: &str) -> Replica {
        let dir = scratch();
        let port = free_port();
        let config = dir.path().join("mirror.toml");
        let text = garage.mirror_config_on(nodes, port, &htpasswd(dir.path())) + extra_tables;
        let text = text.replace(
            "[s3]\n",
            &format!(
                "[s3]\nscratch = \"{}\"\n{s3_keys}",
                dir.path().join("scratch").display()
            ),
        );
        std::fs::write(&config, text).unwrap();
        let serve = Serve::on_config(dir.path().join("mirror.log"), port, &config);
        Replica {
            serve,
            config,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        self.serve.url()
    }

    fn host(&self) -> String {
        self.serve.host()
    }

    fn log(&self) -> String {
        self.serve.log()
    }

    /// SIGKILL: no chance to clean up.
    fn kill(&mut self) {
        self.serve.kill9();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // Not every failing step prints the logs (skopeo, curl helpers).
        if std::thread::panicking() {
            let (port, log) = (self.serve.port, self.serve.log());
            eprintln!("--- log of replica on port {port}:\n{log}");
        }
    }
}

/// curl with the status line and headers kept: (status, headers, body).
fn curl(args: &[&str]) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-i",
            "--max-time",
            "60",
            "-u",
            "user:pass",
            "-H",
            "Expect:",
        ])
        .args(args)
        .output()
        .expect("running curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = out.stdout;
    let split = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&text[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, text[split + 4..].to_vec())
}

fn get_blob(base: &str, repo: &str, digest: &str) -> Vec<u8> {
    let (status, _, body) = curl(&[&format!("{base}/v2/{repo}/blobs/{digest}")]);
    assert_eq!(status, 200, "GET blob {digest} from {base}");
    body
}

/// Pushes `data` as one blob with a monolithic POST+PUT.
fn push_blob(r: &Replica, repo: &str, data: &Path) -> String {
    let base = r.url();
    let digest = format!("sha256:{}", sha256_hex(&std::fs::read(data).unwrap()));
    let (status, h, _) = curl(&["-X", "POST", &format!("{base}/v2/{repo}/blobs/uploads/")]);
    assert_eq!(status, 202, "POST on {base}; its log:\n{}", r.log());
    let (status, _, _) = curl(&[
        "-X",
        "PUT",
        "-H",
        "content-type: application/octet-stream",
        "--data-binary",
        &format!("@{}", data.display()),
        &format!("{base}{}?digest={digest}", h["location"]),
    ]);
    assert_eq!(status, 201, "PUT on {base}; its log:\n{}", r.log());
    digest
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

fn push_image(skopeo: &Skopeo, layout: &Path, tag: &str, dest: &str) {
    let src = format!("oci:{}:{tag}", layout.display());
    run_ok(&mut skopeo.copy(
        None,
        &[
            "--dest-tls-verify=false",
            "--dest-creds",
            "user:pass",
            "--preserve-digests",
            &src,
            dest,
        ],
    ));
}

fn pull_image(skopeo: &Skopeo, src: &str, layout: &Path) {
    run_ok(&mut skopeo.copy(
        None,
        &[
            "--src-tls-verify=false",
            "--preserve-digests",
            src,
            &format!("oci:{}:pulled", layout.display()),
        ],
    ));
}

/// Two replicas on one Garage cluster, `tools/busybox:1` pushed through
/// the first.
struct Pushed {
    skopeo: Skopeo,
    layout: PathBuf,
    work: tempfile::TempDir,
    b: Replica,
    a: Replica,
    garage: Garage,
}

impl Pushed {
    fn new() -> Pushed {
        let garage = Garage::start();
        let a = Replica::start(&garage, 1, "");
        let b = Replica::start(&garage, 2, "");
        let work = scratch();
        let layout = busybox_image(work.path(), "1");
        let skopeo = Skopeo::new();
        push_image(
            &skopeo,
            &layout,
            "1",
            &format!("docker://{}/tools/busybox:1", a.host()),
        );
        Pushed {
            skopeo,
            layout,
            work,
            b,
            a,
            garage,
        }
    }
}

#[test]
fn push_to_one_replica_pull_from_the_other() {
    // bound cluster first, so that it is dropped last
    let Pushed {
        garage: _garage,
        a,
        b,
        work,
        layout,
        skopeo,
    } = Pushed::new();

    let pulled = work.path().join("pulled");
    pull_image(
        &skopeo,
        &format!("docker://{}/tools/busybox:1", b.host()),
        &pulled,
    );
    let want = layout_manifest_digest(&layout, "1");
    assert_eq!(layout_manifest_digest(&pulled, "pulled"), want);
    let manifest = layout_json(&pulled, &want);
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let body = get_blob(&b.url(), "tools/busybox", layer);
    assert_eq!(format!("sha256:{}", sha256_hex(&body)), layer);

    // Tags and the catalog are the bucket's, not a replica's.
    let tags = http_get(&format!("{}/v2/tools/busybox/tags/list", b.url())).unwrap();
    assert!(tags.contains("\"1\""), "{tags}");
    let catalog = http_get(&format!("{}/v2/_catalog", b.url())).unwrap();
    assert!(catalog.contains("tools/busybox"), "{catalog}");

    // A lookaside signature stored through A is served by B, and never
    // replaced.
    let sig = work.path().join("signature");
    std::fs::write(&sig, b"a stand-in signature").unwrap();
    let sig_path = format!("/sigstore/tools/busybox@sha256={}/signature-1", &want[7..]);
    let put_sig = |base: String| {
        curl(&[
            "-X",
            "PUT",
            "--data-binary",
            &format!("@{}", sig.display()),
            &format!("{base}{sig_path}"),
        ])
        .0
    };
    assert_eq!(put_sig(a.url()), 201);
    let (status, _, body) = curl(&[&format!("{}{sig_path}", b.url())]);
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"a stand-in signature"[..])
    );
    assert_eq!(put_sig(b.url()), 409);

    // fsck re-hashes every blob in the bucket.
    let out = run_ok(
        Command::new(corral_bin())
            .args(["mirror", "fsck", "--json", "--config"])
            .arg(&a.config),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["blobs_checked"].as_u64().unwrap() >= 3, "{report}");
    assert_eq!(report["corrupt_blobs"], serde_json::json!([]));
    assert_eq!(report["damaged"], serde_json::json!(false), "{report}");
}

#[test]
fn a_push_killed_on_one_replica_resumes_on_the_other() {
    let garage = Garage::start();
    let mut a = Replica::start(&garage, 1, "");
    let b = Replica::start(&garage, 2, "");
    let work = scratch();
    // Bigger than one multipart part (8 MiB), so the session spans parts.
    let data = pattern(20 << 20, 7);
    let digest = format!("sha256:{}", sha256_hex(&data));
    let first = work.path().join("first");
    let second = work.path().join("second");
    std::fs::write(&first, &data[..9 << 20]).unwrap();
    std::fs::write(&second, &data[9 << 20..]).unwrap();

    let (status, h, _) = curl(&[
        "-X",
        "POST",
        &format!("{}/v2/big/blob/blobs/uploads/", a.url()),
    ]);
    assert_eq!(status, 202);
    let location = h["location"].clone();
    let (status, h, _) = curl(&[
        "-X",
        "PATCH",
        "-H",
        "content-type: application/octet-stream",
        "--data-binary",
        &format!("@{}", first.display()),
        &format!("{}{location}", a.url()),
    ]);
    assert_eq!(status, 202);
    assert_eq!(h["range"], format!("0-{}", (9 << 20) - 1));

    // The next PATCH is cut off: A dies while the body trickles in.
    let mut slow = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-u",
            "user:pass",
            "--limit-rate",
            "1M",
        ])
        .args(["-X", "PATCH"])
        .args(["-H", "content-type: application/octet-stream"])
        .arg("--data-binary")
        .arg(format!("@{}", second.display()))
        .arg(format!("{}{location}", a.url()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    a.kill();
    let _ = slow.wait();

    // B knows the session: the offset is what A recorded before dying.
    let (status, h, _) = curl(&[&format!("{}{location}", b.url())]);
    assert_eq!(status, 204, "{h:?}\nB's log:\n{}", b.log());
    let offset: usize = h["range"]
        .strip_prefix("0-")
        .and_then(|end| end.parse::<usize>().ok())
        .map(|end| end + 1)
        .expect("a range header");
    assert!(
        (9 << 20..data.len()).contains(&offset),
        "offset {offset} after the first PATCH and before the end"
    );
    let rest = work.path().join("rest");
    std::fs::write(&rest, &data[offset..]).unwrap();
    let (status, _, _) = curl(&[
        "-X",
        "PATCH",
        "-H",
        "content-type: application/octet-stream",
        "-H",
        &format!("content-range: {offset}-{}", data.len() - 1),
        "--data-binary",
        &format!("@{}", rest.display()),
        &format!("{}{location}", b.url()),
    ]);
    assert_eq!(status, 202);
    let (status, _, _) = curl(&[
        "-X",
        "PUT",
        &format!("{}{location}?digest={digest}", b.url()),
    ]);
    assert_eq!(status, 201, "finishing on B:\n{}", b.log());
    let body = get_blob(&b.url(), "big/blob", &digest);
    assert_eq!(body.len(), data.len());
    assert!(body == data, "the blob read back differs");
    // A restarted replica sees it too.
    let a2 = Replica::start(&garage, 3, "");
    assert_eq!(get_blob(&a2.url(), "big/blob", &digest).len(), data.len());
}

#[test]
fn pulls_continue_while_a_garage_node_is_down() {
    let garage = Garage::start();
    let a = Replica::start(&garage, 1, "");
    let b = Replica::start(&garage, 2, "");
    let work = scratch();
    let blob = work.path().join("blob");
    std::fs::write(&blob, pattern(3 << 20, 1)).unwrap();
    let digest = push_blob(&a, "data/x", &blob);
    let pulls = std::thread::spawn({
        let (ua, ub, digest) = (a.url(), b.url(), digest.clone());
        move || {
            let mut n = 0;
            let until = Instant::now() + Duration::from_secs(8);
            while Instant::now() < until {
                for base in [&ua, &ub] {
                    let body = get_blob(base, "data/x", &digest);
                    assert_eq!(format!("sha256:{}", sha256_hex(&body)), digest);
                    n += 1;
                }
            }
            n
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    // Node 3 serves neither replica's API but holds a copy of every block.
    garage.stop_node(3);
    let n = pulls.join().unwrap_or_else(|_| {
        panic!(
            "a pull failed while node 3 was down; replica logs:\n{}\n---\n{}",
            a.log(),
            b.log()
        )
    });
    assert!(n >= 4, "only {n} pulls");
    // Writes need 2 of 3 nodes: they go on too.
    std::fs::write(&blob, pattern(1 << 20, 2)).unwrap();
    let d2 = push_blob(&b, "data/x", &blob);
    assert_eq!(get_blob(&a.url(), "data/x", &d2).len(), 1 << 20);
}

#[test]
fn a_replica_whose_garage_node_is_down_is_not_ready() {
    let garage = Garage::start();
    let a = Replica::start(&garage, 1, "");
    let (status, _, _) = curl(&[&format!("{}/readyz", a.url())]);
    assert_eq!(status, 200, "{}", a.log());
    // The node replica A talks to: every pull through A would fail now, so
    // a load balancer must stop sending it traffic.
    garage.stop_node(1);
    let (status, _, body) = curl(&[&format!("{}/readyz", a.url())]);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).starts_with("not ready: storage probe"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // Liveness stays up: restarting A would not bring node 1 back.
    let (status, _, _) = curl(&[&format!("{}/healthz", a.url())]);
    assert_eq!(status, 200);
}

#[test]
fn gc_on_the_shared_bucket_keeps_what_tags_reach() {
    // bound cluster first, so that it is dropped last
    let Pushed {
        garage: _garage,
        a,
        b,
        work,
        layout,
        skopeo,
    } = Pushed::new();
    let junk = work.path().join("junk");
    std::fs::write(&junk, b"nobody references this").unwrap();
    let junk_digest = push_blob(&b, "tools/busybox", &junk);
    // An upload session on A that GC must leave alone while it is young.
    let (status, h, _) = curl(&[
        "-X",
        "POST",
        &format!("{}/v2/tools/busybox/blobs/uploads/", a.url()),
    ]);
    assert_eq!(status, 202);
    let session = h["location"].clone();

    std::thread::sleep(Duration::from_secs(2));
    let out = run_ok(
        Command::new(corral_bin())
            .args(["mirror", "gc", "--json", "--grace-period", "1", "--config"])
            .arg(&b.config),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["blobs"],
        serde_json::json!([junk_digest]),
        "{report}"
    );
    // Both replicas still serve the tagged image; the junk is gone from both.
    let pulled = work.path().join("pulled");
    pull_image(
        &skopeo,
        &format!("docker://{}/tools/busybox:1", b.host()),
        &pulled,
    );
    assert_eq!(
        layout_manifest_digest(&pulled, "pulled"),
        layout_manifest_digest(&layout, "1")
    );
    for r in [&a, &b] {
        let (status, _, _) = curl(&[
            "-I",
            &format!("{}/v2/tools/busybox/blobs/{junk_digest}", r.url()),
        ]);
        assert_eq!(status, 404);
    }
    // The session was idle past the grace period too, so it went.
    let (status, _, _) = curl(&[&format!("{}{session}", b.url())]);
    assert_eq!(status, 404);
}

#[test]
fn pull_through_from_both_replicas_fetches_upstream_once_per_replica() {
    require_tool("skopeo");
    let garage = Garage::start();
    let upstream = Upstream::start();
    let work = scratch();
    let layout = busybox_image(work.path(), "1");
    let skopeo = Skopeo::new();
    push_image(
        &skopeo,
        &layout,
        "1",
        &format!("docker://127.0.0.1:{}/library/busybox:1", upstream.port),
    );
    let tables = format!(
        "[[upstream]]\nprefix = \"library\"\nurl = \"{}\"\n",
        upstream.url()
    );
    let a = Replica::start(&garage, 1, &tables);
    let b = Replica::start(&garage, 2, &tables);
    let manifest = layout_json(&layout, &layout_manifest_digest(&layout, "1"));
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // Six clients, three per replica, ask for the same missing layer at once.
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let base = if i % 2 == 0 { a.url() } else { b.url() };
            let layer = layer.clone();
            std::thread::spawn(move || get_blob(&base, "library/busybox", &layer))
        })
        .collect();
    for c in clients {
        let body = c.join();
        assert!(
            body.as_ref()
                .is_ok_and(|b| format!("sha256:{}", sha256_hex(b)) == layer),
            "a client got no or a wrong layer; the logs:\n{}\n{}",
            a.log(),
            b.log()
        );
    }
    let fetched = upstream.requests_matching(&format!("GET /v2/library/busybox/blobs/{layer}"));
    assert!(
        (1..=2).contains(&fetched),
        "upstream saw {fetched} fetches of the layer for 2 replicas"
    );
    // Once in the bucket, a replica serves it without asking upstream, and
    // a whole pull through either replica works.
    let pulled = work.path().join("pulled");
    pull_image(
        &skopeo,
        &format!("docker://{}/library/busybox:1", b.host()),
        &pulled,
    );
    let c = Replica::start(&garage, 3, &tables);
    get_blob(&c.url(), "library/busybox", &layer);
    assert_eq!(
        upstream.requests_matching(&format!("GET /v2/library/busybox/blobs/{layer}")),
        fetched
    );
    // C found it in the bucket. A and B can both upload only if their
    // downloads finished within one round trip of each other; they then
    // write the same bytes to the same key.
    let uploads: usize = [&a, &b, &c]
        .iter()
        .map(|r| {
            r.log()
                .lines()
                .filter(|l| l.contains("blob uploaded to the bucket") && l.contains(&layer))
                .count()
        })
        .sum();
    assert!((1..=2).contains(&uploads), "{uploads} uploads");
}

#[test]
fn a_replica_with_two_endpoints_keeps_working_when_its_first_node_stops() {
    let garage = Garage::start();
    let a = Replica::start_on(&garage, &[1, 2], "", "");
    let work = scratch();
    let layout = busybox_image(work.path(), "1");
    let skopeo = Skopeo::new();
    push_image(
        &skopeo,
        &layout,
        "1",
        &format!("docker://{}/tools/busybox:1", a.host()),
    );

    // A chunked push whose multipart upload starts on node 1 and ends on
    // node 2: Garage keeps multipart state in the cluster.
    let data = pattern(20 << 20, 9);
    let digest = format!("sha256:{}", sha256_hex(&data));
    let first = work.path().join("first");
    let rest = work.path().join("rest");
    std::fs::write(&first, &data[..9 << 20]).unwrap();
    std::fs::write(&rest, &data[9 << 20..]).unwrap();
    let (status, h, _) = curl(&[
        "-X",
        "POST",
        &format!("{}/v2/big/blob/blobs/uploads/", a.url()),
    ]);
    assert_eq!(status, 202);
    let location = h["location"].clone();
    let (status, h, _) = curl(&[
        "-X",
        "PATCH",
        "-H",
        "content-type: application/octet-stream",
        "--data-binary",
        &format!("@{}", first.display()),
        &format!("{}{location}", a.url()),
    ]);
    assert_eq!(status, 202, "{h:?}");
    let location = h["location"].clone();

    garage.stop_node(1);

    let (status, h, _) = curl(&[
        "-X",
        "PATCH",
        "-H",
        "content-type: application/octet-stream",
        "-H",
        &format!("content-range: {}-{}", 9 << 20, data.len() - 1),
        "--data-binary",
        &format!("@{}", rest.display()),
        &format!("{}{location}", a.url()),
    ]);
    assert_eq!(
        status,
        202,
        "PATCH after node 1 stopped: {h:?}\n{}",
        a.log()
    );
    let location = h["location"].clone();
    let sep = if location.contains('?') { '&' } else { '?' };
    let (status, _, _) = curl(&[
        "-X",
        "PUT",
        &format!("{}{location}{sep}digest={digest}", a.url()),
    ]);
    assert_eq!(status, 201, "finishing the push on node 2:\n{}", a.log());
    assert!(
        get_blob(&a.url(), "big/blob", &digest) == data,
        "the blob read back differs"
    );

    // Pulls of what was pushed before, and new pushes, go on.
    let pulled = work.path().join("pulled");
    pull_image(
        &skopeo,
        &format!("docker://{}/tools/busybox:1", a.host()),
        &pulled,
    );
    assert_eq!(
        layout_manifest_digest(&pulled, "pulled"),
        layout_manifest_digest(&layout, "1")
    );
    push_image(
        &skopeo,
        &layout,
        "1",
        &format!("docker://{}/tools/busybox:2", a.host()),
    );
    let tags = http_get(&format!("{}/v2/tools/busybox/tags/list", a.url())).unwrap();
    assert!(tags.contains("\"2\""), "{tags}");
    assert!(
        a.log().contains("s3 endpoint marked down"),
        "the replica noticed node 1 was gone:\n{}",
        a.log()
    );
}

fn ostree(args: &[&str]) -> String {
    require_tool("ostree");
    let out = run_ok(Command::new("ostree").args(args));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn every_replica_serves_the_ostree_repo_and_disk_images_published_once() {
    let garage = Garage::start();
    let keys = "ostree_prefix = \"ostree\"\ndisk_images_prefix = \"disk-images\"\n";
    let a = Replica::start_on(&garage, &[1], keys, "");
    let b = Replica::start_on(&garage, &[2, 3], keys, "");
    let work = scratch();
    let repo = work.path().join("repo");
    let tree = work.path().join("tree");
    let repo_arg = format!("--repo={}", repo.display());
    ostree(&["init", "--mode=archive", &repo_arg]);
    std::fs::create_dir_all(tree.join("usr/lib")).unwrap();
    std::fs::write(tree.join("usr/lib/os-release"), b"NAME=corral\n").unwrap();
    std::fs::write(tree.join("usr/lib/big"), pattern(9 << 20, 5)).unwrap();
    ostree(&[
        "commit",
        &repo_arg,
        "-b",
        "corral/stable/x86_64",
        "-s",
        "e2e",
        &format!("--tree=dir={}", tree.display()),
    ]);
    ostree(&["summary", &repo_arg, "-u"]);
    let commit = ostree(&["rev-parse", &repo_arg, "corral/stable/x86_64"]);

    let out = run_ok(
        Command::new(corral_bin())
            .args(["mirror", "publish", "ostree", "--json", "--config"])
            .arg(&a.config)
            .arg(&repo),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let uploaded = report["uploaded"].as_array().unwrap();
    assert_eq!(
        uploaded.last().unwrap()["key"],
        "ostree/summary",
        "{report}"
    );

    let images = work.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let image = pattern(3 << 20, 4);
    std::fs::write(images.join("corral.raw"), &image).unwrap();
    std::fs::write(
        images.join("corral.raw.sha256"),
        format!("{}  corral.raw\n", sha256_hex(&image)),
    )
    .unwrap();
    run_ok(
        Command::new(corral_bin())
            .args(["mirror", "publish", "disk-images", "--config"])
            .arg(&b.config)
            .arg(&images),
    );

    for r in [&a, &b] {
        let client = work.path().join(format!("client-{}", r.serve.port));
        let client_arg = format!("--repo={}", client.display());
        ostree(&["init", "--mode=archive", &client_arg]);
        ostree(&[
            "remote",
            "add",
            &client_arg,
            "--no-gpg-verify",
            "origin",
            &format!("{}/ostree", r.url()),
        ]);
        ostree(&["pull", &client_arg, "origin", "corral/stable/x86_64"]);
        ostree(&["fsck", &client_arg]);
        assert_eq!(
            ostree(&["rev-parse", &client_arg, "origin:corral/stable/x86_64"]),
            commit
        );

        let (status, h, body) = curl(&[
            "-H",
            "range: bytes=1000-1999",
            &format!("{}/disk-images/corral.raw", r.url()),
        ]);
        assert_eq!(status, 206, "{h:?}");
        assert_eq!(body, &image[1000..2000]);
        let catalog = http_get(&format!("{}/catalog.json", r.url())).unwrap();
        let catalog: serde_json::Value = serde_json::from_str(&catalog).unwrap();
        let listed = &catalog["disk_images"][0];
        assert_eq!(listed["name"], "corral.raw", "{catalog}");
        assert_eq!(listed["checksum_matches"], true, "{catalog}");
    }
}
