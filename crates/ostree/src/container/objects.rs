//! Where each object lives in the tar stream, and the writer of a
//! commit's objects. Every header is built from the object alone (no
//! times, no user names), so the same commit always gives the same bytes.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use ostree::gio;
use ostree::gio::prelude::*;
use ostree::glib;
use sha2::{Digest, Sha256};

/// The repository inside the image, where `/ostree -> sysroot/ostree`
/// points on a deployed host.
pub const REPO_DIR: &str = "sysroot/ostree/repo";

/// The config of the repository inside the image: the mode that keeps
/// extended attributes in objects of their own.
pub const REPO_CONFIG: &str = "[core]\nrepo_version=1\nmode=bare-split-xattrs\n";

/// Directories of a repository besides `objects/XX`.
const REPO_SUBDIRS: [&str; 8] = [
    "extensions",
    "refs",
    "refs/heads",
    "refs/mirrors",
    "refs/remotes",
    "state",
    "tmp",
    "tmp/cache",
];

/// The kinds of entries under `objects/`, by file name extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Object(ostree::ObjectType),
    /// The extended attributes of some files, named by their sha256.
    Xattrs,
    /// A hard link from a content object to its [`EntryKind::Xattrs`].
    XattrsLink,
}

fn object_extension(kind: ostree::ObjectType) -> &'static str {
    match kind {
        ostree::ObjectType::Commit => "commit",
        ostree::ObjectType::CommitMeta => "commitmeta",
        ostree::ObjectType::DirTree => "dirtree",
        ostree::ObjectType::DirMeta => "dirmeta",
        _ => "file",
    }
}

fn under_objects(checksum: &str, extension: &str) -> String {
    let (dir, rest) = checksum.split_at(2.min(checksum.len()));
    format!("{REPO_DIR}/objects/{dir}/{rest}.{extension}")
}

/// `sysroot/ostree/repo/objects/ab/cdef….EXT` for an object.
pub fn object_path(kind: ostree::ObjectType, checksum: &str) -> String {
    under_objects(checksum, object_extension(kind))
}

/// Where extended attributes whose serialized form has sha256 `digest` live.
pub fn xattrs_path(digest: &str) -> String {
    under_objects(digest, "file-xattrs")
}

/// The link from content object `checksum` to its extended attributes.
pub fn xattrs_link_path(checksum: &str) -> String {
    under_objects(checksum, "file-xattrs-link")
}

/// Parses an entry path under `objects/` into a checksum (or xattrs
/// digest) and a kind; `None` for any other path.
pub fn parse_entry_path(path: &str) -> Option<(String, EntryKind)> {
    let rest = path
        .trim_start_matches("./")
        .strip_prefix(REPO_DIR)?
        .strip_prefix("/objects/")?;
    let (dir, file) = rest.split_once('/')?;
    let (name, ext) = file.split_once('.')?;
    let checksum = format!("{dir}{name}");
    let valid = checksum.len() == 64
        && checksum
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return None;
    }
    let kind = match ext {
        "commit" => EntryKind::Object(ostree::ObjectType::Commit),
        "commitmeta" => EntryKind::Object(ostree::ObjectType::CommitMeta),
        "dirtree" => EntryKind::Object(ostree::ObjectType::DirTree),
        "dirmeta" => EntryKind::Object(ostree::ObjectType::DirMeta),
        "file" => EntryKind::Object(ostree::ObjectType::File),
        "file-xattrs" => EntryKind::Xattrs,
        "file-xattrs-link" => EntryKind::XattrsLink,
        _ => return None,
    };
    Some((checksum, kind))
}

/// The tar path a commit path is checked out at: `usr/etc` goes back to
/// `etc`, where a container expects it.
pub fn checkout_path(commit_path: &str) -> String {
    match commit_path.strip_prefix("usr/etc") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("etc{rest}"),
        _ => commit_path.to_string(),
    }
}

fn header(kind: tar::EntryType, mode: u32, uid: u32, gid: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_size(size);
    h.set_mtime(0);
    h
}

/// A content object as the checkout links it: its object path and the
/// header (type, mode, owner) the links copy.
struct Written {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
}

/// Writes a commit's objects and checkout into one layer's tar stream.
pub struct ObjectTarWriter<'r, W: Write> {
    repo: &'r ostree::Repo,
    out: tar::Builder<W>,
    xattrs_written: BTreeSet<String>,
    metadata_written: BTreeSet<String>,
}

