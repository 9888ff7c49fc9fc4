//! `corral tree`: package recipes to root filesystems.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use corral_tree::{BuildOptions, Recipe};

use crate::output::{human_bytes, print_json, spinner};

#[derive(Debug, Subcommand)]
pub enum TreeCommand {
    /// Install a recipe into a new root filesystem with dnf and rpm.
    #[command(after_help = "Examples:
  corral tree build recipes/sample-base.toml --rootfs /var/tmp/rootfs
  corral tree build recipes/sample-base.toml --rootfs /var/tmp/rootfs --json
  corral tree build recipes/sample-base.toml --rootfs /var/tmp/rootfs-arm --arch aarch64
  corral tree build recipes/sample-base.toml --rootfs /var/tmp/rootfs --sandbox")]
    Build(BuildArgs),
    /// Show what a build would do: the dnf configuration, the rpm macros
    /// and the command line. Reads no repository.
    Plan(PlanArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The tree recipe (TOML).
    pub recipe: PathBuf,
    /// Where the tree goes; must not exist, or be empty.
    #[arg(long)]
    pub rootfs: PathBuf,
    /// Build for this architecture instead of the recipe's `arch`
    /// (x86_64, aarch64, ...): dnf --forcearch, the scriptlets run through
    /// the host's qemu-user binfmt_misc handler.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// rpm install times and the clamp for file times (reproducible trees).
    #[arg(long, env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<i64>,
    /// Run dnf and the packages' scriptlets in a bubblewrap sandbox, as
    /// the community portal builds recipes: no network, none of the host
    /// but /usr, the tree and the recipe's repositories (read-only). The
    /// repositories and keys must be local (file:// or paths); needs bwrap.
    #[arg(long)]
    pub sandbox: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The tree recipe (TOML).
    pub recipe: PathBuf,
    /// Plan for this architecture instead of the recipe's `arch`.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: TreeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TreeCommand::Build(args) => build(args),
        TreeCommand::Plan(args) => plan(args),
    }
}

/// The recipe, for `arch` when given.
fn load(path: &std::path::Path, arch: Option<&str>) -> anyhow::Result<Recipe> {
    let recipe = Recipe::load(path)?;
    Ok(match arch {
        Some(arch) => recipe.for_arch(arch)?,
        None => recipe,
    })
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let recipe = load(&args.recipe, args.arch.as_deref())?;
    let what = || format!("building the tree of {}", args.recipe.display());
    let build = if args.sandbox {
        corral_tree::sandbox::check_local(&recipe).with_context(what)?;
        corral_tree::build_tree_in_sandbox
    } else {
        corral_tree::build_tree
    };
    let bar = spinner(&format!("installing {} packages", recipe.packages.len()));
    let report = build(
        &recipe,
        &args.rootfs,
        &BuildOptions {
            source_date_epoch: args.source_date_epoch,
            time_limit: None,
        },
    )
    .with_context(what)?;
    bar.finish_and_clear();
    if args.json {
        print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: {} packages, {} in {}",
        report.name,
        report.packages.len(),
        human_bytes(report.tree_bytes),
        report.rootfs.display()
    )?;
    for p in &report.packages {
        writeln!(out, "  {}", p.nevra())?;
    }
    writeln!(out, "footprint policy saved:")?;
    for s in &report.savings {
        writeln!(
            out,
            "  {:<8} {:>6} files  {:>10}",
            s.item,
            s.files,
            human_bytes(s.bytes)
        )?;
    }
    if report.source_date_epoch.is_none() {
        writeln!(out, "note: SOURCE_DATE_EPOCH is not set, so the tree carries today's time and is not reproducible")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let recipe = load(&args.recipe, args.arch.as_deref())?;
    let conf = corral_tree::dnf::dnf_conf(&recipe);
    let macros = corral_tree::dnf::rpm_macros(&recipe);
    let argv = corral_tree::dnf::dnf_args(&recipe, "DNF_CONF".as_ref(), "ROOTFS".as_ref());
    if args.json {
        print_json(&serde_json::json!({
            "recipe": recipe,
            "dnf_conf": conf,
            "rpm_macros": macros,
            "command": std::iter::once("dnf".to_string()).chain(argv).collect::<Vec<_>>(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "# {} (release {}, {})",
        recipe.name, recipe.releasever, recipe.arch
    )?;
    writeln!(out, "# repositories:")?;
    for r in &recipe.repos {
        let url = r.baseurl.as_deref().or(r.metalink.as_deref()).unwrap_or("");
        let check = if r.gpgcheck {
            "gpgcheck on"
        } else {
            "gpgcheck OFF"
        };
        writeln!(out, "#   {} {url} ({check})", r.id)?;
    }
    writeln!(out, "# dnf.conf\n{conf}")?;
    writeln!(out, "# $HOME/.rpmmacros\n{macros}")?;
    writeln!(out, "# command\ndnf {}", argv.join(" "))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::{Cli, Command};

    #[test]
    fn tree_build_takes_an_architecture() {
        let cli = Cli::try_parse_from([
            "corral", "tree", "build", "r.toml", "--rootfs", "r", "--arch", "aarch64",
        ])
        .unwrap();
        let Command::Tree(super::TreeCommand::Build(b)) = cli.command else {
            panic!()
        };
        assert_eq!(b.arch.as_deref(), Some("aarch64"));
        assert!(!b.sandbox);
        let cli = Cli::try_parse_from([
            "corral",
            "tree",
            "build",
            "r.toml",
            "--rootfs",
            "r",
            "--sandbox",
        ])
        .unwrap();
        let Command::Tree(super::TreeCommand::Build(b)) = cli.command else {
            panic!()
        };
        assert!(b.sandbox);
    }
}
