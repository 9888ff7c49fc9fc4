//! The clap types of `corral disk` and their dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use corral_configfile::parse_size;

use crate::build::{BuildOptions, Source};
use crate::error::DiskError;
use crate::layout::Format;
use crate::stream::DiskStream;

/// The stateroot `corral host` and its tests use.
pub const DEFAULT_OSNAME: &str = "corral";
/// The remote name when neither the stream nor a flag names one.
pub const DEFAULT_REMOTE: &str = "corral";
pub const DEFAULT_SIZE: &str = "10G";

#[derive(Debug, Subcommand)]
pub enum DiskCommand {
    /// Build a bootable disk image (GPT; GRUB for BIOS and UEFI on x86_64,
    /// UEFI only on aarch64) of an OSTree commit, deployed with libostree.
    Build(BuildArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Bootloader {
    /// GRUB2 for BIOS and UEFI, its menu written from the BLS entries.
    Grub,
    /// systemd-boot for UEFI (not supported yet).
    SystemdBoot,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// A stream file (ostree-refs/*.toml): the ref, and the [disk]
    /// section's size, kargs, remote-name and remote-url. Flags override.
    #[arg(value_name = "STREAM_FILE")]
    pub stream: Option<PathBuf>,
    /// The commit to deploy (a checksum or a prefix of one).
    #[arg(long, value_name = "CHECKSUM")]
    pub commit: Option<String>,
    /// The ref to deploy (with --commit: the ref the host follows).
    #[arg(long = "ref", value_name = "REF")]
    pub ostree_ref: Option<String>,
    /// The local OSTree repository holding the commit.
    #[arg(long, value_name = "DIR", required_unless_present = "image")]
    pub repo: Option<PathBuf>,
    /// Instead of --repo and --commit: an OS image, oci:DIR[:TAG] or
    /// docker://HOST/REPO:TAG (the ostree container format, as `corral
    /// compose export` and `corral release` publish it). Its commit is
    /// imported into a temporary repository and deployed under the ref
    /// of --ref or the stream file.
    #[arg(long, value_name = "IMAGE", conflicts_with_all = ["repo", "commit"])]
    pub image: Option<crate::image::ImageSource>,
    /// With --image docker://…: verify the registry's TLS certificate;
    /// false talks plain HTTP (a local mirror).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, requires = "image")]
    pub tls_verify: bool,
    /// The image to write; IMAGE.sha256 (and IMAGE.asc) are written beside.
    #[arg(short, long, value_name = "IMAGE")]
    pub output: PathBuf,
    #[arg(long, value_enum)]
    pub format: Format,
    /// Virtual size of the disk (K, M, G, T are powers of 1024) [default: the
    /// stream's, else 10G].
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,
    #[arg(long, value_enum, default_value = "grub")]
    pub bootloader: Bootloader,
    /// The stateroot (osname) of the deployment.
    #[arg(long = "os", value_name = "NAME", default_value = DEFAULT_OSNAME)]
    pub osname: String,
    /// The remote the deployment's origin names [default: the stream's,
    /// else corral].
    #[arg(long, value_name = "NAME")]
    pub remote_name: Option<String>,
    /// Where the host pulls updates from (the mirror's /ostree URL).
    #[arg(long, value_name = "URL")]
    pub remote_url: Option<String>,
    /// The public key(s) the remote's commits and summary must be signed by.
    #[arg(long, value_name = "FILE")]
    pub remote_gpg_key: Option<PathBuf>,
    /// A kernel argument (repeatable), after the stream's kargs.
    #[arg(long = "karg", value_name = "ARG")]
    pub kargs: Vec<String>,
    /// Sign the image: a detached armored signature IMAGE.asc.
    #[arg(long, value_name = "ID")]
    pub gpg_key: Option<String>,
    /// GnuPG home for --gpg-key [default: $GNUPGHOME or ~/.gnupg].
    #[arg(long, value_name = "DIR", requires = "gpg_key")]
    pub gpg_homedir: Option<PathBuf>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: DiskCommand) -> Result<ExitCode> {
    match cmd {
        DiskCommand::Build(args) => {
            let opts = options(&args)?;
            let report = crate::build::build(&opts)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{}\t{}\t{} bytes\tsha256:{}",
                    report.image.display(),
                    report.format.name(),
                    report.file_size,
                    report.sha256
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Flags over the stream file over the defaults.
pub fn options(args: &BuildArgs) -> Result<BuildOptions> {
    if args.bootloader == Bootloader::SystemdBoot {
        return Err(DiskError::Unsupported(
            "--bootloader systemd-boot is not supported yet; use --bootloader grub \
             (GRUB boots BIOS and UEFI)"
                .into(),
        )
        .into());
    }
    let stream = args
        .stream
        .as_deref()
        .map(|p| {
            DiskStream::read(p).with_context(|| format!("reading the stream file {}", p.display()))
        })
        .transpose()?;
    let disk = stream.as_ref().map(|s| s.disk.clone()).unwrap_or_default();
    let stream_ref = stream.as_ref().map(|s| s.ostree_ref.clone());
    let (source, origin_ref) = match (&args.commit, &args.ostree_ref, &stream_ref) {
        _ if args.image.is_some() => {
            let origin_ref = args.ostree_ref.clone().or(stream_ref.clone());
            if origin_ref.is_none() {
                bail!(
                    "--image needs the ref the host follows: --ref REF or a STREAM_FILE \
                     (an OS image carries a commit, not a ref)"
                );
            }
            let input = crate::image::ImageInput {
                source: args.image.clone().expect("checked"),
                tls_verify: args.tls_verify,
            };
            (Source::Image(input), origin_ref)
        }
        (Some(c), r, s) => (Source::Commit(c.clone()), r.clone().or(s.clone())),
        (None, Some(r), _) => (Source::Ref(r.clone()), Some(r.clone())),
        (None, None, Some(s)) => (Source::Ref(s.clone()), Some(s.clone())),
        (None, None, None) => {
            bail!("name what to deploy: a STREAM_FILE, --ref REF or --commit CHECKSUM")
        }
    };
    let size_text = args
        .size
        .clone()
        .or(disk.size.clone())
        .unwrap_or_else(|| DEFAULT_SIZE.to_string());
    let size = parse_size(&size_text).map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    if !disk.formats.is_empty() && !disk.formats.iter().any(|f| f == args.format.name()) {
        tracing::warn!(
            format = args.format.name(),
            formats = ?disk.formats,
            "the stream does not list this format in [disk] formats"
        );
    }
    let mut kargs = disk.kargs.clone();
    kargs.extend(args.kargs.iter().cloned());
    Ok(BuildOptions {
        // an image brings its own (temporary) repository
        repo: args.repo.clone().unwrap_or_default(),
        source,
        origin_ref,
        output: args.output.clone(),
        format: args.format,
        size,
        size_text,
        osname: args.osname.clone(),
        remote_name: args
            .remote_name
            .clone()
            .or(disk.remote_name.clone())
            .unwrap_or_else(|| DEFAULT_REMOTE.to_string()),
        remote_url: args.remote_url.clone().or(disk.remote_url.clone()),
        remote_gpg_key: args.remote_gpg_key.clone(),
        kargs,
        gpg_key: args.gpg_key.clone(),
        gpg_homedir: args.gpg_homedir.clone(),
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: DiskCommand,
    }

    fn parse(args: &[&str]) -> BuildArgs {
        let mut all = vec!["t", "build"];
        all.extend(args);
        match T::try_parse_from(all).unwrap().cmd {
            DiskCommand::Build(b) => b,
        }
    }

    #[test]
    fn flags_override_and_kargs_add_up() {
        let a = parse(&[
            "--ref",
            "x/y",
            "--repo",
            "r",
            "-o",
            "i.qcow2",
            "--format",
            "qcow2",
            "--karg",
            "console=ttyS0",
            "--size",
            "4G",
        ]);
        let o = options(&a).unwrap();
        assert_eq!(o.source, Source::Ref("x/y".into()));
        assert_eq!(o.size, 4 << 30);
        assert_eq!(o.kargs, ["console=ttyS0"]);
        assert_eq!(o.remote_name, "corral");
        assert_eq!(o.osname, "corral");
    }

    #[test]
    fn raw_xz_is_a_format_and_systemd_boot_is_refused() {
        let a = parse(&["--ref", "r", "--repo", "r", "-o", "i", "--format", "raw.xz"]);
        assert_eq!(a.format, Format::RawXz);
        let a = parse(&[
            "--ref",
            "r",
            "--repo",
            "r",
            "-o",
            "i",
            "--format",
            "raw",
            "--bootloader",
            "systemd-boot",
        ]);
        let err = options(&a).unwrap_err().to_string();
        assert!(err.contains("systemd-boot is not supported yet"), "{err}");
    }

    #[test]
    fn an_image_replaces_repo_and_commit_and_needs_a_ref() {
        let a = parse(&[
            "--image",
            "docker://127.0.0.1:5000/os/sample-atomic:43",
            "--tls-verify=false",
            "--ref",
            "x/y",
            "-o",
            "i.qcow2",
            "--format",
            "qcow2",
        ]);
        let o = options(&a).unwrap();
        assert_eq!(
            o.source,
            Source::Image(crate::image::ImageInput {
                source: crate::image::ImageSource::Registry(
                    "127.0.0.1:5000/os/sample-atomic:43".into()
                ),
                tls_verify: false,
            })
        );
        assert_eq!(o.origin_ref.as_deref(), Some("x/y"));
        let a = parse(&["--image", "oci:out/os", "-o", "i", "--format", "raw"]);
        let err = options(&a).unwrap_err().to_string();
        assert!(err.contains("--image needs the ref"), "{err}");
        let mut all = vec!["t", "build", "--image", "oci:out/os", "--repo", "r"];
        all.extend(["-o", "i", "--format", "raw"]);
        assert!(T::try_parse_from(all).is_err(), "--image with --repo");
        let all = vec!["t", "build", "--ref", "r", "-o", "i", "--format", "raw"];
        assert!(
            T::try_parse_from(all).is_err(),
            "neither --repo nor --image"
        );
    }

    #[test]
    fn something_to_deploy_is_required() {
        let a = parse(&["--repo", "r", "-o", "i", "--format", "raw"]);
        let err = options(&a).unwrap_err().to_string();
        assert!(err.contains("name what to deploy"), "{err}");
    }
}
