//! Helpers of the mirror end-to-end tests: the `corral mirror serve`
//! binary, Debian's docker-registry as an upstream, skopeo, a Docker
//! Engine configured with `registry-mirrors`, and a small busybox image.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corral_e2e::{corral_bin, require_tool, run_ok, scratch};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding a loopback port")
        .local_addr()
        .unwrap()
        .port()
}

/// `GET url` with curl; the body when the status is 2xx.
pub fn http_get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "10", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_http(url: &str, what: &str, log: &Path) {
    require_tool("curl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http_get(url).is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} did not answer {url} in 30 s; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Debian's docker-registry (distribution 2.8) on a loopback port, with its
/// access log kept so a test can count the requests it saw.
pub struct Upstream {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Upstream {
    pub fn start() -> Upstream {
        require_tool("docker-registry");
        let dir = scratch();
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting docker-registry");
        let up = Upstream {
            port,
            child: Some(child),
            dir,
        };
        wait_http(&format!("{}/v2/", up.url()), "docker-registry", &log);
        up
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many access-log lines contain `needle` (e.g. `"GET /v2/…/blobs/sha256:…`).
    pub fn requests_matching(&self, needle: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("registry.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c);
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `corral mirror serve` (the real binary) on a loopback port.
pub struct Mirror {
    pub port: u16,
    pub storage: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

impl Mirror {
    /// Starts the mirror with `extra` flags (e.g. `--upstream library=URL`)
    /// and waits for `/healthz`.
    pub fn start(extra: &[&str]) -> Mirror {
        let dir = scratch();
        let port = free_port();
        let storage = dir.path().join("storage");
        let log = dir.path().join("mirror.log");
        let child = Command::new(corral_bin())
            .args(["mirror", "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--storage")
            .arg(&storage)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting corral mirror serve");
        let m = Mirror {
            port,
            storage,
            child,
            dir,
        };
        wait_http(&format!("{}/healthz", m.url()), "corral mirror", &log);
        m
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, as registries.conf and image references spell it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The value of an unlabelled counter from `/metrics`.
    pub fn counter(&self, name: &str) -> u64 {
        let text = http_get(&format!("{}/metrics", self.url())).expect("GET /metrics");
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == name).then(|| v.trim().parse::<f64>().ok())?
            })
            .map(|v| v as u64)
            .unwrap_or(0)
    }

    /// Whether the storage holds `digest` (`sha256:…`) as a blob.
    pub fn has_blob(&self, digest: &str) -> bool {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .is_file()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mirror.log")).unwrap_or_default()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// skopeo with an accept-anything policy and, unless given one, no
/// registries.conf of the host.
pub struct Skopeo {
    policy: PathBuf,
    _dir: tempfile::TempDir,
}

impl Default for Skopeo {
    fn default() -> Self {
        Self::new()
    }
}

impl Skopeo {
    pub fn new() -> Skopeo {
        require_tool("skopeo");
        let dir = scratch();
        let policy = dir.path().join("policy.json");
        std::fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        Skopeo { policy, _dir: dir }
    }

    /// `skopeo --registries-conf CONF copy ARGS…` (CONF: /dev/null when None).
    pub fn copy(&self, registries_conf: Option<&Path>, args: &[&str]) -> Command {
        let mut cmd = Command::new("skopeo");
        cmd.arg("--policy")
            .arg(&self.policy)
            .arg("--registries-conf")
            .arg(registries_conf.unwrap_or(Path::new("/dev/null")))
            .args(["copy", "--retry-times", "0"])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }
}

/// Builds a tiny busybox image (`/bin/busybox`, `/bin/sh`) with
/// `corral image build --rootfs` into `oci:dir/layout:tag`; returns the
/// layout path.
pub fn busybox_image(dir: &Path, tag: &str) -> PathBuf {
    require_tool("busybox");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::copy(
        PathBuf::from(
            String::from_utf8(run_ok(Command::new("sh").args(["-c", "command -v busybox"])).stdout)
                .unwrap()
                .trim(),
        ),
        tree.join("bin/busybox"),
    )
    .expect("copying busybox");
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).unwrap();
    let layout = dir.join("layout");
    run_ok(
        Command::new(corral_bin())
            .env("SOURCE_DATE_EPOCH", "1767225600")
            .env_remove("RUST_LOG")
            .args(["image", "build", "--rootfs"])
            .arg(&tree)
            .arg("-o")
            .arg(format!("oci:{}:{tag}", layout.display())),
    );
    layout
}

/// Writes an OCI layout holding one artifact-like image whose single layer
/// is `payload` (used as a stand-in signature); returns the layout path.
pub fn payload_image(dir: &Path, tag: &str, payload: &[u8]) -> PathBuf {
    use sha2::Digest;
    let layout = dir.join(format!("payload-{tag}"));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let hex = hex::encode(sha2::Sha256::digest(data));
        std::fs::write(blobs.join(&hex), data).unwrap();
        (format!("sha256:{hex}"), data.len())
    };
    let (ld, ls) = put(payload);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [ld]},
    }))
    .unwrap();
    let (cd, cs) = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}],
    }))
    .unwrap();
    let (md, ms) = put(&manifest);
    write_layout_index(&layout, &md, ms, tag);
    layout
}

/// Makes `layout` an OCI image layout whose index names one manifest
/// (already in `blobs/`) as `tag`.
pub fn write_layout_index(layout: &Path, manifest_digest: &str, manifest_size: usize, tag: &str) {
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        }))
        .unwrap(),
    )
    .unwrap();
}

/// A PNG's width, height and 8-bit RGBA pixels, decoded with the `png` crate.
pub fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a valid PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a valid PNG frame");
    buf.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        other => panic!("unexpected PNG color type {other:?}"),
    };
    (info.width, info.height, rgba)
}
