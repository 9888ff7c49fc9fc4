//! `corral image`: OCI base images from recipes or ready trees.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use corral_oci::{Compression, ExtraBlob, ImageConfigSpec, PackOptions};
use corral_tree::{BuildOptions, ReadyTree, Recipe};
use serde::Serialize;

use crate::output::{byte_bar, human_bytes, print_json, spinner};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build an OCI image layout from a recipe or a ready tree.
    Build(BuildArgs),
    /// Show the manifest, config and layers of an image in any transport
    /// skopeo knows (oci:, docker://, docker-daemon:, oci-archive:).
    Inspect(InspectArgs),
    /// Which released base images need a respin: each one's SBOM against
    /// its repositories' current packages and security advisories.
    /// Exit 0: all up to date; 1: some need a respin; 2: could not run.
    Outdated(OutdatedArgs),
}

#[derive(Debug, Args)]
pub struct OutdatedArgs {
    /// Base images of the release config, REPOSITORY[:TAG] (all when none).
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// The release configuration that lists the images and their recipes.
    #[arg(long, value_name = "FILE", default_value = "release.toml")]
    pub config: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The tree recipe (TOML): its packages make the tree, its labels and
    /// [image] settings the config. With --rootfs, only the config.
    #[arg(required_unless_present = "rootfs")]
    pub recipe: Option<PathBuf>,
    /// A ready tree to pack instead of installing the recipe: a directory
    /// (never modified) or a tar archive.
    #[arg(long)]
    pub rootfs: Option<PathBuf>,
    /// Output, as oci:DIR:TAG. DIR must not exist.
    #[arg(short, long, value_name = "oci:DIR:TAG")]
    pub output: String,
    /// Layer compression.
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "zstd"])]
    pub compression: String,
    /// The image's creation time and the clamp for file times.
    #[arg(long, env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<i64>,
    /// Label KEY=VALUE on the image config (repeatable; adds to the recipe's).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Compression threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The image, e.g. oci:./out:43 or docker://127.0.0.1:5000/base:43.
    pub reference: String,
    /// Require HTTPS and verify certificates for docker:// registries
    /// (as skopeo's --tls-verify; false also allows plain HTTP).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: ImageCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ImageCommand::Build(args) => build(args),
        ImageCommand::Inspect(args) => inspect(args),
        ImageCommand::Outdated(args) => outdated(args),
    }
}

fn outdated(args: OutdatedArgs) -> anyhow::Result<ExitCode> {
    let config = corral_release::ReleaseConfig::load(&args.config)?;
    let images = corral_release::outdated::check(&config, &args.images)?;
    if args.json {
        print_json(&images)?;
    } else {
        let mut out = std::io::stdout().lock();
        write!(out, "{}", corral_release::outdated::render_text(&images))?;
        out.flush()?;
    }
    let any = images.iter().any(|i| i.staleness.is_outdated());
    Ok(ExitCode::from(u8::from(any)))
}

/// How `corral release` builds base images: as `corral image build
/// RECIPE -o oci:LAYOUT:TAG` does.
pub struct RecipeImageBuilder;

impl corral_release::BaseImageBuilder for RecipeImageBuilder {
    fn build(&self, recipe: &Path, layout: &Path, tag: &str) -> anyhow::Result<String> {
        let args = BuildArgs {
            recipe: Some(recipe.to_path_buf()),
            rootfs: None,
            output: format!("oci:{}:{tag}", layout.display()),
            compression: "gzip".to_string(),
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|v| v.parse().ok()),
            labels: Vec::new(),
            threads: 0,
            json: false,
        };
        Ok(build_layout(&args)?.manifest_digest)
    }
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

