//! A commit to an OCI image layout in the ostree container format: first
//! the commit layer (the commit object, then its signatures, the directory
//! objects and the files no package owns), then one layer per package
//! group ([`super::chunks`]); the `ostree.final-diffid` label names the
//! last of them. That order is the format's: ostree-ext, and so rpm-ostree
//! and bootc, read the first layer as the commit layer and the layers after
//! the final diff ID as derived layers. Gzip with a fixed header and fixed
//! tar headers: the same commit exported twice gives the same manifest
//! digest.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use corral_oci::{MediaType, OciLayoutWriter};
use ostree::gio;
use ostree::glib;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::chunks::{self, Chunking};
use super::labels;
use super::objects::{checkout_path, ObjectTarWriter};
use super::walk::{walk_commit, CommitTree};
use super::LAYER_MEDIA_TYPE;

/// The default upper bound on layers.
pub const DEFAULT_MAX_LAYERS: usize = 50;

/// How to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// At most this many layers, the commit layer included; 1 puts
    /// everything in one layer.
    pub max_layers: usize,
    /// GOARCH spelling, e.g. `amd64`.
    pub architecture: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            max_layers: DEFAULT_MAX_LAYERS,
            architecture: "amd64".into(),
        }
    }
}

/// One layer written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportedLayer {
    /// `sha256:…` of the compressed blob.
    pub digest: String,
    /// `sha256:…` of the tar stream.
    pub diff_id: String,
    pub size: u64,
    /// The packages whose files it holds; empty for the commit layer.
    pub components: Vec<String>,
}

/// The image written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportedImage {
    pub layout: PathBuf,
    pub tag: String,
    pub commit: String,
    pub version: Option<String>,
    pub manifest_digest: String,
    pub layers: Vec<ExportedLayer>,
}

/// Exports commit `rev` (a ref or checksum) of `repo` as image `tag` in a
/// new OCI layout at `dest` (which must not exist).
pub fn export_commit(
    repo: &ostree::Repo,
    rev: &str,
    dest: &Path,
    tag: &str,
    opts: &ExportOptions,
) -> Result<ExportedImage> {
    let checksum = repo
        .resolve_rev(rev, false)
        .with_context(|| format!("resolving {rev}"))?
        .with_context(|| format!("no commit {rev}"))?
        .to_string();
    let tree = walk_commit(repo, &checksum)?;
    let owners = if opts.max_layers > 1 {
        chunks::package_owners(repo, &tree)?
    } else {
        BTreeMap::new()
    };
    let plan = chunks::plan(&tree, &owners, opts.max_layers);
    let layout = OciLayoutWriter::create(dest)
        .with_context(|| format!("creating the layout {}", dest.display()))?;

    let detached = repo
        .read_commit_detached_metadata(&checksum, gio::Cancellable::NONE)
        .with_context(|| format!("reading the signatures of {checksum}"))?;
    let mut layers = vec![write_layer(&layout, repo, |w| {
        commit_layer(w, &tree, detached.as_ref(), &plan)
    })?];
    for chunk in &plan.chunks {
        let mut layer = write_layer(&layout, repo, |w| {
            for object in &chunk.objects {
                w.content(object, &tree.files[object])?;
            }
            Ok(())
        })?;
        layer.components = chunk.components.clone();
        layers.push(layer);
    }

    let meta = glib::VariantDict::new(Some(&tree.commit.child_value(0)));
    let version = meta
        .lookup::<String>(crate::commit::keys::VERSION)
        .ok()
        .flatten();
    let bootable = meta
        .lookup::<bool>(crate::commit::keys::BOOTABLE)
        .ok()
        .flatten()
        .unwrap_or(false);
    let timestamp = ostree::commit_get_timestamp(&tree.commit) as i64;
    let final_diffid = layers.last().expect("a commit layer").diff_id.clone();

    let mut image_labels = BTreeMap::new();
    image_labels.insert(labels::COMMIT, checksum.clone());
    image_labels.insert(labels::FINAL_DIFFID, final_diffid.clone());
    image_labels.insert(labels::BOOTC, "1".to_string());
    if bootable {
        image_labels.insert(labels::BOOTABLE, "true".to_string());
    }
    if let Some(v) = &version {
        image_labels.insert(labels::VERSION, v.clone());
        image_labels.insert(labels::OCI_VERSION, v.clone());
    }
    let created = corral_oci::rfc3339(timestamp).context("the commit's timestamp")?;
    let history: Vec<Value> = layers
        .iter()
        .map(|l| {
            let by = if l.components.is_empty() {
                format!("ostree commit {checksum}")
            } else {
                l.components.join(" ")
            };
            json!({"created": created, "created_by": by})
        })
        .collect();
    let config = json!({
        "architecture": opts.architecture,
        "os": "linux",
        "created": created,
        "config": {"Labels": image_labels},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
        "history": history,
    });
    let config = layout
        .write_json_blob(&config, MediaType::ImageConfig, "image config")
        .context("writing the image config")?;

    let mut annotations = BTreeMap::new();
    annotations.insert(labels::COMMIT, checksum.clone());
    annotations.insert(labels::FINAL_DIFFID, final_diffid);
    if let Some(v) = &version {
        annotations.insert(labels::VERSION, v.clone());
        annotations.insert(labels::OCI_VERSION, v.clone());
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers.iter().map(|l| {
            let mut d = json!({"mediaType": LAYER_MEDIA_TYPE, "digest": l.digest, "size": l.size});
            if !l.components.is_empty() {
                d["annotations"] = json!({labels::COMPONENTS: l.components.join(",")});
            }
            d
        }).collect::<Vec<_>>(),
        "annotations": annotations,
    });
    let manifest = layout
        .write_json_blob(&manifest, MediaType::ImageManifest, "image manifest")
        .context("writing the image manifest")?;
    let mut manifest_desc = serde_json::to_value(&manifest).context("the manifest descriptor")?;
    manifest_desc["annotations"] = json!({labels::REF_NAME: tag});
    let index: oci_spec::image::ImageIndex = serde_json::from_value(json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_desc],
    }))
    .context("building index.json")?;
    let layout_path = layout
        .commit(&index)
        .with_context(|| format!("writing the layout {}", dest.display()))?;
    tracing::info!(commit = %checksum, layers = layers.len(), manifest = %manifest.digest(), "commit exported");
    Ok(ExportedImage {
        layout: layout_path,
        tag: tag.to_string(),
        commit: checksum,
        version,
        manifest_digest: manifest.digest().to_string(),
        layers,
    })
}

