//! `corral image build`: a recipe (or a ready tree) to a new OCI layout,
//! with the SBOM inside and beside it and the footprint policy's report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use corral_oci::{Compression, PackOptions};
use corral_tree::{BuildOptions, ReadyTree, Recipe};
use serde::Serialize;

use crate::config::image_config;
use crate::sbom;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The tree recipe: its packages make the tree, its labels and
    /// `[image]` settings the config. With `rootfs`, only the config.
    pub recipe: Option<PathBuf>,
    /// A ready tree to pack instead of installing the recipe: a directory
    /// (never modified) or a tar archive.
    pub rootfs: Option<PathBuf>,
    /// The new layout's directory; it must not exist.
    pub layout: PathBuf,
    pub tag: String,
    pub compression: Compression,
    /// The image's creation time and the clamp for file times; without
    /// it, the newest package's build time.
    pub source_date_epoch: Option<i64>,
    /// Labels on top of the recipe's.
    pub labels: BTreeMap<String, String>,
    /// Compression threads (0: all cores).
    pub threads: usize,
}

impl BuildRequest {
    /// The request `corral release` makes: `recipe` into `layout`, gzip,
    /// the time from `$SOURCE_DATE_EPOCH` when set.
    pub fn from_recipe(recipe: &Path, layout: &Path, tag: &str) -> BuildRequest {
        BuildRequest {
            recipe: Some(recipe.to_path_buf()),
            rootfs: None,
            layout: layout.to_path_buf(),
            tag: tag.to_string(),
            compression: Compression::Gzip,
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|v| v.parse().ok()),
            labels: BTreeMap::new(),
            threads: 0,
        }
    }
}

/// What was built.
#[derive(Debug, Clone, Serialize)]
pub struct BuildResult {
    pub layout: PathBuf,
    pub tag: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digest: String,
    pub diff_id: String,
    pub layer_size: u64,
    pub uncompressed_size: u64,
    pub sbom_digest: Option<String>,
    pub packages: usize,
    /// RFC 3339: the image's creation time and the clamp of file times.
    pub created: String,
    /// Where `created` came from.
    pub created_from: &'static str,
    /// What the recipe's footprint policy left out, per item (a tree built
    /// here; none for a given tree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footprint: Option<Vec<corral_tree::footprint::Saving>>,
}

impl BuildResult {
    /// The SBOM file beside the layout.
    pub fn sbom_file(&self) -> PathBuf {
        sbom::path_beside(&self.layout)
    }
}

/// How a build reports its progress (the CLI draws bars on a terminal;
/// `()` reports nothing).
pub trait BuildProgress {
    /// Work of unknown length starts (resolving, installing); it ends at
    /// the next call or at [`BuildProgress::done`].
    fn working(&self, _what: &str) {}
    /// Whether to size the tree before packing (one more walk over it).
    fn wants_total(&self) -> bool {
        false
    }
    /// Packing starts; the hook is called with the bytes packed so far.
    fn packing(&self, _total: Option<u64>) -> Option<Arc<dyn corral_oci::Progress>> {
        None
    }
    /// The current work ended.
    fn done(&self) {}
}

impl BuildProgress for () {}

