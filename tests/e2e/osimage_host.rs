//! Hosts that take the OS as a container image: composes of the sample
//! stream exported to corral's mirror in the ostree container format, and
//! `corral host rebase` / `upgrade` / `rollback` / `status` on a test
//! sysroot, over the three transports. One compose set-up serves the
//! whole file (one test), to keep its run time small.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use corral_test_support::faults::{htpasswd, CREDS};
use corral_test_support::*;

const REF: &str = "corral-sample/43/x86_64/atomic-host";
const OS: &str = "corral";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}", stdout(out)))
}

/// Runs `cmd` expecting it to fail; returns its stderr.
fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded:\n{}",
        stdout(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Composes the sample stream from `repos` into `repo`, signed with the
/// key in `gpg`; returns the commit.
fn compose(repos: &Path, repo: &Path, gpg: &Gpg) -> String {
    let out = run_ok(
        compose_run(
            &repo_root().join("ostree-refs/sample-atomic.toml"),
            repo,
            gpg.home.path(),
        )
        .env("CORRAL_SAMPLE_REPOS", repos)
        .args(["--no-deltas", "--force", "--reason", "test"]),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["result"], "committed", "{v}");
    v[0]["checksum"].as_str().unwrap().to_string()
}

/// skopeo's auth file with [`CREDS`] for the test's mirror (in the
/// test's scratch directory, set once).
static AUTH_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn auth_file() -> &'static Path {
    AUTH_FILE.get().expect("the auth file is set up first")
}

/// `corral compose export COMMIT -o DEST`; returns its JSON.
fn export(repo: &Path, commit: &str, dest: &str) -> serde_json::Value {
    json(&run_ok(
        Command::new(corral_bin())
            .env("REGISTRY_AUTH_FILE", auth_file())
            .args(["compose", "export", "--json", "--repo"])
            .arg(repo)
            .arg(commit)
            .args(["-o", dest, "--tls-verify=false"]),
    ))
}

fn layer_digests(image: &serde_json::Value) -> Vec<String> {
    image["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// What the proxy does to the connection on which an armed blob is
/// requested: after `budget` bytes of the answer, cut it or go silent.
type Armed = Arc<Mutex<Option<(String, u64, bool)>>>;

/// A TCP proxy in front of the mirror that, when armed with a digest,
/// cuts the connection on which that blob is requested once it has
/// passed `budget` bytes of the answer (or, stalling, stops sending).
struct CuttingProxy {
    port: u16,
    armed: Armed,
    cuts: Arc<AtomicU64>,
}

impl CuttingProxy {
    fn start(upstream: u16) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed: Armed = Arc::new(Mutex::new(None));
        let cuts = Arc::new(AtomicU64::new(0));
        let (a, c) = (armed.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (armed, cuts) = (a.clone(), c.clone());
                std::thread::spawn(move || proxy(client, upstream, armed, cuts));
            }
        });
        CuttingProxy { port, armed, cuts }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn arm(&self, digest: &str, budget: u64) {
        *self.armed.lock().unwrap() = Some((digest.to_string(), budget, false));
    }

    fn arm_stall(&self, digest: &str, budget: u64) {
        *self.armed.lock().unwrap() = Some((digest.to_string(), budget, true));
    }

    fn disarm(&self) {
        *self.armed.lock().unwrap() = None;
    }
}

