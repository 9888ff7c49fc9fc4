//! Writing a tree into an archive repository with every core.
//!
//! libostree's own `write_directory_to_mtree` compresses each content
//! object with zlib on one thread. Here the regular files and symlinks are
//! taken in turn by worker threads, biggest first, each hashing and
//! compressing its files itself ([`crate::content`]); the main thread then
//! builds the `MutableTree` from their checksums and has libostree write
//! directory metadata, dirtrees and the commit. The objects are the ones
//! libostree itself would write (same headers, same checksums).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use ostree::gio::{self, prelude::*};
use ostree::glib;

use crate::content::{ContentStore, ContentWriter, FileMeta};

/// An entry of the tree, relative to its root.
#[derive(Debug, Clone)]
enum Entry {
    Dir(PathBuf),
    Content(PathBuf),
}

/// The xattr SELinux labels live in.
const SELINUX_XATTR: &[u8] = b"security.selinux\0";

/// Labels from the tree's own SELinux policy, as `ostree commit
/// --selinux-policy` applies them; a tree without a policy gets none.
pub struct Labeler {
    policy: Option<ostree::SePolicy>,
}

/// libselinux keeps the policy root in a global: policies are loaded one
/// at a time.
static POLICY_LOAD: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Labeler {
    /// Loads the policy named by the tree's `/usr/etc/selinux/config` (or
    /// `/etc/selinux/config`), if it has one.
    pub fn load(rootfs: &Path) -> Result<Labeler> {
        let _one = POLICY_LOAD.lock().unwrap_or_else(|e| e.into_inner());
        let policy = ostree::SePolicy::new(&gio::File::for_path(rootfs), gio::Cancellable::NONE)
            .with_context(|| format!("loading the SELinux policy of {}", rootfs.display()))?;
        let named = policy.name().is_some_and(|n| !n.is_empty());
        Ok(Labeler {
            policy: named.then_some(policy),
        })
    }

    /// The policy's name (`SELINUXTYPE`), if the tree has one.
    pub fn policy_name(&self) -> Option<String> {
        self.policy
            .as_ref()
            .and_then(|p| p.name())
            .map(|n| n.to_string())
    }

    /// The label of the entry at `rel` (relative to the root) with `mode`.
    /// `/usr/etc` is labelled as the `/etc` it becomes on a host.
    fn label(&self, rel: &Path, mode: u32) -> Result<Option<Vec<u8>>> {
        let Some(policy) = &self.policy else {
            return Ok(None);
        };
        let rel = rel.to_string_lossy();
        let path = match rel.strip_prefix("usr/etc") {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/etc{rest}"),
            _ => format!("/{rel}"),
        };
        let label = policy
            .label(&path, mode, gio::Cancellable::NONE)
            .with_context(|| format!("looking up the SELinux label of {path}"))?;
        Ok(label.map(|l| {
            let mut v = l.as_bytes().to_vec();
            v.push(0);
            v
        }))
    }
}

/// The tree's extended attributes as libostree stores them: `a(ayay)`,
/// names NUL-terminated, sorted by name; `label` replaces any
/// `security.selinux` the file has.
fn xattrs_of(path: &Path, label: Option<Vec<u8>>) -> Result<Option<glib::Variant>> {
    let names: Vec<std::ffi::OsString> = match xattr::list(path) {
        Ok(n) => n.collect(),
        Err(e) if e.raw_os_error() == Some(95) && label.is_none() => return Ok(None), // EOPNOTSUPP
        Err(e) if e.raw_os_error() == Some(95) => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("listing xattrs of {}", path.display())),
    };
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for name in names {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        if label.is_some() && n == SELINUX_XATTR {
            continue;
        }
        // libostree leaves out an xattr whose value is empty.
        if let Some(value) = xattr::get(path, &name)
            .with_context(|| format!("reading xattrs of {}", path.display()))?
            .filter(|v| !v.is_empty())
        {
            pairs.push((n, value));
        }
    }
    if let Some(label) = label {
        pairs.push((SELINUX_XATTR.to_vec(), label));
    }
    pairs.sort();
    let items: Vec<glib::Variant> = pairs
        .iter()
        .map(|(n, v)| {
            glib::Variant::tuple_from_iter([
                glib::Variant::array_from_fixed_array(n),
                glib::Variant::array_from_fixed_array(v),
            ])
        })
        .collect();
    let ty = glib::VariantTy::new("(ayay)").expect("a valid variant type");
    Ok(Some(glib::Variant::array_from_iter_with_type(ty, items)))
}