/// Builds the tree (from the recipe, or given) and packs it into a new
/// layout with its SBOM inside and beside it.
pub fn build(req: &BuildRequest, progress: &dyn BuildProgress) -> anyhow::Result<BuildResult> {
    let dest = &req.layout;
    if dest.symlink_metadata().is_ok() {
        bail!(
            "{}: the output already exists; choose another directory or remove it",
            dest.display()
        );
    }

    // The tree: built from the recipe into a scratch directory, or given.
    let scratch;
    let ready;
    // A tree built here comes with its package list; a given one is read.
    // Without SOURCE_DATE_EPOCH the time still comes from the inputs, so
    // the same recipe and repositories give the same digest.
    let mut epoch = req.source_date_epoch.map(|t| (t, "SOURCE_DATE_EPOCH"));
    let (root, recipe, built_packages, footprint): (&Path, Option<Recipe>, _, _) =
        match (&req.recipe, &req.rootfs) {
            (recipe, Some(rootfs)) => {
                let recipe = recipe.as_deref().map(Recipe::read).transpose()?;
                ready = ReadyTree::open(rootfs)
                    .with_context(|| format!("opening the tree {}", rootfs.display()))?;
                (ready.path(), recipe, None, None)
            }
            (Some(path), None) => {
                let recipe = Recipe::load(path)?;
                if epoch.is_none() {
                    progress.working("resolving packages for the image's time");
                    let newest = corral_tree::dnf::newest_build_time(&recipe)
                        .with_context(|| format!("resolving the packages of {}", path.display()))?;
                    progress.done();
                    epoch = newest.map(|t| (t, "newest package build time"));
                }
                scratch = tempfile::Builder::new()
                    .prefix("corral-tree-")
                    .tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
                    .context("creating a scratch directory for the tree")?;
                let rootfs = scratch.path().join("rootfs");
                progress.working(&format!("installing {} packages", recipe.packages.len()));
                let report = corral_tree::build_tree(
                    &recipe,
                    &rootfs,
                    &BuildOptions {
                        source_date_epoch: epoch.map(|e| e.0),
                        time_limit: None,
                    },
                )
                .with_context(|| format!("building the tree of {}", path.display()))?;
                progress.done();
                ready = ReadyTree::open(&rootfs)?;
                (
                    ready.path(),
                    Some(recipe),
                    Some(report.packages),
                    Some(report.savings),
                )
            }
            (None, None) => bail!("give a recipe or a ready tree"),
        };

    let packages = match (built_packages, corral_tree::RpmDb::find(root)) {
        (Some(packages), _) => packages,
        (None, Some(db)) => db.packages().context("reading the tree's rpm database")?,
        (None, None) => Vec::new(),
    };
    let (created, created_from) = epoch
        .or_else(|| {
            packages
                .iter()
                .map(|p| p.buildtime)
                .max()
                .map(|t| (t, "newest package build time in the tree's rpm database"))
        })
        .unwrap_or((0, "no packages and no SOURCE_DATE_EPOCH: the Unix epoch"));
    let name = recipe
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_else(|| "rootfs".to_string());

    let mut labels = recipe
        .as_ref()
        .map(|r| r.labels.clone())
        .unwrap_or_default();
    labels.extend(req.labels.clone());
    let cfg = image_config(recipe.as_ref(), &name, labels, created, packages.len());
    let extra = [sbom::blob(&name, root, &packages, created)?];
    // Sizing the bar walks the tree once more: only worth it when it shows.
    let total = progress
        .wants_total()
        .then(|| corral_tree::build::tree_bytes(root).ok())
        .flatten();
    let opts = PackOptions {
        compression: req.compression,
        level: None,
        // the same time for the tar headers as for the config; a tree with
        // no time of its own keeps its file times
        clamp_mtime: (created > 0).then_some(created),
        threads: req.threads,
        progress: progress.packing(total),
    };
    let built = corral_oci::build_image_layout(root, dest, &req.tag, &cfg, &extra, &opts)
        .with_context(|| format!("packing {} into {}", root.display(), dest.display()))?;
    progress.done();

    // The SBOM also stands beside the layout, for people and scanners.
    sbom::write_beside(&sbom::path_beside(dest), &extra[0].data)?;

    Ok(BuildResult {
        layout: dest.clone(),
        tag: req.tag.clone(),
        manifest_digest: built.manifest_digest.to_string(),
        config_digest: built.config_digest.to_string(),
        layer_digest: built.layer.digest.to_string(),
        diff_id: built.layer.diff_id.to_string(),
        layer_size: built.layer.size,
        uncompressed_size: built.layer.uncompressed_size,
        sbom_digest: built.extra.first().map(|(d, _)| d.to_string()),
        packages: packages.len(),
        created: corral_oci::rfc3339(created).unwrap_or_else(|| created.to_string()),
        created_from,
        footprint,
    })
}

/// `oci:DIR:TAG`, split.
pub fn parse_oci_output(s: &str) -> anyhow::Result<(PathBuf, String)> {
    let Some(rest) = s.strip_prefix("oci:") else {
        bail!("output `{s}` is not of the form oci:DIR:TAG");
    };
    let Some((dir, tag)) = rest.rsplit_once(':') else {
        bail!("output `{s}` has no tag (oci:DIR:TAG)");
    };
    if dir.is_empty() {
        bail!("output `{s}` has an empty directory");
    }
    if !corral_oci::grammar::is_tag(tag) {
        bail!("tag `{tag}` is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})");
    }
    Ok((PathBuf::from(dir), tag.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oci_outputs() {
        assert_eq!(
            parse_oci_output("oci:out/base:43").unwrap(),
            (PathBuf::from("out/base"), "43".to_string())
        );
        assert_eq!(
            parse_oci_output("oci:/a:b:latest").unwrap(),
            (PathBuf::from("/a:b"), "latest".to_string())
        );
        assert!(parse_oci_output("docker://x").is_err());
        assert!(parse_oci_output("oci:dir").is_err());
        assert!(parse_oci_output("oci:dir:-bad").is_err());
        assert!(parse_oci_output("oci::t").is_err());
    }

    #[test]
    fn an_existing_output_is_refused_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        let req = BuildRequest {
            rootfs: Some(dir.path().join("no-such-tree")),
            ..BuildRequest::from_recipe(Path::new("r.toml"), dir.path(), "1")
        };
        let e = build(&req, &()).unwrap_err();
        assert!(
            format!("{e:#}").contains("the output already exists"),
            "{e:#}"
        );
    }
}
