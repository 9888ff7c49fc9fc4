//! Writing a tree into an archive repository with every core.
//!
//! libostree's own `write_directory_to_mtree` compresses each content
//! object with zlib on one thread. Here the regular files and symlinks are
//! split among worker threads, each with its own `Repo` handle and
//! transaction, writing content objects with `ostree_repo_write_content`;
//! the main thread then builds the `MutableTree` from their checksums and
//! writes directory metadata, dirtrees and the commit. The objects are the
//! ones libostree itself would write (same headers, same checksums).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ostree::gio::{self, prelude::*};
use ostree::glib;

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
        if let Some(value) = xattr::get(path, &name)
            .with_context(|| format!("reading xattrs of {}", path.display()))?
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

/// Writes one content object (a regular file or a symlink) at `rel`
/// under `rootfs`.
fn write_one(repo: &ostree::Repo, rootfs: &Path, rel: &Path, labeler: &Labeler) -> Result<String> {
    let path = &rootfs.join(rel);
    let info = file_info(path)?;
    let label = labeler.label(rel, info.attribute_uint32("unix::mode"))?;
    let xattrs = if info.file_type() == gio::FileType::SymbolicLink {
        // A symlink carries only its label, as libostree commits them.
        label.map(|l| {
            let ty = glib::VariantTy::new("(ayay)").expect("a valid variant type");
            glib::Variant::array_from_iter_with_type(
                ty,
                [glib::Variant::tuple_from_iter([
                    glib::Variant::array_from_fixed_array(SELINUX_XATTR),
                    glib::Variant::array_from_fixed_array(&l),
                ])],
            )
        })
    } else {
        xattrs_of(path, label)?
    };
    let input: gio::InputStream = if info.file_type() == gio::FileType::Regular {
        gio::File::for_path(path)
            .read(gio::Cancellable::NONE)
            .with_context(|| format!("opening {}", path.display()))?
            .upcast()
    } else {
        gio::MemoryInputStream::new().upcast()
    };
    let (stream, length) =
        ostree::raw_file_to_content_stream(&input, &info, xattrs.as_ref(), gio::Cancellable::NONE)
            .with_context(|| format!("reading {}", path.display()))?;
    let checksum = repo
        .write_content(None, &stream, length, gio::Cancellable::NONE)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(checksum.to_hex())
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
    // Big files first, spread round-robin, so threads finish together.
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
    let threads = threads.max(1);
    let mut shares: Vec<Vec<&PathBuf>> = vec![Vec::new(); threads];
    for (i, (_, p)) in sized.into_iter().enumerate() {
        shares[i % threads].push(p);
    }
    let checksums: HashMap<PathBuf, String> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                scope.spawn(move || -> Result<Vec<(PathBuf, String)>> {
                    let repo = crate::repo::open(repo_path)?;
                    let labeler = labeler()?;
                    let guard = repo
                        .auto_transaction(gio::Cancellable::NONE)
                        .context("starting a transaction")?;
                    let mut out = Vec::with_capacity(share.len());
                    for rel in share {
                        out.push((rel.clone(), write_one(&repo, rootfs, rel, &labeler)?));
                    }
                    guard
                        .commit(gio::Cancellable::NONE)
                        .context("committing the transaction")?;
                    Ok(out)
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

    /// The same tree through libostree's writer and ours: the same root.
    #[test]
    fn writes_what_libostree_writes() {
        let dir = tempfile::Builder::new().tempdir_in("/var/tmp").unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
        std::fs::create_dir_all(tree.join("empty")).unwrap();
        std::fs::write(tree.join("usr/bin/tool"), vec![7u8; 300_000]).unwrap();
        std::fs::set_permissions(
            tree.join("usr/bin/tool"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        std::fs::write(tree.join("usr/a"), "a").unwrap();
        std::fs::write(tree.join("usr/empty-file"), "").unwrap();
        std::fs::set_permissions(tree.join("empty"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::os::unix::fs::symlink("usr/bin", tree.join("bin")).unwrap();
        let _ = xattr::set(tree.join("usr/a"), "user.corral", b"yes");
        let repo_path = dir.path().join("repo");
        let repo = crate::repo::open_or_create(&repo_path).unwrap();

        let guard = repo.auto_transaction(gio::Cancellable::NONE).unwrap();
        let theirs = ostree::MutableTree::new();
        repo.write_directory_to_mtree(
            &gio::File::for_path(&tree),
            &theirs,
            None,
            gio::Cancellable::NONE,
        )
        .unwrap();
        let theirs = repo.write_mtree(&theirs, gio::Cancellable::NONE).unwrap();
        let ours = write_tree(&repo, &repo_path, &tree, 3, false).unwrap();
        let ours = repo.write_mtree(&ours, gio::Cancellable::NONE).unwrap();
        guard.commit(gio::Cancellable::NONE).unwrap();
        let checksum = |f: &gio::File| {
            f.clone()
                .downcast::<ostree::RepoFile>()
                .unwrap()
                .tree_get_contents_checksum()
        };
        assert_eq!(checksum(&ours), checksum(&theirs));
        let meta = |f: &gio::File| {
            f.clone()
                .downcast::<ostree::RepoFile>()
                .unwrap()
                .tree_get_metadata_checksum()
        };
        assert_eq!(meta(&ours), meta(&theirs));
    }
}