fn file_info(path: &Path) -> Result<gio::FileInfo> {
    gio::File::for_path(path)
        .query_info(
            "standard::type,standard::size,standard::is-symlink,standard::symlink-target,unix::*",
            gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
            gio::Cancellable::NONE,
        )
        .with_context(|| format!("reading {}", path.display()))
}

/// Stages one content object (a regular file or a symlink) at `rel`
/// under `rootfs`.
fn write_one(
    writer: &mut ContentWriter<'_>,
    rootfs: &Path,
    rel: &Path,
    labeler: &Labeler,
) -> Result<String> {
    let path = &rootfs.join(rel);
    let meta = path
        .symlink_metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    let label = labeler.label(rel, meta.mode())?;
    let (target, xattrs) = if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)
            .with_context(|| format!("reading the link {}", path.display()))?;
        let target = target
            .into_os_string()
            .into_string()
            .map_err(|t| anyhow::anyhow!("{}: link target {t:?} is not UTF-8", path.display()))?;
        // A symlink carries only its label, as libostree commits them.
        let xattrs = label.map(|l| {
            let ty = glib::VariantTy::new("(ayay)").expect("a valid variant type");
            glib::Variant::array_from_iter_with_type(
                ty,
                [glib::Variant::tuple_from_iter([
                    glib::Variant::array_from_fixed_array(SELINUX_XATTR),
                    glib::Variant::array_from_fixed_array(&l),
                ])],
            )
        });
        (target, xattrs)
    } else {
        (String::new(), xattrs_of(path, label)?)
    };
    let file = FileMeta::from_metadata(&meta, target, xattrs);
    writer
        .write(path, &file, meta.len())
        .with_context(|| format!("writing {}", path.display()))
}

fn walk(root: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.with_context(|| format!("walking {}", root.display()))?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .to_path_buf();
        let ft = entry.file_type();
        if ft.is_dir() {
            out.push(Entry::Dir(rel));
        } else if ft.is_file() || ft.is_symlink() {
            out.push(Entry::Content(rel));
        } else {
            // OSTree commits hold no devices, fifos or sockets.
            tracing::warn!(path = %entry.path().display(), "special file left out of the commit");
        }
    }
    Ok(out)
}

/// Writes `rootfs` into the repository at `repo_path` (opened as `repo`,
/// in whose transaction the caller is) and returns the root's mtree.
/// With `selinux`, every entry is labelled by the tree's own policy.
pub fn write_tree(
    repo: &ostree::Repo,
    repo_path: &Path,
    rootfs: &Path,
    threads: usize,
    selinux: bool,
) -> Result<ostree::MutableTree> {
    let labeler = || -> Result<Labeler> {
        if selinux {
            Labeler::load(rootfs)
        } else {
            Ok(Labeler { policy: None })
        }
    };
    let entries = walk(rootfs)?;
    let contents: Vec<&PathBuf> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Content(p) => Some(p),
            Entry::Dir(_) => None,
        })
        .collect();
    // Big files first, taken in turn, so threads finish together.
    let mut sized: Vec<(u64, &PathBuf)> = contents
        .iter()
        .map(|p| {
            let len = rootfs
                .join(p)
                .symlink_metadata()
                .map(|m| m.len())
                .unwrap_or(0);
            (len, *p)
        })
        .collect();
    sized.sort_by_key(|s| std::cmp::Reverse(s.0));
    let threads = threads.max(1).min(sized.len().max(1));
    let store = ContentStore::new(repo, repo_path)?;
    let next = AtomicUsize::new(0);
    let checksums: HashMap<PathBuf, String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (store, next, sized) = (&store, &next, &sized);
                scope.spawn(move || -> Result<Vec<(PathBuf, String)>> {
                    let labeler = labeler()?;
                    let mut writer = store.writer();
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((_, rel)) = sized.get(i) else {
                            return Ok(out);
                        };
                        let checksum = write_one(&mut writer, rootfs, rel, &labeler)?;
                        out.push(((*rel).clone(), checksum));
                    }
                })
            })
            .collect();
        let mut all = HashMap::new();
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
            all.extend(part);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    let written = store.publish()?;
    tracing::debug!(files = checksums.len(), written, "content objects");

    let labeler = labeler()?;
    let root = ostree::MutableTree::new();
    let mut dirs: HashMap<PathBuf, ostree::MutableTree> = HashMap::new();
    for entry in &entries {
        match entry {
            Entry::Dir(rel) => {
                let path = rootfs.join(rel);
                let info = file_info(&path)?;
                let label = labeler.label(rel, info.attribute_uint32("unix::mode"))?;
                let meta =
                    ostree::create_directory_metadata(&info, xattrs_of(&path, label)?.as_ref());
                let checksum = repo
                    .write_metadata(
                        ostree::ObjectType::DirMeta,
                        None,
                        &meta,
                        gio::Cancellable::NONE,
                    )
                    .with_context(|| format!("writing the metadata of {}", path.display()))?;
                let tree = if rel.as_os_str().is_empty() {
                    root.clone()
                } else {
                    let parent = &dirs[rel.parent().unwrap_or(Path::new(""))];
                    parent
                        .ensure_dir(&name(rel))
                        .with_context(|| format!("adding {}", rel.display()))?
                };
                tree.set_metadata_checksum(&checksum.to_hex());
                dirs.insert(rel.clone(), tree);
            }
            Entry::Content(rel) => {
                let parent = &dirs[rel.parent().unwrap_or(Path::new(""))];
                parent
                    .replace_file(&name(rel), &checksums[rel])
                    .with_context(|| format!("adding {}", rel.display()))?;
            }
        }
    }
    Ok(root)
}

