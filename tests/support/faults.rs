//! Helpers of the mirror's fault-injection tests: distinct small OCI
//! images, a ledger of what the mirror acknowledged, a `corral mirror
//! serve` process that can be killed with SIGKILL and restarted on the same
//! port and storage, and the end-of-test checks (pull every tag back and
//! compare bytes, `corral mirror fsck --json`, no empty tag or manifest
//! files).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{
    corral_bin, free_port, http_get, layout_manifest_digest, require_tool, run_ok, sha256_hex,
    stop_child, write_layout_index, Skopeo,
};

/// The tag every source layout uses for its one image.
pub const SRC_TAG: &str = "src";

/// `len` pseudo-random (xorshift) bytes from `seed`: distinct, not
/// compressible, and cheap to make.
pub fn bytes_from(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An image in an OCI layout, tagged [`SRC_TAG`].
#[derive(Debug)]
pub struct Image {
    pub layout: PathBuf,
    /// `sha256:…` of the manifest.
    pub manifest: String,
    /// Every blob of the image (manifest, config, layers) as `sha256:…`.
    pub blobs: Vec<String>,
}

impl Image {
    /// Writes a layout under `dir/name` holding one image with `layers`.
    pub fn write(dir: &Path, name: &str, layers: &[&[u8]]) -> Image {
        let layout = dir.join(name);
        let blob_dir = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blob_dir).unwrap();
        let put = |data: &[u8]| {
            let hex = sha256_hex(data);
            std::fs::write(blob_dir.join(&hex), data).unwrap();
            (format!("sha256:{hex}"), data.len())
        };
        let layers: Vec<(String, usize)> = layers.iter().map(|l| put(l)).collect();
        let diff_ids: Vec<&str> = layers.iter().map(|(d, _)| d.as_str()).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let (config_digest, config_size) = put(&config);
        let descriptors: Vec<serde_json::Value> = layers
            .iter()
            .map(|(d, s)| {
                serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s})
            })
            .collect();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": descriptors,
        }))
        .unwrap();
        let (manifest_digest, manifest_size) = put(&manifest);
        write_layout_index(&layout, &manifest_digest, manifest_size, SRC_TAG);
        let mut blobs = vec![manifest_digest.clone(), config_digest];
        blobs.extend(layers.into_iter().map(|(d, _)| d));
        Image {
            layout,
            manifest: manifest_digest,
            blobs,
        }
    }

    /// The bytes of one of this image's blobs.
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        std::fs::read(self.layout.join("blobs/sha256").join(hex)).unwrap()
    }
}

/// What a tag may hold: the image of its last acknowledged push, or of a
/// later push that failed (a failure does not prove the tag did not move).
#[derive(Debug, Default)]
struct TagState {
    acknowledged: bool,
    candidates: Vec<Arc<Image>>,
}

/// Every push of the test, by `repo:tag`. A push counts as acknowledged
/// only when skopeo exited 0.
#[derive(Debug, Default)]
pub struct Ledger {
    tags: Mutex<BTreeMap<String, TagState>>,
    /// Why pushes failed, as skopeo said it (for the report).
    failures: Mutex<Vec<String>>,
}

impl Ledger {
    pub fn record(&self, reference: &str, image: Arc<Image>, acknowledged: bool) {
        let mut tags = self.tags.lock().unwrap();
        let st = tags.entry(reference.to_string()).or_default();
        if acknowledged {
            st.acknowledged = true;
            st.candidates = vec![image];
        } else {
            st.candidates.push(image);
        }
    }

    /// A few distinct reasons pushes failed, with how often each came.
    pub fn failure_summary(&self) -> String {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for f in self.failures.lock().unwrap().iter() {
            // skopeo's last `msg="…"`, without the varying digests and ports.
            let msg = f.rsplit("msg=").next().unwrap_or(f);
            let key: String = msg
                .split_whitespace()
                .filter(|w| !w.contains("sha256:") && !w.contains("127.0.0.1"))
                .collect::<Vec<_>>()
                .join(" ");
            *counts.entry(key.chars().take(160).collect()).or_default() += 1;
        }
        counts
            .iter()
            .map(|(m, n)| format!("  {n}x {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn acknowledged(&self) -> usize {
        self.tags
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.acknowledged)
            .count()
    }

    /// References never acknowledged, with the image last tried.
    pub fn unacknowledged(&self) -> Vec<(String, Arc<Image>)> {
        self.tags
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| !s.acknowledged)
            .map(|(r, s)| (r.clone(), s.candidates.last().unwrap().clone()))
            .collect()
    }
}

/// The credentials of [`htpasswd`]'s one user.
pub const CREDS: &str = "user:pass";

/// Writes `dir/htpasswd` with the user of [`CREDS`] (bcrypt, as the mirror
/// needs) and returns its path: without users the mirror refuses pushes.
pub fn htpasswd(dir: &Path) -> PathBuf {
    require_tool("htpasswd");
    let (user, pass) = CREDS.split_once(':').unwrap();
    let entry = run_ok(Command::new("htpasswd").args(["-Bbn", user, pass])).stdout;
    let path = dir.join("htpasswd");
    std::fs::write(&path, entry).unwrap();
    path
}

