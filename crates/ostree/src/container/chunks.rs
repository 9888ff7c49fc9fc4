//! Which content goes into which layer. Files are grouped by the package
//! that owns them (the rpmdb inside the commit says which), and each
//! package always falls into the same group, chosen by a hash of its
//! name: a release that changes one package changes that group's layer
//! (and the commit layer, which holds the new commit), and a package
//! added or removed moves nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use ostree::gio;
use ostree::gio::prelude::*;
use sha2::{Digest, Sha256};

use super::walk::CommitTree;

/// Where rpm keeps its database inside a commit, newest layout first.
const RPMDB_DIRS: [&str; 2] = ["usr/lib/sysimage/rpm", "usr/share/rpm"];

/// One layer's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The packages whose files it holds, sorted.
    pub components: Vec<String>,
    /// Content object checksums, in order of their first path.
    pub objects: Vec<String>,
}

/// Content split into package layers and the rest (files no package
/// owns), which goes into the commit layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunking {
    pub chunks: Vec<Chunk>,
    pub rest: Vec<String>,
}

/// The group package `name` falls in among `groups`.
pub fn group_of(name: &str, groups: usize) -> usize {
    let digest = Sha256::digest(name.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (n % groups.max(1) as u64) as usize
}

/// A group's packages and its `(first path, checksum)` objects.
type Group = (BTreeSet<String>, Vec<(String, String)>);

/// Splits `tree`'s content into at most `max_layers` layers, the last of
/// which is the commit layer (`rest`). `owners` maps commit paths
/// (`usr/bin/sh`) to the package owning them.
pub fn plan(tree: &CommitTree, owners: &BTreeMap<String, String>, max_layers: usize) -> Chunking {
    let groups = max_layers.saturating_sub(1);
    let mut by_group: BTreeMap<usize, Group> = BTreeMap::new();
    let mut rest = Vec::new();
    for (checksum, paths) in &tree.files {
        let owner = paths.iter().filter_map(|p| owners.get(p)).min();
        let first = paths.iter().min().cloned().unwrap_or_default();
        match owner {
            Some(pkg) if groups > 0 => {
                let g = by_group.entry(group_of(pkg, groups)).or_default();
                g.0.insert(pkg.clone());
                g.1.push((first, checksum.clone()));
            }
            _ => rest.push((first, checksum.clone())),
        }
    }
    let ordered = |mut v: Vec<(String, String)>| {
        v.sort();
        v.into_iter().map(|(_, c)| c).collect::<Vec<_>>()
    };
    let mut chunks: Vec<Chunk> = by_group
        .into_values()
        .map(|(components, objects)| Chunk {
            components: components.into_iter().collect(),
            objects: ordered(objects),
        })
        .collect();
    // Layers in order of their packages' names, not of the hash.
    chunks.sort_by(|a, b| a.components.cmp(&b.components));
    Chunking {
        chunks,
        rest: ordered(rest),
    }
}

/// The packages owning each path of `tree`, read from its rpmdb with
/// `rpm`; empty when the commit has no rpmdb (a ready tree).
pub fn package_owners(repo: &ostree::Repo, tree: &CommitTree) -> Result<BTreeMap<String, String>> {
    let Some(dir) = RPMDB_DIRS.iter().find(|d| {
        tree.files
            .values()
            .flatten()
            .any(|p| p.strip_prefix(**d).is_some_and(|r| r.starts_with('/')))
    }) else {
        return Ok(BTreeMap::new());
    };
    let dbpath = tempfile::tempdir().context("creating a directory for the rpmdb")?;
    for (checksum, paths) in &tree.files {
        for p in paths {
            let Some(name) = p
                .strip_prefix(*dir)
                .and_then(|r| r.strip_prefix('/'))
                .filter(|n| !n.contains('/'))
            else {
                continue;
            };
            copy_file(repo, checksum, &dbpath.path().join(name))?;
        }
    }
    let out = Command::new("rpm")
        .arg("--dbpath")
        .arg(dbpath.path())
        .args(["-qa", "--qf", "[%{=NAME}\t%{FILENAMES}\n]"])
        .output()
        .context("running rpm to read the commit's rpmdb")?;
    anyhow::ensure!(
        out.status.success(),
        "rpm could not read the rpmdb of {}: {}",
        tree.checksum,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(parse_owners(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `NAME\tPATH` lines into commit paths: `/etc` files live in
/// `usr/etc` in a commit.
pub fn parse_owners(text: &str) -> BTreeMap<String, String> {
    let mut owners = BTreeMap::new();
    for line in text.lines() {
        let Some((name, path)) = line.split_once('\t') else {
            continue;
        };
        let path = path.trim_start_matches('/');
        let path = match path.strip_prefix("etc/") {
            Some(rest) => format!("usr/etc/{rest}"),
            None => path.to_string(),
        };
        // Two packages sharing a path: the first name wins, whatever rpm's order.
        owners
            .entry(path)
            .and_modify(|o: &mut String| {
                if name < o.as_str() {
                    *o = name.to_string();
                }
            })
            .or_insert_with(|| name.to_string());
    }
    owners
}

fn copy_file(repo: &ostree::Repo, checksum: &str, dest: &Path) -> Result<()> {
    let (input, _, _) = repo
        .load_file(checksum, gio::Cancellable::NONE)
        .with_context(|| format!("loading file object {checksum}"))?;
    let Some(input) = input else {
        return Ok(());
    };
    let mut file =
        std::fs::File::create(dest).with_context(|| format!("writing {}", dest.display()))?;
    std::io::copy(&mut input.into_read(), &mut file)
        .with_context(|| format!("writing {}", dest.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_map_etc_into_usr_and_pick_one_owner() {
        let owners =
            parse_owners("b\t/etc/shared\na\t/etc/shared\nhello\t/usr/bin/hello\n(none)\n");
        assert_eq!(owners["usr/etc/shared"], "a");
        assert_eq!(owners["usr/bin/hello"], "hello");
        assert_eq!(owners.len(), 2);
    }

    #[test]
    fn a_package_keeps_its_group() {
        // The group depends on the name and the number of groups only.
        let g = group_of("corral-hello", 49);
        assert!(g < 49);
        assert_eq!(group_of("corral-hello", 49), g);
        assert_eq!(group_of("anything", 0), 0);
    }
}
