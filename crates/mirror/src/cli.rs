//! The `corral mirror` subcommands. The binary's clap tree embeds
//! [`MirrorCommand`] and calls [`run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::storage::Storage;

#[derive(clap::Subcommand, Debug)]
pub enum MirrorCommand {
    /// Serve the registry (distribution-spec v1.1) and pull-through mirror
    Serve(ServeArgs),
    /// Delete manifests and blobs no tag reaches
    Gc(GcArgs),
    /// Check blobs, tags, manifests, references and links; exit 1 on damage
    Fsck(FsckArgs),
    /// Upload an OSTree repository or disk images into the replicas' bucket
    Publish(crate::cli_publish::PublishArgs),
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// TOML configuration file; flags override it
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:5000]
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Storage directory
    #[arg(long)]
    pub storage: Option<PathBuf>,
    /// Mirror repositories under PREFIX/ from URL (repeatable)
    #[arg(long = "upstream", value_name = "PREFIX=URL")]
    pub upstreams: Vec<String>,
    /// htpasswd file with bcrypt entries (htpasswd -B)
    #[arg(long)]
    pub htpasswd: Option<PathBuf>,
    /// Serve this OSTree archive repository read-only under /ostree/
    #[arg(long)]
    pub ostree_repo: Option<PathBuf>,
    /// Serve the disk images in this directory read-only under /disk-images/
    /// and list them in the catalog with checksum and signature state
    #[arg(long, value_name = "DIR")]
    pub disk_images: Option<PathBuf>,
    /// Trust this cosign public key: the catalog shows the tags it signed as verified (repeatable)
    #[arg(long = "trust-cosign-key", value_name = "FILE")]
    pub trust_cosign_keys: Vec<PathBuf>,
    /// Trust the keys of this GPG keyring (gpg --export output; repeatable)
    #[arg(long = "trust-gpg-keyring", value_name = "FILE")]
    pub trust_gpg_keyrings: Vec<PathBuf>,
    /// Serve the community portal under /community, configured by the
    /// [portal] table of this TOML file (docs/portal.md)
    #[arg(long, value_name = "FILE")]
    pub portal: Option<PathBuf>,
}

/// Builds routes that `serve` adds beside the mirror's own: how corral-cli
/// joins the community portal, which the mirror does not import. The
/// routes may set and change the website's listing rules.
pub type ExtraRoutes<'a> = &'a dyn Fn(
    &ServeArgs,
    &Config,
    &Arc<corral_site::listings::Listings>,
) -> anyhow::Result<axum::Router>;

#[derive(clap::Args, Debug)]
pub struct StorageArgs {
    /// TOML configuration file (for its storage and gc settings)
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Storage directory (overrides the config)
    #[arg(long)]
    pub storage: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct GcArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// List what would be deleted without deleting
    #[arg(long)]
    pub dry_run: bool,
    /// Keep unreferenced content younger than this many seconds [default: from config, 3600]
    #[arg(long, value_name = "SECONDS")]
    pub grace_period: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub struct FsckArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Remove garbage (idle temp files and upload sessions, broken sessions,
    /// unrecoverable link files, tags pointing nowhere) and list each removal;
    /// never removes a blob or anything still referenced
    #[arg(long)]
    pub repair: bool,
    /// Upload sessions and temp files idle longer than this many seconds are
    /// stale [default: the gc grace period, 3600]
    #[arg(long, value_name = "SECONDS")]
    pub idle_threshold: Option<u64>,
}

fn load(config: Option<&PathBuf>) -> anyhow::Result<Config> {
    match config {
        Some(p) => Config::load(p),
        None => Ok(Config::default()),
    }
}

/// gc and fsck work on a storage `serve` made: a typo must not create an
/// empty tree and report a clean bill of health.
fn check_storage_root(root: &std::path::Path) -> anyhow::Result<()> {
    let shown = root.display();
    anyhow::ensure!(
        root.is_dir(),
        "storage {shown} does not exist or is not a directory (gc and fsck do not create one)"
    );
    anyhow::ensure!(
        root.join("blobs").is_dir() && root.join("repos").is_dir(),
        "storage {shown} is not a mirror storage directory (no blobs/ and repos/)"
    );
    Ok(())
}

fn open_storage(args: &StorageArgs) -> anyhow::Result<(Config, Arc<dyn Storage>)> {
    let mut config = load(args.config.as_ref())?;
    if let Some(s) = &args.storage {
        config.storage = s.clone();
        // A directory on the command line means the filesystem backend.
        config.s3 = None;
    }
    config.validate()?;
    if config.s3.is_none() {
        check_storage_root(&config.storage)?;
    }
    let store = crate::storage::open(&config)?;
    Ok((config, store))
}

/// The serve configuration: the file, then flags on top.
pub fn serve_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = load(args.config.as_ref())?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(s) = &args.storage {
        config.storage = s.clone();
        config.s3 = None;
    }
    for u in &args.upstreams {
        config.add_upstream_flag(u)?;
    }
    if let Some(h) = &args.htpasswd {
        config.auth.htpasswd = Some(h.clone());
    }
    if let Some(o) = &args.ostree_repo {
        config.ostree_repo = Some(o.clone());
    }
    if let Some(d) = &args.disk_images {
        config.disk_images.dir = Some(d.clone());
    }
    // Flags add to the config's keys rather than replace them.
    config
        .trust
        .cosign_keys
        .extend(args.trust_cosign_keys.iter().cloned());
    config
        .trust
        .gpg_keyrings
        .extend(args.trust_gpg_keyrings.iter().cloned());
    config.validate()?;
    Ok(config)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}

