//! A commit's tree, read once: every directory with its dirtree and
//! dirmeta objects, every content object with the paths that use it.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use ostree::glib;

/// A directory below the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeDir {
    /// The path in the commit, e.g. `usr/bin`.
    pub path: String,
    pub tree: String,
    pub meta: String,
}

/// What a commit holds.
#[derive(Debug, Clone)]
pub struct CommitTree {
    pub checksum: String,
    pub commit: glib::Variant,
    pub root_tree: String,
    pub root_meta: String,
    /// Directories in walk order (a parent before its children, names in
    /// byte order).
    pub dirs: Vec<TreeDir>,
    /// Each content object and its paths in the commit, in walk order.
    pub files: BTreeMap<String, Vec<String>>,
}

fn hex_of(v: &glib::Variant) -> String {
    hex::encode(&*v.data_as_bytes())
}

/// Reads the tree of commit `checksum`.
pub fn walk_commit(repo: &ostree::Repo, checksum: &str) -> Result<CommitTree> {
    let (commit, _) = repo
        .load_commit(checksum)
        .with_context(|| format!("loading commit {checksum}"))?;
    let root_tree = hex_of(&commit.child_value(6));
    let root_meta = hex_of(&commit.child_value(7));
    let mut tree = CommitTree {
        checksum: checksum.to_string(),
        commit,
        root_tree: root_tree.clone(),
        root_meta,
        dirs: Vec::new(),
        files: BTreeMap::new(),
    };
    walk_dir(repo, "", &root_tree, &mut tree)?;
    Ok(tree)
}

fn walk_dir(repo: &ostree::Repo, path: &str, dirtree: &str, out: &mut CommitTree) -> Result<()> {
    let v = repo
        .load_variant(ostree::ObjectType::DirTree, dirtree)
        .with_context(|| format!("loading dirtree {dirtree} of /{path}"))?;
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}/{name}")
        }
    };
    let files = v.child_value(0);
    for i in 0..files.n_children() {
        let entry = files.child_value(i);
        let name: String = entry.child_value(0).get().context("dirtree file name")?;
        out.files
            .entry(hex_of(&entry.child_value(1)))
            .or_default()
            .push(join(&name));
    }
    let dirs = v.child_value(1);
    for i in 0..dirs.n_children() {
        let entry = dirs.child_value(i);
        let name: String = entry.child_value(0).get().context("dirtree dir name")?;
        let dir = TreeDir {
            path: join(&name),
            tree: hex_of(&entry.child_value(1)),
            meta: hex_of(&entry.child_value(2)),
        };
        let (child_path, child_tree) = (dir.path.clone(), dir.tree.clone());
        out.dirs.push(dir);
        walk_dir(repo, &child_path, &child_tree, out)?;
    }
    Ok(())
}
