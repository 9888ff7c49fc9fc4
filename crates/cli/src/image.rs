//! `corral image`: the clap types, the progress bars and the text output;
//! the work is `corral-image`'s.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use corral_image::build::parse_oci_output;
use corral_image::{BuildProgress, BuildRequest};
use indicatif::ProgressBar;

use crate::output::{byte_bar, human_bytes, print_json, spinner};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build an OCI image layout from a recipe or a ready tree.
    #[command(after_help = "Examples:
  corral image build recipes/sample-base.toml -o oci:out/base:43
  corral image build --rootfs rootfs.tar -o oci:out/base:43 --compression zstd --json
  corral image build recipes/sample-base.toml --platform linux/amd64,linux/arm64 -o oci:out/base:43")]
    Build(BuildArgs),
    /// Show the manifest, config and layers of an image in any transport
    /// skopeo knows (oci:, docker://, docker-daemon:, oci-archive:).
    #[command(after_help = "Examples:
  corral image inspect oci:out/base:43
  corral image inspect docker://127.0.0.1:5000/sample/base:43 --tls-verify false --json")]
    Inspect(InspectArgs),
    /// Which released base images need a respin: each one's SBOM against
    /// its repositories' current packages and security advisories.
    /// Exit 0: all up to date; 1: some need a respin; 2: could not run.
    #[command(after_help = "Examples:
  corral image outdated --config release.toml
  corral image outdated sample/base:43 --json")]
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
    /// Build the recipe once per platform (OS/ARCH, comma-separated, e.g.
    /// linux/amd64,linux/arm64) and tag an image index of them: one
    /// manifest and one SBOM per platform. Another architecture's tree is
    /// installed with dnf --forcearch; its scriptlets run through the
    /// host's qemu-user binfmt_misc handler.
    #[arg(long, value_name = "OS/ARCH,...", conflicts_with = "rootfs")]
    pub platform: Option<String>,
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
    let images = corral_image::outdated::check(&config.released(&args.images)?)?;
    if args.json {
        print_json(&images)?;
    } else {
        let mut out = std::io::stdout().lock();
        write!(out, "{}", corral_image::outdated::render_text(&images))?;
        out.flush()?;
    }
    let any = images.iter().any(|i| i.staleness.is_outdated());
    Ok(ExitCode::from(u8::from(any)))
}

/// Spinners and a byte bar on stderr when it is a terminal.
#[derive(Default)]
struct TerminalProgress {
    bar: std::cell::RefCell<Option<ProgressBar>>,
}

impl TerminalProgress {
    fn replace(&self, bar: Option<ProgressBar>) {
        if let Some(old) = self.bar.replace(bar) {
            old.finish_and_clear();
        }
    }
}

impl BuildProgress for TerminalProgress {
    fn working(&self, what: &str) {
        self.replace(Some(spinner(what)));
    }
    fn wants_total(&self) -> bool {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    }
    fn packing(&self, total: Option<u64>) -> Option<Arc<dyn corral_oci::Progress>> {
        let bar = byte_bar(total, "packing");
        self.replace(Some(bar.clone()));
        Some(Arc::new(move |done: u64| bar.set_position(done)))
    }
    fn done(&self) {
        self.replace(None);
    }
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let (layout, tag) = parse_oci_output(&args.output)?;
    let compression = args
        .compression
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut labels = BTreeMap::new();
    for kv in &args.labels {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("label `{kv}` is not KEY=VALUE"))?;
        labels.insert(k.to_string(), v.to_string());
    }
    let req = BuildRequest {
        recipe: args.recipe,
        rootfs: args.rootfs,
        layout,
        tag,
        compression,
        source_date_epoch: args.source_date_epoch,
        labels,
        threads: args.threads,
    };
    if let Some(list) = &args.platform {
        let platforms =
            corral_image::platform::parse_list(list).map_err(|e| anyhow::anyhow!("{e}"))?;
        let result =
            corral_image::multi::build_platforms(&req, &platforms, &TerminalProgress::default())?;
        if args.json {
            print_json(&result)?;
            return Ok(ExitCode::SUCCESS);
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "oci:{}:{}", result.layout.display(), result.tag)?;
        writeln!(out, "  index     {}", result.index_digest)?;
        writeln!(
            out,
            "  created   {} ({})",
            result.created, result.created_from
        )?;
        for p in &result.platforms {
            writeln!(out, "  {}", p.platform)?;
            writeln!(out, "    manifest  {}", p.manifest_digest)?;
            writeln!(
                out,
                "    layer     {} ({}, {} uncompressed)",
                p.layer_digest,
                human_bytes(p.layer_size),
                human_bytes(p.uncompressed_size)
            )?;
            writeln!(
                out,
                "    sbom      {} ({} packages)",
                p.sbom_file.display(),
                p.packages
            )?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let result = corral_image::build(&req, &TerminalProgress::default())?;
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
            result.sbom_file().display(),
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

fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let info = corral_image::inspect::inspect_blocking(&args.reference, args.tls_verify)?;
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::{Cli, Command};

    #[test]
    fn platforms_are_for_recipes_not_ready_trees() {
        let cli = Cli::try_parse_from([
            "corral",
            "image",
            "build",
            "r.toml",
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            "oci:o:t",
        ])
        .unwrap();
        let Command::Image(super::ImageCommand::Build(b)) = cli.command else {
            panic!()
        };
        assert_eq!(b.platform.as_deref(), Some("linux/amd64,linux/arm64"));
        assert!(Cli::try_parse_from([
            "corral",
            "image",
            "build",
            "--rootfs",
            "t",
            "--platform",
            "linux/arm64",
            "-o",
            "oci:o:t",
        ])
        .is_err());
    }
}
