//! Fixture trees and comparison helpers shared by the integration tests.
//! They need root (mknod, chown, security.* xattrs), as CI runs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use corral_oci::{Compression, ImageConfigSpec, PackOptions};
pub use corral_test_support::{run_ok, sha256_file};

pub const MTIME: i64 = 1_600_000_000;
pub const FUTURE_MTIME: i64 = 4_000_000_000;
pub const CLAMP: i64 = 1_700_000_000;

/// Raw value of a `security.capability` xattr granting cap_net_raw+ep (VFS v2).
pub const CAP_NET_RAW: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];
pub const SELINUX: &[u8] = b"system_u:object_r:bin_t:s0";

fn long_non_utf8_name() -> Vec<u8> {
    let mut name = b"binary-".to_vec();
    name.extend(std::iter::repeat_n(0xe9u8, 120));
    name
}

/// Every kind of entry the packer must reproduce. `reverse` creates the same
/// tree in a different order (other inode numbers and directory order).
pub fn make_tree(root: &Path, reverse: bool) {
    type Step = Box<dyn Fn(&Path)>;
    let mut steps: Vec<Step> = vec![
        Box::new(|r| write(r, "etc/hostname", b"corral\n")),
        Box::new(|r| write(r, "empty", b"")),
        Box::new(|r| {
            write(r, "private/secret", b"s3cret");
            chmod(&r.join("private"), 0o700);
        }),
        Box::new(|r| {
            write(r, "bin/suid", b"#!/bin/sh\n");
            chmod(&r.join("bin/suid"), 0o4755);
            write(r, "bin/sgid", b"#!/bin/sh\n");
            chmod(&r.join("bin/sgid"), 0o2755);
            write(r, "bin/sticky", b"");
            chmod(&r.join("bin/sticky"), 0o1644);
        }),
        Box::new(|r| {
            fs::create_dir_all(r.join("tmp")).unwrap();
            chmod(&r.join("tmp"), 0o1777);
        }),
        Box::new(|r| {
            write(r, "bin/tool", &vec![7u8; 10_000]);
            fs::hard_link(r.join("bin/tool"), r.join("bin/tool-link")).unwrap();
            fs::create_dir_all(r.join("zz")).unwrap();
            fs::hard_link(r.join("bin/tool"), r.join("zz/tool-link2")).unwrap();
            xattr::set(r.join("bin/tool"), "security.capability", &CAP_NET_RAW).unwrap();
        }),
        Box::new(|r| {
            symlink("etc/hostname", r.join("link-rel")).unwrap();
            symlink("/etc/hostname", r.join("link-abs")).unwrap();
            symlink("nowhere/at/all", r.join("link-dangling")).unwrap();
            let long_target = format!("{}/target", "t".repeat(150));
            symlink(long_target, r.join("link-long")).unwrap();
        }),
        Box::new(|r| {
            fs::create_dir_all(r.join("run")).unwrap();
            run_ok(Command::new("mkfifo").arg(r.join("run/fifo")));
            fs::create_dir_all(r.join("dev")).unwrap();
            run_ok(
                Command::new("mknod")
                    .arg(r.join("dev/null"))
                    .args(["c", "1", "3"]),
            );
            run_ok(
                Command::new("mknod")
                    .arg(r.join("dev/loop9"))
                    .args(["b", "7", "9"]),
            );
        }),
        Box::new(|r| {
            // 24 MiB with data only at both ends.
            let path = r.join("sparse");
            let mut f = fs::File::create(&path).unwrap();
            f.write_all(b"head").unwrap();
            f.set_len(24 << 20).unwrap();
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::End(-4)).unwrap();
            f.write_all(b"tail").unwrap();
        }),
        Box::new(|r| {
            write(r, &format!("long/{}", "n".repeat(160)), b"long name");
            let deep = format!(
                "deep/{}/{}/{}",
                "a".repeat(100),
                "b".repeat(100),
                "c".repeat(100)
            );
            write(r, &deep, b"300-char path");
        }),
        Box::new(|r| {
            write(r, "données/café.txt", "crème brûlée".as_bytes());
            write(r, "日本語.txt", b"nihongo");
            let raw = r.join(OsStr::from_bytes(b"latin1-\xe9t\xe9"));
            fs::write(raw, b"latin-1 name").unwrap();
            let long_raw = r.join(OsStr::from_bytes(&long_non_utf8_name()));
            fs::write(long_raw, b"long latin-1 name").unwrap();
        }),
        Box::new(|r| {
            write(r, "xattrs/user", b"x");
            xattr::set(r.join("xattrs/user"), "user.foo", b"bar").unwrap();
            xattr::set(r.join("xattrs/user"), "user.empty", b"").unwrap();
            write(r, "xattrs/selinux", b"x");
            xattr::set(r.join("xattrs/selinux"), "security.selinux", SELINUX).unwrap();
        }),
        Box::new(|r| {
            write(r, "owned", b"by 1234:5678");
            std::os::unix::fs::lchown(r.join("owned"), Some(1234), Some(5678)).unwrap();
            std::os::unix::fs::lchown(r.join("link-rel"), Some(42), Some(43)).unwrap();
        }),
    ];
    if reverse {
        // "owned" chowns link-rel, so it must stay after the symlink step.
        let last = steps.pop().unwrap();
        steps.reverse();
        steps.push(last);
    }
    fs::create_dir_all(root).unwrap();
    chmod(root, 0o755);
    for step in &steps {
        step(root);
    }
    // Directories' mtimes change as children are created: set all at the end.
    run_ok(
        Command::new("find")
            .arg(root)
            .args(["-exec", "touch", "-h", "-d"])
            .arg(format!("@{MTIME}"))
            .args(["{}", "+"]),
    );
    run_ok(
        Command::new("touch")
            .args(["-h", "-d"])
            .arg(format!("@{FUTURE_MTIME}"))
            .arg(root.join("etc/hostname")),
    );
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, data).unwrap();
    chmod(&path, 0o644);
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn config() -> ImageConfigSpec {
    ImageConfigSpec {
        architecture: "amd64".into(),
        os: "linux".into(),
        env: vec!["PATH=/usr/bin:/bin".into()],
        cmd: Some(vec!["/bin/sh".into()]),
        entrypoint: None,
        working_dir: Some("/".into()),
        user: Some("0:0".into()),
        labels: BTreeMap::from([("org.example.team".into(), "release".into())]),
        created: CLAMP,
        annotations: BTreeMap::from([("org.opencontainers.image.version".into(), "1.0".into())]),
        history_comment: Some("test".into()),
    }
}

