//! Disk images end to end: the sample stream composed from the sample
//! RPMs (or, where the content does not matter, from ready trees), `corral disk build` writing qcow2, raw and
//! raw.xz images as root with loop devices, and the result checked with
//! sfdisk, qemu-img, read-only mounts, gpgv, `corral host` on the image's
//! own sysroot, qemu booting GRUB (BIOS and UEFI) and the mirror's catalog.
//! The sample kernel is a stand-in, so nothing here boots Linux.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use corral_test_support::*;

const REF: &str = "corral-sample/43/x86_64/atomic-host";
const OS: &str = "corral";
const MIB: u64 = 1 << 20;
const EPOCH: &str = "1767225600";

/// A compose server: the sample RPMs, an archive repository with the
/// sample stream composed into it, the signing key.
struct Composed {
    work: tempfile::TempDir,
    _rpms: Option<tempfile::TempDir>,
    gpg: Gpg,
    repo: PathBuf,
    stream: PathBuf,
    commits: Vec<String>,
}

impl Composed {
    fn empty() -> Composed {
        for t in [
            "ostree",
            "sfdisk",
            "qemu-img",
            "mkfs.ext4",
            "mkfs.vfat",
            "mcopy",
            "xz",
        ] {
            require_tool(t);
        }
        let work = scratch();
        let gpg = Gpg::new("corral compose test <compose@corral.invalid>");
        let repo = work.path().join("repo");
        let stream = work.path().join("sample-atomic.toml");
        std::fs::copy(repo_root().join("ostree-refs/sample-atomic.toml"), &stream).unwrap();
        init_archive_repo(&repo);
        Composed {
            work,
            _rpms: None,
            gpg,
            repo,
            stream,
            commits: Vec::new(),
        }
    }

    /// The sample stream composed from the sample RPMs.
    fn from_rpms() -> Composed {
        let mut c = Composed::empty();
        let rpms = sample_repos();
        let repos = rpms.path().to_path_buf();
        c._rpms = Some(rpms);
        c.compose(|cmd| {
            cmd.env("CORRAL_SAMPLE_REPOS", &repos);
        });
        c
    }

    /// A commit of a ready tree (a stand-in kernel and `marker`).
    fn compose_tree(&mut self, marker: &str) -> String {
        let tree = self.work.path().join(format!("tree-{marker}"));
        for d in ["usr/bin", "usr/lib/modules/6.9.0-t", "etc", "var/lib"] {
            std::fs::create_dir_all(tree.join(d)).unwrap();
        }
        std::fs::write(
            tree.join("usr/lib/modules/6.9.0-t/vmlinuz"),
            format!("kernel {marker}"),
        )
        .unwrap();
        std::fs::write(
            tree.join("usr/lib/modules/6.9.0-t/initramfs.img"),
            format!("initramfs {marker}"),
        )
        .unwrap();
        std::fs::write(
            tree.join("usr/lib/os-release"),
            "ID=corral\nVERSION_ID=43\n",
        )
        .unwrap();
        std::fs::write(tree.join("usr/bin/marker"), marker).unwrap();
        self.compose(|cmd| {
            cmd.arg("--rootfs")
                .arg(&tree)
                .args(["--force", "--reason", marker]);
        })
    }