/// Pushes `image` to `docker://{host}/{reference}`; `Err` holds skopeo's
/// stderr.
pub fn push(
    skopeo: &Skopeo,
    image: &Image,
    host: &str,
    reference: &str,
    creds: Option<&str>,
) -> Result<(), String> {
    let src = format!("oci:{}:{SRC_TAG}", image.layout.display());
    let dest = format!("docker://{host}/{reference}");
    let mut args = vec!["--dest-tls-verify=false", "--preserve-digests"];
    if let Some(c) = creds {
        args.extend(["--dest-creds", c]);
    }
    args.extend([src.as_str(), dest.as_str()]);
    let out = skopeo
        .copy(None, &args)
        .output()
        .map_err(|e| format!("running skopeo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Pushes and records the outcome in `ledger`; whether it was acknowledged.
pub fn push_recorded(
    ledger: &Ledger,
    skopeo: &Skopeo,
    image: &Arc<Image>,
    host: &str,
    reference: &str,
    creds: Option<&str>,
) -> bool {
    let pushed = push(skopeo, image, host, reference, creds);
    ledger.record(reference, image.clone(), pushed.is_ok());
    if let Err(e) = &pushed {
        ledger.failures.lock().unwrap().push(e.clone());
    }
    pushed.is_ok()
}

/// Pulls `reference` from `host` into a fresh layout under `work` and
/// compares it with the candidates, byte for byte.
fn pull_and_compare(
    skopeo: &Skopeo,
    host: &str,
    reference: &str,
    candidates: &[Arc<Image>],
    creds: Option<&str>,
    work: &Path,
) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("pulled-")
        .tempdir_in(work)
        .unwrap();
    let src = format!("docker://{host}/{reference}");
    let dest = format!("oci:{}:pulled", dir.path().display());
    let mut args = vec!["--src-tls-verify=false", "--preserve-digests"];
    if let Some(c) = creds {
        args.extend(["--src-creds", c]);
    }
    args.extend([src.as_str(), dest.as_str()]);
    let out = skopeo.copy(None, &args).output().unwrap();
    if !out.status.success() {
        return Err(format!(
            "{reference}: pull from {host} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let got = layout_manifest_digest(dir.path(), "pulled");
    let Some(image) = candidates.iter().find(|c| c.manifest == got) else {
        let want: Vec<&str> = candidates.iter().map(|c| c.manifest.as_str()).collect();
        return Err(format!(
            "{reference}: the tag holds {got}, not the acknowledged {want:?}"
        ));
    };
    for digest in &image.blobs {
        let hex = &digest["sha256:".len()..];
        let pulled = std::fs::read(dir.path().join("blobs/sha256").join(hex))
            .map_err(|e| format!("{reference}: blob {digest} missing from the pull: {e}"))?;
        if pulled != image.blob(digest) {
            return Err(format!(
                "{reference}: blob {digest} differs from what was pushed ({} bytes pulled, sha256:{})",
                pulled.len(),
                sha256_hex(&pulled)
            ));
        }
    }
    Ok(())
}

/// The HTTP status of `GET url` (0 when curl could not connect).
pub fn status_of(url: &str, extra: &[&str]) -> u16 {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "30",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("running curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Checks every tag of the ledger against the mirror at `host` (`pick`
/// chooses the host per reference): an acknowledged tag must pull back
/// byte-identical; a tag never acknowledged may be absent, but if the
/// mirror has it, it must be whole too. Returns one line per problem.
pub fn verify_ledger(
    ledger: &Ledger,
    skopeo: &Skopeo,
    pick: &(dyn Fn(&str) -> String + Sync),
    creds: Option<&str>,
    work: &Path,
) -> Vec<String> {
    let entries: Vec<(String, bool, Vec<Arc<Image>>)> = ledger
        .tags
        .lock()
        .unwrap()
        .iter()
        .map(|(r, s)| (r.clone(), s.acknowledged, s.candidates.clone()))
        .collect();
    let problems = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    // Four pulls at a time: the machine has two cores.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some((reference, acknowledged, candidates)) = entries.get(i) else {
                    return;
                };
                let host = pick(reference);
                if !acknowledged {
                    let (repo, tag) = reference.rsplit_once(':').unwrap();
                    let mut extra =
                        vec!["-H", "Accept: application/vnd.oci.image.manifest.v1+json"];
                    if let Some(c) = creds {
                        extra.extend(["-u", c]);
                    }
                    let url = format!("http://{host}/v2/{repo}/manifests/{tag}");
                    if status_of(&url, &extra) == 404 {
                        continue;
                    }
                }
                if let Err(e) = pull_and_compare(skopeo, &host, reference, candidates, creds, work)
                {
                    let what = if *acknowledged {
                        "acknowledged and lost"
                    } else {
                        "never acknowledged, present and broken"
                    };
                    problems.lock().unwrap().push(format!("{what}: {e}"));
                }
            });
        }
    });
    problems.into_inner().unwrap()
}

/// `corral mirror SUB --json ARGS…`.
pub fn corral_mirror(sub: &str, args: &[OsString]) -> Command {
    let mut cmd = Command::new(corral_bin());
    cmd.args(["mirror", sub, "--json"])
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// The sections of fsck's JSON report that are damage (the rest, orphans,
/// upload sessions and temp files, is garbage).
const DAMAGE_SECTIONS: [&str; 6] = [
    "corrupt_blobs",
    "unresolved_tags",
    "broken_manifests",
    "missing_references",
    "malformed_links",
    "dangling_links",
];

/// `corral mirror fsck --json` on `target` (`--storage DIR` or `--config
/// FILE`): it must exit 0 and report no damage.
pub fn fsck_problems(target: &[OsString]) -> Vec<String> {
    let out = corral_mirror("fsck", target).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = match serde_json::from_str(&stdout) {
        Ok(v) => v,
        Err(_) => {
            return vec![format!(
                "fsck printed no JSON (exit {}): {stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )]
        }
    };
    let mut problems = Vec::new();
    if !out.status.success() {
        problems.push(format!("fsck exited {}: {report:#}", out.status));
    }
    if report["damaged"] != serde_json::json!(false) {
        problems.push(format!("fsck reports damage: {report:#}"));
    }
    for key in DAMAGE_SECTIONS {
        if report[key] != serde_json::json!([]) {
            problems.push(format!("fsck reports {key}: {}", report[key]));
        }
    }
    problems
}

/// [`fsck_problems`], plus one when fsck calls the storage clean although
/// `ledger_problems` (from [`verify_ledger`]) found tags whose content
/// cannot be read: the checker must notice what clients notice.
pub fn fsck_noticing(target: &[OsString], ledger_problems: &[String]) -> Vec<String> {
    let mut problems = fsck_problems(target);
    let unreadable = ledger_problems
        .iter()
        .filter(|p| p.contains(": pull from "))
        .count();
    if problems.is_empty() && unreadable > 0 {
        problems.push(format!(
            "fsck found no damage although {unreadable} tag(s) cannot be pulled"
        ));
    }
    problems
}

/// Tag and manifest-link files of a filesystem storage that are empty, and
/// blobs that are empty without being the empty blob: a write that was
/// acknowledged (or made visible) before its bytes were there.
pub fn empty_files(storage: &Path) -> Vec<String> {
    let empty_blob = sha256_hex(b"");
    let mut out = Vec::new();
    let mut stack = vec![storage.join("repos"), storage.join("blobs")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
                continue;
            }
            let parent = p.parent().and_then(|d| d.file_name()).unwrap_or_default();
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            let watched = parent == "_tags"
                || parent == "_manifests"
                || (p.starts_with(storage.join("blobs")) && name != empty_blob);
            if watched && meta.len() == 0 {
                out.push(format!("empty file {}", p.display()));
            }
        }
    }
    out
}

/// `corral mirror serve` with fixed arguments on a fixed port, which can be
/// killed with SIGKILL and started again on the same port and storage.
pub struct Serve {
    pub port: u16,
    args: Vec<OsString>,
    log: PathBuf,
    child: Option<Child>,
}

impl Serve {
    /// `corral mirror serve --listen 127.0.0.1:PORT --storage STORAGE
    /// --htpasswd … EXTRA…` (pushes with [`CREDS`]), logging to
    /// `dir/mirror.log`.
    pub fn on_storage(dir: &Path, storage: &Path, extra: &[&str]) -> Serve {
        let port = free_port();
        let mut args: Vec<OsString> = ["serve", "--listen"].map(OsString::from).to_vec();
        args.push(format!("127.0.0.1:{port}").into());
        args.push("--storage".into());
        args.push(storage.into());
        args.push("--htpasswd".into());
        args.push(htpasswd(dir).into());
        args.extend(extra.iter().map(OsString::from));
        Serve::start(dir.join("mirror.log"), port, args)
    }

    /// `corral mirror serve --config CONFIG`, whose `listen` is on `port`.
    pub fn on_config(log: PathBuf, port: u16, config: &Path) -> Serve {
        let args = vec!["serve".into(), "--config".into(), config.into()];
        Serve::start(log, port, args)
    }

    fn start(log: PathBuf, port: u16, args: Vec<OsString>) -> Serve {
        let mut s = Serve {
            port,
            args,
            log,
            child: None,
        };
        s.restart();
        s
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Starts the process (again) and waits for `/healthz`.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the mirror is still running");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(corral_bin())
            .arg("mirror")
            .args(&self.args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting corral mirror serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(&format!("{}/healthz", self.url())).is_none() {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("the mirror exited with {st}; its log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the mirror did not answer in 30 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to flush, clean up or answer.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` warnings and errors of the log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
    }
}

/// Fails the test with every problem found, and the counts that give them
/// scale.
pub fn assert_no_problems(what: &str, summary: &str, problems: &[String], log_tail: &str) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s) ({summary}):\n{}\n--- end of the mirror's log:\n{log_tail}",
        problems.len(),
        problems.join("\n")
    );
}
