//! The `corral compose` command group: clap types and dispatch. The
//! `corral` binary mounts [`ComposeCommand`] and calls [`run`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::cadence::SystemClock;
use crate::compose::{self, ComposeOutcome, RunOptions};
use crate::lock::RepoLock;
use crate::lockfile::Lockfile;
use crate::stream::Stream;
use crate::{diff, plan, repo};

/// Where stream names are looked up.
pub const STREAMS_DIR: &str = "ostree-refs";

#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Compose streams into signed commits with static deltas.
    Run(RunArgs),
    /// Each stream's head, next release day, and whether it is due.
    Plan(PlanArgs),
    /// Packages added, removed and changed between two commits of a ref.
    Diff(DiffArgs),
    /// Resolve a stream's packages and write them as its lockfile.
    Lock(LockArgs),
    /// Export a commit as an OCI image in the ostree container format.
    Export(ExportArgs),
    /// Import a commit from an OCI image in the ostree container format.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The repository to import into (it must exist).
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The image: oci:DIR[:TAG] (the only image when no tag is given).
    #[arg(value_name = "IMAGE")]
    pub image: crate::export::Destination,
    /// Point this ref at the imported commit.
    #[arg(long = "ref", value_name = "REF")]
    pub ostree_ref: Option<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The archive repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The commit: a ref, a checksum, or a version on the ref of that name.
    #[arg(value_name = "COMMIT")]
    pub commit: String,
    /// Where to: oci:DIR[:TAG] (a new layout; the tag defaults to the
    /// commit's version) or docker://HOST/REPO[:TAG].
    #[arg(short, long, value_name = "DEST")]
    pub output: crate::export::Destination,
    /// At most this many layers, one per group of packages plus the commit
    /// layer; 1 puts everything in one layer.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=500))]
    pub max_layers: u64,
    /// The image's architecture (GOARCH spelling).
    #[arg(long, value_name = "ARCH", default_value = "amd64")]
    pub arch: String,
    /// Verify the registry's TLS certificate (as skopeo's
    /// --dest-tls-verify; false also allows plain HTTP).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The stream file, or its name in ostree-refs/.
    #[arg(value_name = "STREAM")]
    pub stream: String,
    /// Where to write the lockfile (JSON).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Stream files, or names of files in ostree-refs/ (`sample-atomic`).
    #[arg(required = true, value_name = "STREAM")]
    pub streams: Vec<String>,
    /// The archive repository (created when missing).
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// Commit this ready tree (a directory or tar archive, never modified)
    /// instead of building the stream's recipe. One stream only.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Commit even when the input is the same as the head's.
    #[arg(long)]
    pub force: bool,
    /// Why this out-of-band compose is made (recorded on the commit).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Generate no static deltas.
    #[arg(long)]
    pub no_deltas: bool,
    /// Compose only the streams whose release day has come.
    #[arg(long)]
    pub due: bool,
    /// Wait for another compose on the repository instead of failing.
    #[arg(long)]
    pub wait: bool,
    /// Sign with this key instead of the stream's sign.gpg-key.
    #[arg(long, value_name = "KEY")]
    pub gpg_key: Option<String>,
    /// GnuPG home instead of the stream's sign.gpg-homedir.
    #[arg(long, value_name = "DIR")]
    pub gpg_homedir: Option<PathBuf>,
    /// Install exactly the packages of this lockfile (`compose lock`)
    /// instead of the stream's `lockfile`.
    #[arg(long, value_name = "FILE", conflicts_with = "rootfs")]
    pub lockfile: Option<PathBuf>,
    /// Set the repository's zlib level for content objects (1 fastest,
    /// 9 smallest; libostree's default 6). Kept in the repository config.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=9))]
    pub zlib_level: Option<u8>,
    /// Also publish each new commit as an OS image (the ostree container
    /// format, as `compose export` writes it), tagged with its version:
    /// docker://HOST/REPO. Commits that were not made (unchanged, not
    /// due) are not published.
    #[arg(long, value_name = "DEST", value_parser = parse_export_repo)]
    pub export: Option<String>,
    /// At most this many layers in each --export image.
    #[arg(long, value_name = "N", default_value_t = 50, requires = "export",
          value_parser = clap::value_parser!(u64).range(1..=500))]
    pub export_max_layers: u64,
    /// Verify the --export registry's TLS certificate (false also allows
    /// plain HTTP).
    #[arg(long, value_name = "BOOL", default_value_t = true, requires = "export",
          action = clap::ArgAction::Set)]
    pub export_tls_verify: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `docker://HOST/REPO` without a tag or digest: each commit's version is