impl<'r, W: Write> ObjectTarWriter<'r, W> {
    /// Starts a layer with the repository's directories and config, which
    /// every layer carries so each unpacks on its own.
    pub fn new(repo: &'r ostree::Repo, out: W) -> Result<Self> {
        let mut w = ObjectTarWriter {
            repo,
            out: tar::Builder::new(out),
            xattrs_written: BTreeSet::new(),
            metadata_written: BTreeSet::new(),
        };
        for dir in ["sysroot", "sysroot/ostree", REPO_DIR] {
            w.directory(dir, 0o755, 0, 0)?;
        }
        w.directory(&format!("{REPO_DIR}/objects"), 0o755, 0, 0)?;
        for n in 0..=0xffu32 {
            w.directory(&format!("{REPO_DIR}/objects/{n:02x}"), 0o755, 0, 0)?;
        }
        for dir in REPO_SUBDIRS {
            w.directory(&format!("{REPO_DIR}/{dir}"), 0o755, 0, 0)?;
        }
        w.data(&format!("{REPO_DIR}/config"), REPO_CONFIG.as_bytes())?;
        Ok(w)
    }

    /// A directory entry.
    pub fn directory(&mut self, path: &str, mode: u32, uid: u32, gid: u32) -> Result<()> {
        let mut h = header(tar::EntryType::Directory, mode, uid, gid, 0);
        self.out
            .append_data(&mut h, path, std::io::empty())
            .with_context(|| format!("writing directory {path}"))
    }

    /// A directory of the checkout, with the owner and mode of dirmeta
    /// object `meta`.
    pub fn checkout_directory(&mut self, path: &str, meta: &str) -> Result<()> {
        let m = self
            .repo
            .read_dirmeta(meta)
            .with_context(|| format!("loading dirmeta {meta}"))?;
        self.directory(path, m.mode, m.uid, m.gid)
    }

