//! A throwaway 3-node Garage cluster on loopback ports for the tests of the
//! S3 backend: config files, layout, bucket and key, as a test needs them;
//! every node stopped on drop. The `garage` binary is
//! `$GARAGE`, or /var/tmp/corral-tools/bin/garage (scripts/setup.sh,
//! `corral_install_garage`).

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{scratch, stop_child};

const NODES: u8 = 3;
/// The bucket the mirror's tests use, and its region.
pub const BUCKET: &str = "corral";
pub const REGION: &str = "garage";

/// One node: its directory, ports and process.
struct Node {
    dir: PathBuf,
    s3: u16,
    rpc: u16,
    /// A Mutex so that [`Garage::stop_node`] works on a shared cluster.
    child: Mutex<Option<Child>>,
}

/// A 3-node Garage cluster (replication factor 3) with a bucket and a key
/// that may read and write it; stopped on drop.
pub struct Garage {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The `garage` binary, or a panic naming where it was looked for.
pub fn garage_bin() -> PathBuf {
    let bin = std::env::var_os("GARAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/corral-tools/bin/garage"));
    assert!(
        bin.is_file(),
        "{} not found: scripts/setup.sh installs garage (or set GARAGE)",
        bin.display()
    );
    bin
}

/// A loopback port nothing listens on, below the kernel's ephemeral range:
/// a port in that range can be taken by an outgoing connection (or another
/// test's bind to port 0) between this probe and Garage's bind, and a node
/// whose S3 API cannot bind keeps running without it.
fn quiet_port() -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (20000u16, ephemeral_low.max(21000));
    let mut x = u64::from(std::process::id()) ^ Instant::now().elapsed().as_nanos() as u64;
    x ^= std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = low + (x % u64::from(high - low)) as u16;
        if TcpStream::connect(("127.0.0.1", port)).is_err() {
            return port;
        }
    }
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

impl Node {
    fn config(&self) -> PathBuf {
        self.dir.join("garage.toml")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Writes the config with fresh ports and starts the server.
    fn launch(&mut self, secret: &str) {
        std::fs::create_dir_all(self.dir.join("meta")).unwrap();
        std::fs::create_dir_all(self.dir.join("data")).unwrap();
        self.rpc = quiet_port();
        self.s3 = quiet_port();
        let d = self.dir.display();
        std::fs::write(
            self.config(),
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
                 replication_factor = 3\nmetadata_fsync = false\ndata_fsync = false\n\
                 rpc_secret = \"{secret}\"\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\n\n[s3_api]\n\
                 api_bind_addr = \"127.0.0.1:{s3}\"\ns3_region = \"{REGION}\"\n\
                 root_domain = \".s3.garage.localhost\"\n",
                rpc = self.rpc,
                s3 = self.s3,
            ),
        )
        .unwrap();
        let log = File::create(self.dir.join("log")).unwrap();
        let child = Command::new(garage_bin())
            .arg("-c")
            .arg(self.config())
            .arg("server")
            .env(
                "RUST_LOG",
                std::env::var("GARAGE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting garage");
        *self.child.get_mut().unwrap() = Some(child);
    }

    /// Whether the node came up listening on both its ports, bound by
    /// itself (a bind failure is logged; the process does not exit).
    fn came_up(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains("Address already in use") {
                return false;
            }
            if let Some(Ok(Some(_))) = self.child.get_mut().unwrap().as_mut().map(|c| c.try_wait())
            {
                return false;
            }
            if listening(self.s3) && listening(self.rpc) {
                return !self.log().contains("Address already in use");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            stop_child(&mut c, Duration::from_secs(5));
        }
    }
}

impl Garage {
    /// Starts 3 nodes, connects them, applies a layout with one zone per
    /// node, and makes the bucket and a key allowed to read and write it.
    pub fn start() -> Garage {
        garage_bin();
        let dir = scratch();
        let secret = crate::sha256_hex(format!("{:?}{:?}", dir.path(), Instant::now()).as_bytes());
        let mut garage = Garage {
            nodes: (1..=NODES)
                .map(|n| Node {
                    dir: dir.path().join(format!("node{n}")),
                    s3: 0,
                    rpc: 0,
                    child: Mutex::new(None),
                })
                .collect(),
            dir,
            access_key_id: String::new(),
            secret_access_key: String::new(),
        };
        for (i, node) in garage.nodes.iter_mut().enumerate() {
            let mut attempt = 0;
            loop {
                node.launch(&secret);
                if node.came_up() {
                    break;
                }
                // Another process took a port first: new ports.
                node.stop();
                attempt += 1;
                assert!(
                    attempt < 5,
                    "garage node {} could not bind its ports:\n{}",
                    i + 1,
                    node.log()
                );
            }
        }
        let ids: Vec<String> = (0..garage.nodes.len()).map(|i| garage.node_id(i)).collect();
        // `node id` answers before the RPC port listens: retry the connects.
        for (i, id) in ids.iter().enumerate().skip(1) {
            garage.retry(
                &format!("connecting node {}", i + 1),
                &["node", "connect", id],
            );
        }
        for (i, id) in ids.iter().enumerate() {
            let short = &id.split('@').next().unwrap_or(id)[..16];
            garage.admin(&[
                "layout",
                "assign",
                "-z",
                &format!("dc{}", i + 1),
                "-c",
                "1G",
                short,
            ]);
        }
        garage.admin(&["layout", "apply", "--version", "1"]);
        // The bucket can only be made once the layout is live everywhere.
        garage.retry("creating the bucket", &["bucket", "create", BUCKET]);
        let key = garage.admin(&["key", "create", "corral-mirror"]);
        garage.admin(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            BUCKET,
            "--key",
            "corral-mirror",
        ]);
        let field = |text: &str, name: &str| {
            text.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let text = String::from_utf8_lossy(&key.stdout).into_owned();
        garage.access_key_id = field(&text, "Key ID");
        garage.secret_access_key = field(&text, "Secret key");
        if garage.secret_access_key.is_empty() || garage.secret_access_key.contains("redacted") {
            let info = garage.admin(&["key", "info", "corral-mirror", "--show-secret"]);
            garage.secret_access_key = field(&String::from_utf8_lossy(&info.stdout), "Secret key");
        }
        assert!(
            !garage.access_key_id.is_empty() && !garage.secret_access_key.is_empty(),
            "no key in garage's answer:\n{text}"
        );
        garage
    }