/// The commit, its signatures, every directory (objects and checkout
/// entries) and the content no package owns, in that order: a reader
/// finds the commit first and can check it before anything else.
fn commit_layer<W: Write>(
    w: &mut ObjectTarWriter<'_, W>,
    tree: &CommitTree,
    detached: Option<&glib::Variant>,
    plan: &Chunking,
) -> Result<()> {
    w.metadata(ostree::ObjectType::Commit, &tree.checksum, &tree.commit)?;
    if let Some(detached) = detached {
        w.metadata(ostree::ObjectType::CommitMeta, &tree.checksum, detached)?;
    }
    w.load_metadata(ostree::ObjectType::DirMeta, &tree.root_meta)?;
    w.load_metadata(ostree::ObjectType::DirTree, &tree.root_tree)?;
    let mut has_var_tmp = false;
    for dir in &tree.dirs {
        w.load_metadata(ostree::ObjectType::DirMeta, &dir.meta)?;
        w.load_metadata(ostree::ObjectType::DirTree, &dir.tree)?;
        // The image's own sysroot/ holds the repository.
        if dir.path == "sysroot" || dir.path.starts_with("sysroot/") {
            continue;
        }
        has_var_tmp |= dir.path == "var/tmp";
        w.checkout_directory(&checkout_path(&dir.path), &dir.meta)?;
    }
    for object in &plan.rest {
        w.content(object, &tree.files[object])?;
    }
    // Containers expect /var/tmp, which a commit's empty /var lacks.
    if !has_var_tmp {
        w.directory("var/tmp", 0o1777, 0, 0)?;
    }
    Ok(())
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
    fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

/// Writes one gzip-compressed tar layer into the layout's blobs.
fn write_layer(
    layout: &OciLayoutWriter,
    repo: &ostree::Repo,
    fill: impl FnOnce(
        &mut ObjectTarWriter<'_, Hashing<flate2::write::GzEncoder<Hashing<std::fs::File>>>>,
    ) -> Result<()>,
) -> Result<ExportedLayer> {
    let blobs = layout.blob_dir();
    let temp = tempfile::Builder::new()
        .prefix(".layer-")
        .tempfile_in(&blobs)
        .with_context(|| format!("creating a layer in {}", blobs.display()))?;
    let file = temp
        .as_file()
        .try_clone()
        .context("opening the layer file")?;
    // A fixed gzip header: no name, no time.
    let gz = flate2::GzBuilder::new().write(Hashing::new(file), flate2::Compression::new(6));
    let mut tar = ObjectTarWriter::new(repo, Hashing::new(gz))?;
    fill(&mut tar)?;
    let diff = tar.finish()?;
    let diff_id = diff.digest();
    let blob = diff.inner.finish().context("finishing the gzip stream")?;
    let digest = blob.digest();
    let size = blob.bytes;
    blob.inner.sync_all().context("syncing the layer")?;
    let path = blobs.join(digest.trim_start_matches("sha256:"));
    temp.persist(&path)
        .with_context(|| format!("storing {}", path.display()))?;
    Ok(ExportedLayer {
        digest,
        diff_id,
        size,
        components: Vec::new(),
    })
}
