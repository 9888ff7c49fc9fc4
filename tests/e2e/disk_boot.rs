//! Disk images that boot: a tree with Debian's real kernel and a dracut
//! initramfs with the ostree module (tests/fixtures/boot/build-tree.sh),
//! composed and signed with `corral compose run`, served by `corral mirror
//! serve --ostree-repo`, made into a qcow2 image by `corral disk build` and
//! booted under qemu (with KVM when /dev/kvm opens read-write, else
//! software emulation; the output says which) with a cloud-init NoCloud
//! seed.
//! Inside the VM, over SSH with the key the seed gave: the user and key took
//! effect, the composed commit is booted, `corral host upgrade` moves to the
//! next commit after a reboot and `corral host rollback` back.
//!
//! Also, in the same VM: corral's units (dist/systemd) are enabled and ran
//! at every boot; an upgrade is staged, so an `/etc` edit made before the
//! reboot is in the new deployment; and a deployment whose init cannot
//! start (`init=/bin/false`, the kernel panics) is left behind by GRUB's
//! boot counter after `max-failed-boots` boots, the host coming back on the
//! previous deployment with the rollback recorded.
//!
//! docs/disk-booting.md describes the chain and how to boot an image by hand.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use corral_test_support::*;

/// The checkout this test file was compiled from (shadows the support
/// crate's, which can be built from another checkout sharing the target
/// directory): the fixtures and dist/systemd must be this checkout's. The
/// test is the `corral` package's, in crates/corral.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/corral has a grandparent")
        .to_path_buf()
}

const REF: &str = "corral-boot/12/x86_64/atomic-host";
const USER: &str = "corral";
/// The longest a boot may take before the test gives up (a boot here takes
/// one to three minutes under software emulation, seconds with KVM).
const BOOT_TIMEOUT: Duration = Duration::from_secs(900);
const OVMF: &str = "/usr/share/OVMF";
/// The longest one command over SSH may take (`corral host upgrade`
/// included).
const SSH_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Firmware {
    Bios,
    Uefi,
}

/// Runs tests/fixtures/boot/build-tree.sh (cached in
/// /var/tmp/corral-tools/vm) and returns its output directory.
fn boot_tree() -> PathBuf {
    for tool in ["debootstrap", "rpmbuild", "createrepo_c", "dnf", "ostree"] {
        require_tool(tool);
    }
    let out =
        run_ok(Command::new("bash").arg(repo_root().join("tests/fixtures/boot/build-tree.sh")));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// KVM if it boots the tree's kernel here, else software emulation;
/// probed once per test process.
fn accel() -> &'static Accel {
    static ACCEL: std::sync::OnceLock<Accel> = std::sync::OnceLock::new();
    ACCEL.get_or_init(|| {
        let base = boot_tree();
        let kver = std::fs::read_to_string(base.join("kver")).unwrap();
        Accel::probe(Some(
            &base.join(format!("root/boot/vmlinuz-{}", kver.trim())),
        ))
    })
}

/// The compose side: the archive repository, its key, the mirror serving
/// it and the RPM repository with corral and corral-boot-hello.
struct Server {
    work: tempfile::TempDir,
    gpg: Gpg,
    base: PathBuf,
    repo: PathBuf,
    mirror: Mirror,
}

impl Server {
    fn start(base: PathBuf) -> Server {
        Server::start_with(base, None)
    }

