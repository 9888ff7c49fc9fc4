//! `corral image build --platform`: one tree per platform from the same
//! recipe, packed into one layout whose tag names an image index.
//!
//! Every platform's tree is installed by the host's dnf for that
//! platform's rpm architecture (`--forcearch`); scriptlets of another
//! architecture run through the host's qemu-user binfmt_misc handler
//! (`corral_tree::binfmt`). All platforms share one creation time, so the
//! index is as reproducible as each image.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use corral_oci::{PackOptions, PlatformImage};
use corral_tree::{BuildOptions, Recipe};
use serde::Serialize;

use crate::build::{BuildProgress, BuildRequest};
use crate::config::image_config;
use crate::platform::Platform;
use crate::sbom;

/// What a multi-platform build wrote.
#[derive(Debug, Clone, Serialize)]
pub struct IndexBuildResult {
    pub layout: PathBuf,
    pub tag: String,
    /// The image index the tag names.
    pub index_digest: String,
    /// RFC 3339, the same on every platform.
    pub created: String,
    pub created_from: &'static str,
    pub platforms: Vec<PlatformResult>,
}

/// One platform's image in the index.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformResult {
    /// `linux/arm64`.
    pub platform: String,
    /// The rpm architecture its packages were installed for.
    pub arch: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digest: String,
    pub layer_size: u64,
    pub uncompressed_size: u64,
    pub sbom_digest: Option<String>,
    /// The platform's SBOM beside the layout, `DIR.linux-arm64.spdx.json`.
    pub sbom_file: PathBuf,
    pub packages: usize,
    pub footprint: Vec<corral_tree::footprint::Saving>,
}

/// `out/base` and `linux/arm64` → `out/base.linux-arm64.spdx.json`.
pub fn sbom_path(layout: &Path, platform: &Platform) -> PathBuf {
    let mut name = layout.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.spdx.json", platform.slug()));
    layout.with_file_name(name)
}

/// Builds `req.recipe` once per platform into a new layout at
/// `req.layout` whose tag names an image index of those images.
pub fn build_platforms(
    req: &BuildRequest,
    platforms: &[Platform],
    progress: &dyn BuildProgress,
) -> anyhow::Result<IndexBuildResult> {
    let dest = &req.layout;
    if dest.symlink_metadata().is_ok() {
        bail!(
            "{}: the output already exists; choose another directory or remove it",
            dest.display()
        );
    }
    if req.rootfs.is_some() {
        bail!("--platform builds each platform's tree from the recipe; it cannot take --rootfs");
    }
    let Some(path) = &req.recipe else {
        bail!("--platform needs a recipe");
    };
    if platforms.is_empty() {
        bail!("no platform to build");
    }
    let base = Recipe::load(path)?;
    let recipes = platforms
        .iter()
        .map(|p| base.for_arch(p.rpm_arch()))
        .collect::<Result<Vec<_>, _>>()?;

    // One time for every platform: the newest package of any of them.
    let mut epoch = req.source_date_epoch.map(|t| (t, "SOURCE_DATE_EPOCH"));
    if epoch.is_none() {
        progress.working("resolving packages for the image's time");
        let mut newest = None;
        for (recipe, platform) in recipes.iter().zip(platforms) {
            let t = corral_tree::dnf::newest_build_time(recipe).with_context(|| {
                format!(
                    "resolving the packages of {} for {platform}",
                    path.display()
                )
            })?;
            newest = newest.max(t);
        }
        progress.done();
        epoch = newest.map(|t| (t, "newest package build time"));
    }
    let (created, created_from) =
        epoch.unwrap_or((0, "no packages and no SOURCE_DATE_EPOCH: the Unix epoch"));

    let scratch = tempfile::Builder::new()
        .prefix("corral-trees-")
        .tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
        .context("creating a scratch directory for the trees")?;
    let mut trees = Vec::with_capacity(platforms.len());
    for (recipe, platform) in recipes.iter().zip(platforms) {
        let rootfs = scratch.path().join(platform.slug());
        progress.working(&format!(
            "installing {} packages for {platform}",
            recipe.packages.len()
        ));
        let report = corral_tree::build_tree(
            recipe,
            &rootfs,
            &BuildOptions {
                source_date_epoch: (created > 0).then_some(created),
                time_limit: None,
            },
        )
        .with_context(|| format!("building the {platform} tree of {}", path.display()))?;
        progress.done();

        let mut labels = recipe.labels.clone();
        // A recipe labels its architecture for the one it names; each
        // platform's image is labelled with its own.
        if labels.contains_key("architecture") {
            labels.insert("architecture".into(), recipe.arch.clone());
        }
        labels.extend(req.labels.clone());
        let cfg = image_config(
            Some(recipe),
            &recipe.name,
            labels,
            created,
            report.packages.len(),
        );
        let sbom = sbom::blob(&recipe.name, &rootfs, &report.packages, created)?;
        trees.push((rootfs, cfg, [sbom], report));
    }

    let images: Vec<PlatformImage<'_>> = trees
        .iter()
        .map(|(rootfs, cfg, extra, _)| PlatformImage {
            rootfs,
            config: cfg,
            extra,
        })
        .collect();
    let opts = PackOptions {
        compression: req.compression,
        level: None,
        clamp_mtime: (created > 0).then_some(created),
        threads: req.threads,
        progress: progress.packing(None),
    };
    let built =
        corral_oci::build_index_layout(dest, &req.tag, &images, &opts).with_context(|| {
            format!(
                "packing {} platforms into {}",
                platforms.len(),
                dest.display()
            )
        })?;
    progress.done();

    let mut results = Vec::with_capacity(platforms.len());
    for ((platform, (_, _, extra, report)), image) in platforms.iter().zip(trees).zip(built.images)
    {
        let sbom_file = sbom_path(dest, platform);
        sbom::write_beside(&sbom_file, &extra[0].data)?;
        results.push(PlatformResult {
            platform: platform.to_string(),
            arch: platform.rpm_arch().to_string(),
            manifest_digest: image.manifest_digest,
            config_digest: image.config_digest,
            layer_digest: image.layer.digest.to_string(),
            layer_size: image.layer.size,
            uncompressed_size: image.layer.uncompressed_size,
            sbom_digest: image.extra.first().map(|(d, _)| d.to_string()),
            sbom_file,
            packages: report.packages.len(),
            footprint: report.savings,
        });
    }
    Ok(IndexBuildResult {
        layout: dest.clone(),
        tag: req.tag.clone(),
        index_digest: built.index_digest,
        created: corral_oci::rfc3339(created).unwrap_or_else(|| created.to_string()),
        created_from,
        platforms: results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_has_its_sbom_beside_the_layout() {
        let p: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(
            sbom_path(Path::new("out/base"), &p),
            PathBuf::from("out/base.linux-arm64.spdx.json")
        );
    }

    #[test]
    fn a_ready_tree_cannot_be_built_for_platforms() {
        let dir = tempfile::tempdir().unwrap();
        let req = BuildRequest {
            rootfs: Some(dir.path().join("tree")),
            ..BuildRequest::from_recipe(Path::new("r.toml"), &dir.path().join("out"), "1")
        };
        let p: Platform = "linux/arm64".parse().unwrap();
        let e = build_platforms(&req, &[p], &()).unwrap_err();
        assert!(format!("{e:#}").contains("cannot take --rootfs"), "{e:#}");
    }
}
