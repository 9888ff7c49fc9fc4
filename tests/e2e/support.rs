//! Shared helpers of the end-to-end tests: the built `corral` binary,
//! the sample RPM repositories, and the real tools they drive.
//!
//! A test that needs a tool which is missing fails with a message naming
//! it; nothing here skips silently.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `corral` binary cargo built for this test run: the end-to-end
/// tests are integration tests of the `corral` package, so `cargo test`
/// and `cargo nextest run` build the binary before them and name it in
/// `CARGO_BIN_EXE_corral` (at run time since cargo 1.94); a stale build in
/// the target directory is never picked up.
pub fn corral_bin() -> PathBuf {
    let bin = ["CARGO_BIN_EXE_corral", "NEXTEST_BIN_EXE_corral"]
        .into_iter()
        .find_map(std::env::var_os)
        .map(PathBuf::from)
        .expect(
            "CARGO_BIN_EXE_corral is not set: run the end-to-end tests with \
             `cargo test -p corral --test NAME` (cargo 1.94 or later) or \
             `cargo nextest run -p corral`",
        );
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// `corral-ostree`, which `corral` runs for `compose`, `disk`, `host` and
/// `release`: `corral_bin()` plus `-ostree`.
pub fn corral_ostree_bin() -> PathBuf {
    corral_ostree_bin_beside(&corral_bin())
}

fn corral_ostree_bin_beside(bin: &Path) -> PathBuf {
    let mut name = bin.as_os_str().to_owned();
    name.push("-ostree");
    PathBuf::from(name)
}

/// A `corral` command with the sample repositories in its environment.
pub fn corral(repos: &Path) -> Command {
    let mut cmd = Command::new(corral_bin());
    cmd.env("CORRAL_SAMPLE_REPOS", repos)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs `cmd`, panicking with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Panics with a clear message when `tool` is not on PATH.
pub fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is required by this test and is not installed (scripts/setup.sh installs it)"
    );
}

/// How qemu runs a guest: with KVM when it works here, else in software
/// (TCG), which CI machines without KVM fall back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    /// Software emulation, and why not KVM.
    Tcg(String),
}

