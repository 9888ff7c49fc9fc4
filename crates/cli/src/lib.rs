//! The clap tree and command dispatch of the `corral` binary.
//!
//! - [`Cli`]: the whole command line, parsed and unit-tested here.
//! - [`tree`], [`image`]: one module per command group; [`test`]: which
//!   library images `corral test` runs; other groups
//!   (`dockerfiles`, `mirror`, `compose`, `disk`, `key`/`sign`/`verify`/`policy`, `test`,
//!   `release`) bring their clap types from their crates.
//! - [`generate`]: man pages and shell completions from this tree.
//! - [`logging`], [`output`]: logs to stderr, results to stdout.
//! - [`ostree_helper`]: how `corral` hands the commands that need
//!   libostree to `corral-ostree`, so the others start without loading it.
//!
//! Exit codes, for every command: 0 success; 1 the command ran and the
//! answer is "no" (lint errors, damage found, no update); 2 it could not
//! run (bad input, a failed tool, usage errors).
//!
//! A closed stdout (`corral … | head -1`) ends any command quietly with
//! exit 0, as ripgrep does: Rust ignores SIGPIPE, so a write returns
//! `BrokenPipe`, and [`run_from_iter`] looks for it in the error chain.
//! `println!` panics instead of returning it; commands that still use it
//! are caught the same way (see [`broken_pipe`]).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod generate;
pub mod image;
pub mod logging;
pub mod ostree_helper;
pub mod output;
pub mod portal;
pub mod test;
pub mod tree;

/// Release engineering for a cloud OS: base images, curated Dockerfiles,
/// Atomic Host composes, signing and a registry mirror.
#[derive(Debug, Parser)]
#[command(
    name = "corral",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Package recipes to root filesystems.
    #[command(subcommand)]
    Tree(tree::TreeCommand),
    /// OCI base images: build and inspect.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// The curated Dockerfile library: lint, dependency graph, rebuild plans.
    #[command(subcommand)]
    Dockerfiles(corral_dockerfiles::cli::DockerfilesCommand),
    /// Atomic Host composes: signed OSTree commits on a release cadence.
    #[command(subcommand)]
    Compose(corral_compose::cli::ComposeCommand),
    /// Bootable Atomic Host disk images (qcow2, raw, raw.xz) of OSTree
    /// commits: GRUB for BIOS and UEFI on x86_64, UEFI only on aarch64.
    #[command(subcommand)]
    Disk(corral_disk::cli::DiskCommand),
    /// Atomic hosts: status, signed upgrades, rollbacks, boot health
    /// checks (`--sysroot DIR` works on a sysroot in a directory).
    Host(corral_host::cli::HostArgs),
    /// Run images' tests in SELinux-labelled containers (own MCS
    /// categories per run); text, JSON and JUnit reports. Exit 0: all
    /// passed; 1: some failed; 2: could not run.
    Test(corral_testrun::cli::TestArgs),
    /// Signing keys: generate cosign or GPG keys.
    #[command(subcommand)]
    Key(corral_sign::cli::KeyCommand),
    /// Sign images (cosign format, or GPG simple signing with a lookaside).
    #[command(subcommand)]
    Sign(corral_sign::cli::SignCommand),
    /// Verify an image's signatures.
    #[command(subcommand)]
    Verify(corral_sign::cli::VerifyCommand),
    /// Write the policy.json and registries.d files clients need to
    /// require corral's signatures.
    Policy(corral_sign::cli::PolicyArgs),
    /// The registry mirror: serve, garbage-collect and check its storage.
    #[command(subcommand)]
    Mirror(corral_mirror::cli::MirrorCommand),
    /// The community portal: submit templates for review.
    #[command(subcommand)]
    Portal(corral_portal::cli::PortalCommand),
    /// The whole release, resumably: base images, the curated library,
    /// Atomic Host streams, signatures and a report. Exit 0: released; 1:
    /// an image failed its tests (it was not published); 2: could not run.
    Release(corral_release::cli::ReleaseArgs),
    /// Write man pages or shell completions generated from this command tree.
    #[command(subcommand, hide = true)]
    Generate(generate::GenerateCommand),
}

/// Exit code of a command that could not run.
pub const EXIT_ERROR: u8 = 2;

/// Parses `args`, runs the command and maps errors to exit code 2 with the
/// whole cause chain on stderr. Runs every command in this process: the
/// entry point of `corral-ostree`, the binary that links libostree.
pub fn run_from_iter<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    run_args(args.into_iter().collect(), |command, _| {
        run_with_ostree(command)
    })
}

/// The entry point of `corral`: runs the commands that do not need
/// libostree in this process and hands `compose`, `disk`, `host` and
/// `release` to `corral-ostree` (see [`ostree_helper`]). The binary never
/// calls into libostree, so the linker leaves it and its ~55 libraries out,
/// and every other command starts without loading them.
pub fn run_front_from_iter<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    run_args(
        args.into_iter().collect(),
        |command, args| match run_without_ostree(command) {
            Ok(result) => result,
            Err(_) => ostree_helper::exec(args),
        },
    )
}

fn run_args(
    args: Vec<OsString>,
    run: impl FnOnce(Command, &[OsString]) -> anyhow::Result<ExitCode>,
) -> ExitCode {
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(EXIT_ERROR),
            };
        }
    };
    logging::init(cli.verbose);
    broken_pipe::quiet_print_panics();
    // AssertUnwindSafe: after a panic nothing of the command is used again.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli.command, &args)));
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(e)) if broken_pipe::in_chain(&e) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
        Err(payload) if broken_pipe::is_print_panic(payload.as_ref()) => ExitCode::SUCCESS,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// A reader that went away (`corral … | head`) is not an error.