/// its tag.
fn parse_export_repo(s: &str) -> Result<String, String> {
    let Some(rest) = s.strip_prefix("docker://") else {
        return Err(format!("`{s}`: give docker://HOST/REPO"));
    };
    let last = rest.rsplit('/').next().unwrap_or_default();
    if rest.is_empty() || !rest.contains('/') || last.contains(':') || last.contains('@') {
        return Err(format!(
            "`{s}`: give docker://HOST/REPO without a tag (each commit's version is its tag)"
        ));
    }
    Ok(rest.to_string())
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Stream files or names; every file in ostree-refs/ when none.
    #[arg(value_name = "STREAM")]
    pub streams: Vec<String>,
    /// The archive repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The archive repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The ref whose history holds the commits.
    #[arg(value_name = "REF")]
    pub ostree_ref: String,
    /// Version (43.20261125.0), checksum (or prefix) or rev of the old commit.
    pub a: String,
    /// The new commit, likewise.
    pub b: String,
    #[arg(long)]
    pub json: bool,
}

/// Runs a compose command. Errors mean it could not run (exit code 2).
pub fn run(cmd: ComposeCommand) -> Result<ExitCode> {
    match cmd {
        ComposeCommand::Run(args) => run_compose(args),
        ComposeCommand::Plan(args) => run_plan(args),
        ComposeCommand::Diff(args) => run_diff(args),
        ComposeCommand::Lock(args) => run_lock(args),
        ComposeCommand::Export(args) => run_export(args),
        ComposeCommand::Import(args) => run_import(args),
    }
}

/// A stream argument to its file: a path, or a name in ostree-refs/.
pub fn stream_path(arg: &str) -> PathBuf {
    let p = PathBuf::from(arg);
    if p.exists() || arg.contains('/') || arg.ends_with(".toml") {
        return p;
    }
    Path::new(STREAMS_DIR).join(format!("{arg}.toml"))
}

