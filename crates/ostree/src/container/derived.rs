//! Derived images: an OS image with container layers on top (a Dockerfile
//! `FROM` the OS image that adds files or packages). The layers after the
//! one whose diff ID the `ostree.final-diffid` label names are not in the
//! ostree format; they are applied, as a container engine applies them
//! (OCI whiteouts included), onto a checkout of the base commit, and the
//! result is written as a new commit whose metadata names the base commit
//! and the derived layers' digests.
//!
//! `/etc` in a derived layer is the deployment's default configuration,
//! which OSTree keeps at `/usr/etc`: it is written there.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ostree::gio;
use ostree::glib;
use ostree::glib::object::Cast;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::labels;

/// Commit metadata: the commit a derived commit was layered on.
pub const BASE_COMMIT_KEY: &str = "corral.derived.base-commit";
/// Commit metadata: the derived layers' digests, in order.
pub const LAYERS_KEY: &str = "corral.derived.layers";

/// How many of an image's layers are in the ostree format: up to the one
/// whose diff ID is the `ostree.final-diffid` label (all of them when the
/// label or the diff IDs are missing).
pub fn ostree_layer_count(config: &Value, layers: usize) -> usize {
    let diff_ids = config["rootfs"]["diff_ids"].as_array();
    let last = config["config"]["Labels"][labels::FINAL_DIFFID].as_str();
    match (diff_ids, last) {
        (Some(ids), Some(last)) => ids
            .iter()
            .position(|d| d.as_str() == Some(last))
            .map(|i| (i + 1).min(layers))
            .unwrap_or(layers),
        _ => layers,
    }
}

/// What [`apply`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DerivedCommit {
    pub commit: String,
    pub base: String,
    pub layers: Vec<String>,
}

/// The path of `entry` inside the root, `/etc` moved to `/usr/etc`;
/// `None` for the root itself. Paths that climb out are refused.
fn target_path(entry: &Path) -> Result<Option<PathBuf>> {
    let mut out = PathBuf::new();
    for c in entry.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            _ => bail!("layer entry {} leaves the root", entry.display()),
        }
    }
    if out.as_os_str().is_empty() {
        return Ok(None);
    }
    if let Ok(rest) = out.strip_prefix("etc") {
        return Ok(Some(Path::new("usr/etc").join(rest)));
    }
    Ok(Some(out))
}

fn remove_any(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    }
    .with_context(|| format!("removing {}", path.display()))
}