pub fn run(cmd: MirrorCommand) -> anyhow::Result<ExitCode> {
    run_with(cmd, &|args, _, _| {
        anyhow::ensure!(
            args.portal.is_none(),
            "--portal needs the corral binary, which joins the portal to the mirror"
        );
        Ok(axum::Router::new())
    })
}

/// [`run`], with `extra` routes for `serve`.
pub fn run_with(cmd: MirrorCommand, extra: ExtraRoutes<'_>) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match cmd {
        MirrorCommand::Serve(args) => {
            let config = serve_config(&args)?;
            let listings = Arc::default();
            let routes = extra(&args, &config, &listings)?;
            rt.block_on(async {
                let app = crate::server::build_app_with(config, listings)?;
                let server = crate::server::start_app_with(app, routes).await?;
                eprintln!("corral mirror listening on {}", server.addr);
                tokio::select! {
                    r = async { server.wait().await } => r?,
                    _ = shutdown_signal() => tracing::info!("shutting down"),
                }
                Ok::<_, anyhow::Error>(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        MirrorCommand::Gc(args) => {
            let (config, store) = open_storage(&args.storage)?;
            let grace =
                Duration::from_secs(args.grace_period.unwrap_or(config.gc.grace_period_secs));
            let report = rt
                .block_on(crate::gc::collect(store.as_ref(), grace, args.dry_run))
                .context("garbage collection")?;
            if args.storage.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let verb = if args.dry_run {
                    "would delete"
                } else {
                    "deleted"
                };
                for m in &report.manifests {
                    println!("{verb} manifest {m}");
                }
                for l in &report.blob_links {
                    println!("{verb} blob link {l}");
                }
                for b in &report.blobs {
                    println!("{verb} blob {b}");
                }
                for i in &report.idle {
                    println!("{verb} idle {i}");
                }
                for l in &report.stale_locks {
                    println!("{verb} stale lock {l}");
                }
                println!(
                    "{verb} {} manifests, {} blob links, {} blobs ({} bytes); kept {} young unreferenced blobs",
                    report.manifests.len(),
                    report.blob_links.len(),
                    report.blobs.len(),
                    report.bytes,
                    report.young_kept
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        MirrorCommand::Publish(args) => crate::cli_publish::run(args, &rt),
        MirrorCommand::Fsck(args) => fsck(&rt, &args, &mut std::io::stdout().lock()),
    }
}

/// `corral mirror fsck`: the report on `out` (human or JSON), exit 1 on damage.
fn fsck(
    rt: &tokio::runtime::Runtime,
    args: &FsckArgs,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<ExitCode> {
    let (config, store) = open_storage(&args.storage)?;
    let opts = crate::fsck::FsckOptions {
        mirrored_prefixes: config.upstreams.iter().map(|u| u.prefix.clone()).collect(),
        idle: Duration::from_secs(args.idle_threshold.unwrap_or(config.gc.grace_period_secs)),
    };
    let report = rt
        .block_on(async {
            if args.repair {
                crate::fsck::check_and_repair(store.as_ref(), &opts).await
            } else {
                crate::fsck::check_with(store.as_ref(), &opts).await
            }
        })
        .context("checking storage")?;
    if args.storage.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{}", report.render())?;
    }
    Ok(if report.damaged() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Top {
        #[command(subcommand)]
        cmd: MirrorCommand,
    }

    #[test]
    fn parse_serve() {
        let t = Top::try_parse_from([
            "mirror",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "library=http://127.0.0.1:9",
            "--upstream",
            "quay=https://quay.example",
            "--storage",
            "/tmp/s",
            "--trust-cosign-key",
            "a.pub",
            "--trust-cosign-key",
            "b.pub",
            "--trust-gpg-keyring",
            "k.gpg",
            "--disk-images",
            "/srv/disk-images",
        ])
        .unwrap();
        let MirrorCommand::Serve(args) = t.cmd else {
            panic!("not serve")
        };
        let c = serve_config(&args).unwrap();
        assert_eq!(c.upstreams.len(), 2);
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.trust.cosign_keys.len(), 2);
        assert_eq!(c.trust.gpg_keyrings, vec![PathBuf::from("k.gpg")]);
        assert_eq!(c.disk_images.dir, Some(PathBuf::from("/srv/disk-images")));
        assert!(Top::try_parse_from(["mirror", "gc", "--dry-run", "--json"]).is_ok());
        assert!(Top::try_parse_from(["mirror", "fsck", "--json", "--storage", "/x"]).is_ok());
    }

    fn storage_args(dir: &std::path::Path) -> StorageArgs {
        StorageArgs {
            config: None,
            storage: Some(dir.to_path_buf()),
            json: true,
        }
    }

    #[test]
    fn gc_and_fsck_refuse_a_storage_that_does_not_exist() {
        let dir = tempfile::tempdir().unwrap();
        let typo = dir.path().join("typo");
        let e = run(MirrorCommand::Fsck(FsckArgs {
            storage: storage_args(&typo),
            repair: false,
            idle_threshold: None,
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("typo") && e.contains("does not exist"), "{e}");
        let e = run(MirrorCommand::Gc(GcArgs {
            storage: storage_args(&typo),
            dry_run: false,
            grace_period: Some(0),
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not exist"), "{e}");
        assert!(!typo.exists(), "nothing was created");
        // An existing directory that is not a storage is not one either.
        let e = run(MirrorCommand::Fsck(FsckArgs {
            storage: storage_args(dir.path()),
            repair: false,
            idle_threshold: None,
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("not a mirror storage directory"), "{e}");
        assert!(!dir.path().join("blobs").exists());
        // An empty --storage is an error too, not the current directory.
        let e = run(MirrorCommand::Fsck(FsckArgs {
            storage: storage_args(std::path::Path::new("")),
            repair: false,
            idle_threshold: None,
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("storage is empty"), "{e}");
    }

    #[test]
    fn serve_flags_are_validated() {
        // clap refuses an empty path itself.
        assert!(Top::try_parse_from(["mirror", "serve", "--storage", ""]).is_err());
        let t =
            Top::try_parse_from(["mirror", "serve", "--upstream", "a=http://bad host"]).unwrap();
        let MirrorCommand::Serve(args) = t.cmd else {
            panic!("not serve")
        };
        let e = serve_config(&args).unwrap_err().to_string();
        assert!(e.contains("upstream[0].url"), "{e}");
    }

    #[test]
    fn fsck_and_gc_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        crate::storage::FsStorage::open(dir.path()).unwrap();
        let fsck = || {
            run(MirrorCommand::Fsck(FsckArgs {
                storage: storage_args(dir.path()),
                repair: false,
                idle_threshold: None,
            }))
            .unwrap()
        };
        assert_eq!(fsck(), ExitCode::SUCCESS);
        // A blob whose content does not match its name is damage: exit 1.
        let d = crate::name::Digest::of_bytes(b"right");
        let p = dir.path().join("blobs/sha256").join(&d.hex()[..2]);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join(d.hex()), b"wrong").unwrap();
        assert_eq!(fsck(), ExitCode::from(1));
        let gc = |dry_run| {
            run(MirrorCommand::Gc(GcArgs {
                storage: storage_args(dir.path()),
                dry_run,
                grace_period: Some(0),
            }))
            .unwrap()
        };
        assert_eq!(gc(true), ExitCode::SUCCESS);
        assert!(p.join(d.hex()).exists(), "dry run keeps it");
        assert_eq!(gc(false), ExitCode::SUCCESS);
        assert!(
            !p.join(d.hex()).exists(),
            "unreferenced and past the grace period"
        );
        assert_eq!(fsck(), ExitCode::SUCCESS);
    }

    /// `fsck --json` on a damaged store: parseable, names the damage, exit 1;
    /// `--repair` lists its removals and the next run is clean.
    #[test]
    fn fsck_json_and_repair() {
        let dir = tempfile::tempdir().unwrap();
        // fsck refuses a directory that is not a storage root.
        crate::storage::FsStorage::open(dir.path()).unwrap();
        let tags = dir.path().join("repos/app/_tags");
        std::fs::create_dir_all(&tags).unwrap();
        std::fs::write(tags.join("v1"), b"not a digest").unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp/partial"), b"half").unwrap();
        let rt = runtime().unwrap();
        let run_fsck = |repair: bool| {
            let args = FsckArgs {
                storage: storage_args(dir.path()),
                repair,
                idle_threshold: Some(0),
            };
            let mut out = Vec::new();
            let code = fsck(&rt, &args, &mut out).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            (code, v)
        };
        std::thread::sleep(Duration::from_millis(20));
        let (code, v) = run_fsck(false);
        assert_eq!(code, ExitCode::from(1));
        assert_eq!(v["damaged"], true);
        assert_eq!(v["malformed_links"][0]["path"], "repos/app/_tags/v1");
        assert_eq!(v["temp_files"][0]["state"], "stale");
        assert_eq!(v["counts"]["damage"], 1);
        assert!(v.get("repair").is_none(), "{v}");

        let (code, v) = run_fsck(true);
        assert_eq!(code, ExitCode::from(1), "damage was found");
        let removed: Vec<&str> = v["repair"]["removed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["target"].as_str().unwrap())
            .collect();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(removed.contains(&"repos/app/_tags/v1"), "{removed:?}");
        assert!(removed.iter().any(|t| t.ends_with("tmp/partial")));
        assert!(!tags.join("v1").exists());

        let (code, v) = run_fsck(false);
        assert_eq!(code, ExitCode::SUCCESS, "{v}");
        assert_eq!(v["counts"]["garbage"], 0);
    }
}