pub fn options(compression: Compression) -> PackOptions {
    PackOptions {
        compression,
        clamp_mtime: Some(CLAMP),
        threads: 2,
        ..Default::default()
    }
}

/// What we compare between the source tree and an extraction of the layer.
#[derive(Debug, PartialEq, Eq)]
pub struct EntryFacts {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Option<i64>,
    pub size: u64,
    pub content_digest: Option<String>,
    pub link_target: Option<Vec<u8>>,
    pub rdev: Option<u64>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub fn facts(path: &Path, clamp: i64, xattr_filter: &dyn Fn(&[u8]) -> bool) -> EntryFacts {
    let meta = fs::symlink_metadata(path).unwrap();
    let ft = meta.file_type();
    use std::os::unix::fs::FileTypeExt;
    let kind = if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else {
        "other"
    };
    let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = xattr::list(path)
        .unwrap()
        .filter(|n| xattr_filter(n.as_bytes()))
        .map(|n| {
            (
                n.as_bytes().to_vec(),
                xattr::get(path, &n).unwrap().unwrap(),
            )
        })
        .collect();
    xattrs.sort();
    EntryFacts {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        // Directory mtimes are compared separately: extractors differ on them.
        mtime: (kind != "dir").then(|| meta.mtime().min(clamp)),
        size: if kind == "file" { meta.len() } else { 0 },
        content_digest: (kind == "file").then(|| sha256_file(path)),
        link_target: (kind == "symlink")
            .then(|| fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec()),
        rdev: matches!(kind, "char" | "block").then(|| meta.rdev()),
        xattrs,
    }
}

/// Relative paths of everything below `root`, sorted.
pub fn list(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap().path().strip_prefix(root).unwrap().to_owned())
        .collect()
}

/// Asserts that `extracted` reproduces `source`: same entries, types, modes,
/// owners, mtimes (clamped), contents, link targets, devices, xattrs, and
/// the hard links share one inode.
pub fn assert_same_tree(source: &Path, extracted: &Path, xattr_filter: &dyn Fn(&[u8]) -> bool) {
    assert_eq!(list(source), list(extracted), "entry lists differ");
    for rel in list(source) {
        let a = facts(&source.join(&rel), CLAMP, xattr_filter);
        let b = facts(&extracted.join(&rel), CLAMP, xattr_filter);
        assert_eq!(a, b, "{}", rel.display());
    }
    let ino = |p: &str| fs::metadata(extracted.join(p)).unwrap().ino();
    assert_eq!(ino("bin/tool"), ino("bin/tool-link"));
    assert_eq!(ino("bin/tool"), ino("zz/tool-link2"));
    assert_ne!(ino("bin/tool"), ino("bin/suid"));
}

pub fn tempdir() -> tempfile::TempDir {
    // /var/tmp: the same (xattr-capable) filesystem the layout is written to.
    tempfile::Builder::new()
        .prefix("corral-oci-test-")
        .tempdir_in("/var/tmp")
        .unwrap()
}

/// Decompresses a layer blob with the system tool into `out`.
pub fn decompress(blob: &Path, compression: Compression, out: &Path) {
    let tool = match compression {
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    };
    let file = fs::File::create(out).unwrap();
    let status = Command::new(tool)
        .args(["-d", "-c"])
        .arg(blob)
        .stdout(file)
        .status()
        .unwrap_or_else(|e| panic!("{tool} must be installed: {e}"));
    assert!(status.success(), "{tool} -dc {}", blob.display());
}

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// Directory mtimes survive extraction (extractors must set them after the
/// directory's children are created).
pub fn assert_dir_mtimes(source: &Path, extracted: &Path) {
    for rel in list(source) {
        let a = fs::symlink_metadata(source.join(&rel)).unwrap();
        if a.is_dir() {
            let b = fs::symlink_metadata(extracted.join(&rel)).unwrap();
            assert_eq!(
                a.mtime().min(CLAMP),
                b.mtime(),
                "mtime of {}",
                rel.display()
            );
        }
    }
}