    /// `garage -c NODE1 ARGS`, which must succeed.
    fn admin(&self, args: &[&str]) -> Output {
        let out = self
            .admin_command(0, args)
            .output()
            .expect("running garage");
        assert!(
            out.status.success(),
            "garage {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn admin_command(&self, node: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new(garage_bin());
        cmd.arg("-c").arg(self.nodes[node].config()).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `garage ARGS` until it succeeds, for up to 20 s.
    fn retry(&self, what: &str, args: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self
                .admin_command(0, args)
                .output()
                .expect("running garage");
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `garage node id -q` of node `i` (0-based), once its RPC answers.
    fn node_id(&self, i: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self
                .admin_command(i, &["node", "id", "-q"])
                .output()
                .expect("running garage");
            let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !id.is_empty() {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "garage node {} did not start:\n{}",
                i + 1,
                self.nodes[i].log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The S3 endpoint of node `n` (1-3).
    pub fn endpoint(&self, n: u8) -> String {
        format!("http://127.0.0.1:{}", self.nodes[usize::from(n) - 1].s3)
    }

    /// Stops node `n` (1-3).
    pub fn stop_node(&self, n: u8) {
        self.nodes[usize::from(n) - 1].stop();
    }

    /// Where the cluster keeps its files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A mirror config using the S3 API of `nodes` (an `endpoints` list,
    /// preferred first, when there are several), pushes allowed to
    /// `user:pass` from `htpasswd`.
    pub fn mirror_config_on(&self, nodes: &[u8], listen: u16, htpasswd: &Path) -> String {
        let endpoints = match nodes {
            [n] => format!("endpoint = \"{}\"", self.endpoint(*n)),
            _ => format!(
                "endpoints = [{}]",
                nodes
                    .iter()
                    .map(|n| format!("\"{}\"", self.endpoint(*n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "listen = \"127.0.0.1:{listen}\"\n[auth]\nhtpasswd = \"{}\"\ntoken_secret = \"shared by the replicas, 32 bytes or more\"\n[s3]\n{}\nbucket = \"{BUCKET}\"\nregion = \"{REGION}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\nprefix = \"mirror\"\n",
            htpasswd.display(),
            endpoints,
            self.access_key_id,
            self.secret_access_key,
        )
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, node) in self.nodes.iter().enumerate() {
                eprintln!("--- log of garage node {}:\n{}", i + 1, node.log());
            }
        }
        for node in &self.nodes {
            node.stop();
        }
    }
}