    /// With `config` as the mirror's configuration file, if given.
    fn start_with(base: PathBuf, config: Option<&str>) -> Server {
        let work = scratch();
        let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
        let repo = work.path().join("repo");
        init_archive_repo(&repo);
        let mut args = vec!["--ostree-repo".to_string(), repo.display().to_string()];
        if let Some(text) = config {
            let path = work.path().join("mirror.toml");
            std::fs::write(&path, text).unwrap();
            args.extend(["--config".to_string(), path.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mirror = Mirror::start(&args);
        Server {
            work,
            gpg,
            base,
            repo,
            mirror,
        }
    }

    fn extra(&self) -> PathBuf {
        self.work.path().join("extra")
    }

    /// Builds corral-boot-hello `hello` (and corral) and composes the
    /// stream; returns the commit.
    fn compose(&self, hello: &str) -> String {
        run_ok(
            Command::new("bash")
                .arg(repo_root().join("tests/fixtures/boot/build-extra.sh"))
                .arg(self.extra())
                .arg(corral_bin())
                .arg(hello),
        );
        let t = Instant::now();
        let out = run_ok(
            compose_run(
                &repo_root().join("tests/fixtures/boot/boot-atomic.toml"),
                &self.repo,
                self.gpg.home.path(),
            )
            .args(["--zlib-level", "1", "--no-deltas"])
            .env("CORRAL_BOOT_BASE", self.base.join("repo"))
            .env("CORRAL_BOOT_EXTRA", self.extra()),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v[0]["result"], "committed", "{v}");
        let checksum = v[0]["checksum"].as_str().unwrap().to_string();
        eprintln!(
            "composed corral-boot-hello {hello} as {checksum} in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        checksum
    }

    /// The mirror's OSTree URL as the guest sees it (slirp's 10.0.2.2 is
    /// the host's 127.0.0.1).
    fn guest_url(&self) -> String {
        self.guest_base() + "/ostree"
    }

    /// The mirror's own URL as the guest sees it.
    fn guest_base(&self) -> String {
        self.mirror.url().replace("127.0.0.1", "10.0.2.2")
    }

    /// `corral disk build` of `commit` into `image` (qcow2), with the
    /// stream's kernel arguments and `kargs`.
    fn disk_build(&self, commit: &str, image: &Path, kargs: &[&str]) {
        let repo = self.repo.display().to_string();
        self.disk_build_from(&["--commit", commit, "--repo", &repo], image, kargs);
    }

    /// `corral disk build` from `source` (`--commit C --repo R`, or
    /// `--image oci:…`) into `image`, as [`Server::disk_build`].
    fn disk_build_from(&self, source: &[&str], image: &Path, kargs: &[&str]) {
        let t = Instant::now();
        let mut cmd = Command::new(corral_bin());
        cmd.args(["disk", "build"])
            .arg(repo_root().join("tests/fixtures/boot/boot-atomic.toml"))
            .args(source)
            .arg("-o")
            .arg(image)
            .args(["--format", "qcow2", "--remote-url"])
            .arg(self.guest_url())
            .arg("--remote-gpg-key")
            .arg(&self.gpg.public_key)
            .env("CORRAL_BOOT_BASE", self.base.join("repo"))
            .env("CORRAL_BOOT_EXTRA", self.extra())
            .env_remove("RUST_LOG");
        for k in kargs {
            cmd.arg("--karg").arg(k);
        }
        run_ok(&mut cmd);
        eprintln!("disk build in {:.0} s", t.elapsed().as_secs_f64());
    }

    /// The FleetLock holders the mirror keeps on disk: `(group, id)`.
    fn holders(&self) -> Vec<(String, String)> {
        let p = self.mirror.storage.join("fleetlock.json");
        let Ok(b) = std::fs::read(&p) else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        let mut out = Vec::new();
        for (group, hs) in v["groups"].as_object().into_iter().flatten() {
            for h in hs.as_array().into_iter().flatten() {
                out.push((group.clone(), h["id"].as_str().unwrap_or("").to_string()));
            }
        }
        out
    }
}

/// A fresh ed25519 key pair in `dir`; returns the private key's path and
/// the public key.
fn ssh_key(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("id_ed25519");
    run_ok(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "corral-boot-test",
                "-f",
            ])
            .arg(&key),
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// A NoCloud seed (an ISO 9660 image labelled `cidata`) that creates
/// `USER` with `key` and passwordless sudo.
fn seed_iso(dir: &Path, key: &str) -> PathBuf {
    seed_iso_named(dir, key, "corral-boot")
}

/// As `seed_iso`, for the instance and host name `name`.
fn seed_iso_named(dir: &Path, key: &str, name: &str) -> PathBuf {
    require_tool("xorriso");
    let src = dir.join(format!("seed-{name}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("user-data"),
        format!(
            "#cloud-config\nusers:\n  - name: {USER}\n    shell: /bin/bash\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    ssh_authorized_keys:\n      - {key}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        src.join("meta-data"),
        format!("instance-id: {name}-1\nlocal-hostname: {name}\n"),
    )
    .unwrap();
    let iso = dir.join(format!("seed-{name}.iso"));
    run_ok(
        Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-r", "-o"])
            .arg(&iso)
            .arg(src.join("user-data"))
            .arg(src.join("meta-data")),
    );
    iso
}

/// A running qemu; killed on drop, its serial log printed when the test
/// fails.
struct Vm {
    child: Child,
    serial: PathBuf,
    port: u16,
    key: PathBuf,
    /// Kernel panics are expected (the boot-counting step).
    allow_panic: bool,
}

impl Vm {
    /// Boots `image` with SeaBIOS, or with OVMF when `firmware` is
    /// `Uefi`; the serial log goes to `dir/serial-NAME.log`.
    fn start(image: &Path, seed: &Path, dir: &Path, key: &Path, firmware: Firmware) -> Vm {
        let name = format!("{firmware:?}").to_lowercase();
        Vm::start_named(&name, image, seed, dir, key, firmware, 2048)
    }

    /// As `start`, with the logs named after `name` and `memory` MiB.
    fn start_named(
        name: &str,
        image: &Path,
        seed: &Path,
        dir: &Path,
        key: &Path,
        firmware: Firmware,
        memory: u32,
    ) -> Vm {
        require_tool("qemu-system-x86_64");
        let port = free_port();
        let accel = accel();
        eprintln!("{name}: qemu with {} ({firmware:?})", accel.describe());
        let serial = dir.join(format!("serial-{name}.log"));
        let qemu_log = File::create(dir.join(format!("qemu-{name}.log"))).unwrap();
        let mut cmd = Command::new("nice");
        cmd.arg("qemu-system-x86_64")
            .args(accel.qemu_args())
            .args(["-m", &memory.to_string(), "-smp", accel.smp(), "-nographic"])
            .args(["-monitor", "none"]);
        if firmware == Firmware::Uefi {
            let vars = dir.join("OVMF_VARS.fd");
            std::fs::copy(format!("{OVMF}/OVMF_VARS_4M.fd"), &vars).unwrap();
            cmd.arg("-drive")
                .arg(format!(
                    "if=pflash,format=raw,readonly=on,file={OVMF}/OVMF_CODE_4M.fd"
                ))
                .arg("-drive")
                .arg(format!("if=pflash,format=raw,file={}", vars.display()));
        }
        let child = cmd
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .arg("-drive")
            .arg(format!("file={},if=virtio,format=qcow2", image.display()))
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=raw,readonly=on",
                seed.display()
            ))
            .arg("-nic")
            .arg(format!(
                "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:22"
            ))
            .stdin(Stdio::null())
            .stdout(qemu_log.try_clone().unwrap())
            .stderr(qemu_log)
            .spawn()
            .expect("starting qemu-system-x86_64");
        Vm {
            child,
            serial,
            port,
            key: key.to_path_buf(),
            allow_panic: false,
        }
    }

    fn serial_log(&self) -> String {
        std::fs::read_to_string(&self.serial).unwrap_or_default()
    }

    /// `ssh USER@guest command`, killed after `limit` (through
    /// coreutils' timeout): a guest that goes away under an open session
    /// leaves the host side of slirp's connection open, and keep-alives
    /// alone take a while to notice.
    fn ssh_cmd_within(&self, command: &str, limit: Duration) -> Command {
        let mut c = Command::new("timeout");
        c.args(["--kill-after=5", &limit.as_secs().to_string(), "ssh", "-i"])
            .arg(&self.key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ServerAliveCountMax=3",
                "-o",
                "LogLevel=ERROR",
                "-p",
            ])
            .arg(self.port.to_string())
            .arg(format!("{USER}@127.0.0.1"))
            .arg(command)
            .stdin(Stdio::null());
        c
    }

    fn ssh_cmd(&self, command: &str) -> Command {
        self.ssh_cmd_within(command, SSH_TIMEOUT)
    }

    /// Runs `command` in the guest; its stdout, panicking on failure.
    /// A command that takes 5 s or more is named with its time on stderr,
    /// which the test runner shows when the test fails.
    fn ssh(&self, command: &str) -> String {
        let started = Instant::now();
        let out = run_ok(&mut self.ssh_cmd(command));
        let secs = started.elapsed().as_secs_f64();
        if secs >= 5.0 {
            eprintln!("guest: {secs:.0} s: {command}");
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until SSH answers with a boot id other than `previous`;
    /// returns the new boot id.
    fn wait_boot(&mut self, previous: Option<&str>, started: Instant, what: &str) -> String {
        // what the console printed before this wait (a panic an earlier
        // step provoked) is not this boot's
        let seen = self.serial_log().len();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("qemu exited with {status} while waiting for {what}");
            }
            assert!(
                started.elapsed() < BOOT_TIMEOUT,
                "{what}: no SSH login within {} s",
                BOOT_TIMEOUT.as_secs()
            );
            // a guest that cannot get further: fail now, not after the timeout
            let whole = self.serial_log();
            let log = String::from_utf8_lossy(&whole.as_bytes()[seen.min(whole.len())..]);
            for stuck in ["grub> ", "You are in emergency mode", "Kernel panic"] {
                if stuck == "Kernel panic" && self.allow_panic {
                    continue;
                }
                assert!(
                    !log.contains(stuck),
                    "{what}: the guest is stuck ({stuck:?} on its serial console)"
                );
            }
            let out: Output = self
                .ssh_cmd_within(
                    "cat /proc/sys/kernel/random/boot_id",
                    Duration::from_secs(30),
                )
                .output()
                .expect("running ssh");
            let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !id.is_empty() && Some(id.as_str()) != previous {
                eprintln!(
                    "{what}: SSH login after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
                return id;
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    /// Reboots the guest and waits for it to come back.
    fn reboot(&mut self, boot_id: &str, what: &str) -> String {
        let started = Instant::now();
        // in a second, so that this session ends before the guest goes down
        self.ssh("sudo systemd-run --on-active=1 systemctl reboot");
        self.wait_boot(Some(boot_id), started, what)
    }

    /// Powers the guest off and waits for qemu to exit.
    fn power_off(&mut self) {
        self.ssh("sudo systemd-run --on-active=1 systemctl poweroff");
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "the guest did not power off within 300 s"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Waits until `unit` has run this boot (corral-boot-complete.service
    /// comes after multi-user.target, so after SSH answers).
    fn wait_active(&self, unit: &str) {
        let out = self.ssh(&format!(
            "for i in $(seq 300); do s=$(systemctl show -P ActiveState {unit}); \
             [ \"$s\" = active ] || [ \"$s\" = failed ] && break; sleep 2; done; \
             systemctl show -P ActiveState {unit}"
        ));
        assert_eq!(
            out,
            "active",
            "{unit}: {}",
            self.ssh(&format!(
                "sudo journalctl -b -u {unit} --no-pager | tail -20"
            ))
        );
    }

    /// The variables in GRUB's environment block (the guest has no
    /// grub-editenv: the block is text, header and padding start with `#`).
    fn grubenv(&self) -> String {
        self.ssh("sudo grep -av '^#' /boot/grub/grubenv || true")
    }

    /// `corral host status --json` in the guest.
    fn status(&self) -> serde_json::Value {
        let text = self.ssh("sudo corral host status --json");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// The booted deployment's checksum, from corral and from the kernel
    /// command line libostree wrote (`ostree=`).
    fn booted(&self) -> String {
        let s = self.status();
        assert_eq!(s["booted"], true, "{s}");
        let booted: Vec<&serde_json::Value> = s["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["role"] == "booted")
            .collect();
        assert_eq!(booted.len(), 1, "{s}");
        let checksum = booted[0]["checksum"].as_str().unwrap().to_string();
        let ostree = self.ssh("sudo ostree admin status");
        assert!(
            ostree
                .lines()
                .any(|l| l.starts_with("* ") && l.contains(&checksum)),
            "corral says {checksum} is booted, ostree admin status says:\n{ostree}"
        );
        checksum
    }
}

impl Vm {
    /// Asserts that the deployment of `want` is booted; if another is,
    /// shows why the staged one was not: libostree's finalize at the last
    /// shutdown, ostree-boot-complete.service (which reports a failed
    /// finalize on the next boot), the deployments, the boot entries and
    /// GRUB's environment.
    fn assert_booted(&self, want: &str, what: &str) {
        let booted = self.booted();
        if booted != want {
            let why = self.ssh(
                "sudo journalctl -b -1 -u ostree-finalize-staged.service --no-pager | tail -30; \
                 sudo journalctl -b -u ostree-boot-complete.service --no-pager | tail -10; \
                 sudo ostree admin status; ls /boot/loader/entries; \
                 sudo grep -av '^#' /boot/grub/grubenv || true",
            );
            panic!("{what}: {booted} is booted, not {want}:\n{why}");
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.serial_log();
            let tail: Vec<&str> = log.lines().rev().take(150).collect();
            eprintln!(
                "--- serial log ({}), last {} lines ---",
                self.serial.display(),
                tail.len()
            );
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// corral's units as corral-boot-tools ships them (installed from the RPM
/// build-extra.sh makes into a copy of the boot tree's unit directories)
/// pass `systemd-analyze verify`: the commands exist, the keys are known,
/// the ordering resolves, the man pages named in `Documentation=` exist
/// (docs/man); and they are enabled.
/// Fails a boot test at once, naming the tool, when one it needs is missing.
fn require_vm_tools() {
    for tool in [
        "qemu-system-x86_64",
        "qemu-img",
        "ssh",
        "ssh-keygen",
        "xorriso",
    ] {
        require_tool(tool);
    }
}

#[test]
fn the_shipped_units_pass_systemd_analyze_verify_and_are_enabled() {
    for tool in ["systemd-analyze", "systemctl", "rpm", "man"] {
        require_tool(tool);
    }
    let base = boot_tree();
    let dir = scratch();
    let root = dir.path().join("root");
    for sub in ["usr/lib/systemd/system", "etc/systemd/system"] {
        let to = root.join(sub);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(base.join("root").join(sub))
                .arg(&to),
        );
    }
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    // the tree's ostree, for the finalize service the drop-in extends
    std::fs::copy(
        base.join("root/usr/bin/ostree"),
        root.join("usr/bin/ostree"),
    )
    .unwrap();
    let extra = dir.path().join("extra");
    run_ok(
        Command::new("bash")
            .arg(repo_root().join("tests/fixtures/boot/build-extra.sh"))
            .arg(&extra)
            .arg(corral_bin())
            .arg("1.0"),
    );
    let rpm = std::fs::read_dir(&extra)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("corral-boot-tools-") && n.ends_with(".rpm")
        })
        .expect("build-extra.sh made corral-boot-tools");
    run_ok(
        Command::new("rpm")
            .arg("--root")
            .arg(&root)
            .args(["--nodeps", "--noscripts", "--nosignature", "-i"])
            .arg(&rpm),
    );
    let man = dir.path().join("man/man1");
    std::fs::create_dir_all(&man).unwrap();
    for e in std::fs::read_dir(repo_root().join("docs/man")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, man.join(p.file_name().unwrap())).unwrap();
    }
    let ours = [
        "corral-host-check.service",
        "corral-boot-complete.service",
        "corral-host-upgrade.service",
        "corral-host-upgrade.timer",
    ];
    let verify = |units: &[&str], man_pages: bool| {
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.display()))
            .arg("--recursive-errors=no")
            .arg(format!("--man={}", if man_pages { "yes" } else { "no" }))
            .args(units)
            .current_dir(root.join("usr/lib/systemd/system"))
            .env("MANPATH", dir.path().join("man"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "systemd-analyze verify --root={} {units:?}: {stderr}",
            root.display()
        );
    };
    verify(&ours, true);
    // ostree's own man page is not on this machine; the drop-in's command
    // and keys are what is checked here
    verify(&["ostree-finalize-staged.service"], false);
    let drop_in =
        root.join("usr/lib/systemd/system/ostree-finalize-staged.service.d/corral-grub.conf");
    assert!(std::fs::read_to_string(&drop_in)
        .unwrap()
        .contains("ExecStop=/usr/bin/corral host grub-sync"));
    let out = run_ok(
        Command::new("systemctl")
            .arg(format!("--root={}", root.display()))
            .arg("is-enabled")
            .args([ours[0], ours[1], ours[3]]),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "enabled\nenabled\nenabled"
    );
}

#[test]
fn a_disk_image_boots_takes_its_seed_upgrades_and_rolls_back() {
    require_vm_tools();
    let t = Instant::now();
    let base = boot_tree();
    eprintln!("boot tree ready in {:.0} s", t.elapsed().as_secs_f64());
    let server = Server::start(base);
    let a = server.compose("1.0");

    let dir = scratch();
    let (key, public) = ssh_key(dir.path());
    let public = public.as_str();
    let seed = seed_iso(dir.path(), public);

    let image = dir.path().join("boot.qcow2");
    server.disk_build(&a, &image, &[]);

    // 1. The first boot: cloud-init's user and key, the composed commit.
    let mut vm = Vm::start(&image, &seed, dir.path(), &key, Firmware::Bios);
    let boot1 = vm.wait_boot(None, Instant::now(), "first boot");
    assert_eq!(vm.ssh("id -un"), USER);
    let keys = vm.ssh("cat ~/.ssh/authorized_keys");
    assert!(keys.lines().any(|l| l.trim() == public), "{keys}");
    assert_eq!(vm.ssh("sudo -n id -u"), "0");
    let cloud_init = vm.ssh("cloud-init status --wait --long");
    assert!(
        cloud_init.contains("status: done") && cloud_init.contains("DataSourceNoCloud"),
        "{cloud_init}"
    );
    assert_eq!(vm.booted(), a);
    assert_eq!(vm.ssh("corral-boot-hello"), "corral-boot-hello 1.0");
    // Debian's kernel, through SeaBIOS
    let kver = std::fs::read_to_string(server.base.join("kver")).unwrap();
    assert_eq!(vm.ssh("uname -r"), kver.trim());
    assert_eq!(vm.ssh("test -d /sys/firmware/efi || echo bios"), "bios");
    assert!(
        vm.serial_log().contains("corral-boot: multi-user reached"),
        "no marker from corral-boot-marker.service on the console"
    );
    let status = vm.status();
    assert_eq!(
        status["deployments"][0]["origin"],
        format!("corral:{REF}"),
        "{status}"
    );
    // corral's units (dist/systemd, shipped in corral-boot-tools) are
    // enabled and ran this boot
    assert_eq!(
        vm.ssh(
            "systemctl is-enabled corral-host-check.service corral-boot-complete.service \
             corral-host-upgrade.timer"
        ),
        "enabled\nenabled\nenabled"
    );
    vm.wait_active("corral-host-check.service");
    vm.wait_active("corral-boot-complete.service");
    assert_eq!(
        vm.ssh("systemctl show -P ActiveState corral-host-upgrade.timer"),
        "active"
    );
    assert!(
        vm.ssh("systemctl cat ostree-finalize-staged.service")
            .contains("ExecStop=/usr/bin/corral host grub-sync"),
        "the drop-in for ostree-finalize-staged.service is not installed"
    );
    assert!(
        vm.ssh("systemctl cat ostree-boot-complete.service")
            .contains("ExecStartPre=-/usr/bin/corral host finalize-check"),
        "the drop-in for ostree-boot-complete.service is not installed"
    );
    // one deployment: nothing to fall back to, nothing counted
    assert_eq!(vm.grubenv(), "");

    // 2. The next commit from the mirror, staged, booted after a reboot,
    // with an /etc edit made after the upgrade.
    let b = server.compose("1.1");
    assert_ne!(a, b);
    let out = vm.ssh("sudo corral host upgrade");
    assert!(
        out.starts_with("staged ") && out.contains(&format!("({}) as the default", &b[..12])),
        "{out}"
    );
    assert!(
        out.contains("corral-boot-hello"),
        "no package change shown:\n{out}"
    );
    let s = vm.status();
    assert_eq!(s["deployments"][0]["staged"], true, "{s}");
    assert_eq!(s["deployments"][0]["role"], "pending", "{s}");
    assert!(vm.ssh("sudo corral host status").contains(" (staged)"));
    assert!(
        vm.ssh("ls /run/ostree/").contains("staged-deployment"),
        "libostree did not stage the deployment"
    );
    // a staged deployment is discarded by cleanup --pending and by
    // rollback (the booted one stays the default), and staged again
    vm.ssh("sudo corral host cleanup --pending");
    let s = vm.status();
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1, "{s}");
    assert!(
        vm.ssh("ls /run/ostree/staged-deployment 2>&1 || true")
            .contains("No such file"),
        "libostree still has a staged deployment"
    );
    assert!(vm.ssh("sudo corral host upgrade").starts_with("staged "));
    let out = vm.ssh("sudo corral host rollback");
    assert!(out.starts_with("the default is now "), "{out}");
    let s = vm.status();
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["deployments"][0]["role"], "booted", "{s}");
    assert!(vm.ssh("sudo corral host upgrade").starts_with("staged "));
    // corral's note of it, in /var: it outlives the reboot
    assert!(vm
        .ssh("sudo cat /var/lib/corral/staged.json")
        .contains(&format!("\"checksum\": \"{b}\"")));
    vm.ssh("echo edited-after-the-upgrade | sudo tee /etc/corral-test-edit");
    let boot2 = vm.reboot(&boot1, "boot after upgrade");
    vm.assert_booted(&b, "the boot after the upgrade");
    assert_eq!(vm.ssh("corral-boot-hello"), "corral-boot-hello 1.1");
    assert_eq!(
        vm.ssh("cat /etc/corral-test-edit"),
        "edited-after-the-upgrade",
        "the /etc edit made between the upgrade and the reboot was lost"
    );
    // cloud-init ran once per instance: the user is still the seed's
    assert_eq!(vm.ssh("id -un"), USER);
    // grub-sync armed GRUB's counter at shutdown; this boot completed
    vm.wait_active("corral-boot-complete.service");
    let journal = vm.ssh("sudo journalctl -b -u corral-boot-complete.service --no-pager");
    assert!(
        journal.contains("completed its boot"),
        "the boots of the new deployment were not counted:\n{journal}"
    );
    assert_eq!(vm.grubenv(), "");
    // finalized: boot-complete judged corral's note and dropped it
    assert_eq!(
        vm.ssh("sudo test -e /var/lib/corral/staged.json && echo left || echo gone"),
        "gone"
    );
    assert!(vm.status()["last_finalize_failure"].is_null());

    // 3. Rollback to the first commit.
    vm.ssh("sudo corral host rollback");
    let boot3 = vm.reboot(&boot2, "boot after rollback");
    assert_eq!(vm.booted(), a);
    assert_eq!(vm.ssh("corral-boot-hello"), "corral-boot-hello 1.0");

    // 4. A new deployment whose init cannot start: the kernel panics
    // (panic=5 reboots it), GRUB counts max-failed-boots = 2 boots that
    // never complete and then boots the previous deployment, which the
    // host makes the default, recording why.
    vm.ssh(
        "sudo mkdir -p /etc/corral && echo 'max-failed-boots = 2' | sudo tee /etc/corral/host.toml",
    );
    let out = vm.ssh("sudo corral host upgrade --no-stage");
    assert!(
        out.starts_with("deployed ") && out.contains(&format!("({}) as the default", &b[..12])),
        "{out}"
    );
    assert!(vm.grubenv().contains("boot_counter=2"), "{}", vm.grubenv());
    vm.ssh(
        "sudo ostree admin instutil set-kargs --merge --append=init=/bin/false --append=panic=5",
    );
    vm.ssh("sudo corral host grub-sync");
    let menu = vm.ssh("sudo cat /boot/grub/grub.cfg");
    let first = menu.split("menuentry").nth(1).unwrap_or_default();
    assert!(first.contains("init=/bin/false"), "{menu}");
    // "] Kernel panic": the panic's first line, after its timestamp (the
    // last one reads "---[ end Kernel panic")
    let panics_before = vm.serial_log().matches("] Kernel panic").count();
    vm.allow_panic = true;
    let started = Instant::now();
    vm.ssh("sudo systemd-run --on-active=1 systemctl reboot");
    let boot4 = vm.wait_boot(Some(&boot3), started, "boot after two failed boots");
    vm.allow_panic = false;
    let panics = vm.serial_log().matches("] Kernel panic").count() - panics_before;
    assert_eq!(
        panics, 2,
        "GRUB should have tried the broken deployment twice"
    );
    assert!(!vm.ssh("cat /proc/cmdline").contains("init=/bin/false"));
    vm.wait_active("corral-boot-complete.service");
    assert_eq!(vm.booted(), a);
    let s = vm.status();
    assert_eq!(s["deployments"][0]["role"], "booted", "{s}");
    assert_eq!(s["deployments"][0]["checksum"], a.as_str(), "{s}");
    let reason = s["last_rollback"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("2 boots of ") && reason.ends_with(" did not complete"),
        "{s}"
    );
    assert_eq!(vm.grubenv(), "");

    // 4b. A staged deployment libostree cannot finalize at shutdown: an
    // immutable /boot refuses its new boot loader directory. The host
    // comes back on the same deployment; the next boot records
    // libostree's error (the drop-in for ostree-boot-complete.service
    // runs before libostree removes its stamp) and denies the commit.
    let c = server.compose("1.2");
    let out = vm.ssh("sudo corral host upgrade");
    assert!(out.starts_with("staged "), "{out}");
    vm.ssh("sudo chattr +i /boot");
    vm.reboot(&boot4, "boot after a failed finalization");
    vm.ssh("sudo chattr -i /boot");
    assert_eq!(
        vm.booted(),
        a,
        "the deployment that failed to finalize booted"
    );
    let s = vm.status();
    let failure = &s["last_finalize_failure"];
    assert_eq!(failure["checksum"], c.as_str(), "{s}");
    let words = failure["message"].as_str().unwrap_or_default();
    assert!(
        !words.is_empty() && !words.contains("journalctl -b -1"),
        "not libostree's own words: {s}"
    );
    assert_eq!(s["denied"][0]["checksum"], c.as_str(), "{s}");
    assert_eq!(s["denied"][0]["cause"], "not-finalized", "{s}");
    let journal = vm.ssh("sudo journalctl -b -u ostree-boot-complete.service --no-pager");
    assert!(
        journal.contains("failed on previous boot"),
        "libostree did not report the failure itself:\n{journal}"
    );
    let out = vm.ssh("sudo corral host upgrade --check || true");
    assert!(
        out.contains("was not finalized at shutdown on") && out.contains(words),
        "{out}"
    );
    assert!(vm
        .ssh("sudo corral host upgrade")
        .starts_with("no update: commit"));
    let s = vm.status();
    assert!(
        s["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["checksum"] != c.as_str()),
        "the denied commit was staged again: {s}"
    );

    // 5. The same disk under UEFI firmware (OVMF): GRUB's EFI image reads
    // the menu corral host rewrote after GRUB fell back.
    vm.power_off();
    drop(vm);
    let mut vm = Vm::start(&image, &seed, dir.path(), &key, Firmware::Uefi);
    vm.wait_boot(None, Instant::now(), "UEFI boot");
    assert_eq!(vm.booted(), a);
    assert!(
        vm.ssh("test -d /sys/firmware/efi && echo uefi") == "uefi",
        "the guest did not boot through UEFI"
    );
}

/// The kernel arguments that make the Debian kernel load SELinux and
/// enforce from the first instruction of init.
const ENFORCING: [&str; 3] = ["selinux=1", "security=selinux", "enforcing=1"];

/// A file's SELinux label in the guest, and the one the loaded policy's
/// file contexts give its path.
fn label_and_context(vm: &Vm, path: &str) -> (String, String) {
    (
        vm.ssh(&format!("stat -c %C {path}")),
        vm.ssh(&format!("/usr/sbin/matchpathcon -n {path}")),
    )
}

/// SELinux is enforcing in the guest, the files of the booted commit
/// carry the labels its policy gives them, and the boot reached
/// multi-user with corral's units run, confined daemons in their domains.
fn assert_enforcing_boot(vm: &Vm, what: &str) {
    assert_eq!(vm.ssh("/usr/sbin/getenforce"), "Enforcing", "{what}");
    let cmdline = vm.ssh("cat /proc/cmdline");
    assert!(cmdline.contains("enforcing=1"), "{what}: {cmdline}");
    for (path, kind) in [
        ("/usr/bin/corral", ":bin_t:"),
        ("/usr/lib/systemd/systemd", ":init_exec_t:"),
        ("/usr/bin/ostree", ":bin_t:"),
        // libostree checks /etc out of /usr/etc; corral disk build labels
        // the directories it leaves unlabelled
        ("/etc", ":etc_t:"),
        ("/etc/ssh", ":etc_t:"),
        ("/etc/passwd", ":etc_t:"),
        ("/etc/shadow", ":shadow_t:"),
        ("/etc/ssh/sshd_config", ":etc_t:"),
    ] {
        let (label, context) = label_and_context(vm, path);
        assert_eq!(
            label, context,
            "{what}: {path} is not labelled as the policy says"
        );
        assert!(label.contains(kind), "{what}: {path} is {label}");
    }
    // the policy confines sshd: a domain of its own, not the kernel's
    let sshd = vm.ssh("ps -o label= -C sshd | sort -u");
    assert!(sshd.contains(":sshd_t:"), "{what}: sshd runs as {sshd}");
    vm.wait_active("corral-host-check.service");
    vm.wait_active("corral-boot-complete.service");
    let marker = vm.serial_log();
    assert!(
        marker.contains("corral-boot: multi-user reached"),
        "{what}: no marker from corral-boot-marker.service on the console"
    );
    let denials = vm.ssh("sudo journalctl -k -b --no-pager | grep -F 'avc:  denied' || true");
    if !denials.is_empty() {
        eprintln!("{what}: AVC denials this boot:\n{denials}");
    }
    // (the journal's lines name the host, corral-boot: look at the command)
    assert!(
        !denials.lines().any(|l| l.contains("comm=\"corral\"")),
        "{what}: the policy denied corral something:\n{denials}"
    );
}

/// A labelled commit (the tree has Debian's reference policy, compose
/// labels it) boots with SELinux enforcing from the first instruction of
/// init (`selinux=1 security=selinux enforcing=1` from `corral disk build
/// --karg`): `getenforce` says Enforcing, the files of the commit and of
/// the deployment's `/etc` carry the labels the policy gives their paths,
/// sshd runs confined, and the boot reached multi-user with corral's units
/// run.
#[test]
fn a_labelled_commit_boots_enforcing() {
    require_vm_tools();
    let base = boot_tree();
    let server = Server::start(base);
    let a = server.compose("1.0");
    let dir = scratch();
    let (key, public) = ssh_key(dir.path());
    let image = dir.path().join("enforcing.qcow2");
    server.disk_build(&a, &image, &ENFORCING);
    let seed = seed_iso_named(dir.path(), &public, "corral-enforcing");
    let mut vm = Vm::start_named(
        "enforcing",
        &image,
        &seed,
        dir.path(),
        &key,
        Firmware::Bios,
        1536,
    );
    vm.wait_boot(None, Instant::now(), "enforcing boot");
    assert_eq!(vm.booted(), a);
    assert_enforcing_boot(&vm, "enforcing boot");
}

/// A disk built from the OS image of the composed commit (`corral disk
/// build --image oci:…`, the ostree container format `corral release`
/// publishes) boots that commit, under UEFI.
#[test]
fn a_disk_from_the_os_image_boots_its_commit() {
    require_vm_tools();
    let base = boot_tree();
    let server = Server::start(base);
    let a = server.compose("1.0");
    let dir = scratch();
    let layout = dir.path().join("os");
    let out = run_ok(
        Command::new(corral_bin())
            .args(["compose", "export", "--json", "--repo"])
            .arg(&server.repo)
            .arg(REF)
            .arg("-o")
            .arg(format!("oci:{}:1.0", layout.display()))
            .env_remove("RUST_LOG"),
    );
    let exported: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(exported["commit"], a.as_str());
    let image = dir.path().join("from-image.qcow2");
    server.disk_build_from(
        &["--image", &format!("oci:{}:1.0", layout.display())],
        &image,
        &[],
    );
    let (key, public) = ssh_key(dir.path());
    let seed = seed_iso_named(dir.path(), &public, "corral-image");
    let mut vm = Vm::start_named(
        "image",
        &image,
        &seed,
        dir.path(),
        &key,
        Firmware::Uefi,
        1536,
    );
    vm.wait_boot(None, Instant::now(), "boot of the disk from the OS image");
    assert_eq!(vm.booted(), a);
}

/// Two hosts booted from one `corral disk build` image (copy-on-write
/// overlays), updated without a person against one `corral mirror serve`
/// whose FleetLock has one slot: both hosts' `corral host auto` start at
/// the same moment and again every 15 s (as the timer would, only faster);
/// only the host holding the slot reboots, the other waits until the first
/// booted the new commit, passed its health check and released the slot
/// (`corral-host-steady.service`), and both end on the new commit.
#[test]
fn two_hosts_with_one_fleetlock_slot_never_reboot_together() {
    require_vm_tools();
    let base = boot_tree();
    let server = Server::start_with(base, Some("[fleetlock]\ngroups = { default = 1 }\n"));
    let a = server.compose("1.0");
    let dir = scratch();
    let (key, public) = ssh_key(dir.path());
    let image = dir.path().join("fleet.qcow2");
    server.disk_build(&a, &image, &[]);

    // two hosts: copy-on-write overlays of the one image, one seed each
    let names = ["host-a", "host-b"];
    let mut vms = Vec::new();
    for name in names {
        let overlay = dir.path().join(format!("{name}.qcow2"));
        run_ok(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
                .arg(&image)
                .arg(&overlay),
        );
        let seed = seed_iso_named(dir.path(), &public, name);
        vms.push(Vm::start_named(
            name,
            &overlay,
            &seed,
            dir.path(),
            &key,
            Firmware::Bios,
            1536,
        ));
    }
    let started = Instant::now();
    let mut boots = Vec::new();
    for (vm, name) in vms.iter_mut().zip(names) {
        boots.push(vm.wait_boot(None, started, &format!("{name}: first boot")));
    }

    for vm in &vms {
        assert_eq!(vm.booted(), a);
        vm.wait_active("corral-host-check.service");
    }

    // Updates without a person, one reboot slot for both.
    let config = format!(
        "[updates]\nstrategy = \"fleet_lock\"\n[updates.fleet-lock]\nbase-url = \"{}/\"\ngroup = \"default\"\n",
        server.guest_base()
    );
    let mut ids = Vec::new();
    for vm in &vms {
        vm.ssh(&format!(
            "sudo mkdir -p /etc/corral && printf '%s' '{config}' | sudo tee /etc/corral/host.toml >/dev/null"
        ));
        vm.ssh("sudo systemctl enable corral-host-steady.service");
        let u: serde_json::Value =
            serde_json::from_str(&vm.ssh("sudo corral host updates --json")).unwrap();
        assert_eq!(u["strategy"], "fleet_lock", "{u}");
        ids.push(u["fleet_lock_id"].as_str().unwrap().to_string());
    }
    assert_ne!(ids[0], ids[1], "both hosts have one FleetLock id");
    let b = server.compose("1.1");
    assert_ne!(a, b);

    // Host-side observations, in seconds since `t0`: when each host was
    // first seen holding the slot, when it was seen without it again, and
    // when it was first seen up on a new boot.
    let t0 = Instant::now();
    let mut held: [Option<f64>; 2] = [None, None];
    let mut released: [Option<f64>; 2] = [None, None];
    let mut rebooted: [Option<f64>; 2] = [None, None];
    // the waiting host's own word, from its auto unit's journal
    let mut waited: [Option<String>; 2] = [None, None];
    let mut triggered: Option<Instant> = None;
    let limit = BOOT_TIMEOUT * 2;
    while rebooted.iter().any(Option::is_none) || released.iter().any(Option::is_none) {
        assert!(
            t0.elapsed() < limit,
            "the fleet did not update within {} s: held {held:?}, released {released:?}, rebooted {rebooted:?}",
            limit.as_secs()
        );
        // the timer of every host not rebooted yet (both at once, the
        // first time)
        if triggered.is_none_or(|t| t.elapsed() >= Duration::from_secs(15)) {
            for (i, vm) in vms.iter().enumerate() {
                if rebooted[i].is_none() {
                    let _ = vm
                        .ssh_cmd_within(
                            "sudo systemctl start --no-block corral-host-auto.service",
                            Duration::from_secs(10),
                        )
                        .output();
                }
            }
            triggered = Some(Instant::now());
        }
        let holders = server.holders();
        assert!(holders.len() <= 1, "{holders:?}");
        let t = t0.elapsed().as_secs_f64();
        for i in 0..2 {
            let holds = holders.iter().any(|(_, id)| *id == ids[i]);
            if holds && held[i].is_none() {
                held[i] = Some(t);
                eprintln!("{}: holds the reboot slot at {t:.0} s", names[i]);
            }
            if !holds && held[i].is_some() && released[i].is_none() {
                released[i] = Some(t);
                eprintln!("{}: released the reboot slot at {t:.0} s", names[i]);
            }
        }
        for i in 0..2 {
            let j = 1 - i;
            if rebooted[i].is_some() {
                continue;
            }
            let out = vms[i]
                .ssh_cmd_within(
                    "cat /proc/sys/kernel/random/boot_id",
                    Duration::from_secs(10),
                )
                .output()
                .expect("running ssh");
            let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !out.status.success() || id.is_empty() {
                continue; // going down or coming up
            }
            if id != boots[i] {
                rebooted[i] = Some(t);
                eprintln!("{}: up on a new boot at {t:.0} s", names[i]);
                // the slot was this host's when it went down, and the
                // other host's reboot, if any, was over: it had released
                assert!(
                    held[i].is_some(),
                    "{} rebooted without being seen holding the slot",
                    names[i]
                );
                assert!(
                    rebooted[j].is_none() || released[j].is_some_and(|r| r <= held[i].unwrap()),
                    "{} rebooted before {} released the slot: held {held:?}, released {released:?}, rebooted {rebooted:?}",
                    names[i],
                    names[j]
                );
                boots[i] = id;
            } else if waited[i].is_none() && held[j].is_some() && released[j].is_none() {
                // up on its first boot while the other holds the slot
                let journal =
                    vms[i].ssh("sudo journalctl -b -u corral-host-auto.service --no-pager");
                if journal.contains("waits for a reboot slot") {
                    eprintln!(
                        "{}: waits for the slot while {} holds it",
                        names[i], names[j]
                    );
                    waited[i] = Some(journal);
                }
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let first = if held[0] < held[1] { 0 } else { 1 };
    let second = 1 - first;
    eprintln!(
        "fleet: {} held the slot {:.0}–{:.0} s (up on the new commit at {:.0} s), {} held it from {:.0} s (up at {:.0} s)",
        names[first],
        held[first].unwrap(),
        released[first].unwrap(),
        rebooted[first].unwrap(),
        names[second],
        held[second].unwrap(),
        rebooted[second].unwrap()
    );
    // in turn: the first was up on the new commit before it gave the slot
    // back, the second took the slot after that, and went down after
    assert!(rebooted[first].unwrap() <= released[first].unwrap() + 2.0);
    assert!(held[second].unwrap() >= released[first].unwrap());
    assert!(rebooted[second].unwrap() > released[first].unwrap());
    assert!(
        waited[second].is_some(),
        "{} was never seen waiting for the slot while {} held it",
        names[second],
        names[first]
    );
    for (i, vm) in vms.iter().enumerate() {
        let what = format!("{}: after the update", names[i]);
        vm.assert_booted(&b, &what);
        assert_eq!(vm.ssh("corral-boot-hello"), "corral-boot-hello 1.1");
        let steady = vm.ssh("sudo journalctl -b -u corral-host-steady.service --no-pager");
        // it ran this boot (a unit skipped for an ordering cycle has not)
        // and succeeded
        assert_ne!(
            vm.ssh("systemctl show -P ExecMainStartTimestampMonotonic corral-host-steady.service"),
            "0",
            "{what}: corral-host-steady.service did not run: {steady}"
        );
        assert_eq!(
            vm.ssh("systemctl show -P Result corral-host-steady.service"),
            "success",
            "{what}: {steady}"
        );
        assert!(
            !vm.serial_log().contains("Ordering cycle found"),
            "{what}: systemd found an ordering cycle"
        );
        // the reboot ran after the host took the slot
        let state: serde_json::Value =
            serde_json::from_str(&vm.ssh("sudo cat /ostree/deploy/*/var/lib/corral/updates.json"))
                .unwrap();
        assert!(
            state["rebooted_into"]
                .as_str()
                .unwrap_or("")
                .starts_with(&b),
            "{what}: {state}"
        );
    }
    assert!(server.holders().is_empty());
}