/// Applies one gzip (or plain) tar layer onto `root`, its digest checked.
fn apply_layer(root: &Path, blob: &Path, digest: &str) -> Result<()> {
    let data = std::fs::read(blob).with_context(|| format!("reading {}", blob.display()))?;
    let got = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
    ensure!(got == digest, "layer {digest} has digest {got}");
    let reader: Box<dyn Read> = if data.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(&data[..]))
    } else {
        Box::new(&data[..])
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    for entry in archive.entries().context("reading the layer")? {
        let mut entry = entry.context("reading the layer")?;
        let raw = entry.path()?.into_owned();
        let Some(rel) = target_path(&raw)? else {
            continue;
        };
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        // Nothing is written, removed or linked through a symbolic link
        // of the tree: an absolute one points at the host's files.
        let beneath = |p: &Path| {
            corral_oci::beneath::path_beneath(root, p)
                .with_context(|| format!("layer entry {}", raw.display()))
        };
        if name == ".wh..wh..opq" {
            // opaque: the directory's lower contents are gone (checked
            // through the marker's path, so the directory itself is no
            // link either: its "contents" would be the host's)
            beneath(&rel)?;
            let dir = root.join(&parent);
            if dir.is_dir() {
                for child in std::fs::read_dir(&dir)? {
                    remove_any(&child?.path())?;
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            remove_any(&beneath(&parent.join(hidden))?)?;
            continue;
        }
        let dest = beneath(&rel)?;
        // a file replaces whatever was there (never writes through a
        // hard link or a symlink of the checkout)
        if entry.header().entry_type() != tar::EntryType::Directory || !dest.is_dir() {
            remove_any(&dest)?;
        }
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        if entry.header().entry_type() == tar::EntryType::Link {
            let target = entry
                .link_name()?
                .with_context(|| format!("hard link {} without a target", raw.display()))?
                .into_owned();
            let target = target_path(&target)?
                .with_context(|| format!("hard link {} to the root", raw.display()))?;
            std::fs::hard_link(beneath(&target)?, &dest)
                .with_context(|| format!("linking {}", dest.display()))?;
            continue;
        }
        entry
            .unpack(&dest)
            .with_context(|| format!("writing {}", dest.display()))?;
    }
    Ok(())
}

/// Applies the layers `layers` (blobs of the OCI layout `layout`) onto a
/// checkout of `base` in `workdir` and writes the result as a commit with
/// `base`'s metadata and timestamp, plus [`BASE_COMMIT_KEY`] and
/// [`LAYERS_KEY`]. No ref is set.
pub fn apply(
    repo: &ostree::Repo,
    layout: &Path,
    base: &str,
    layers: &[String],
    workdir: &Path,
) -> Result<DerivedCommit> {
    std::fs::create_dir_all(workdir).with_context(|| format!("creating {}", workdir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix("derived-")
        .tempdir_in(workdir)
        .with_context(|| format!("creating a directory in {}", workdir.display()))?;
    let root = tmp.path().join("root");
    let opts = ostree::RepoCheckoutAtOptions {
        // copies: the layers must not write through hard links into the
        // repository's objects
        force_copy: true,
        ..Default::default()
    };
    repo.checkout_at(
        Some(&opts),
        libc_at_fdcwd(),
        &root,
        base,
        gio::Cancellable::NONE,
    )
    .with_context(|| format!("checking out {base}"))?;
    for digest in layers {
        let hex = digest
            .strip_prefix("sha256:")
            .with_context(|| format!("unsupported digest {digest}"))?;
        apply_layer(&root, &layout.join("blobs/sha256").join(hex), digest)
            .with_context(|| format!("applying derived layer {digest}"))?;
    }

    let (base_commit, _) = repo
        .load_commit(base)
        .with_context(|| format!("loading commit {base}"))?;
    let base_meta = base_commit.child_value(0);
    let timestamp = u64::from_be(base_commit.child_value(5).get::<u64>().unwrap_or(0));
    let dict = glib::VariantDict::new(Some(&base_meta));
    dict.insert(BASE_COMMIT_KEY, base);
    dict.insert(LAYERS_KEY, layers.to_vec());

    let guard = repo
        .auto_transaction(gio::Cancellable::NONE)
        .context("starting a transaction")?;
    let mtree = ostree::MutableTree::new();
    repo.write_directory_to_mtree(
        &gio::File::for_path(&root),
        &mtree,
        None,
        gio::Cancellable::NONE,
    )
    .context("writing the derived tree")?;
    let tree = repo
        .write_mtree(&mtree, gio::Cancellable::NONE)
        .context("writing the derived tree")?;
    let tree = tree
        .downcast::<ostree::RepoFile>()
        .map_err(|_| anyhow::anyhow!("write_mtree returned no RepoFile"))?;
    let subject = format!("{base} with {} derived layer(s)", layers.len());
    let commit = repo
        .write_commit_with_time(
            None,
            Some(&subject),
            None,
            Some(&dict.end()),
            &tree,
            timestamp,
            gio::Cancellable::NONE,
        )
        .context("writing the derived commit")?;
    guard
        .commit(gio::Cancellable::NONE)
        .context("committing the transaction")?;
    Ok(DerivedCommit {
        commit: commit.to_string(),
        base: base.to_string(),
        layers: layers.to_vec(),
    })
}

/// The base commit and derived layers recorded in a commit's metadata.
pub fn derived_of(repo: &ostree::Repo, commit: &str) -> Option<(String, Vec<String>)> {
    let (v, _) = repo.load_commit(commit).ok()?;
    let dict = glib::VariantDict::new(Some(&v.child_value(0)));
    let base = dict.lookup::<String>(BASE_COMMIT_KEY).ok()??;
    let layers = dict
        .lookup::<Vec<String>>(LAYERS_KEY)
        .ok()
        .flatten()
        .unwrap_or_default();
    Some((base, layers))
}

const fn libc_at_fdcwd() -> i32 {
    -100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_moves_to_usr_etc_and_nothing_climbs_out() {
        assert_eq!(
            target_path(Path::new("etc/motd")).unwrap(),
            Some(PathBuf::from("usr/etc/motd"))
        );
        assert_eq!(
            target_path(Path::new("./usr/bin/x")).unwrap(),
            Some(PathBuf::from("usr/bin/x"))
        );
        assert_eq!(target_path(Path::new("./")).unwrap(), None);
        assert!(target_path(Path::new("usr/../../x")).is_err());
    }

    /// A layer as an engine writes one: a file, a whiteout of a lower
    /// file, an opaque directory, /etc.
    #[test]
    fn layers_apply_with_whiteouts_and_etc_in_usr_etc() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for d in ["usr/bin", "usr/share/gone", "usr/share/opaque", "usr/etc"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("usr/bin/old"), "old").unwrap();
        std::fs::write(root.join("usr/bin/kept"), "kept").unwrap();
        std::fs::write(root.join("usr/share/opaque/lower"), "lower").unwrap();
        std::fs::write(root.join("usr/share/gone/x"), "x").unwrap();

        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut h, path, data).unwrap();
        };
        add("usr/bin/new", b"new");
        add("usr/bin/.wh.old", b"");
        add("usr/share/.wh.gone", b"");
        add("usr/share/opaque/.wh..wh..opq", b"");
        add("usr/share/opaque/upper", b"upper");
        add("etc/site.conf", b"site");
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let blob = gz.finish().unwrap();
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&blob)));
        let path = dir.path().join("blob");
        std::fs::write(&path, &blob).unwrap();

        let wrong = format!("sha256:{}", "0".repeat(64));
        assert!(apply_layer(&root, &path, &wrong).is_err());
        apply_layer(&root, &path, &digest).unwrap();
        let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
        assert_eq!(read("usr/bin/new").as_deref(), Some("new"));
        assert_eq!(read("usr/bin/kept").as_deref(), Some("kept"));
        assert_eq!(read("usr/bin/old"), None);
        assert!(!root.join("usr/share/gone").exists());
        assert_eq!(read("usr/share/opaque/lower"), None);
        assert_eq!(read("usr/share/opaque/upper").as_deref(), Some("upper"));
        assert_eq!(read("usr/etc/site.conf").as_deref(), Some("site"));
        assert!(!root.join("etc").exists());
    }

    /// A layer of one entry at `path`, as a blob file; its digest.
    fn one_entry_layer(dir: &Path, name: &str, path: &str) -> (PathBuf, String) {
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut h, path, &b"evil\n"[..]).unwrap();
        let blob = builder.into_inner().unwrap();
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&blob)));
        let file = dir.join(name);
        std::fs::write(&file, &blob).unwrap();
        (file, digest)
    }

    #[test]
    fn layers_never_write_or_remove_through_a_link_out_of_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("passwd"), "the host's\n").unwrap();
        std::fs::create_dir(host.path().join("opaque")).unwrap();
        std::fs::write(host.path().join("opaque/keep"), "the host's\n").unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("usr")).unwrap();
        // an absolute link in the base tree, pointing at the host's files
        std::os::unix::fs::symlink(host.path(), root.join("usr/away")).unwrap();
        for (name, entry) in [
            ("write", "usr/away/passwd"),
            ("whiteout", "usr/away/.wh.passwd"),
            ("opaque", "usr/away/opaque/.wh..wh..opq"),
            ("opaque-link", "usr/away/.wh..wh..opq"),
        ] {
            let (blob, digest) = one_entry_layer(dir.path(), name, entry);
            let err = apply_layer(&root, &blob, &digest).unwrap_err();
            assert!(
                format!("{err:#}").contains("symbolic link"),
                "{entry}: {err:#}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(host.path().join("passwd")).unwrap(),
            "the host's\n"
        );
        assert!(host.path().join("opaque/keep").exists());
        // the link itself may be replaced by a layer's file
        let (blob, digest) = one_entry_layer(dir.path(), "replace", "usr/away");
        apply_layer(&root, &blob, &digest).unwrap();
        assert!(!root
            .join("usr/away")
            .symlink_metadata()
            .unwrap()
            .is_symlink());
        assert!(host.path().join("passwd").exists());
    }

    #[test]
    fn the_ostree_layers_end_at_the_final_diff_id() {
        let config = serde_json::json!({
            "config": {"Labels": {"ostree.final-diffid": "sha256:b"}},
            "rootfs": {"diff_ids": ["sha256:a", "sha256:b", "sha256:c"]},
        });
        assert_eq!(ostree_layer_count(&config, 3), 2);
        assert_eq!(ostree_layer_count(&serde_json::json!({}), 3), 3);
    }
}
