//! The bubblewrap sandbox of tree builds, with the real bwrap, dnf and
//! rpm: a package's %post scriptlet reaches for a host file (mounting
//! /proc to read it through /proc/PID/root of a process outside the chroot) and a port the test listens on
//! at 127.0.0.1. Built on the host it gets both; in the sandbox, neither.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use corral_test_support::{repo_root, require_tool, run_ok, sample_repos};
use corral_tree::{
    build_tree, build_tree_in_sandbox, build_tree_in_sandbox_with, BuildOptions, Recipe,
    SandboxLimits, TreeError,
};

/// Builds the probe package for `marker` and `port` into `out` (a repository).
fn probe_repo(out: &Path, marker: &Path, port: u16, defines: &[(&str, String)]) {
    let top = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("rpmbuild")
            .args(["-bb", "--quiet"])
            .arg("--define")
            .arg(format!("_topdir {}", top.path().display()))
            .arg("--define")
            .arg(format!("_rpmdir {}", out.display()))
            .arg("--define")
            .arg(format!("_dbpath {}/rpmdb", top.path().display()))
            .arg("--define")
            .arg("_build_id_links none")
            .arg("--define")
            .arg(format!("marker {}", marker.display()))
            .arg("--define")
            .arg(format!("port {port}"))
            .args(
                defines
                    .iter()
                    .flat_map(|(k, v)| ["--define".to_string(), format!("{k} {v}")]),
            )
            .arg(repo_root().join("tests/fixtures/tree-sandbox-probe.spec"))
            .env("HOME", top.path()),
    );
    run_ok(Command::new("createrepo_c").arg("--quiet").arg(out));
}

fn recipe(repos: &Path, probe: &Path) -> Recipe {
    Recipe::parse(
        &format!(
            "name = \"probe\"\nreleasever = \"43\"\npackages = [\"corral-sandbox-probe\"]\n\
             [[repo]]\nid = \"sample\"\nbaseurl = \"file://{}\"\ngpgcheck = false\n\
             [[repo]]\nid = \"probe\"\nbaseurl = \"file://{}\"\ngpgcheck = false\n",
            repos.join("main").display(),
            probe.display()
        ),
        Path::new("probe.toml"),
    )
    .unwrap()
}

fn seen(rootfs: &Path, what: &str) -> String {
    std::fs::read_to_string(rootfs.join("usr/share/corral-probe").join(what))
        .unwrap_or_else(|e| panic!("the scriptlet wrote no {what}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn scriptlets_in_the_sandbox_see_neither_host_files_nor_host_ports() {
    for tool in ["bwrap", "dnf", "rpmbuild", "createrepo_c"] {
        require_tool(tool);
    }
    let repos = sample_repos();
    // A host file outside everything the sandbox binds: in root's home.
    let secret_dir = tempfile::Builder::new()
        .prefix("corral-sandbox-marker-")
        .tempdir_in("/root")
        .unwrap();
    let marker = secret_dir.path().join("marker");
    std::fs::write(&marker, "host secret\n").unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || loop {
        match listener.accept() {
            Ok((mut s, _)) => {
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = s.read(&mut [0; 16]);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    });

    let probe = repos.path().join("probe");
    probe_repo(&probe, &marker, port, &[]);
    let recipe = recipe(repos.path(), &probe);
    let out = tempfile::Builder::new()
        .prefix("corral-sandbox-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let opts = BuildOptions {
        source_date_epoch: Some(0),
        time_limit: Some(Duration::from_secs(120)),
    };

    // On the host, the scriptlet reaches both: the test is not vacuous.
    let host = out.path().join("host");
    build_tree(&recipe, &host, &opts).unwrap();
    assert_eq!(seen(&host, "file"), "host secret");
    assert_eq!(seen(&host, "net"), "connected");
    assert_eq!(connections.load(Ordering::SeqCst), 1);

    // In the sandbox, neither.
    let boxed = out.path().join("sandboxed");
    let report = build_tree_in_sandbox(&recipe, &boxed, &opts).unwrap();
    assert_eq!(
        seen(&boxed, "file"),
        "no mount",
        "the scriptlet mounted /proc"
    );
    assert_eq!(seen(&boxed, "net"), "refused");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "the sandboxed scriptlet connected to the host's port"
    );
    // The same tree otherwise: the packages and the rpm database in it.
    let names: Vec<&str> = report.packages.iter().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"corral-sandbox-probe"), "{names:?}");
    assert!(boxed.join("usr/lib/sysimage/rpm").is_dir());
    let host_names: Vec<String> = corral_tree::RpmDb::find(&host)
        .unwrap()
        .packages()
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, host_names);
}

