//! Atomic Host on aarch64, on this x86_64 machine: an aarch64 stream
//! composed with dnf --forcearch (scriptlets through the qemu-user
//! binfmt_misc handler), and `corral disk build` of its commit making a
//! UEFI-only image with GRUB's arm64 EFI binary. Checked by reading the
//! bytes: the commit's programs are aarch64 ELF, the GPT has an ESP and an
//! AArch64 root and no BIOS boot partition, `EFI/BOOT/BOOTAA64.EFI` is a
//! PE image for arm64, and the bootable test tree's deployment has an
//! arm64 Linux Image with its BLS entry.
//!
//! `boots_the_aarch64_image_under_qemu` boots that image under
//! `qemu-system-aarch64 -M virt -cpu cortex-a57` (TCG) with AAVMF until the
//! deployment's init reports the deployment it booted: about half a minute
//! of emulation, as the tree is small (docs/benchmarks.md);
//! scripts/boot-aarch64.sh runs it alone and prints its timings.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use corral_test_support::*;
use serde_json::Value;

const EPOCH: &str = "1767225600";
const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const BIOS_BOOT_TYPE: &str = "21686148-6449-6E6F-744E-656564454649";
const ROOT_AARCH64_TYPE: &str = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE";
const EM_AARCH64: u16 = 183;
/// IMAGE_FILE_MACHINE_ARM64 in a PE header.
const PE_ARM64: u16 = 0xaa64;

fn require_aarch64_tools() {
    for t in [
        "ostree",
        "sfdisk",
        "mkfs.ext4",
        "mkfs.vfat",
        "mcopy",
        "debugfs",
        "grub-mkimage",
        "rpmbuild",
        "createrepo_c",
    ] {
        require_tool(t);
    }
    let handler = Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    assert!(
        std::fs::read_to_string(handler).is_ok_and(|s| s.starts_with("enabled")),
        "{} is not registered and enabled: scripts/setup.sh installs \
         qemu-user-static and binfmt-support and enables it",
        handler.display()
    );
    let grub = Path::new("/var/tmp/corral-tools/arm64/grub/arm64-efi/linux.mod");
    assert!(
        grub.is_file() || Path::new("/usr/lib/grub/arm64-efi/linux.mod").is_file(),
        "{} is missing: scripts/setup.sh (corral_install_arm64_boot) unpacks Debian's \
         grub-efi-arm64-bin there",
        grub.display()
    );
}

/// An archive repository with one stream composed into it.
struct Composed {
    work: tempfile::TempDir,
    gpg: Gpg,
    repo: PathBuf,
    commit: String,
    compose: Value,
}

/// Composes `stream` (a path in the checkout) with `env` set.
fn compose(stream: &str, env: &[(&str, &Path)]) -> Composed {
    let work = scratch();
    let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
    let repo = work.path().join("repo");
    init_archive_repo(&repo);
    let mut cmd = compose_run(&repo_root().join(stream), &repo, gpg.home.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_ok(&mut cmd);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["result"], "committed", "{v}");
    let commit = v[0]["checksum"].as_str().unwrap().to_string();
    Composed {
        work,
        gpg,
        repo,
        commit,
        compose: v[0].clone(),
    }
}

impl Composed {
    /// `corral disk build STREAM --format raw --json`.
    fn disk_raw(&self, stream: &str, name: &str) -> (PathBuf, Value) {
        let image = self.work.path().join(name);
        let out = run_ok(
            Command::new(corral_bin())
                .args(["disk", "build"])
                .arg(repo_root().join(stream))
                .arg("--repo")
                .arg(&self.repo)
                .arg("-o")
                .arg(&image)
                .args(["--format", "raw", "--json"])
                .env("GNUPGHOME", self.gpg.home.path())
                .env("SOURCE_DATE_EPOCH", EPOCH)
                .env_remove("RUST_LOG"),
        );
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        (image, report)
    }