impl Accel {
    /// KVM if this process can open `/dev/kvm` read-write and qemu with
    /// `-accel kvm -cpu host` gets somewhere within 30 s: with `kernel`,
    /// the kernel prints its banner on the serial console; without, the
    /// firmware (SeaBIOS) prints. Opening `/dev/kvm` is not enough: on a
    /// host whose KVM is a paravirtual one (`kvm_pvm`) qemu starts but an
    /// ordinary distribution kernel hangs before its first line, and some
    /// nested hosts refuse `-cpu host`'s MSRs. `CORRAL_QEMU_ACCEL=tcg`
    /// asks for software emulation.
    pub fn probe(kernel: Option<&Path>) -> Accel {
        if std::env::var("CORRAL_QEMU_ACCEL").as_deref() == Ok("tcg") {
            return Accel::Tcg("CORRAL_QEMU_ACCEL=tcg".into());
        }
        if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
        {
            return Accel::Tcg(format!("/dev/kvm: {e}"));
        }
        let dir = scratch();
        let serial = dir.path().join("serial.log");
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-accel", "kvm", "-cpu", "host", "-m", "512", "-nographic"])
            .args(["-monitor", "none", "-no-reboot", "-serial"])
            .arg(format!("file:{}", serial.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let want = match kernel {
            Some(k) => {
                cmd.arg("-kernel")
                    .arg(k)
                    .args(["-append", "console=ttyS0 panic=-1"]);
                "Linux version"
            }
            None => "SeaBIOS",
        };
        let mut child = cmd.spawn().expect("starting qemu-system-x86_64");
        let started = Instant::now();
        let verdict = loop {
            let text =
                String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
            if text.contains(want) {
                break Accel::Kvm;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                let first = err.lines().next().unwrap_or("").to_string();
                break Accel::Tcg(format!(
                    "qemu -accel kvm -cpu host exited ({status}): {first}"
                ));
            }
            if started.elapsed() > Duration::from_secs(30) {
                break Accel::Tcg(format!(
                    "/dev/kvm opens, but no {want:?} on the console within 30 s under KVM"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let _ = child.kill();
        let _ = child.wait();
        verdict
    }

    /// qemu's arguments: `-accel kvm -cpu host`, or `-accel tcg`.
    pub fn qemu_args(&self) -> &'static [&'static str] {
        match self {
            Accel::Kvm => &["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg(_) => &["-accel", "tcg"],
        }
    }

    /// `kvm`, or `tcg (why)`, for the test's output.
    pub fn describe(&self) -> String {
        match self {
            Accel::Kvm => "kvm".into(),
            Accel::Tcg(why) => format!("tcg ({why})"),
        }
    }
}

/// Builds the sample RPM repositories into a fresh temporary directory.
pub fn sample_repos() -> tempfile::TempDir {
    for tool in ["rpmbuild", "rpmsign", "createrepo_c", "gpg", "busybox"] {
        require_tool(tool);
    }
    let dir = tempfile::Builder::new()
        .prefix("corral-repos-")
        .tempdir_in("/var/tmp")
        .expect("temp dir");
    run_ok(
        Command::new("bash")
            .arg(repo_root().join("tests/fixtures/rpms/build-repo.sh"))
            .arg(dir.path()),
    );
    dir
}

/// A scratch directory on a disk-backed filesystem (not tmpfs: trees
/// carry xattrs and device nodes).
/// `ostree init --mode=archive` of `repo` (created if missing): the kind
/// of repository composes write and the mirror serves.
pub fn init_archive_repo(repo: &Path) {
    std::fs::create_dir_all(repo).unwrap();
    run_ok(
        Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args(["init", "--mode=archive"]),
    );
}

/// `corral compose run STREAM --repo REPO --json`, signed with the key in
/// `gnupghome`, at a fixed SOURCE_DATE_EPOCH; callers add their flags.
pub fn compose_run(stream: &Path, repo: &Path, gnupghome: &Path) -> Command {
    let mut cmd = Command::new(corral_bin());
    cmd.args(["compose", "run"])
        .arg(stream)
        .arg("--repo")
        .arg(repo)
        .arg("--json")
        .current_dir(repo_root())
        .env("GNUPGHOME", gnupghome)
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .env_remove("RUST_LOG");
    cmd
}

pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("corral-e2e-")
        .tempdir_in("/var/tmp")
        .expect("temp dir")
}

/// Everything about one entry of a tree that an image must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFacts {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub content_sha256: Option<String>,
    pub link: Option<String>,
    pub rdev: Option<u64>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// Walks `root` and records every entry's facts by relative path.
/// Directory mtimes are included.
pub fn tree_facts(root: &Path) -> BTreeMap<String, EntryFacts> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, EntryFacts>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else {
            "socket"
        };
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let content_sha256 = ft.is_file().then(|| sha256_file(&path));
        let link = ft.is_symlink().then(|| {
            std::fs::read_link(&path)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        });
        let mut xattrs = BTreeMap::new();
        if !ft.is_symlink() {
            // A missing getfattr must fail the test, not compare empty maps.
            let out = Command::new("getfattr")
                .args(["--absolute-names", "--dump", "-m", "-", "-e", "hex"])
                .arg(&path)
                .output()
                .expect("getfattr (package attr) is required to compare xattrs");
            assert!(
                out.status.success(),
                "getfattr {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((k, v)) = line.split_once("=0x") {
                    xattrs.insert(k.to_string(), hex::decode(v).expect("getfattr prints hex"));
                }
            }
        }
        out.insert(
            rel,
            EntryFacts {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: meta.mtime(),
                size: if ft.is_file() { meta.len() } else { 0 },
                content_sha256,
                link,
                rdev: (ft.is_char_device() || ft.is_block_device()).then(|| meta.rdev()),
                xattrs,
            },
        );
        if ft.is_dir() {
            walk(root, &path, out);
        }
    }
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let mut f =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

/// Reads an OCI layout's index and returns the manifest digest of `tag`.
pub fn layout_manifest_digest(layout: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no manifest tagged {tag} in {}", layout.display()))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Reads a blob of an OCI layout as JSON.
pub fn layout_json(layout: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).expect("blob"))
        .unwrap()
}

/// A Docker Engine started for one test, on its own socket and data root,
/// with the flags this machine needs; stopped and removed on drop.
pub struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Dockerd {
    pub fn start() -> Dockerd {
        Dockerd::start_with_config(None)
    }

    /// Starts an engine with `daemon_json` as its `--config-file` (for
    /// settings such as `registry-mirrors`), or none.
    pub fn start_with_config(daemon_json: Option<&str>) -> Dockerd {
        require_tool("dockerd");
        require_tool("containerd");
        let dir = tempfile::Builder::new()
            .prefix("corral-dockerd-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let mut cmd = Command::new("dockerd");
        if let Some(json) = daemon_json {
            let config = dir.path().join("daemon.json");
            std::fs::write(&config, json).unwrap();
            cmd.arg(format!("--config-file={}", config.display()));
        }
        let child = cmd
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--ip6tables=false",
            ])
            .arg(format!(
                "--host=unix://{}",
                dir.path().join("docker.sock").display()
            ))
            .arg(format!("--data-root={}", dir.path().join("data").display()))
            .arg(format!("--exec-root={}", dir.path().join("exec").display()))
            .arg(format!(
                "--pidfile={}",
                dir.path().join("docker.pid").display()
            ))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting dockerd");
        let d = Dockerd { child, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = d
                .docker()
                .arg("version")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up in 60 s; its log:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// What the engine logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// `unix:///…/docker.sock`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// The Debian docker client, pointed at this engine.
    pub fn docker(&self) -> Command {
        let client = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let mut cmd = Command::new(client);
        cmd.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("client"));
        cmd
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Mounts under the data root must go before the directory can.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {0}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l",
                self.dir.path().display()
            ))
            .status();
    }
}