fn stream_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn run_compose(args: RunArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        args.rootfs.is_none() || args.streams.len() == 1,
        "--rootfs takes exactly one stream, {} given",
        args.streams.len()
    );
    // Every stream file is read before anything is built.
    let streams = args
        .streams
        .iter()
        .map(|a| {
            let path = stream_path(a);
            // A ready tree needs no repository URLs resolved.
            let mut stream = match args.rootfs {
                Some(_) => Stream::read(&path)?,
                None => Stream::load(&path)?,
            };
            if let Some(lockfile) = &args.lockfile {
                stream.lockfile = Some(lockfile.clone());
            }
            Ok((stream, path))
        })
        .collect::<Result<Vec<_>>>()?;
    let _lock = RepoLock::acquire(&args.repo, args.wait)?;
    let opts = RunOptions {
        repo: args.repo.clone(),
        rootfs: args.rootfs.clone(),
        force: args.force,
        reason: args.reason.clone(),
        deltas: !args.no_deltas,
        due_only: args.due,
        gpg_key: args.gpg_key.clone(),
        gpg_homedir: args.gpg_homedir.clone(),
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.parse().ok()),
        zlib_level: args.zlib_level,
    };
    let mut outcomes = Vec::new();
    for (stream, path) in &streams {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_message(format!("composing {}", stream.ostree_ref));
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        let outcome = compose::run(stream, path, &opts, &SystemClock)
            .with_context(|| format!("composing {}", path.display()));
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        let outcome = outcome?;
        if !args.json {
            println!("{}", describe(&outcome));
        }
        let mut json = serde_json::to_value(&outcome)?;
        if let (
            Some(repo),
            ComposeOutcome::Committed {
                version, checksum, ..
            },
        ) = (&args.export, &outcome)
        {
            let dest = crate::export::Destination::Registry(format!("{repo}:{version}"));
            let opts = corral_ostree::container::export::ExportOptions {
                max_layers: args.export_max_layers as usize,
                ..Default::default()
            };
            let image = crate::export::export(
                &args.repo,
                checksum,
                &dest,
                &opts,
                args.export_tls_verify,
            )
            .with_context(|| format!("publishing {checksum} as docker://{repo}:{version}"))?;
            if !args.json {
                print!("{}", crate::export::describe(&image));
            }
            json["image"] = serde_json::to_value(&image)?;
        }
        outcomes.push(json);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(outcome: &ComposeOutcome) -> String {
    match outcome {
        ComposeOutcome::Committed {
            ostree_ref,
            version,
            checksum,
            timestamp,
            timestamp_source,
            users,
            selinux_policy,
            deltas,
            pruned,
            stream_file,
            ..
        } => {
            let published = deltas.iter().filter(|d| d.published).count();
            let mut text = format!(
                "{ostree_ref}: committed {version} {checksum} ({published} of {} static deltas published, {} old commits pruned)\n  timestamp {timestamp} ({}), from {timestamp_source}",
                deltas.len(),
                pruned.len(),
                crate::compose::day_of(*timestamp)
                    .map(crate::stream::format_date)
                    .unwrap_or_default(),
            );
            match selinux_policy {
                Some(p) => text.push_str(&format!(
                    "\n  labelled with the tree's SELinux policy `{p}`"
                )),
                None => text.push_str(
                    "\n  unlabelled: the tree has no SELinux policy (/etc/selinux/config)",
                ),
            }
            if !users.altfiles {
                text.push_str(
                    "\n  users stay in /etc/passwd: the tree has no nss-altfiles to resolve them in /usr/lib",
                );
            } else if !users.usr_lib_users.is_empty() || !users.usr_lib_groups.is_empty() {
                text.push_str(&format!(
                    "\n  {} users and {} groups in /usr/lib/passwd and /usr/lib/group",
                    users.usr_lib_users.len(),
                    users.usr_lib_groups.len(),
                ));
            }
            text.push_str(&format!("\n  stream file {}", stream_file.display()));
            text
        }
        ComposeOutcome::Unchanged {
            ostree_ref,
            version,
            checksum,
        } => format!(
            "{ostree_ref}: unchanged at {} {checksum} (same input hash; --force to commit anyway)",
            version.as_deref().unwrap_or("-")
        ),
        ComposeOutcome::NotDue {
            ostree_ref,
            next_release_day,
        } => format!("{ostree_ref}: not due (next release day {next_release_day})"),
    }
}

fn run_plan(args: PlanArgs) -> Result<ExitCode> {
    let paths: Vec<PathBuf> = if args.streams.is_empty() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(STREAMS_DIR)
            .with_context(|| {
                format!("reading {STREAMS_DIR}/ (name streams or run from the checkout)")
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        found.sort();
        found
    } else {
        args.streams.iter().map(|a| stream_path(a)).collect()
    };
    // Planning needs no repository URLs, so `${VAR}`s stay unresolved.
    let streams = paths
        .iter()
        .map(|p| Ok((stream_name(p), Stream::read(p)?)))
        .collect::<Result<Vec<_>>>()?;
    // A typo in --repo must not read as "nothing composed yet, due".
    repo::require_existing(&args.repo)?;
    let plans = plan::plan(&streams, &args.repo, &SystemClock)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plans)?);
    } else {
        print!("{}", plan::render(&plans));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_lock(args: LockArgs) -> Result<ExitCode> {
    let path = stream_path(&args.stream);
    let stream = Stream::load(&path)?;
    let recipe = stream
        .recipe()
        .with_context(|| format!("{} has no [tree] table: nothing to resolve", path.display()))?;
    let work = tempfile::Builder::new()
        .prefix("corral-lock-")
        .tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
        .context("creating a work directory")?;
    let rootfs = work.path().join("rootfs");
    corral_tree::build_tree(
        recipe,
        &rootfs,
        &corral_tree::BuildOptions {
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|v| v.parse().ok()),
            time_limit: None,
        },
    )
    .with_context(|| format!("building the tree of {}", path.display()))?;
    let lock = Lockfile::from_tree(&rootfs)?;
    lock.write(&args.output)?;
    println!(
        "{}: {} packages locked in {}",
        path.display(),
        lock.packages.len(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_export(args: ExportArgs) -> Result<ExitCode> {
    let opts = corral_ostree::container::export::ExportOptions {
        max_layers: args.max_layers as usize,
        architecture: args.arch.clone(),
    };
    let outcome = crate::export::export(
        &args.repo,
        &args.commit,
        &args.output,
        &opts,
        args.tls_verify,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", crate::export::describe(&outcome));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_import(args: ImportArgs) -> Result<ExitCode> {
    let crate::export::Destination::Layout { dir, tag } = &args.image else {
        anyhow::bail!("import reads an OCI layout: give oci:DIR[:TAG]");
    };
    let repo = corral_ostree::commit::open(&args.repo)?;
    let imported =
        corral_ostree::container::import::import_layout(&repo, dir, tag.as_deref().unwrap_or(""))?;
    if let Some(r) = &args.ostree_ref {
        repo.set_ref_immediate(
            None,
            r,
            Some(&imported.commit),
            ostree::gio::Cancellable::NONE,
        )
        .with_context(|| format!("setting {r}"))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&imported)?);
    } else {
        println!(
            "commit {} imported ({} objects from {} layers)",
            imported.commit,
            imported.objects_written,
            imported.layers_read.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_diff(args: DiffArgs) -> Result<ExitCode> {
    let repo = repo::open(&args.repo)?;
    let a = repo::resolve(&repo, &args.ostree_ref, &args.a)?;
    let b = repo::resolve(&repo, &args.ostree_ref, &args.b)?;
    let d = diff::diff_packages(&a.packages, &b.packages);
    if args.json {
        let out = serde_json::json!({
            "ref": args.ostree_ref,
            "from": { "checksum": a.checksum, "version": a.version },
            "to": { "checksum": b.checksum, "version": b.version },
            "added": d.added,
            "removed": d.removed,
            "changed": d.changed,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", diff::render(&d));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Top {
        #[command(subcommand)]
        cmd: ComposeCommand,
    }

    #[test]
    fn parses_run() {
        let t = Top::try_parse_from([
            "compose",
            "run",
            "sample-atomic",
            "--repo",
            "/r",
            "--force",
            "--reason",
            "CVE-1",
            "--no-deltas",
            "--due",
        ])
        .unwrap();
        match t.cmd {
            ComposeCommand::Run(a) => {
                assert_eq!(a.streams, ["sample-atomic"]);
                assert!(a.force && a.no_deltas && a.due);
                assert_eq!(a.reason.as_deref(), Some("CVE-1"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Top::try_parse_from(["compose", "run", "--repo", "/r"]).is_err());
        assert!(
            Top::try_parse_from(["compose", "run", "s", "--repo", "/r", "--zlib-level", "0"])
                .is_err()
        );
    }

    #[test]
    fn parses_lock_and_lockfile() {
        let t =
            Top::try_parse_from(["compose", "lock", "sample-atomic", "-o", "x.lock.json"]).unwrap();
        match t.cmd {
            ComposeCommand::Lock(a) => {
                assert_eq!(a.stream, "sample-atomic");
                assert_eq!(a.output, PathBuf::from("x.lock.json"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Top::try_parse_from(["compose", "lock", "sample-atomic"]).is_err());
        let t = Top::try_parse_from([
            "compose",
            "run",
            "s",
            "--repo",
            "/r",
            "--lockfile",
            "l.json",
        ])
        .unwrap();
        assert!(matches!(
            t.cmd,
            ComposeCommand::Run(RunArgs {
                lockfile: Some(_),
                ..
            })
        ));
        // A ready tree installs nothing: a lockfile has no say.
        let err = Top::try_parse_from([
            "compose",
            "run",
            "s",
            "--repo",
            "/r",
            "--lockfile",
            "l.json",
            "--rootfs",
            "t",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("cannot be used with"), "{err}");
    }

    #[test]
    fn parses_plan_and_diff() {
        let t = Top::try_parse_from(["compose", "plan", "--repo", "/r", "--json"]).unwrap();
        assert!(matches!(
            t.cmd,
            ComposeCommand::Plan(PlanArgs { json: true, .. })
        ));
        let t = Top::try_parse_from(["compose", "diff", "--repo", "/r", "a/b", "1", "2"]).unwrap();
        match t.cmd {
            ComposeCommand::Diff(d) => {
                assert_eq!((d.ostree_ref.as_str(), d.a.as_str()), ("a/b", "1"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stream_names_resolve_in_ostree_refs() {
        assert_eq!(
            stream_path("sample-atomic"),
            PathBuf::from("ostree-refs/sample-atomic.toml")
        );
        assert_eq!(stream_path("x/y.toml"), PathBuf::from("x/y.toml"));
    }
}