    fn metadata(&self, key: &str) -> String {
        let out = run_ok(
            Command::new("ostree")
                .arg(format!("--repo={}", self.repo.display()))
                .args(["show", &format!("--print-metadata-key={key}")])
                .arg(&self.commit),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn cat(&self, path: &str) -> Vec<u8> {
        run_ok(
            Command::new("ostree")
                .arg(format!("--repo={}", self.repo.display()))
                .arg("cat")
                .arg(&self.commit)
                .arg(path),
        )
        .stdout
    }
}

fn elf_machine(bytes: &[u8]) -> u16 {
    assert_eq!(&bytes[..4], b"\x7fELF", "not ELF");
    assert_eq!(bytes[5], 1, "little-endian");
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// The machine field of a PE image's COFF header.
fn pe_machine(bytes: &[u8]) -> u16 {
    assert_eq!(&bytes[..2], b"MZ", "no DOS header");
    let at = u32::from_le_bytes(bytes[0x3c..0x40].try_into().unwrap()) as usize;
    assert_eq!(&bytes[at..at + 4], b"PE\0\0", "no PE signature at {at:#x}");
    u16::from_le_bytes([bytes[at + 4], bytes[at + 5]])
}

fn partition<'a>(report: &'a Value, role: &str) -> &'a Value {
    report["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == role)
        .unwrap_or_else(|| panic!("no {role} partition in {report}"))
}

/// The partition table as sfdisk reads it back from the image: GPT, an
/// ESP, the AArch64 root type, no BIOS boot partition.
fn assert_uefi_only_gpt(image: &Path) -> Value {
    let out = run_ok(Command::new("sfdisk").arg("--json").arg(image));
    let table: Value = serde_json::from_slice(&out.stdout).unwrap();
    let table = &table["partitiontable"];
    assert_eq!(table["label"], "gpt", "{table}");
    let types: Vec<&str> = table["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 3, "ESP, /boot, root: {types:?}");
    assert_eq!(types[0], ESP_TYPE, "partition 1 is the ESP");
    assert_eq!(types[2], ROOT_AARCH64_TYPE, "root is the AArch64 root type");
    assert!(!types.contains(&BIOS_BOOT_TYPE), "{types:?}");
    table.clone()
}

/// `EFI/BOOT/BOOTAA64.EFI` read out of the ESP with mtools (no mount).
fn esp_file(image: &Path, report: &Value, path: &str) -> Vec<u8> {
    let esp = partition(report, "esp");
    let out = run_ok(
        Command::new("mtype")
            .arg("-i")
            .arg(format!(
                "{}@@{}",
                image.display(),
                esp["start"].as_u64().unwrap()
            ))
            .arg(format!("::{path}"))
            .env("MTOOLS_SKIP_CHECK", "1"),
    );
    out.stdout
}

fn assert_grub_arm64(image: &Path, report: &Value) {
    let efi = esp_file(image, report, "/EFI/BOOT/BOOTAA64.EFI");
    assert_eq!(
        pe_machine(&efi),
        PE_ARM64,
        "BOOTAA64.EFI is an arm64 PE image"
    );
    let dir = run_ok(
        Command::new("mdir")
            .args(["-b", "-i"])
            .arg(format!(
                "{}@@{}",
                image.display(),
                partition(report, "esp")["start"].as_u64().unwrap()
            ))
            .arg("::/EFI/BOOT")
            .env("MTOOLS_SKIP_CHECK", "1"),
    );
    let listing = String::from_utf8_lossy(&dir.stdout);
    assert!(
        !listing.contains("BOOTX64"),
        "no x86_64 binary on an aarch64 ESP: {listing}"
    );
}

/// One ext4 file system of a raw image, copied out of its byte range and
/// read with debugfs (no loop device, no mount).
struct Ext4Copy {
    _dir: tempfile::TempDir,
    file: PathBuf,
}

impl Ext4Copy {
    fn new(image: &Path, part: &Value) -> Ext4Copy {
        let dir = scratch();
        let file = dir.path().join("fs.img");
        let mib = 1 << 20;
        run_ok(
            Command::new("dd")
                .arg(format!("if={}", image.display()))
                .arg(format!("of={}", file.display()))
                .arg("bs=1M")
                .arg(format!("skip={}", part["start"].as_u64().unwrap() / mib))
                .arg(format!("count={}", part["size"].as_u64().unwrap() / mib))
                .args(["conv=sparse", "status=none"]),
        );
        Ext4Copy { _dir: dir, file }
    }

    fn debugfs(&self, request: &str) -> Vec<u8> {
        run_ok(
            Command::new("debugfs")
                .args(["-R", request])
                .arg(&self.file)
                .stderr(Stdio::null()),
        )
        .stdout
    }

    /// The names in `dir` (`ls -p` lines: /inode/mode/uid/gid/name/size/).
    fn ls(&self, dir: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.debugfs(&format!("ls -p {dir}")))
            .lines()
            .filter_map(|l| l.split('/').nth(5).map(str::to_string))
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .collect()
    }
}

#[test]
fn the_aarch64_sample_stream_composes_aarch64_files_and_a_uefi_only_image() {
    require_aarch64_tools();
    let repos = sample_repos();
    assert!(
        repos.path().join("aarch64/repodata/repomd.xml").is_file(),
        "build-repo.sh made no aarch64 repository: scripts/setup.sh fetches \
         Debian's arm64 busybox-static into /var/tmp/corral-tools/arm64/busybox"
    );
    let c = compose(
        "ostree-refs/sample-atomic-aarch64.toml",
        &[("CORRAL_SAMPLE_REPOS", repos.path())],
    );
    assert_eq!(c.compose["ref"], "corral-sample/43/aarch64/atomic-host");

    // The commit records its architecture, and its programs are aarch64.
    assert_eq!(c.metadata("corral.arch"), "'aarch64'");
    let packages = c.metadata("corral.packages");
    assert!(
        packages.contains("corral-busybox-1.35.0-1.aarch64"),
        "{packages}"
    );
    assert!(!packages.contains(".x86_64"), "{packages}");
    assert_eq!(elf_machine(&c.cat("/usr/bin/busybox")), EM_AARCH64);

    let (image, report) = c.disk_raw("ostree-refs/sample-atomic-aarch64.toml", "arm.raw");
    assert_eq!(report["arch"], "aarch64", "{report}");
    assert_eq!(report["commit"], c.commit.as_str());
    assert!(
        report["kargs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "console=ttyAMA0,115200"),
        "the stream's kargs: {report}"
    );
    assert_uefi_only_gpt(&image);
    assert_grub_arm64(&image, &report);

    // GRUB's arm64 modules, not the x86 ones, are on /boot for the menu.
    let boot = Ext4Copy::new(&image, partition(&report, "boot"));
    let grub = boot.ls("/grub");
    assert!(grub.contains(&"arm64-efi".to_string()), "{grub:?}");
    assert!(
        !grub.contains(&"i386-pc".to_string()) && !grub.contains(&"x86_64-efi".to_string()),
        "{grub:?}"
    );

    // The published stream file records the image with its architecture.
    let stream: Value = serde_json::from_slice(
        &std::fs::read(c.repo.join("streams/sample-atomic-aarch64.json")).unwrap(),
    )
    .unwrap();
    let images = stream["disk_images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{stream}");
    assert_eq!(images[0]["name"], "arm.raw");
    assert_eq!(images[0]["arch"], "aarch64");
}

/// The bootable aarch64 tree (tests/fixtures/boot/build-tree-aarch64.sh,
/// cached), composed, and its raw image built.
fn bootable_image() -> (Composed, PathBuf, Value) {
    require_aarch64_tools();
    let out = run_ok(
        Command::new("bash")
            .arg(repo_root().join("tests/fixtures/boot/build-tree-aarch64.sh"))
            .stderr(Stdio::inherit()),
    );
    let cache = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let base = cache.join("repo");
    let c = compose(
        "tests/fixtures/boot/boot-atomic-aarch64.toml",
        &[("CORRAL_BOOT_AARCH64", &base)],
    );
    assert_eq!(c.metadata("corral.arch"), "'aarch64'");
    let (image, report) = c.disk_raw("tests/fixtures/boot/boot-atomic-aarch64.toml", "boot.raw");
    (c, image, report)
}

#[test]
fn the_bootable_aarch64_image_has_grub_for_arm64_and_an_arm64_kernel() {
    let (c, image, report) = bootable_image();
    assert_eq!(report["arch"], "aarch64", "{report}");
    assert_uefi_only_gpt(&image);
    assert_grub_arm64(&image, &report);

    // /boot: libostree's BLS entry for the deployment, and the kernel it
    // names is an arm64 Linux Image ("ARM\x64" at offset 56).
    let boot = Ext4Copy::new(&image, partition(&report, "boot"));
    let entries = boot.ls("/loader/entries");
    assert_eq!(entries.len(), 1, "one BLS entry: {entries:?}");
    let entry =
        String::from_utf8_lossy(&boot.debugfs(&format!("cat /loader/entries/{}", entries[0])))
            .into_owned();
    let field = |name: &str| {
        entry
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in the BLS entry:\n{entry}"))
    };
    let options = field("options ");
    assert!(options.contains("console=ttyAMA0,115200"), "{options}");
    assert!(options.contains("ostree=/ostree/boot."), "{options}");
    let kernel = boot.debugfs(&format!("cat {}", field("linux ")));
    assert!(
        kernel.len() > 1 << 20,
        "a real kernel: {} bytes",
        kernel.len()
    );
    assert_eq!(&kernel[56..60], b"ARM\x64", "the kernel is an arm64 Image");
    let initrd = boot.debugfs(&format!("cat {}", field("initrd ")));
    assert_eq!(&initrd[..2], b"\x1f\x8b", "a gzip initramfs");
    // the kernel in /boot is the commit's
    let kver = c.metadata("ostree.linux");
    let committed = c.cat(&format!(
        "/usr/lib/modules/{}/vmlinuz",
        kver.trim_matches('\'')
    ));
    assert_eq!(kernel, committed);

    let grub_cfg = String::from_utf8_lossy(&boot.debugfs("cat /grub/grub.cfg")).into_owned();
    assert!(
        grub_cfg.contains(&format!("linux {}", field("linux "))),
        "{grub_cfg}"
    );
}

/// Boots the image with AAVMF under TCG until the deployment's init says
/// which deployment it is, then waits for it to power the VM off.
#[test]
fn boots_the_aarch64_image_under_qemu() {
    for t in ["qemu-system-aarch64", "qemu-img"] {
        require_tool(t);
    }
    let code = Path::new("/usr/share/AAVMF/AAVMF_CODE.fd");
    assert!(
        code.is_file(),
        "{} is missing: scripts/setup.sh (corral_install_arm64_vm_tools) installs \
         qemu-efi-aarch64",
        code.display()
    );
    let started = Instant::now();
    let (c, image, _report) = bootable_image();
    let built = started.elapsed();
    let vars = c.work.path().join("AAVMF_VARS.fd");
    std::fs::copy("/usr/share/AAVMF/AAVMF_VARS.fd", &vars).unwrap();
    let log = c.work.path().join("console.log");
    let mut child = Command::new("qemu-system-aarch64")
        .args(["-M", "virt", "-cpu", "cortex-a57", "-accel", "tcg"])
        .args(["-m", "1024", "-nographic", "-no-reboot"])
        .args(["-monitor", "none", "-serial"])
        .arg(format!("file:{}", log.display()))
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,readonly=on,file={}",
            code.display()
        ))
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,file={}", vars.display()))
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio,snapshot=on",
            image.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let boot_start = Instant::now();
    let guard = Kill(&mut child);
    let marker = format!("corral-boot: booted deployment {}.0", c.commit);
    let deadline = Duration::from_secs(
        std::env::var("CORRAL_ARM_BOOT_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1800),
    );
    let mut seen: Vec<(&str, Duration)> = Vec::new();
    let milestones = [
        ("GRUB", "corral boot aarch64"),
        ("kernel", "Booting Linux on physical CPU"),
        ("initramfs", "corral-initramfs:"),
        ("deployment init", "corral-boot: init of the deployment"),
    ];
    let text = loop {
        let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        for (name, needle) in milestones {
            if !seen.iter().any(|(n, _)| *n == name) && text.contains(needle) {
                seen.push((name, boot_start.elapsed()));
            }
        }
        if text.contains(&marker) {
            break text;
        }
        assert!(
            boot_start.elapsed() < deadline,
            "no `{marker}` on the console in {deadline:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let booted = boot_start.elapsed();
    // the init powers off: qemu exits by itself, and then the console log
    // holds every line the init wrote after the marker
    let off_deadline = Instant::now() + Duration::from_secs(120);
    while guard.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < off_deadline,
            "the VM did not power off:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(guard);
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    assert!(text.contains("running on aarch64"), "{text}");
    assert!(
        text.contains("corral-boot: origin refspec=corral:corral-boot/12/aarch64/atomic-host"),
        "{text}"
    );
    assert!(text.contains("corral-boot: /usr is ro"), "{text}");
    eprintln!(
        "aarch64 boot: tree+compose+image {:.0} s; console milestones {}; deployment booted at {:.0} s",
        built.as_secs_f64(),
        seen.iter()
            .map(|(n, t)| format!("{n} {:.0} s", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        booted.as_secs_f64()
    );
    eprintln!(
        "{}",
        text.lines()
            .filter(|l| l.contains("corral-"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