/// A GnuPG home with one signing key, made for a test; its agent is
/// stopped on drop.
pub struct Gpg {
    pub home: tempfile::TempDir,
    pub public_key: PathBuf,
}

impl Gpg {
    pub fn new(uid: &str) -> Gpg {
        require_tool("gpg");
        let home = tempfile::Builder::new()
            .prefix("corral-gpg-")
            .tempdir_in("/var/tmp")
            .unwrap();
        run_ok(
            Command::new("gpg")
                .env("GNUPGHOME", home.path())
                .args([
                    "--batch",
                    "--quiet",
                    "--passphrase",
                    "",
                    "--quick-gen-key",
                    uid,
                ])
                .args(["rsa2048", "sign", "never"]),
        );
        let public_key = home.path().join("public.asc");
        let out = run_ok(
            Command::new("gpg")
                .env("GNUPGHOME", home.path())
                .args(["--batch", "--armor", "--export", uid]),
        );
        std::fs::write(&public_key, out.stdout).unwrap();
        Gpg { home, public_key }
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// Writes the systemd units that the guide `doc` (a path from the
/// repository root) shows under "`/etc/systemd/system/NAME`:" and checks
/// them with `systemd-analyze verify`, with `/usr/bin/corral` pointing at
/// the binary under test.
pub fn verify_documented_units(doc: &str, names: &[&str]) {
    require_tool("systemd-analyze");
    let text = std::fs::read_to_string(repo_root().join(doc)).unwrap();
    let dir = scratch();
    let mut units = Vec::new();
    for name in names {
        let marker = format!("`/etc/systemd/system/{name}`:\n\n```ini\n");
        let start = text
            .find(&marker)
            .unwrap_or_else(|| panic!("{doc} has no {name}"))
            + marker.len();
        let body = &text[start..start + text[start..].find("```").unwrap()];
        let body = body.replace("/usr/bin/corral", &corral_bin().display().to_string());
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        units.push(path);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze verify refused the units of {doc}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