    /// A root-owned 0644 file.
    fn data(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, bytes.len() as u64);
        self.out
            .append_data(&mut h, path, bytes)
            .with_context(|| format!("writing {path}"))
    }

    /// A metadata object (commit, commitmeta, dirtree, dirmeta), once.
    pub fn metadata(
        &mut self,
        kind: ostree::ObjectType,
        checksum: &str,
        variant: &glib::Variant,
    ) -> Result<()> {
        let path = object_path(kind, checksum);
        if self.metadata_written.insert(path.clone()) {
            self.data(&path, &variant.data_as_bytes())?;
        }
        Ok(())
    }

    /// Loads and writes a dirtree or dirmeta object.
    pub fn load_metadata(&mut self, kind: ostree::ObjectType, checksum: &str) -> Result<()> {
        let v = self
            .repo
            .load_variant(kind, checksum)
            .with_context(|| format!("loading {kind:?} {checksum}"))?;
        self.metadata(kind, checksum, &v)
    }

    /// Writes content object `checksum` (its extended attributes first,
    /// so a reader has them when the file arrives), then a hard link to it
    /// at each of `paths` (commit paths).
    pub fn content(&mut self, checksum: &str, paths: &[String]) -> Result<()> {
        let written = self.content_object(checksum)?;
        for p in paths {
            let dest = checkout_path(p);
            // Empty files are not linked: tools that rewrite a layer would
            // otherwise change the object through the link.
            if written.kind == tar::EntryType::Regular && written.size == 0 {
                let mut h = header(written.kind, written.mode, written.uid, written.gid, 0);
                self.out
                    .append_data(&mut h, &dest, std::io::empty())
                    .with_context(|| format!("writing {dest}"))?;
                continue;
            }
            let mut h = header(
                tar::EntryType::Link,
                written.mode,
                written.uid,
                written.gid,
                0,
            );
            self.out
                .append_link(&mut h, &dest, &written.path)
                .with_context(|| format!("linking {dest} to {}", written.path))?;
        }
        Ok(())
    }

    fn content_object(&mut self, checksum: &str) -> Result<Written> {
        let (input, info, xattrs) = self
            .repo
            .load_file(checksum, gio::Cancellable::NONE)
            .with_context(|| format!("loading file object {checksum}"))?;
        let uid = info.attribute_uint32("unix::uid");
        let gid = info.attribute_uint32("unix::gid");
        let mode = info.attribute_uint32("unix::mode");

        let xattrs_bytes = xattrs.data_as_bytes();
        let digest = hex::encode(Sha256::digest(&*xattrs_bytes));
        let target = xattrs_path(&digest);
        if self.xattrs_written.insert(digest) {
            self.data(&target, &xattrs_bytes)?;
        }
        let mut h = header(tar::EntryType::Link, 0o644, 0, 0, 0);
        let link = xattrs_link_path(checksum);
        self.out
            .append_link(&mut h, &link, &target)
            .with_context(|| format!("writing {link}"))?;

        let path = object_path(ostree::ObjectType::File, checksum);
        match (info.file_type(), input) {
            (gio::FileType::Regular, Some(input)) => {
                let size = info.size() as u64;
                let mut h = header(tar::EntryType::Regular, mode, uid, gid, size);
                let mut reader = input.into_read();
                self.out
                    .append_data(&mut h, &path, (&mut reader).take(size))
                    .with_context(|| format!("writing file object {checksum}"))?;
                Ok(Written {
                    path,
                    kind: tar::EntryType::Regular,
                    mode,
                    uid,
                    gid,
                    size,
                })
            }
            (gio::FileType::SymbolicLink, _) => {
                let target = info
                    .symlink_target()
                    .with_context(|| format!("symlink object {checksum} has no target"))?;
                let target = target.to_str().with_context(|| {
                    format!("symlink object {checksum}: target {target:?} is not UTF-8")
                })?;
                let mut h = header(tar::EntryType::Symlink, mode, uid, gid, 0);
                // set_link_name_literal keeps targets such as `a//b` as they
                // are; the object's checksum covers the exact bytes.
                h.set_link_name_literal(target)
                    .with_context(|| format!("symlink object {checksum}: target {target}"))?;
                self.out
                    .append_data(&mut h, &path, std::io::empty())
                    .with_context(|| format!("writing symlink object {checksum}"))?;
                Ok(Written {
                    path,
                    kind: tar::EntryType::Symlink,
                    mode,
                    uid,
                    gid,
                    size: 0,
                })
            }
            (other, _) => bail!("file object {checksum} is a {other:?}, not a file or symlink"),
        }
    }

    /// Ends the tar stream and returns the writer.
    pub fn finish(self) -> Result<W> {
        self.out.into_inner().context("finishing the tar stream")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: &str = "b8627e3ef0f255a322d2bd9610cfaaacc8f122b7f8d17c0e7e3caafa160f9fc7";

    #[test]
    fn object_paths_follow_the_format() {
        assert_eq!(
            object_path(ostree::ObjectType::File, C),
            "sysroot/ostree/repo/objects/b8/627e3ef0f255a322d2bd9610cfaaacc8f122b7f8d17c0e7e3caafa160f9fc7.file"
        );
        assert_eq!(
            xattrs_link_path(C),
            "sysroot/ostree/repo/objects/b8/627e3ef0f255a322d2bd9610cfaaacc8f122b7f8d17c0e7e3caafa160f9fc7.file-xattrs-link"
        );
        for (kind, ext) in [
            (ostree::ObjectType::Commit, "commit"),
            (ostree::ObjectType::CommitMeta, "commitmeta"),
            (ostree::ObjectType::DirTree, "dirtree"),
            (ostree::ObjectType::DirMeta, "dirmeta"),
        ] {
            let p = object_path(kind, C);
            assert!(p.ends_with(&format!(".{ext}")), "{p}");
            assert_eq!(
                parse_entry_path(&p),
                Some((C.to_string(), EntryKind::Object(kind)))
            );
        }
        assert_eq!(
            parse_entry_path(&xattrs_path(C)),
            Some((C.to_string(), EntryKind::Xattrs))
        );
        assert_eq!(parse_entry_path("usr/bin/sh"), None);
        assert_eq!(parse_entry_path(&format!("{REPO_DIR}/config")), None);
        assert_eq!(
            parse_entry_path(&format!("{REPO_DIR}/objects/b8/zz.file")),
            None
        );
    }

    #[test]
    fn usr_etc_is_checked_out_at_etc() {
        assert_eq!(checkout_path("usr/etc"), "etc");
        assert_eq!(checkout_path("usr/etc/passwd"), "etc/passwd");
        assert_eq!(checkout_path("usr/etcetera"), "usr/etcetera");
        assert_eq!(checkout_path("usr/bin/sh"), "usr/bin/sh");
    }
}