#[test]
fn a_repository_on_the_network_cannot_be_reached_from_the_sandbox() {
    require_tool("bwrap");
    // A repository served on the host's 127.0.0.1: reachable from the
    // host, not from the sandbox's own loopback.
    let repos = sample_repos();
    let port = corral_test_support::free_port();
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Killed(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(repos.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    corral_test_support::wait_http(
        &format!("http://127.0.0.1:{port}/main/repodata/repomd.xml"),
        "the repository server",
        Path::new("/dev/null"),
    );
    let recipe = Recipe::parse(
        &format!(
            "name = \"net\"\nreleasever = \"43\"\npackages = [\"corral-busybox\"]\n\
             [[repo]]\nid = \"sample\"\nbaseurl = \"http://127.0.0.1:{port}/main\"\ngpgcheck = false\n"
        ),
        Path::new("net.toml"),
    )
    .unwrap();
    let out = tempfile::Builder::new()
        .prefix("corral-sandbox-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let opts = BuildOptions {
        source_date_epoch: Some(0),
        time_limit: Some(Duration::from_secs(120)),
    };
    build_tree(&recipe, &out.path().join("host"), &opts).expect("the host reaches it");
    let err = build_tree_in_sandbox(&recipe, &out.path().join("boxed"), &opts).unwrap_err();
    assert!(
        matches!(err, TreeError::Tool { tool: "dnf", .. }),
        "{err:#}"
    );
    assert!(!out.path().join("boxed").exists());
}

#[test]
fn a_sandboxed_build_past_its_time_limit_is_stopped_with_everything_in_it() {
    require_tool("bwrap");
    let repos = sample_repos();
    let probe = repos.path().join("probe");
    // A sleep no other process on the host is likely to run.
    let hang = 4000 + std::process::id() % 1000;
    probe_repo(
        &probe,
        Path::new("/nonexistent"),
        9,
        &[("hang", hang.to_string())],
    );
    let out = tempfile::Builder::new()
        .prefix("corral-sandbox-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let started = std::time::Instant::now();
    let err = build_tree_in_sandbox(
        &recipe(repos.path(), &probe),
        &out.path().join("rootfs"),
        &BuildOptions {
            source_date_epoch: Some(0),
            time_limit: Some(Duration::from_secs(4)),
        },
    )
    .unwrap_err();
    assert!(matches!(err, TreeError::TimedOut { .. }), "{err:#}");
    assert!(started.elapsed() < Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let left = Command::new("pgrep")
        .args(["-f", &format!("sleep {hang}")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "the scriptlet outlived the sandbox: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    assert!(!out.path().join("rootfs").exists());
}

/// Prints `TYPE HEX` of a file's handle (`handle PATH`), or opens a
/// handle under a mount (`open TYPE HEX DIR`) and prints what it reads.
const BY_HANDLE: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class FH(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int), ("f_handle", ctypes.c_ubyte * 128)]
fh = FH()
if sys.argv[1] == "handle":
    fh.handle_bytes = 128
    mid = ctypes.c_int()
    if libc.name_to_handle_at(-100, sys.argv[2].encode(), ctypes.byref(fh), ctypes.byref(mid), 0) != 0:
        sys.exit(os.strerror(ctypes.get_errno()))
    print(fh.handle_type, bytes(fh.f_handle[: fh.handle_bytes]).hex())
else:
    raw = bytes.fromhex(sys.argv[3])
    fh.handle_bytes, fh.handle_type = len(raw), int(sys.argv[2])
    ctypes.memmove(fh.f_handle, raw, len(raw))
    mfd = os.open(sys.argv[4], os.O_RDONLY | os.O_DIRECTORY)
    fd = libc.open_by_handle_at(mfd, ctypes.byref(fh), os.O_RDONLY)
    if fd < 0:
        print("denied:", os.strerror(ctypes.get_errno()))
    else:
        print("read:", os.read(fd, 100).decode().strip())
"#;

#[test]
fn files_outside_the_binds_cannot_be_opened_by_handle() {
    require_tool("bwrap");
    // A host file on the tree's file system, outside every bind; a
    // scriptlet escapes rpm's chroot (it may chroot) to the sandbox's
    // root, where /usr's python3 runs.
    let out = tempfile::Builder::new()
        .prefix("corral-sandbox-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let (tree, home, secret) = (
        out.path().join("tree"),
        out.path().join("home"),
        out.path().join("secret"),
    );
    for d in [&tree, &home, &secret] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(secret.join("f"), "host secret\n").unwrap();
    let handle = run_ok(
        Command::new("python3")
            .args(["-c", BY_HANDLE, "handle"])
            .arg(secret.join("f")),
    );
    let handle = String::from_utf8(handle.stdout).unwrap();
    let (kind, hex) = handle.trim().split_once(' ').unwrap();
    let open = |mut cmd: Command| {
        let out = run_ok(
            cmd.args(["python3", "-c", BY_HANDLE, "open", kind, hex])
                .arg(&tree),
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    // On the host, the handle opens the file: the test is not vacuous.
    assert_eq!(open(Command::new("env")), "read: host secret");
    let (repos, probe) = (out.path().join("repos"), out.path().join("probe"));
    std::fs::create_dir_all(repos.join("main")).unwrap();
    std::fs::create_dir(&probe).unwrap();
    let recipe = recipe(&repos, &probe);
    let mut boxed = Command::new("bwrap");
    boxed.args(corral_tree::sandbox::bwrap_args(
        &recipe,
        &tree,
        &home,
        &[("HOME", home.display().to_string())],
    ));
    assert_eq!(open(boxed), "denied: Operation not permitted");
}

#[test]
fn the_sandbox_cannot_set_the_machines_sysctls() {
    require_tool("bwrap");
    // Writes a global sysctl's own value back: no change either way.
    const WRITE_BACK: &str = "f=/proc/sys/kernel/core_uses_pid; v=$(cat $f) && \
        (echo \"$v\" > $f) 2>/dev/null && echo wrote || echo refused; cat /proc/sys/kernel/hostname";
    let out = tempfile::Builder::new()
        .prefix("corral-sandbox-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let (tree, home, repos, probe) = (
        out.path().join("tree"),
        out.path().join("home"),
        out.path().join("repos"),
        out.path().join("probe"),
    );
    for d in [&tree, &home, &repos.join("main"), &probe] {
        std::fs::create_dir_all(d).unwrap();
    }
    let sh = |mut cmd: Command| {
        let out = run_ok(cmd.args(["sh", "-c", WRITE_BACK]));
        String::from_utf8(out.stdout).unwrap()
    };
    // As root on the host the write goes through: the test is not vacuous.
    assert!(sh(Command::new("env")).starts_with("wrote\n"));
    let mut boxed = Command::new("bwrap");
    boxed.args(corral_tree::sandbox::bwrap_args(
        &recipe(&repos, &probe),
        &tree,
        &home,
        &[("HOME", home.display().to_string())],
    ));
    // Refused, and /proc/sys still shows the sandbox's own namespaces.
    assert_eq!(sh(boxed), "refused\ncorral-tree-build\n");
}

/// The process cgroups with `pids.max` of `max` left under the host's
/// cgroup mount by builds of this process (the tests run side by side).
fn build_cgroups_left(max: u32) -> Vec<std::path::PathBuf> {
    let prefix = format!(
        "{}{}-",
        corral_tree::limits::CGROUP_PREFIX,
        std::process::id()
    );
    let root = Path::new(corral_tree::limits::CGROUP_ROOT);
    let mut out = Vec::new();
    for dir in [root.to_path_buf(), root.join("pids")] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let limit = std::fs::read_to_string(e.path().join("pids.max")).unwrap_or_default();
            if e.file_name().to_string_lossy().starts_with(&prefix)
                && limit.trim() == max.to_string()
            {
                out.push(e.path());
            }
        }
    }
    out
}

/// What the limit tests share: the sample repositories, a probe package
/// built with `defines`, its recipe, a scratch directory under /var/tmp
/// and a 60 s time limit.
struct LimitedBuild {
    repos: tempfile::TempDir,
    out: tempfile::TempDir,
    recipe: Recipe,
    opts: BuildOptions,
}

impl LimitedBuild {
    fn new(defines: &[(&str, String)]) -> LimitedBuild {
        require_tool("bwrap");
        let repos = sample_repos();
        let probe = repos.path().join("probe");
        probe_repo(&probe, Path::new("/nonexistent"), 9, defines);
        let out = tempfile::Builder::new()
            .prefix("corral-sandbox-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let recipe = recipe(repos.path(), &probe);
        LimitedBuild {
            repos,
            out,
            recipe,
            opts: BuildOptions {
                source_date_epoch: Some(0),
                time_limit: Some(Duration::from_secs(60)),
            },
        }
    }

    /// Required limits of `pids_max` processes and `memory_max` bytes.
    fn limits(pids_max: u32, memory_max: u64) -> SandboxLimits {
        SandboxLimits {
            pids_max,
            memory_max,
            required: true,
            ..SandboxLimits::default()
        }
    }

    /// Builds the probe recipe into `rootfs` under the scratch directory.
    fn build(&self, limits: &SandboxLimits) -> Result<std::path::PathBuf, TreeError> {
        let rootfs = self.out.path().join("rootfs");
        build_tree_in_sandbox_with(&self.recipe, &rootfs, &self.opts, limits).map(|_| rootfs)
    }
}

#[test]
fn a_fork_bomb_in_a_scriptlet_stops_at_the_sandboxs_process_limit() {
    // A sleep no other process on the host is likely to run.
    let nap = 5000 + std::process::id() % 1000;
    let b = LimitedBuild::new(&[("forks", "5000".into()), ("nap", nap.to_string())]);
    let (recipe, opts, out) = (&b.recipe, &b.opts, &b.out);
    let limits = LimitedBuild::limits(64, 1 << 30);
    let started = std::time::Instant::now();
    let rootfs = b.build(&limits).unwrap();
    let forks: u32 = seen(&rootfs, "forks").parse().unwrap();
    // dnf, rpm and the scriptlet's shells count too: fewer than 64
    // sleeping children, where the host alone gives all 5000.
    assert!((1..64).contains(&forks), "{forks} forks succeeded");
    assert!(started.elapsed() < Duration::from_secs(40));
    // The rest of the host still forks.
    for _ in 0..20 {
        assert!(Command::new("true").status().unwrap().success());
    }
    std::thread::sleep(Duration::from_millis(300));
    let left = Command::new("pgrep")
        .args(["-f", &format!("sleep {nap}")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "the fork bomb outlived the build: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    assert_eq!(build_cgroups_left(64), Vec::<std::path::PathBuf>::new());

    // Where no cgroup can be made, a build that requires one fails
    // before dnf runs and leaves nothing.
    let nowhere = tempfile::tempdir().unwrap();
    let err = build_tree_in_sandbox_with(
        recipe,
        &out.path().join("unlimited"),
        opts,
        &SandboxLimits {
            cgroup_root: nowhere.path().to_path_buf(),
            ..limits
        },
    )
    .unwrap_err();
    assert!(matches!(err, TreeError::NoCgroup { .. }), "{err:#}");
    assert!(err.to_string().contains("no cgroup could be made"), "{err}");
    assert!(!out.path().join("unlimited").exists());

    // Where it is not required (`corral tree build --sandbox`), the build
    // goes on without limits.
    let small = Recipe::parse(
        &format!(
            "name = \"small\"\nreleasever = \"43\"\npackages = [\"corral-busybox\"]\n\
             [[repo]]\nid = \"sample\"\nbaseurl = \"file://{}\"\ngpgcheck = false\n",
            b.repos.path().join("main").display()
        ),
        Path::new("small.toml"),
    )
    .unwrap();
    build_tree_in_sandbox_with(
        &small,
        &out.path().join("unlimited"),
        opts,
        &SandboxLimits {
            cgroup_root: nowhere.path().to_path_buf(),
            required: false,
            ..limits
        },
    )
    .unwrap();
    assert!(out.path().join("unlimited/usr/bin/busybox").exists());
}

#[test]
fn a_memory_hog_in_a_scriptlet_stops_at_the_sandboxs_memory_limit() {
    // 25 doublings: a 256 MiB string, more with the copies on the way.
    let b = LimitedBuild::new(&[("hog", "25".into())]);
    let rootfs = b.out.path().join("rootfs");
    match b.build(&LimitedBuild::limits(96, 192 << 20)) {
        // The kernel killed the scriptlet's shell (rpm goes on).
        Ok(_) => {
            let doubled: u32 = seen(&rootfs, "hog").parse().unwrap();
            assert!(doubled < 25, "the string was doubled {doubled} times");
        }
        Err(e) => assert!(e.to_string().contains("memory limit"), "{e:#}"),
    }
    assert_eq!(build_cgroups_left(96), Vec::<std::path::PathBuf>::new());
}