pub mod broken_pipe {
    use std::any::Any;
    use std::io::ErrorKind;

    /// Whether any error in the chain is a `BrokenPipe` io error.
    pub fn in_chain(e: &anyhow::Error) -> bool {
        e.chain().any(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
        })
    }

    /// Whether a panic payload is `println!`'s "failed printing to stdout:
    /// Broken pipe".
    pub fn is_print_panic(payload: &(dyn Any + Send)) -> bool {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        message.is_some_and(|m| {
            m.starts_with("failed printing to stdout") && m.contains("Broken pipe")
        })
    }

    /// Keeps the panic message of a `println!` into a closed stdout off
    /// stderr; every other panic is reported as before.
    pub fn quiet_print_panics() {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_print_panic(info.payload()) {
                default(info);
            }
        }));
    }
}

/// Runs a command that does not need libostree, or gives back one that does.
fn run_without_ostree(command: Command) -> Result<anyhow::Result<ExitCode>, Box<Command>> {
    Ok(match command {
        Command::Tree(cmd) => tree::run(cmd),
        Command::Image(cmd) => image::run(cmd),
        Command::Dockerfiles(cmd) => corral_dockerfiles::cli::run(cmd),
        Command::Mirror(cmd) => corral_mirror::cli::run_with(cmd, &portal::routes),
        Command::Portal(cmd) => corral_portal::cli::run(cmd),
        Command::Test(args) => test::run(args),
        Command::Key(cmd) => corral_sign::cli::run_key(cmd),
        Command::Sign(cmd) => corral_sign::cli::run_sign(cmd),
        Command::Verify(cmd) => corral_sign::cli::run_verify(cmd),
        Command::Policy(args) => corral_sign::cli::run_policy(args),
        Command::Generate(cmd) => generate::run(cmd),
        needs_ostree @ (Command::Compose(_)
        | Command::Disk(_)
        | Command::Host(_)
        | Command::Release(_)) => return Err(Box::new(needs_ostree)),
    })
}

fn run_with_ostree(command: Command) -> anyhow::Result<ExitCode> {
    let command = match run_without_ostree(command) {
        Ok(result) => return result,
        Err(command) => *command,
    };
    match command {
        Command::Compose(cmd) => corral_compose::cli::run(cmd),
        Command::Disk(cmd) => corral_disk::cli::run(cmd),
        Command::Host(args) => corral_host::cli::run(args),
        Command::Release(args) => corral_release::cli::run(args),
        other => unreachable!("run_without_ostree ran {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_image_build() {
        let cli = Cli::try_parse_from([
            "corral",
            "image",
            "build",
            "--rootfs",
            "/t",
            "-o",
            "oci:out:1",
            "--compression",
            "zstd",
        ])
        .unwrap();
        let Command::Image(image::ImageCommand::Build(b)) = cli.command else {
            panic!()
        };
        assert_eq!(b.rootfs.as_deref(), Some(std::path::Path::new("/t")));
        assert_eq!(b.compression, "zstd");
        assert!(b.recipe.is_none());
    }

    #[test]
    fn image_build_needs_a_recipe_or_a_rootfs() {
        assert!(Cli::try_parse_from(["corral", "image", "build", "-o", "oci:o:t"]).is_err());
        let cli = Cli::try_parse_from([
            "corral", "image", "build", "r.toml", "--rootfs", "x", "-o", "oci:o:t",
        ])
        .unwrap();
        let Command::Image(image::ImageCommand::Build(b)) = cli.command else {
            panic!()
        };
        assert!(
            b.recipe.is_some() && b.rootfs.is_some(),
            "a recipe gives the config of a ready tree"
        );
        assert!(Cli::try_parse_from([
            "corral",
            "image",
            "build",
            "-o",
            "oci:o:t",
            "--rootfs",
            "x",
            "--compression",
            "xz"
        ])
        .is_err());
    }

    #[test]
    fn parses_release_and_image_outdated() {
        let cli = Cli::try_parse_from([
            "corral",
            "release",
            "--config",
            "r.toml",
            "--only",
            "base,host",
            "--dry-run",
        ])
        .unwrap();
        let Command::Release(r) = cli.command else {
            panic!()
        };
        assert_eq!(r.config, std::path::Path::new("r.toml"));
        assert_eq!(
            r.only,
            [corral_release::Step::Base, corral_release::Step::Host]
        );
        assert!(r.dry_run);
        let cli = Cli::try_parse_from(["corral", "image", "outdated", "sample/base:43", "--json"])
            .unwrap();
        let Command::Image(image::ImageCommand::Outdated(o)) = cli.command else {
            panic!()
        };
        assert_eq!(o.images, ["sample/base:43"]);
        assert_eq!(o.config, std::path::Path::new("release.toml"));
        assert!(o.json);
    }

    #[test]
    fn parses_tree_build_with_json() {
        let cli = Cli::try_parse_from([
            "corral", "tree", "build", "r.toml", "--rootfs", "/r", "--json",
        ])
        .unwrap();
        let Command::Tree(tree::TreeCommand::Build(b)) = cli.command else {
            panic!()
        };
        assert!(b.json);
    }
}