    fn compose(&mut self, extra: impl FnOnce(&mut Command)) -> String {
        let mut cmd = compose_run(&self.stream, &self.repo, self.gpg.home.path());
        extra(&mut cmd);
        let out = run_ok(&mut cmd);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v[0]["result"], "committed", "{v}");
        let c = v[0]["checksum"].as_str().unwrap().to_string();
        self.commits.push(c.clone());
        c
    }

    fn out(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// `corral disk build` of the repository, with `args` after the common ones.
    fn disk(&self, args: &[&str]) -> Command {
        let mut c = Command::new(corral_bin());
        c.args(["disk", "build", "--repo"])
            .arg(&self.repo)
            .args(args)
            .env("GNUPGHOME", self.gpg.home.path())
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env_remove("RUST_LOG");
        c
    }

    fn build_json(&self, args: &[&str]) -> serde_json::Value {
        let out = run_ok(self.disk(args).arg("--json"));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// The public key as a binary keyring, for gpgv and the mirror.
    fn keyring(&self) -> PathBuf {
        let path = self.out("trusted.gpg");
        let out = run_ok(
            Command::new("gpg")
                .env("GNUPGHOME", self.gpg.home.path())
                .args(["--batch", "--export", "compose@corral.invalid"]),
        );
        std::fs::write(&path, out.stdout).unwrap();
        path
    }
}

/// A file system of a raw image, mounted (read-only unless asked) through
/// a loop device over its byte range; unmounted and detached on drop.
struct PartMount {
    _dir: tempfile::TempDir,
    target: PathBuf,
    device: String,
}

impl PartMount {
    fn new(image: &Path, part: &serde_json::Value, rw: bool) -> PartMount {
        let dir = scratch();
        let target = dir.path().to_path_buf();
        PartMount::at(image, part, &target, rw, dir)
    }

    /// Mounted on `target` (which `dir` holds or is under).
    fn at(
        image: &Path,
        part: &serde_json::Value,
        target: &Path,
        rw: bool,
        dir: tempfile::TempDir,
    ) -> PartMount {
        let start = part["start"].as_u64().unwrap();
        let size = part["size"].as_u64().unwrap();
        let out = run_ok(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(format!("--offset={start}"))
                .arg(format!("--sizelimit={size}"))
                .args(if rw { vec![] } else { vec!["--read-only"] })
                .arg(image),
        );
        let device = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let m = PartMount {
            _dir: dir,
            target: target.to_path_buf(),
            device,
        };
        run_ok(
            Command::new("mount")
                .args(["-o", if rw { "rw" } else { "ro" }])
                .arg(&m.device)
                .arg(&m.target),
        );
        m
    }

    fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for PartMount {
    fn drop(&mut self) {
        // deployment roots are immutable; a rw test leaves them so, which
        // is fine: the image file is what gets removed
        let _ = Command::new("umount").arg(&self.target).status();
        let _ = Command::new("losetup")
            .args(["--detach", &self.device])
            .status();
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn qemu_img_info(path: &Path) -> serde_json::Value {
    let out = run_ok(
        Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(path),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sfdisk_json(path: &Path) -> serde_json::Value {
    let out = run_ok(Command::new("sfdisk").arg("--json").arg(path));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn part<'a>(report: &'a serde_json::Value, role: &str) -> &'a serde_json::Value {
    report["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == role)
        .unwrap_or_else(|| panic!("no {role} partition in {report}"))
}

fn read_range(path: &Path, start: u64, len: usize) -> Vec<u8> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

/// Files in `dir` besides the ones named: temp files a build left.
fn leftovers(dir: &Path, expected: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !expected.contains(&n.as_str()))
        .collect();
    v.sort();
    v
}

/// Loop devices still attached to files under `dir`.
fn loops_on(dir: &Path) -> Vec<String> {
    let out = Command::new("losetup").arg("--list").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&dir.display().to_string()))
        .map(str::to_string)
        .collect()
}

#[test]
fn qcow2_image_holds_a_deployment_of_the_commit_grub_and_a_signature() {
    let c = Composed::from_rpms();
    let commit = c.commits[0].clone();
    let image = c.out("atomic.qcow2");
    let report = c.build_json(&[
        c.stream.to_str().unwrap(),
        "-o",
        image.to_str().unwrap(),
        "--format",
        "qcow2",
        "--remote-url",
        "http://10.0.2.2:8080/ostree",
        "--remote-gpg-key",
        c.gpg.public_key.to_str().unwrap(),
        "--karg",
        "console=ttyS0",
        "--gpg-key",
        "compose@corral.invalid",
    ]);
    assert_eq!(report["commit"], commit.as_str());
    assert_eq!(report["ref"], REF);
    assert_eq!(report["origin"], format!("corral:{REF}"));
    assert_eq!(report["format"], "qcow2");

    // qemu-img and the published checksum
    let info = qemu_img_info(&image);
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], 2u64 << 30, "the stream's [disk] size");
    assert_eq!(report["virtual_size"], info["virtual-size"]);
    assert_eq!(
        report["file_size"],
        std::fs::metadata(&image).unwrap().len()
    );
    let sha = std::fs::read_to_string(c.out("atomic.qcow2.sha256")).unwrap();
    assert_eq!(sha, format!("{}  atomic.qcow2\n", sha256_file(&image)));
    assert_eq!(report["sha256"], sha256_file(&image));
    run_ok(
        Command::new("sha256sum")
            .args(["--check", "--strict", "atomic.qcow2.sha256"])
            .current_dir(c.work.path()),
    );
    // the detached signature verifies with gpgv against the public key only
    let keyring = c.keyring();
    let out = run_ok(
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&keyring)
            .arg(c.out("atomic.qcow2.asc"))
            .arg(&image),
    );
    assert!(stderr(&out).contains("Good signature"), "{}", stderr(&out));
    std::fs::write(c.out("tampered"), b"not the image").unwrap();
    let bad = Command::new("gpgv")
        .arg("--keyring")
        .arg(&keyring)
        .arg(c.out("atomic.qcow2.asc"))
        .arg(c.out("tampered"))
        .output()
        .unwrap();
    assert!(!bad.status.success());

    // the partition table, read back from a raw copy
    let raw = c.out("atomic.raw");
    run_ok(
        Command::new("qemu-img")
            .args(["convert", "-f", "qcow2", "-O", "raw"])
            .arg(&image)
            .arg(&raw),
    );
    let table = sfdisk_json(&raw)["partitiontable"].clone();
    assert_eq!(table["label"], "gpt");
    assert_eq!(
        table["id"].as_str().unwrap().to_lowercase(),
        report["disk_uuid"]
    );
    let parts = table["partitions"].as_array().unwrap();
    let expect = [
        ("BIOS-BOOT", "21686148-6449-6E6F-744E-656564454649", 1),
        ("EFI-SYSTEM", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", 127),
        ("boot", "BC13C2FF-59E6-4262-A352-B275FD6F7172", 384),
        ("root", "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", 0),
    ];
    assert_eq!(parts.len(), 4, "{table}");
    for (i, (p, (name, ty, mib))) in parts.iter().zip(expect).enumerate() {
        assert_eq!(p["name"], name);
        assert_eq!(p["type"], ty);
        let mine = &report["partitions"][i];
        assert_eq!(p["uuid"].as_str().unwrap().to_lowercase(), mine["uuid"]);
        assert_eq!(
            p["start"].as_u64().unwrap() * 512,
            mine["start"].as_u64().unwrap()
        );
        assert_eq!(
            p["size"].as_u64().unwrap() * 512,
            mine["size"].as_u64().unwrap()
        );
        if mib > 0 {
            assert_eq!(p["size"].as_u64().unwrap() * 512, mib * MIB, "{name}");
        }
    }
    let blkid = |p: &serde_json::Value| {
        let out = run_ok(
            Command::new("blkid")
                .args(["-p", "-o", "export", "-O"])
                .arg(p["start"].as_u64().unwrap().to_string())
                .arg(&raw),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let root_part = part(&report, "root");
    let boot_part = part(&report, "boot");
    let esp_part = part(&report, "esp");
    let root_uuid = root_part["fs_uuid"].as_str().unwrap();
    let boot_uuid = boot_part["fs_uuid"].as_str().unwrap();
    let esp_uuid = esp_part["fs_uuid"].as_str().unwrap();
    assert!(blkid(root_part).contains(&format!("UUID={root_uuid}\n")));
    assert!(blkid(root_part).contains("TYPE=ext4"));
    assert!(blkid(boot_part).contains(&format!("UUID={boot_uuid}\n")));
    assert!(blkid(esp_part).contains(&format!("UUID={esp_uuid}\n")));
    assert!(blkid(esp_part).contains("TYPE=vfat"));

    // GRUB for BIOS: boot.img in the MBR pointing at the core image, whose
    // first sector is diskboot.img with the block list of the rest
    let mbr = read_range(&raw, 0, 512);
    let boot_img = std::fs::read("/usr/lib/grub/i386-pc/boot.img").unwrap();
    assert_eq!(
        &mbr[..0x5c],
        &boot_img[..0x5c],
        "boot.img's code in the MBR"
    );
    let bios = part(&report, "bios-boot");
    let core_lba = bios["start"].as_u64().unwrap() / 512;
    assert_eq!(mbr[0x5c..0x64], core_lba.to_le_bytes());
    assert_eq!(&mbr[510..], &[0x55, 0xaa]);
    let core = read_range(&raw, bios["start"].as_u64().unwrap(), 512);
    let diskboot = std::fs::read("/usr/lib/grub/i386-pc/diskboot.img").unwrap();
    assert_eq!(&core[..0x1f4], &diskboot[..0x1f4]);
    assert_eq!(core[0x1f4..0x1fc], (core_lba + 1).to_le_bytes());

    // GRUB for UEFI: the removable path on the ESP, read with mtools
    let efi = c.out("BOOTX64.EFI");
    run_ok(
        Command::new("mcopy")
            .arg("-i")
            .arg(format!("{}@@{}", raw.display(), esp_part["start"]))
            .arg("::/EFI/BOOT/BOOTX64.EFI")
            .arg(&efi)
            .env("MTOOLS_SKIP_CHECK", "1"),
    );
    let efi = std::fs::read(&efi).unwrap();
    assert_eq!(&efi[..2], b"MZ", "a PE image");

    // /boot: the BLS entry with the kernel arguments, the GRUB menu
    {
        let boot = PartMount::new(&raw, boot_part, false);
        let entries: Vec<_> = std::fs::read_dir(boot.path().join("loader/entries"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let entry = std::fs::read_to_string(&entries[0]).unwrap();
        let options = entry
            .lines()
            .find_map(|l| l.strip_prefix("options "))
            .unwrap();
        assert!(
            options.starts_with(&format!(
                "root=UUID={root_uuid} rw console=ttyS0,115200 console=ttyS0 ostree=/ostree/boot."
            )),
            "root, the stream's kargs, --karg, then libostree's: {options}"
        );
        let linux = entry
            .lines()
            .find_map(|l| l.strip_prefix("linux "))
            .unwrap();
        assert!(
            boot.path().join(linux.trim_start_matches('/')).is_file(),
            "{linux}"
        );
        let cfg = std::fs::read_to_string(boot.path().join("grub/grub.cfg")).unwrap();
        assert!(cfg.starts_with("# corral-grub-config:"), "{cfg}");
        assert!(
            cfg.contains(&format!("\tlinux {linux} {options}\n")),
            "{cfg}"
        );
        assert_eq!(cfg.matches("menuentry ").count(), 1);
        assert!(boot.path().join("grub/i386-pc/linux.mod").is_file());
        assert!(boot.path().join("grub/x86_64-efi/linux.mod").is_file());
    }

    // root: the deployment is the commit, its origin, remote and fstab
    let root = PartMount::new(&raw, root_part, false);
    let deploy = root
        .path()
        .join(format!("ostree/deploy/{OS}/deploy/{commit}.0"));
    assert!(deploy.join("usr/bin").is_dir(), "{}", deploy.display());
    let origin = std::fs::read_to_string(
        root.path()
            .join(format!("ostree/deploy/{OS}/deploy/{commit}.0.origin")),
    )
    .unwrap();
    assert!(
        origin.contains(&format!("refspec=corral:{REF}")),
        "{origin}"
    );
    let config = std::fs::read_to_string(root.path().join("ostree/repo/config")).unwrap();
    assert!(config.contains("[remote \"corral\"]"), "{config}");
    assert!(
        config.contains("url=http://10.0.2.2:8080/ostree"),
        "{config}"
    );
    assert!(config.contains("gpg-verify=true"), "{config}");
    assert!(config.contains("gpg-verify-summary=true"), "{config}");
    assert!(config.contains("bootloader=none"), "{config}");
    assert!(root
        .path()
        .join("ostree/repo/corral.trustedkeys.gpg")
        .is_file());
    let head = std::fs::read_to_string(
        root.path()
            .join(format!("ostree/repo/refs/remotes/corral/{REF}")),
    )
    .unwrap();
    assert_eq!(head.trim(), commit);
    let fstab = std::fs::read_to_string(deploy.join("etc/fstab")).unwrap();
    assert!(
        fstab.contains(&format!("UUID={boot_uuid} /boot ext4 ")),
        "{fstab}"
    );
    assert!(
        fstab.contains(&format!("UUID={esp_uuid} /boot/efi vfat ")),
        "{fstab}"
    );
    // `ostree admin status` agrees, with /boot mounted as on the host
    let _boot = PartMount::at(&raw, boot_part, &root.path().join("boot"), false, scratch());
    let out = run_ok(
        Command::new("ostree")
            .args(["admin", "status"])
            .arg(format!("--sysroot={}", root.path().display())),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{OS} {commit}.0")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn raw_xz_matches_raw_and_rebuilds_keep_table_uuids_and_esp() {
    let mut c = Composed::empty();
    c.compose_tree("one");
    let commit = &c.commits[0];
    let a = c.out("a.raw");
    let b = c.out("b.raw");
    let xz = c.out("a.raw.xz");
    let build = |out: &Path, format: &str| {
        c.build_json(&[
            "--commit",
            commit,
            "--ref",
            REF,
            "--size",
            "1G",
            "-o",
            out.to_str().unwrap(),
            "--format",
            format,
        ])
    };
    let ra = build(&a, "raw");
    let rb = build(&b, "raw");
    let rx = build(&xz, "raw.xz");
    assert_eq!(ra["partitions"], rb["partitions"]);
    assert_eq!(ra["partitions"], rx["partitions"]);
    assert_eq!(ra["disk_uuid"], rx["disk_uuid"]);
    assert_eq!(std::fs::metadata(&a).unwrap().len(), 1 << 30);
    assert_eq!(qemu_img_info(&a)["format"], "raw");

    // raw.xz is an xz stream of the same layout
    run_ok(Command::new("xz").arg("--test").arg(&xz));
    assert!(std::fs::metadata(&xz).unwrap().len() < 64 * MIB);
    let unpacked = c.out("x.raw");
    let out = run_ok(Command::new("xz").args(["-dc"]).arg(&xz));
    std::fs::write(&unpacked, &out.stdout).unwrap();
    assert_eq!(out.stdout.len() as u64, 1 << 30);
    assert_eq!(
        sfdisk_json(&unpacked)["partitiontable"]["partitions"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        std::fs::read_to_string(c.out("a.raw.xz.sha256")).unwrap(),
        format!("{}  a.raw.xz\n", sha256_file(&xz))
    );

    // What is reproducible: the protective MBR, both GPTs, GRUB's core
    // image and the ESP are the same bytes. The ext4 file systems are not:
    // the kernel's allocator places blocks differently on each run.
    let same = |start: u64, len: u64, what: &str| {
        let x = read_range(&a, start, len as usize);
        let y = read_range(&b, start, len as usize);
        let z = read_range(&unpacked, start, len as usize);
        assert!(x == y, "{what} differs between two builds of one commit");
        assert!(x == z, "{what} differs between the raw and raw.xz builds");
    };
    let esp = part(&ra, "esp");
    same(0, 2 * MIB, "the MBR, GPT and GRUB's core image");
    same(
        esp["start"].as_u64().unwrap(),
        esp["size"].as_u64().unwrap(),
        "the ESP",
    );
    same((1 << 30) - MIB, MIB, "the backup GPT");
    let root = part(&ra, "root");
    let uuid = |img: &Path| {
        let out = run_ok(
            Command::new("blkid")
                .args(["-p", "-s", "UUID", "-o", "value", "-O"])
                .arg(root["start"].as_u64().unwrap().to_string())
                .arg(img),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(uuid(&a), uuid(&b));
    assert_eq!(uuid(&a), root["fs_uuid"].as_str().unwrap());
}

#[test]
fn bad_input_is_refused_and_leaves_no_image() {
    let mut c = Composed::empty();
    let commit = c.compose_tree("one");
    let image = c.out("out.qcow2");
    let expected = ["repo", "sample-atomic.toml", "tree-one"];
    let refuse = |args: &[&str], needle: &str| {
        let mut cmd = c.disk(args);
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected `{needle}` in:\n{err}"
        );
        assert!(!image.exists(), "{args:?} left {}", image.display());
        assert_eq!(leftovers(c.work.path(), &expected), Vec::<String>::new());
        assert_eq!(loops_on(c.work.path()), Vec::<String>::new());
    };
    let img = image.to_str().unwrap();
    let unknown = "0000000000000000000000000000000000000000000000000000000000000000";
    refuse(
        &["--ref", "no/such/ref", "-o", img, "--format", "qcow2"],
        &format!(
            "no/such/ref is not in the repository {} (its refs: {REF})",
            c.repo.display()
        ),
    );
    refuse(
        &[
            "--commit", unknown, "--ref", REF, "-o", img, "--format", "qcow2",
        ],
        &format!("{unknown} is not in the repository"),
    );
    refuse(
        &[
            "--ref", REF, "--size", "600M", "-o", img, "--format", "qcow2",
        ],
        &format!("a 600M image is too small for commit {commit}: it needs at least"),
    );
    let missing = c.out("no/such/dir/out.qcow2");
    refuse(
        &[
            "--ref",
            REF,
            "-o",
            missing.to_str().unwrap(),
            "--format",
            "qcow2",
        ],
        &format!(
            "the output directory {} does not exist",
            c.out("no/such/dir").display()
        ),
    );
    refuse(
        &[
            "--ref",
            REF,
            "-o",
            img,
            "--format",
            "qcow2",
            "--bootloader",
            "systemd-boot",
        ],
        "--bootloader systemd-boot is not supported yet",
    );
    refuse(
        &[
            "--ref",
            REF,
            "-o",
            img,
            "--format",
            "qcow2",
            "--remote-url",
            "http://127.0.0.1:1/ostree",
        ],
        "a remote URL (--remote-url or the stream's [disk] remote-url) needs --remote-gpg-key",
    );
    refuse(
        &[
            "--ref",
            REF,
            "-o",
            img,
            "--format",
            "qcow2",
            "--remote-gpg-key",
            c.gpg.public_key.to_str().unwrap(),
        ],
        "needs a remote URL (--remote-url or the stream's [disk] remote-url) to verify",
    );
    refuse(
        &["--ref", REF, "-o", img, "--format", "vmdk"],
        "invalid value 'vmdk' for '--format",
    );
    // a missing tool: a PATH without mkfs.vfat
    let bin = c.out("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for t in [
        "sfdisk",
        "losetup",
        "mount",
        "umount",
        "mkfs.ext4",
        "mcopy",
        "grub-mkimage",
        "qemu-img",
        "gpg",
    ] {
        let real = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .unwrap();
        let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
        std::os::unix::fs::symlink(real, bin.join(t)).unwrap();
    }
    let out = c
        .disk(&["--ref", REF, "-o", img, "--format", "qcow2"])
        .env("PATH", &bin)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mkfs.vfat is not installed (Debian package dosfstools)"),
        "{err}"
    );
    assert!(!image.exists());
}

/// `--image`: a disk from the OS image of a commit (the ostree container
/// format, as `compose export` and `corral release` publish it) deploys
/// the commit the image carries, under the ref given, with nothing of the
/// import left beside the image; a tampered image builds no disk.
#[test]
fn a_disk_from_the_os_image_deploys_the_images_commit() {
    let mut c = Composed::empty();
    let commit = c.compose_tree("one");
    let layout = c.out("os");
    let exported: serde_json::Value = serde_json::from_slice(
        &run_ok(
            Command::new(corral_bin())
                .args(["compose", "export", "--json", "--repo"])
                .arg(&c.repo)
                .arg(REF)
                .arg("-o")
                .arg(format!("oci:{}:43.1", layout.display()))
                .env_remove("RUST_LOG"),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(exported["commit"], commit.as_str());
    // pushed to a mirror (pushes need credentials, pulls are anonymous)
    require_tool("skopeo");
    let htpasswd = corral_test_support::faults::htpasswd(c.work.path());
    let mirror = Mirror::start(&["--htpasswd", htpasswd.to_str().unwrap()]);
    let remote = format!("docker://{}/os/sample:43.1", mirror.host());
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false", "--dest-creds"])
            .arg(corral_test_support::faults::CREDS)
            .arg(format!("oci:{}:43.1", layout.display()))
            .arg(&remote),
    );
    let raw = c.out("from-image.raw");
    let build = |image: &str, raw: &Path| {
        let mut cmd = Command::new(corral_bin());
        cmd.args(["disk", "build", "--image", image])
            .args([
                "--ref", REF, "--size", "1G", "--format", "raw", "--json", "-o",
            ])
            .arg(raw)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env_remove("RUST_LOG");
        cmd
    };
    let out = run_ok(build(&remote, &raw).arg("--tls-verify=false"));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["commit"], commit.as_str(), "{report:#}");
    assert_eq!(report["image_digest"], exported["manifest_digest"]);
    assert_eq!(report["ref"], REF);
    // the temporary repository is gone
    let expected = [
        "repo",
        "sample-atomic.toml",
        "tree-one",
        "os",
        "htpasswd",
        "from-image.raw",
        "from-image.raw.sha256",
    ];
    assert_eq!(leftovers(c.work.path(), &expected), Vec::<String>::new());
    let root = PartMount::new(&raw, part(&report, "root"), false);
    let deploy = root
        .path()
        .join(format!("ostree/deploy/{OS}/deploy/{commit}.0"));
    assert_eq!(
        std::fs::read_to_string(deploy.join("usr/bin/marker")).unwrap(),
        "one"
    );
    let origin = std::fs::read_to_string(
        root.path()
            .join(format!("ostree/deploy/{OS}/deploy/{commit}.0.origin")),
    )
    .unwrap();
    assert!(
        origin.contains(&format!("refspec=corral:{REF}")),
        "{origin}"
    );
    drop(root);

    // a layer whose bytes changed: refused, no disk
    let manifest: serde_json::Value = {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let d = index["manifests"][0]["digest"].as_str().unwrap();
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(&d[7..])).unwrap())
            .unwrap()
    };
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = layout.join("blobs/sha256").join(&layer[7..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let bad = c.out("bad.raw");
    let out = build(&format!("oci:{}:43.1", layout.display()), &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("importing oci:"), "{}", stderr(&out));
    assert!(!bad.exists());
    assert_eq!(leftovers(c.work.path(), &expected), Vec::<String>::new());
    assert_eq!(loops_on(c.work.path()), Vec::<String>::new());
}

/// Reads a running build's progress lines up to the first that contains
/// `marker`; all lines read so far. Fails after two minutes or at the end
/// of the output without the marker.
fn read_until(lines: &mut impl Iterator<Item = std::io::Result<String>>, marker: &str) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(marker) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "no {marker:?} within 120 s:\n{seen}"
        );
    }
    panic!("the build ended without {marker:?}:\n{seen}");
}

#[test]
fn an_interrupted_build_leaves_no_image_mount_or_loop_device() {
    let mut c = Composed::empty();
    c.compose_tree("one");
    let image = c.out("big.raw.xz");
    // a large disk so xz runs long enough to be interrupted
    let mut child = c
        .disk(&[
            "--ref",
            REF,
            "--size",
            "12G",
            "-o",
            image.to_str().unwrap(),
            "--format",
            "raw.xz",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let seen = read_until(&mut lines, "as raw.xz");
    assert!(seen.contains("deploying"), "{seen}");
    std::thread::sleep(Duration::from_millis(300));
    run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let rest = rest.join("\n");
    assert_eq!(status.code(), Some(2), "{seen}{rest}");
    assert!(
        rest.contains("the build was interrupted; no image was written"),
        "{rest}"
    );
    assert!(!image.exists());
    assert_eq!(
        leftovers(c.work.path(), &["repo", "sample-atomic.toml", "tree-one"]),
        Vec::<String>::new()
    );
    assert_eq!(loops_on(c.work.path()), Vec::<String>::new());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(&c.work.path().display().to_string()),
        "{mounts}"
    );
}

/// A process that holds a copy of the build's mounts in a mount namespace
/// of its own, as any container started during a build does; killed on
/// drop.
struct NamespaceHolder(std::process::Child);

impl Drop for NamespaceHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `dumpe2fs -h` of the ext4 file system in `part` of a raw image.
fn ext4_superblock(image: &Path, part: &serde_json::Value) -> String {
    let out = run_ok(
        Command::new("losetup")
            .args(["--find", "--show", "--read-only"])
            .arg(format!("--offset={}", part["start"].as_u64().unwrap()))
            .arg(format!("--sizelimit={}", part["size"].as_u64().unwrap()))
            .arg(image),
    );
    let device = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let sb = Command::new("dumpe2fs").args(["-h", &device]).output();
    let _ = Command::new("losetup").args(["--detach", &device]).status();
    String::from_utf8_lossy(&sb.unwrap().stdout).into_owned()
}

#[test]
fn mounts_held_by_another_namespace_still_leave_clean_file_systems() {
    require_tool("unshare");
    require_tool("dumpe2fs");
    let mut c = Composed::empty();
    c.compose_tree("one");
    // qcow2: the conversion copies the file systems as they are at that
    // moment (a raw image would be the loop devices' own backing file)
    let image = c.out("held.qcow2");
    let mut child = c
        .disk(&[
            "--ref",
            REF,
            "--size",
            "2G",
            "-o",
            image.to_str().unwrap(),
            "--format",
            "qcow2",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let seen = read_until(&mut lines, "writing the GRUB menu");
    // the root and /boot are mounted now: a new mount namespace copies them
    let holder = NamespaceHolder(
        Command::new("unshare")
            .args(["--mount", "sleep", "300"])
            .spawn()
            .unwrap(),
    );
    let work = c.work.path().display().to_string();
    let info = format!("/proc/{}/mountinfo", holder.0.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&info)
        .unwrap_or_default()
        .contains(&work)
    {
        assert!(
            Instant::now() < deadline,
            "the namespace never held the build's mounts"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let mut report = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut report)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{seen}{}", rest.join("\n"));
    let raw = c.out("held.raw");
    run_ok(
        Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(&image)
            .arg(&raw),
    );

    // GRUB does not replay journals: what it reads must be complete
    let table: serde_json::Value = serde_json::from_str(&report).unwrap();
    for role in ["boot", "root"] {
        let sb = ext4_superblock(&raw, part(&table, role));
        let features = sb
            .lines()
            .find(|l| l.starts_with("Filesystem features:"))
            .unwrap_or_else(|| panic!("{role}: {sb}"));
        assert!(!features.contains("needs_recovery"), "{role}: {features}");
        assert!(
            sb.contains("Filesystem state:         clean"),
            "{role}: {sb}"
        );
    }
    let boot = PartMount::new(&raw, part(&table, "boot"), false);
    let menu = std::fs::read_to_string(boot.path().join("grub/grub.cfg")).unwrap();
    assert!(menu.contains("menuentry"), "{menu}");
    drop(boot);
    drop(holder);
}

#[test]
fn host_upgrade_and_rollback_rewrite_the_grub_menu_of_the_image() {
    let mut c = Composed::empty();
    let first = c.compose_tree("one");
    let mirror = Mirror::start(&["--ostree-repo", c.repo.to_str().unwrap()]);
    let url = format!("{}/ostree", mirror.url());
    let image = c.out("host.raw");
    let report = c.build_json(&[
        "--ref",
        REF,
        "--size",
        "1G",
        "-o",
        image.to_str().unwrap(),
        "--format",
        "raw",
        "--remote-url",
        &url,
        "--remote-gpg-key",
        c.gpg.public_key.to_str().unwrap(),
    ]);
    let second = c.compose_tree("two");
    assert_ne!(first, second);

    // the image's sysroot, mounted as on the host: root, /boot beneath it
    let root = PartMount::new(&image, part(&report, "root"), true);
    let boot = root.path().join("boot");
    let _boot = PartMount::at(&image, part(&report, "boot"), &boot, true, scratch());
    let host = |args: &[&str]| {
        run_ok(
            Command::new(corral_bin())
                .arg("host")
                .arg("--sysroot")
                .arg(root.path())
                .args(args)
                .env_remove("RUST_LOG"),
        )
    };
    let first_entry = |what: &str| -> String {
        let cfg = std::fs::read_to_string(boot.join("grub/grub.cfg")).unwrap();
        assert!(cfg.starts_with("# corral-grub-config:"), "{what}: {cfg}");
        let linux = cfg
            .lines()
            .find_map(|l| l.trim().strip_prefix("linux "))
            .unwrap_or_else(|| panic!("{what}: {cfg}"));
        // the kernel's boot checksum directory names the deployment
        let kernel = linux.split_whitespace().next().unwrap();
        std::fs::read_to_string(boot.join(kernel.trim_start_matches('/'))).unwrap()
    };
    assert_eq!(first_entry("as built"), "kernel one");

    host(&["upgrade"]);
    let cfg = std::fs::read_to_string(boot.join("grub/grub.cfg")).unwrap();
    assert_eq!(cfg.matches("menuentry ").count(), 2, "{cfg}");
    assert_eq!(first_entry("after upgrade"), "kernel two");
    host(&["rollback"]);
    assert_eq!(first_entry("after rollback"), "kernel one");
    host(&["rollback"]);
    assert_eq!(first_entry("after the second rollback"), "kernel two");
    host(&["cleanup", "--rollback"]);
    let cfg = std::fs::read_to_string(boot.join("grub/grub.cfg")).unwrap();
    assert_eq!(cfg.matches("menuentry ").count(), 1, "{cfg}");
    assert_eq!(first_entry("after cleanup"), "kernel two");
}

/// Boots the raw image under qemu (KVM when usable, else software
/// emulation) until GRUB shows
/// the menu from `/boot/grub/grub.cfg`; returns the serial output.
fn boot_to_grub(image: &Path, work: &Path, uefi: bool) -> String {
    require_tool("qemu-system-x86_64");
    let log = work.join(if uefi { "uefi.log" } else { "bios.log" });
    let accel = Accel::probe(None);
    eprintln!(
        "boot_to_grub: qemu with {} ({})",
        accel.describe(),
        if uefi { "UEFI" } else { "BIOS" }
    );
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-machine", "q35"])
        .args(accel.qemu_args())
        .args(["-m", "512", "-nographic", "-no-reboot"])
        .args(["-monitor", "none", "-serial"])
        .arg(format!("file:{}", log.display()))
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio,snapshot=on",
            image.display()
        ));
    if uefi {
        let vars = work.join("OVMF_VARS.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).unwrap();
        cmd.arg("-drive")
            .arg("if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd")
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,file={}", vars.display()));
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(child);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        // GRUB tried the menu's kernel: the stand-in is no Linux image
        if text.contains("vmlinuz-6.9.0-t") && text.contains("error:") {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "GRUB did not come up in 180 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn grub_reads_the_menu_under_bios_and_uefi() {
    let mut c = Composed::empty();
    c.compose_tree("one");
    let image = c.out("boot.raw");
    run_ok(&mut c.disk(&[
        "--ref",
        REF,
        "--size",
        "1G",
        "-o",
        image.to_str().unwrap(),
        "--format",
        "raw",
    ]));
    for uefi in [false, true] {
        let text = boot_to_grub(&image, c.work.path(), uefi);
        assert!(
            text.contains("corral sample Atomic Host") || text.contains("ostree:0"),
            "the menu entry's title: {text}"
        );
    }
}

#[test]
fn the_mirror_catalog_lists_disk_images_with_checksum_and_signature() {
    let mut c = Composed::empty();
    c.compose_tree("one");
    let images = c.out("images");
    std::fs::create_dir_all(&images).unwrap();
    let signed = images.join("atomic-43.qcow2");
    let unsigned = images.join("atomic-43.raw");
    run_ok(&mut c.disk(&[
        "--ref",
        REF,
        "--size",
        "1G",
        "-o",
        signed.to_str().unwrap(),
        "--format",
        "qcow2",
        "--gpg-key",
        "compose@corral.invalid",
    ]));
    run_ok(&mut c.disk(&[
        "--ref",
        REF,
        "--size",
        "1G",
        "-o",
        unsigned.to_str().unwrap(),
        "--format",
        "raw",
    ]));
    // Both builds recorded their image in the stream file compose wrote.
    let stream_file = c.repo.join("streams/sample-atomic.json");
    let stream: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stream_file).unwrap()).unwrap();
    assert_eq!(stream["ref"], REF);
    let recorded = stream["disk_images"]
        .as_array()
        .unwrap_or_else(|| panic!("{stream}"));
    assert_eq!(recorded.len(), 2, "{stream}");
    let entry = |name: &str| recorded.iter().find(|i| i["name"] == name).unwrap().clone();
    let q = entry("atomic-43.qcow2");
    assert_eq!(q["format"], "qcow2");
    assert_eq!(q["sha256"], sha256_file(&signed));
    assert_eq!(q["size"], std::fs::metadata(&signed).unwrap().len());
    assert_eq!(q["signature"], "atomic-43.qcow2.asc");
    assert_eq!(q["commit"], c.commits[0].as_str());
    let r = entry("atomic-43.raw");
    assert_eq!(r["sha256"], sha256_file(&unsigned));
    assert!(r.get("signature").is_none(), "{r}");
    // the versions compose wrote are still there
    assert_eq!(stream["versions"][0]["commit"], c.commits[0].as_str());
    // the temporary files are gone
    let names: Vec<String> = std::fs::read_dir(c.repo.join("streams"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["sample-atomic.json"]);

    let keyring = c.keyring();
    let mirror = Mirror::start(&[
        "--disk-images",
        images.to_str().unwrap(),
        "--ostree-repo",
        c.repo.to_str().unwrap(),
        "--trust-gpg-keyring",
        keyring.to_str().unwrap(),
    ]);
    // the stream's page links both, with the sha256 disk build recorded
    let page: serde_json::Value = serde_json::from_str(
        &http_get(&format!(
            "{}/atomic-host/sample-atomic?format=json",
            mirror.url()
        ))
        .unwrap(),
    )
    .unwrap();
    let linked: Vec<&str> = page["images"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(linked, ["atomic-43.qcow2", "atomic-43.raw"], "{page}");
    let html = http_get(&format!("{}/atomic-host/sample-atomic", mirror.url())).unwrap();
    assert!(
        html.contains("<a href=\"/disk-images/atomic-43.qcow2\">atomic-43.qcow2</a>"),
        "{html}"
    );
    assert!(
        html.contains(&format!("title=\"{}\"", sha256_file(&signed))),
        "{html}"
    );
    assert!(
        !html.contains("differs from the published checksum"),
        "{html}"
    );
    let catalog: serde_json::Value =
        serde_json::from_str(&http_get(&format!("{}/catalog.json", mirror.url())).unwrap())
            .unwrap();
    let list = catalog["disk_images"]
        .as_array()
        .unwrap_or_else(|| panic!("{catalog}"));
    assert_eq!(list.len(), 2, "{catalog}");
    let find = |name: &str| list.iter().find(|i| i["name"] == name).unwrap().clone();
    let q = find("atomic-43.qcow2");
    assert_eq!(q["size"], std::fs::metadata(&signed).unwrap().len());
    assert_eq!(q["sha256"], sha256_file(&signed));
    assert_eq!(q["signature"]["state"], "verified", "{q}");
    assert_eq!(q["url"], "/disk-images/atomic-43.qcow2");
    let x = find("atomic-43.raw");
    assert_eq!(x["sha256"], sha256_file(&unsigned));
    assert_eq!(x["signature"]["state"], "unsigned", "{x}");

    // the files themselves, whole and by range
    let body = Command::new("curl")
        .args(["-fsS", "--max-time", "30"])
        .arg(format!("{}/disk-images/atomic-43.qcow2", mirror.url()))
        .output()
        .unwrap();
    assert!(body.status.success());
    assert_eq!(sha256_hex(&body.stdout), sha256_file(&signed));
    let range = Command::new("curl")
        .args(["-fsS", "-r", "0-3"])
        .arg(format!("{}/disk-images/atomic-43.qcow2", mirror.url()))
        .output()
        .unwrap();
    assert_eq!(range.stdout, b"QFI\xfb");
    // the website's download page and the page of all tags list it
    for path in ["/downloads", "/catalog"] {
        let page = http_get(&format!("{}{path}", mirror.url())).unwrap();
        assert!(page.contains("atomic-43.qcow2"), "{path}: {page}");
    }

    // a tampered image: the checksum file no longer matches, the signature fails
    let mut bytes = std::fs::read(&signed).unwrap();
    let n = bytes.len() - 1;
    bytes[n] ^= 0xff;
    std::fs::write(&signed, bytes).unwrap();
    let catalog: serde_json::Value =
        serde_json::from_str(&http_get(&format!("{}/catalog.json", mirror.url())).unwrap())
            .unwrap();
    let q = catalog["disk_images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "atomic-43.qcow2")
        .unwrap()
        .clone();
    assert_eq!(q["signature"]["state"], "bad", "{q}");
}