fn name(rel: &Path) -> String {
    rel.file_name()
        .unwrap_or(OsStr::new(""))
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    fn mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Symlinks (relative, absolute, dangling), xattrs, hardlinks, empty
    /// and duplicate files, a file above the whole-file limit, odd modes.
    fn odd_tree(tree: &Path) {
        std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
        std::fs::create_dir_all(tree.join("empty")).unwrap();
        std::fs::create_dir_all(tree.join("tmp")).unwrap();
        let mut big = vec![0u8; (64 << 20) + 4096];
        for (i, b) in big.iter_mut().enumerate().step_by(7) {
            *b = (i % 251) as u8;
        }
        std::fs::write(tree.join("usr/big"), &big).unwrap();
        std::fs::write(tree.join("usr/bin/tool"), vec![7u8; 300_000]).unwrap();
        mode(&tree.join("usr/bin/tool"), 0o4755);
        std::fs::write(tree.join("usr/bin/group-tool"), b"#!/bin/sh\n").unwrap();
        mode(&tree.join("usr/bin/group-tool"), 0o2711);
        std::fs::write(tree.join("usr/secret"), b"0600").unwrap();
        mode(&tree.join("usr/secret"), 0o600);
        std::fs::write(tree.join("usr/a"), "a").unwrap();
        std::fs::write(tree.join("usr/same-as-a"), "a").unwrap();
        std::fs::hard_link(tree.join("usr/a"), tree.join("usr/bin/a-link")).unwrap();
        std::fs::write(tree.join("usr/empty-file"), "").unwrap();
        std::fs::write(tree.join("usr/empty-too"), "").unwrap();
        mode(&tree.join("empty"), 0o700);
        mode(&tree.join("tmp"), 0o1777);
        std::os::unix::fs::symlink("usr/bin", tree.join("bin")).unwrap();
        std::os::unix::fs::symlink("/usr/a", tree.join("usr/abs")).unwrap();
        std::os::unix::fs::symlink("nowhere", tree.join("usr/dangling")).unwrap();
        xattr::set(tree.join("usr/a"), "user.corral", b"yes").unwrap();
        xattr::set(tree.join("usr/bin/tool"), "user.z", b"").unwrap();
        xattr::set(tree.join("usr/bin/tool"), "user.b", b"\0binary\xff").unwrap();
        xattr::set(tree.join("usr"), "user.dir", b"d").unwrap();
    }

    fn fsck(repo: &Path) {
        let out = Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .arg("fsck")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ostree fsck: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn objects(repo: &Path, ext: &str) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = walkdir::WalkDir::new(repo.join("objects"))
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.path().extension().is_some_and(|x| x == ext))
            .map(|e| {
                let name = e.path().strip_prefix(repo).unwrap().display().to_string();
                (name, e.metadata().unwrap().len())
            })
            .collect();
        out.sort();
        out
    }

    /// The same tree through libostree's writer and ours, each into its
    /// own repository: the same root checksums and the same content
    /// objects, no bigger, and `ostree fsck` accepts ours.
    #[test]
    fn writes_what_libostree_writes() {
        let dir = tempfile::Builder::new().tempdir_in("/var/tmp").unwrap();
        let tree = dir.path().join("tree");
        odd_tree(&tree);
        let commit = |name: &str, ours: bool| {
            let repo_path = dir.path().join(name);
            let repo = crate::repo::open_or_create(&repo_path).unwrap();
            let guard = repo.auto_transaction(gio::Cancellable::NONE).unwrap();
            let mtree = if ours {
                write_tree(&repo, &repo_path, &tree, 3, false).unwrap()
            } else {
                let mtree = ostree::MutableTree::new();
                repo.write_directory_to_mtree(
                    &gio::File::for_path(&tree),
                    &mtree,
                    None,
                    gio::Cancellable::NONE,
                )
                .unwrap();
                mtree
            };
            let root = repo.write_mtree(&mtree, gio::Cancellable::NONE).unwrap();
            let root = root.downcast::<ostree::RepoFile>().unwrap();
            let checksum = repo
                .write_commit_with_time(
                    None,
                    Some("s"),
                    None,
                    None,
                    &root,
                    0,
                    gio::Cancellable::NONE,
                )
                .unwrap();
            guard.commit(gio::Cancellable::NONE).unwrap();
            repo.set_ref_immediate(None, "r", Some(&checksum), gio::Cancellable::NONE)
                .unwrap();
            (
                repo_path,
                root.tree_get_contents_checksum().unwrap().to_string(),
                root.tree_get_metadata_checksum().unwrap().to_string(),
            )
        };
        let theirs = commit("theirs", false);
        let ours = commit("ours", true);
        let (ours_objs, theirs_objs) = (objects(&ours.0, "filez"), objects(&theirs.0, "filez"));
        let names = |v: &[(String, u64)]| v.iter().map(|o| o.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&ours_objs), names(&theirs_objs));
        assert_eq!(ours.1, theirs.1, "root contents checksum");
        assert_eq!(ours.2, theirs.2, "root metadata checksum");
        fsck(&ours.0);
        let size = |v: &[(String, u64)]| v.iter().map(|o| o.1).sum::<u64>();
        assert!(
            size(&ours_objs) <= size(&theirs_objs),
            "ours {} bytes, libostree's {}",
            size(&ours_objs),
            size(&theirs_objs)
        );
        // Nothing is left staged.
        let staged: Vec<_> = std::fs::read_dir(ours.0.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with("corral-staging-"))
            .collect();
        assert!(staged.is_empty(), "{staged:?}");
    }

    /// A second write of the same tree stages nothing: the objects are
    /// found by checksum and not compressed again.
    #[test]
    fn existing_objects_are_not_rewritten() {
        let dir = tempfile::Builder::new().tempdir_in("/var/tmp").unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("a"), "a").unwrap();
        std::fs::write(tree.join("b"), "a").unwrap();
        let repo_path = dir.path().join("repo");
        let repo = crate::repo::open_or_create(&repo_path).unwrap();
        let store = ContentStore::new(&repo, &repo_path).unwrap();
        let meta = FileMeta::from_metadata(
            &tree.join("a").symlink_metadata().unwrap(),
            String::new(),
            None,
        );
        let mut w = store.writer();
        let a = w.write(&tree.join("a"), &meta, 1).unwrap();
        let b = w.write(&tree.join("b"), &meta, 1).unwrap();
        assert_eq!(a, b);
        drop(w);
        assert_eq!(store.publish().unwrap(), 1);
        let store = ContentStore::new(&repo, &repo_path).unwrap();
        assert_eq!(store.writer().write(&tree.join("a"), &meta, 1).unwrap(), a);
        assert_eq!(store.publish().unwrap(), 0);
    }
}