fn proxy(client: TcpStream, upstream: u16, armed: Armed, cuts: Arc<AtomicU64>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    // Set when the armed blob is asked for on this connection: the bytes
    // of the answer that may pass.
    let budget: Arc<Mutex<Option<(u64, bool)>>> = Arc::new(Mutex::new(None));
    let cut = Arc::new(AtomicBool::new(false));
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (b, k) = (budget.clone(), cut.clone());
    let up = std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let text = String::from_utf8_lossy(&buf[..n]);
            if let Some((digest, bytes, stall)) = armed.lock().unwrap().clone() {
                if text.contains(&format!("/blobs/{digest}")) {
                    *b.lock().unwrap() = Some((bytes, stall));
                }
            }
            if k.load(Ordering::SeqCst) || s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(std::net::Shutdown::Both);
    });
    let (mut s_read, mut c_write) = (server, client);
    let mut buf = [0u8; 4096];
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut pass = n;
        let mut stop = None;
        if let Some((left, stall)) = budget.lock().unwrap().as_mut() {
            if (n as u64) >= *left {
                pass = *left as usize;
                stop = Some(*stall);
            } else {
                *left -= n as u64;
            }
        }
        if c_write.write_all(&buf[..pass]).is_err() {
            break;
        }
        match stop {
            Some(true) => {
                // silent, the connection open, until the client gives up
                let mut probe = [0u8; 1];
                let _ = c_write.set_read_timeout(Some(std::time::Duration::from_secs(60)));
                let _ = c_write.peek(&mut probe);
                cut.store(true, Ordering::SeqCst);
                break;
            }
            Some(false) => {
                cut.store(true, Ordering::SeqCst);
                cuts.fetch_add(1, Ordering::SeqCst);
                break;
            }
            None => {}
        }
    }
    let _ = c_write.shutdown(std::net::Shutdown::Both);
    let _ = s_read.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}

struct Sysroot {
    dir: tempfile::TempDir,
}

