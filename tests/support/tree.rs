//! What a tree on disk holds, entry by entry, for comparing trees.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use std::process::Command;

use crate::sha256_file;

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