#[derive(Debug, Serialize)]
struct BuildResult {
    layout: PathBuf,
    tag: String,
    manifest_digest: String,
    config_digest: String,
    layer_digest: String,
    diff_id: String,
    layer_size: u64,
    uncompressed_size: u64,
    sbom_digest: Option<String>,
    packages: usize,
    /// RFC 3339: the image's creation time and the clamp of file times.
    created: String,
    /// Where `created` came from.
    created_from: &'static str,
    /// What the recipe's footprint policy left out, per item (a tree built
    /// here; none for --rootfs).
    #[serde(skip_serializing_if = "Option::is_none")]
    footprint: Option<Vec<corral_tree::footprint::Saving>>,
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let result = build_layout(&args)?;
    if args.json {
        print_json(&result)?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "oci:{}:{}", result.layout.display(), result.tag)?;
        writeln!(out, "  manifest  {}", result.manifest_digest)?;
        writeln!(out, "  config    {}", result.config_digest)?;
        writeln!(
            out,
            "  layer     {} ({}, {} uncompressed)",
            result.layer_digest,
            human_bytes(result.layer_size),
            human_bytes(result.uncompressed_size)
        )?;
        writeln!(
            out,
            "  sbom      {} ({} packages)",
            sbom_path(&result.layout).display(),
            result.packages
        )?;
        writeln!(
            out,
            "  created   {} ({})",
            result.created, result.created_from
        )?;
        if let Some(savings) = &result.footprint {
            writeln!(out, "footprint policy saved:")?;
            for s in savings {
                writeln!(
                    out,
                    "  {:<8} {:>6} files  {:>10}",
                    s.item,
                    s.files,
                    human_bytes(s.bytes)
                )?;
            }
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The tree (built from the recipe, or given), packed into a new layout
/// with its SBOM beside it.
fn build_layout(args: &BuildArgs) -> anyhow::Result<BuildResult> {
    let (dest, tag) = parse_oci_output(&args.output)?;
    if dest.symlink_metadata().is_ok() {
        bail!(
            "{}: the output already exists; choose another directory or remove it",
            dest.display()
        );
    }
    let compression: Compression = args
        .compression
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // The tree: built from the recipe into a scratch directory, or given.
    let scratch;
    let ready;
    // A tree built here comes with its package list; a given one is read.
    // Without SOURCE_DATE_EPOCH the time still comes from the inputs, so
    // the same recipe and repositories give the same digest.
    let mut epoch = args.source_date_epoch.map(|t| (t, "SOURCE_DATE_EPOCH"));
    let (root, recipe, built_packages, footprint): (&Path, Option<Recipe>, _, _) =
        match (&args.recipe, &args.rootfs) {
            (recipe, Some(rootfs)) => {
                let recipe = recipe.as_deref().map(Recipe::read).transpose()?;
                ready = ReadyTree::open(rootfs)
                    .with_context(|| format!("opening the tree {}", rootfs.display()))?;
                (ready.path(), recipe, None, None)
            }
            (Some(path), None) => {
                let recipe = Recipe::load(path)?;
                if epoch.is_none() {
                    let bar = spinner("resolving packages for the image's time");
                    let newest = corral_tree::dnf::newest_build_time(&recipe)
                        .with_context(|| format!("resolving the packages of {}", path.display()))?;
                    bar.finish_and_clear();
                    epoch = newest.map(|t| (t, "newest package build time"));
                }
                scratch = tempfile::Builder::new()
                    .prefix("corral-tree-")
                    .tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
                    .context("creating a scratch directory for the tree")?;
                let rootfs = scratch.path().join("rootfs");
                let bar = spinner(&format!("installing {} packages", recipe.packages.len()));
                let report = corral_tree::build_tree(
                    &recipe,
                    &rootfs,
                    &BuildOptions {
                        source_date_epoch: epoch.map(|e| e.0),
                    },
                )
                .with_context(|| format!("building the tree of {}", path.display()))?;
                bar.finish_and_clear();
                ready = ReadyTree::open(&rootfs)?;
                (
                    ready.path(),
                    Some(recipe),
                    Some(report.packages),
                    Some(report.savings),
                )
            }
            (None, None) => bail!("give a recipe or --rootfs"),
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
    let sbom = corral_tree::sbom::spdx_document(&name, &purl_namespace(root), &packages, created);

    let mut labels: BTreeMap<String, String> = recipe
        .as_ref()
        .map(|r| r.labels.clone())
        .unwrap_or_default();
    for kv in &args.labels {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("label `{kv}` is not KEY=VALUE"))?;
        labels.insert(k.to_string(), v.to_string());
    }
    let settings = recipe.as_ref().map(|r| r.image.clone()).unwrap_or_default();
    let arch = recipe
        .as_ref()
        .map(|r| r.arch.clone())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.title".to_string(),
        labels.get("name").cloned().unwrap_or(name.clone()),
    );
    if let Some(v) = labels.get("version") {
        annotations.insert("org.opencontainers.image.version".to_string(), v.clone());
    }
    if let Some(s) = labels.get("summary") {
        annotations.insert(
            "org.opencontainers.image.description".to_string(),
            s.clone(),
        );
    }
    if let Some(m) = labels.get("maintainer") {
        annotations.insert("org.opencontainers.image.authors".to_string(), m.clone());
    }
    let cfg = ImageConfigSpec {
        architecture: oci_arch(&arch).to_string(),
        os: "linux".to_string(),
        env: if settings.env.is_empty() {
            vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin".to_string()]
        } else {
            settings.env.clone()
        },
        cmd: settings
            .cmd
            .clone()
            .or_else(|| Some(vec!["/bin/sh".to_string()])),
        entrypoint: settings.entrypoint.clone(),
        working_dir: settings.working_dir.clone(),
        user: settings.user.clone(),
        labels,
        created,
        annotations,
        history_comment: Some(format!("corral image build ({} packages)", packages.len())),
    };
    let extra = [ExtraBlob {
        media_type: corral_tree::sbom::SPDX_MEDIA_TYPE.to_string(),
        data: serde_json::to_vec_pretty(&sbom)?,
        annotation_prefix: "dev.corral.sbom".to_string(),
    }];
    // Sizing the bar walks the tree once more: only worth it when it shows.
    let total = std::io::stderr()
        .is_terminal()
        .then(|| corral_tree::build::tree_bytes(root).ok())
        .flatten();
    let bar = byte_bar(total, "packing");
    let progress_bar = bar.clone();
    let progress = move |done: u64| progress_bar.set_position(done);
    let opts = PackOptions {
        compression,
        level: None,
        // the same time for the tar headers as for the config; a tree with
        // no time of its own keeps its file times
        clamp_mtime: (created > 0).then_some(created),
        threads: args.threads,
        progress: Some(std::sync::Arc::new(progress)),
    };
    let built = corral_oci::build_image_layout(root, &dest, &tag, &cfg, &extra, &opts)
        .with_context(|| format!("packing {} into {}", root.display(), dest.display()))?;
    bar.finish_and_clear();

    // The SBOM also stands beside the layout, for people and scanners.
    let sbom_file = sbom_path(&dest);
    write_atomically(&sbom_file, &extra[0].data)?;

    Ok(BuildResult {
        layout: dest.clone(),
        tag: tag.clone(),
        manifest_digest: built.manifest_digest.to_string(),
        config_digest: built.config_digest.to_string(),
        layer_digest: built.layer.digest.to_string(),
        diff_id: built.layer.diff_id.to_string(),
        layer_size: built.layer.size,
        uncompressed_size: built.layer.uncompressed_size,
        sbom_digest: built.extra.first().map(|(d, _)| d.to_string()),
        packages: packages.len(),
        created: rfc3339(created),
        created_from,
        footprint,
    })
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// `out/base` → `out/base.spdx.json`.
pub fn sbom_path(layout: &Path) -> PathBuf {
    let mut name = layout.file_name().unwrap_or_default().to_os_string();
    name.push(".spdx.json");
    layout.with_file_name(name)
}

fn write_atomically(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut tmp, data)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The distribution's id from the tree's os-release, for package URLs.
fn purl_namespace(root: &Path) -> String {
    for rel in ["etc/os-release", "usr/lib/os-release"] {
        // The tree is input: its os-release may be a link to /dev/zero.
        if let Ok(text) = corral_configfile::read_to_string(&root.join(rel), 64 * 1024) {
            for line in text.lines() {
                if let Some(id) = line.strip_prefix("ID=") {
                    return id.trim_matches('"').to_string();
                }
            }
        }
    }
    "corral".to_string()
}

/// rpm architecture names to OCI's (GOARCH).
fn oci_arch(rpm_arch: &str) -> &str {
    match rpm_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "i686" | "i386" => "386",
        other => other,
    }
}

#[derive(Debug, Serialize)]
struct Inspection {
    reference: String,
    manifest_digest: String,
    manifest: serde_json::Value,
    config: serde_json::Value,
    layers: Vec<LayerInfo>,
    total_size: i64,
}

#[derive(Debug, Serialize)]
struct LayerInfo {
    digest: String,
    media_type: String,
    size: i64,
}

fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let info = rt.block_on(inspect_async(&args.reference, args.tls_verify))?;
    if args.json {
        print_json(&info)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", info.reference)?;
    writeln!(out, "  manifest  {}", info.manifest_digest)?;
    let cfg = &info.config;
    writeln!(
        out,
        "  platform  {}/{}",
        cfg["os"].as_str().unwrap_or("?"),
        cfg["architecture"].as_str().unwrap_or("?")
    )?;
    if let Some(created) = cfg["created"].as_str() {
        writeln!(out, "  created   {created}")?;
    }
    if let Some(cmd) = cfg["config"]["Cmd"].as_array() {
        writeln!(out, "  cmd       {}", serde_json::to_string(cmd)?)?;
    }
    if let Some(labels) = cfg["config"]["Labels"].as_object() {
        for (k, v) in labels {
            writeln!(out, "  label     {k}={}", v.as_str().unwrap_or_default())?;
        }
    }
    for l in &info.layers {
        writeln!(
            out,
            "  layer     {} {} ({})",
            l.digest,
            human_bytes(l.size.max(0) as u64),
            l.media_type
        )?;
    }
    writeln!(
        out,
        "  size      {}",
        human_bytes(info.total_size.max(0) as u64)
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

async fn inspect_async(reference: &str, tls_verify: bool) -> anyhow::Result<Inspection> {
    // The config is non_exhaustive: set fields on a default.
    let mut config = containers_image_proxy::ImageProxyConfig::default();
    config.insecure_skip_tls_verification = Some(!tls_verify);
    let proxy = containers_image_proxy::ImageProxy::new_with_config(config)
        .await
        .context("starting skopeo's image proxy (is skopeo installed?)")?;
    let img = proxy
        .open_image(reference)
        .await
        .with_context(|| format!("opening {reference}"))?;
    let (digest, manifest) = proxy
        .fetch_manifest(&img)
        .await
        .with_context(|| format!("reading the manifest of {reference}"))?;
    let config = proxy
        .fetch_config(&img)
        .await
        .with_context(|| format!("reading the config of {reference}"))?;
    proxy.close_image(&img).await?;
    proxy.finalize().await?;
    let layers: Vec<LayerInfo> = manifest
        .layers()
        .iter()
        .map(|l| LayerInfo {
            digest: l.digest().to_string(),
            media_type: l.media_type().to_string(),
            size: l.size() as i64,
        })
        .collect();
    let total_size = layers.iter().map(|l| l.size).sum::<i64>() + manifest.config().size() as i64;
    Ok(Inspection {
        reference: reference.to_string(),
        manifest_digest: digest,
        manifest: serde_json::to_value(&manifest)?,
        config: serde_json::to_value(&config)?,
        layers,
        total_size,
    })
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
    fn sbom_sits_beside_the_layout() {
        assert_eq!(
            sbom_path(Path::new("out/base")),
            PathBuf::from("out/base.spdx.json")
        );
    }
}