impl Sysroot {
    fn new(remote_key: &Path) -> Sysroot {
        require_tool("ostree");
        let dir = scratch();
        run_ok(
            Command::new("ostree")
                .args(["admin", "init-fs"])
                .arg(dir.path()),
        );
        run_ok(
            Command::new("ostree")
                .args(["admin", "os-init", OS])
                .arg(format!("--sysroot={}", dir.path().display())),
        );
        let s = Sysroot { dir };
        // The remote's keys verify the commits inside images; its URL is
        // not used by them.
        run_ok(
            s.host()
                .args([
                    "remote",
                    "add",
                    "corral",
                    "http://127.0.0.1:9/ostree",
                    "--gpg-key",
                ])
                .arg(remote_key),
        );
        s
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn host(&self) -> Command {
        let mut c = Command::new(corral_bin());
        c.arg("host")
            .arg("--sysroot")
            .arg(self.path())
            .env_remove("RUST_LOG")
            .env("CORRAL_REGISTRY_CREDS", CREDS);
        c
    }

    fn status(&self) -> serde_json::Value {
        json(&run_ok(self.host().args(["status", "--json"])))
    }

    fn checksums(&self) -> Vec<String> {
        self.status()["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["checksum"].as_str().unwrap().to_string())
            .collect()
    }

    fn deployment_dir(&self, index: usize) -> PathBuf {
        let s = self.status();
        let d = &s["deployments"][index];
        self.path().join(format!(
            "ostree/deploy/{OS}/deploy/{}.{}",
            d["checksum"].as_str().unwrap(),
            d["serial"]
        ))
    }

    fn rebase(&self, image: &str, extra: &[&str]) -> Command {
        let mut c = self.host();
        c.args(["rebase", image, "--plain-http"]).args(extra);
        c
    }

    fn cache_blob(&self, digest: &str) -> PathBuf {
        self.path()
            .join("ostree/corral/image-cache/blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }
}

/// A copy of the OCI layout `from` whose layer `digest` has the first
/// byte of its first object named `*SUFFIX` (`.file`, `.commit`) changed,
/// the manifest rewritten to match (so the registry takes it).
fn tampered_layout(from: &Path, to: &Path, digest: &str, suffix: &str) {
    run_ok(Command::new("cp").arg("-a").arg(from).arg(to));
    let blob = |d: &str| {
        to.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let out = run_ok(Command::new("gzip").arg("-dc").arg(blob(digest)));
    let mut tar = out.stdout;
    let mut at = 0;
    loop {
        assert!(
            at + 512 <= tar.len(),
            "no {suffix} object in layer {digest}"
        );
        let header = &tar[at..at + 512];
        let name = String::from_utf8_lossy(&header[..100]);
        let size = std::str::from_utf8(&header[124..136])
            .unwrap()
            .trim_matches(|c: char| c == '\0' || c == ' ');
        let size = u64::from_str_radix(size, 8).unwrap_or(0) as usize;
        if header[156] == b'0' && size > 0 && name.trim_end_matches('\0').ends_with(suffix) {
            tar[at + 512] ^= 0x55;
            break;
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    let raw = to.join("layer.tar");
    std::fs::write(&raw, &tar).unwrap();
    run_ok(Command::new("gzip").arg("-n").arg("-f").arg(&raw));
    let gz = std::fs::read(to.join("layer.tar.gz")).unwrap();
    std::fs::remove_file(to.join("layer.tar.gz")).unwrap();
    let new_digest = format!("sha256:{}", sha256_hex(&gz));
    std::fs::write(blob(&new_digest), &gz).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(to.join("index.json")).unwrap()).unwrap();
    let old_manifest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&old_manifest)).unwrap()).unwrap();
    for l in manifest["layers"].as_array_mut().unwrap() {
        if l["digest"] == digest {
            l["digest"] = new_digest.clone().into();
            l["size"] = gz.len().into();
        }
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = format!("sha256:{}", sha256_hex(&bytes));
    std::fs::write(blob(&manifest_digest), &bytes).unwrap();
    write_layout_index(to, &manifest_digest, bytes.len(), "os");
}

fn skopeo_push(layout: &Path, dest: &str) {
    run_ok(
        Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--dest-creds",
                CREDS,
            ])
            .arg(format!("oci:{}:os", layout.display()))
            .arg(format!("docker://{dest}")),
    );
}

/// The three transports end to end: what each refuses (nothing deployed),
/// a rebase, an upgrade that fetches only the changed layers and resumes
/// a cut-off layer download, rollback, status, and a signed rebase.
#[test]
fn hosts_rebase_upgrade_and_refuse_os_images() {
    require_tool("skopeo");
    let work = scratch();
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let stranger = Gpg::new("corral compose test <compose@corral.invalid>");
    let server = work.path().join("repo");
    init_archive_repo(&server);
    let repos = sample_repos();
    let c1 = compose(repos.path(), &server, &gpg);
    let updated = sample_repos_hello("1.1");
    let c2 = compose(updated.path(), &server, &gpg);
    let foreign_repo = work.path().join("foreign");
    init_archive_repo(&foreign_repo);
    let foreign = compose(repos.path(), &foreign_repo, &stranger);

    let htpasswd = htpasswd(work.path());
    let mirror = Mirror::start(&["--htpasswd", htpasswd.to_str().unwrap()]);
    // base64 of CREDS, for the pushes
    assert_eq!(CREDS, "user:pass");
    AUTH_FILE.set(work.path().join("auth.json")).unwrap();
    std::fs::write(
        auth_file(),
        serde_json::json!({"auths": {mirror.host(): {"auth": "dXNlcjpwYXNz"}}}).to_string(),
    )
    .unwrap();
    let proxy = CuttingProxy::start(mirror.url().rsplit(':').next().unwrap().parse().unwrap());
    let at = |tag: &str| format!("{}/corral/os:{tag}", mirror.host());
    let via_proxy = |tag: &str| format!("{}/corral/os:{tag}", proxy.host());
    let image1 = export(&server, &c1, &format!("docker://{}", at("43")));
    let layout1 = work.path().join("layout1");
    export(&server, &c1, &format!("oci:{}:os", layout1.display()));
    export(
        &foreign_repo,
        &foreign,
        &format!("docker://{}", at("foreign")),
    );
    // unsigned: the same commit without its detached metadata
    let meta = foreign_repo.join(format!(
        "objects/{}/{}.commitmeta",
        &foreign[..2],
        &foreign[2..]
    ));
    std::fs::remove_file(&meta).unwrap();
    export(
        &foreign_repo,
        &foreign,
        &format!("docker://{}", at("unsigned")),
    );
    let layers1 = layer_digests(&image1);
    assert!(layers1.len() >= 3, "{image1}");
    let tampered = work.path().join("tampered");
    tampered_layout(&layout1, &tampered, &layers1[1], ".file");
    skopeo_push(&tampered, &at("tampered"));
    let tampered_commit = work.path().join("tampered-commit");
    tampered_layout(&layout1, &tampered_commit, &layers1[0], ".commit");
    skopeo_push(&tampered_commit, &at("tampered-commit"));

    let sys = Sysroot::new(&gpg.public_key);
    let nothing_deployed = |what: &str| {
        assert_eq!(
            sys.checksums(),
            Vec::<String>::new(),
            "{what}: something was deployed"
        );
    };

    // Unverified: refused unless asked for.
    let err = fails(&mut sys.rebase(&format!("ostree-unverified-registry:{}", at("43")), &[]));
    assert!(err.contains("--insecure-unverified"), "{err}");
    nothing_deployed("unverified");

    // The commit inside must be signed by the remote's keys.
    let remote = |tag: &str| format!("ostree-remote-registry:corral:{}", at(tag));
    let err = fails(&mut sys.rebase(&remote("foreign"), &[]));
    assert!(
        err.contains(&at("foreign")) && err.contains("a key the remote does not trust"),
        "{err}"
    );
    nothing_deployed("another key");
    let err = fails(&mut sys.rebase(&remote("unsigned"), &[]));
    assert!(
        err.contains(&at("unsigned")) && err.contains("unsigned"),
        "{err}"
    );
    nothing_deployed("unsigned");
    let err = fails(&mut sys.rebase(&remote("tampered"), &[]));
    assert!(err.contains(&at("tampered")), "{err}");
    assert!(err.contains("importing layer sha256:"), "{err}");
    nothing_deployed("tampered");
    let err = fails(&mut sys.rebase(&remote("tampered-commit"), &[]));
    assert!(
        err.contains(&at("tampered-commit"))
            && err.contains(&format!("commit object {c1} has checksum")),
        "{err}"
    );
    nothing_deployed("tampered commit");

    // The rebase, through the proxy (which passes everything for now).
    let via = format!("ostree-remote-registry:corral:{}", via_proxy("43"));
    let first = json(&run_ok(&mut sys.rebase(&via, &["--json"])));
    assert_eq!(first["result"], "deployed", "{first}");
    assert_eq!(first["to"]["checksum"], c1.as_str());
    assert_eq!(first["manifest_digest"], image1["manifest_digest"]);
    assert_eq!(
        first["fetch"]["layers_fetched"].as_array().unwrap().len(),
        layers1.len()
    );
    assert!(
        first["verified"]
            .as_str()
            .unwrap()
            .contains("commit signed by"),
        "{first}"
    );
    assert_eq!(sys.checksums(), vec![c1.clone()]);
    let origin = std::fs::read_to_string(
        sys.path()
            .join(format!("ostree/deploy/{OS}/deploy"))
            .join(format!("{c1}.0.origin")),
    )
    .unwrap();
    assert!(
        origin.contains(&format!("container-image-reference={via}")),
        "{origin}"
    );
    run_ok(
        Command::new("ostree")
            .arg(format!(
                "--repo={}",
                sys.path().join("ostree/repo").display()
            ))
            .arg("fsck"),
    );
    // the commands that follow OSTree remotes say what to use instead
    let err = fails(sys.host().arg("deploy"));
    assert!(
        err.contains("comes from the image") && err.contains("corral host upgrade"),
        "{err}"
    );
    // the remote's keys verify this deployment: deleting it is refused
    let err = fails(sys.host().args(["remote", "delete", "corral"]));
    assert!(err.contains("is the origin of deployment 0"), "{err}");
    // the imported layers are not kept: their objects are in the repository
    assert!(!sys.cache_blob(&layers1[0]).exists());

    // Same digest: no update.
    let out = run_ok(sys.host().arg("upgrade"));
    assert!(stdout(&out).contains("no update"), "{}", stdout(&out));
    let code = sys.host().args(["upgrade", "--check"]).status().unwrap();
    assert_eq!(code.code(), Some(1));

    // hello 1.1: one package layer and the commit layer change.
    let image2 = export(&server, &c2, &format!("docker://{}", at("43")));
    let layers2 = layer_digests(&image2);
    let changed: Vec<&String> = layers2.iter().filter(|l| !layers1.contains(l)).collect();
    assert_eq!(changed.len(), 2, "{image1}\n{image2}");
    let commit_layer = layers2[0].clone();
    let sizes: std::collections::BTreeMap<String, u64> = image2["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let commit_size = sizes[&commit_layer];
    assert!(commit_size > 4096, "commit layer of {commit_size} bytes");

    // A registry that stops sending in the middle of the commit layer:
    // stopped after the stall timeout, the part received kept.
    proxy.arm_stall(&commit_layer, commit_size / 4);
    let started = std::time::Instant::now();
    let err = fails(sys.host().args(["upgrade", "--stall-timeout", "2"]));
    assert!(
        err.contains("no progress for 2 s") && err.contains(&commit_layer),
        "{err}"
    );
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    assert_eq!(sys.checksums(), vec![c1.clone()]);
    let partial = sys.cache_blob(&commit_layer).with_extension("partial");
    let stalled_at = std::fs::metadata(&partial).unwrap().len();
    assert!(stalled_at > 0, "nothing kept of a stalled download");

    // Cut off in the middle of the rest: nothing changes, the part
    // received is kept.
    proxy.arm(&commit_layer, commit_size / 2);
    let err = fails(sys.host().args(["upgrade", "--json"]));
    assert!(err.contains(&commit_layer), "{err}");
    assert_eq!(proxy.cuts.load(Ordering::SeqCst), 1);
    assert_eq!(sys.checksums(), vec![c1.clone()]);
    let kept = std::fs::metadata(&partial)
        .unwrap_or_else(|e| panic!("{}: {e}", partial.display()))
        .len();
    assert!(
        kept > stalled_at && kept < commit_size,
        "{stalled_at}, then {kept} of {commit_size}"
    );

    // The next run asks for the rest only.
    proxy.disarm();
    let up = json(&run_ok(sys.host().args(["upgrade", "--json"])));
    assert_eq!(up["result"], "deployed", "{up}");
    assert_eq!(up["to"]["checksum"], c2.as_str());
    assert_eq!(up["fetch"]["resumed_bytes"], kept, "{up}");
    let fetched: Vec<&str> = up["fetch"]["layers_fetched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        fetched,
        changed.iter().map(|s| s.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(
        up["fetch"]["layers_reused"].as_array().unwrap().len(),
        layers2.len() - 2
    );
    let layer_bytes: u64 = changed.iter().map(|d| sizes[*d]).sum::<u64>() - kept;
    let bytes = up["fetch"]["bytes"].as_u64().unwrap();
    // the changed layers less what was kept, plus manifest and config
    assert!(
        bytes >= layer_bytes && bytes < layer_bytes + 64 * 1024,
        "{bytes} fetched, {layer_bytes} of layers"
    );
    let total: u64 = sizes.values().sum();
    eprintln!("upgrade fetched {bytes} bytes of a {total}-byte image ({kept} resumed)");
    assert_eq!(up["packages"]["changed"][0]["name"], "corral-hello", "{up}");
    assert!(!partial.exists());
    let hello =
        std::fs::read_to_string(sys.deployment_dir(0).join("usr/bin/corral-hello")).unwrap();
    assert!(hello.contains("corral-hello 1.1"), "{hello}");

    // status: the image and manifest of each deployment.
    let st = sys.status();
    assert_eq!(st["deployments"][0]["image"]["reference"], via.as_str());
    assert_eq!(
        st["deployments"][0]["image"]["manifest_digest"],
        image2["manifest_digest"]
    );
    assert_eq!(
        st["deployments"][1]["image"]["manifest_digest"],
        image1["manifest_digest"]
    );
    assert_eq!(st["deployments"][0]["signature"]["state"], "valid", "{st}");
    let text = stdout(&run_ok(sys.host().arg("status")));
    assert!(
        text.contains(&format!("image:     {via}"))
            && text.contains(image2["manifest_digest"].as_str().unwrap()),
        "{text}"
    );

    // rollback as for any deployment
    run_ok(sys.host().arg("rollback"));
    assert_eq!(sys.checksums(), vec![c1.clone(), c2.clone()]);

    // ostree-image-signed: the container signature against [images].
    let keys = work.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let cosign = |name: &str| {
        run_ok(
            Command::new(corral_bin())
                .args(["key", "generate", "--type", "cosign", "--out"])
                .arg(keys.join(name))
                .env("CORRAL_KEY_PASSWORD", "pw"),
        );
    };
    cosign("os");
    cosign("other");
    let sign = |tag: &str, key: &str| {
        run_ok(
            Command::new(corral_bin())
                .env("CORRAL_REGISTRY_CREDS", CREDS)
                .args(["sign", "image", &at(tag), "--plain-http", "--key"])
                .arg(keys.join(key).join("cosign.key"))
                .env("CORRAL_KEY_PASSWORD", "pw"),
        );
    };
    sign("43", "os");
    export(&server, &c1, &format!("docker://{}", at("by-other")));
    sign("by-other", "other");
    export(&server, &c2, &format!("docker://{}", at("changed")));
    sign("changed", "os");
    // the tag moves to another image after it was signed
    export(&server, &c1, &format!("docker://{}", at("changed")));
    let signed = |tag: &str| format!("ostree-image-signed:docker://{}", at(tag));

    let err = fails(&mut sys.rebase(&signed("43"), &[]));
    assert!(err.contains("no container trust is configured"), "{err}");
    // the trust lives in the deployment's /etc
    let etc = sys.deployment_dir(0).join("etc/corral");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::copy(keys.join("os/cosign.pub"), etc.join("os.pub")).unwrap();
    std::fs::write(
        etc.join("host.toml"),
        "[images]\ncosign-key = \"/etc/corral/os.pub\"\n",
    )
    .unwrap();
    for tag in ["by-other", "changed", "unsigned"] {
        let err = fails(&mut sys.rebase(&signed(tag), &[]));
        assert!(
            err.contains(&at(tag))
                && err.contains("refused by the cosign key")
                && err.contains("os.pub"),
            "{tag}: {err}"
        );
        if tag == "by-other" {
            assert!(err.contains("was made by the given key"), "{err}");
        }
        assert_eq!(sys.checksums(), vec![c1.clone(), c2.clone()], "{tag}");
    }
    let s = json(&run_ok(&mut sys.rebase(&signed("43"), &["--json"])));
    assert_eq!(s["result"], "deployed", "{s}");
    assert_eq!(s["to"]["checksum"], c2.as_str());
    assert!(
        s["verified"].as_str().unwrap().contains("cosign signature"),
        "{s}"
    );
    assert_eq!(s["manifest_digest"], image2["manifest_digest"]);
    // the objects of c2 are in the repository: only the commit layer came
    assert_eq!(
        s["fetch"]["layers_fetched"],
        serde_json::json!([commit_layer]),
        "{s}"
    );
    assert_eq!(sys.checksums()[0], c2);
    let st = sys.status();
    assert_eq!(
        st["deployments"][0]["image"]["reference"],
        signed("43").as_str()
    );

    // GPG simple signing, the signature in the mirror's lookaside.
    let signer = Gpg::new("corral image test <image@corral.invalid>");
    run_ok(
        Command::new(corral_bin())
            .args(["key", "generate", "--type", "gpg", "--gpg-homedir"])
            .arg(signer.home.path())
            .arg("--out")
            .arg(keys.join("gpg")),
    );
    export(&server, &c1, &format!("docker://{}", at("gpg")));
    run_ok(
        Command::new(corral_bin())
            .env("CORRAL_REGISTRY_CREDS", CREDS)
            .args(["sign", "image", &at("gpg"), "--plain-http"])
            .args(["--gpg-key", "corral image signing", "--gpg-homedir"])
            .arg(signer.home.path()),
    );
    let etc = sys.deployment_dir(0).join("etc/corral");
    std::fs::copy(keys.join("gpg/corral-signing.gpg"), etc.join("os.gpg")).unwrap();
    std::fs::write(
        etc.join("host.toml"),
        "[images]\ngpg-keyring = \"/etc/corral/os.gpg\"\n",
    )
    .unwrap();
    let err = fails(&mut sys.rebase(&signed("unsigned"), &[]));
    assert!(
        err.contains("refused by the GPG keyring") && err.contains("no signature found"),
        "{err}"
    );
    let g = json(&run_ok(&mut sys.rebase(&signed("gpg"), &["--json"])));
    assert_eq!(g["result"], "deployed", "{g}");
    assert_eq!(g["to"]["checksum"], c1.as_str());
    assert!(
        g["verified"].as_str().unwrap().contains("GPG signature"),
        "{g}"
    );

    // A derived image: a Dockerfile FROM the OS image, built by the engine
    // (no network) and pushed to the mirror.
    let engine = Dockerd::start();
    let mut login = engine.docker();
    login
        .args(["login", "-u", "user", "--password-stdin", &mirror.host()])
        .stdin(std::process::Stdio::piped());
    let mut child = login.stdout(std::process::Stdio::null()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"pass").unwrap();
    assert!(child.wait().unwrap().success(), "docker login");
    let ctx = work.path().join("derived");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("added.txt"), "added by a derived image\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {}\nCOPY added.txt /usr/share/corral-derived/added.txt\nCOPY added.txt /etc/derived.conf\n",
            at("43")
        ),
    )
    .unwrap();
    run_ok(
        engine
            .docker()
            .args(["build", "--network", "none", "-q", "-t", &at("derived")])
            .arg(&ctx),
    );
    run_ok(engine.docker().args(["push", "-q", &at("derived")]));

    // The commit's signature does not cover the layers on top of it.
    let err = fails(&mut sys.rebase(&remote("derived"), &[]));
    assert!(err.contains("is a derived image"), "{err}");
    let unverified = format!("ostree-unverified-registry:{}", at("derived"));
    let d = json(&run_ok(
        &mut sys.rebase(&unverified, &["--insecure-unverified", "--json"]),
    ));
    assert_eq!(d["result"], "deployed", "{d}");
    // image 43 is c2: the base
    assert_eq!(d["base_commit"], c2.as_str(), "{d}");
    let derived_commit = d["to"]["checksum"].as_str().unwrap().to_string();
    assert_ne!(derived_commit, c2);
    assert_eq!(d["derived_layers"].as_array().unwrap().len(), 2, "{d}");
    let root = sys.deployment_dir(0);
    assert_eq!(
        std::fs::read_to_string(root.join("usr/share/corral-derived/added.txt")).unwrap(),
        "added by a derived image\n"
    );
    // /etc from a layer is the deployment's default configuration
    assert!(root.join("usr/etc/derived.conf").is_file());
    assert!(root.join("etc/derived.conf").is_file());
    // and the base's files are all there
    let hello = std::fs::read_to_string(root.join("usr/bin/corral-hello")).unwrap();
    assert!(hello.contains("corral-hello 1.1"), "{hello}");
    let st = sys.status();
    let img = &st["deployments"][0]["image"];
    assert_eq!(img["base_commit"], c2.as_str(), "{st}");
    assert_eq!(img["derived_layers"], d["derived_layers"], "{st}");
    let text = stdout(&run_ok(sys.host().arg("status")));
    assert!(text.contains(&format!("base:      {c2}")), "{text}");
    run_ok(
        Command::new("ostree")
            .arg(format!(
                "--repo={}",
                sys.path().join("ostree/repo").display()
            ))
            .arg("fsck"),
    );
    let _ = REF;
}
