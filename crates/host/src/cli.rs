//! The `corral host` command group: clap types and dispatch. The `corral`
//! binary mounts [`HostArgs`] and calls [`run`].
//!
//! Exit codes: 0 done; 1 the answer is no (`upgrade --check`: no update;
//! `check`: a required health check failed); 2 could not run.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use corral_ostree::diff::PackageDiff;

use crate::auto;
use crate::boot_count::{self, BootCompleted};
use crate::deploy;
use crate::finalize::{self, Checked};
use crate::health;
use crate::image_source::ImageSource;
use crate::lock::HostLock;
use crate::rebase::{self, ImageOptions, ImageOutcome};
use crate::remote;
use crate::status::{self, Role};
use crate::sysroot::{Host, Origin};
use crate::upgrade::{self, UpgradeOptions, UpgradeOutcome};

#[derive(Debug, Args)]
pub struct HostArgs {
    /// The sysroot to work on: `/` on a host, or a directory.
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub sysroot: PathBuf,
    /// The stateroot (OS name); the only or the booted one by default.
    #[arg(long = "os", global = true, value_name = "NAME")]
    pub osname: Option<String>,
    /// Fail at once when another corral host command holds the sysroot,
    /// instead of waiting for it.
    #[arg(long, global = true)]
    pub no_wait: bool,
    #[command(subcommand)]
    pub command: HostCommand,
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// The deployments: booted, pending and rollback, with version, commit,
    /// date, origin, signature, pin, health and the package changes.
    Status(StatusArgs),
    /// Fetch, verify and deploy the newest commit of the origin ref.
    Upgrade(UpgradeArgs),
    /// Deploy a version or commit from the origin ref's history.
    Deploy(DeployArgs),
    /// Deploy the OS from a container image and make it the origin:
    /// ostree-remote-registry:REMOTE:HOST/REPO:TAG (the commit verified
    /// with the remote's GPG keys), ostree-image-signed:docker://HOST/REPO:TAG
    /// (the container signature verified with [images] in host.toml) or
    /// ostree-unverified-registry:HOST/REPO:TAG (with --insecure-unverified).
    Rebase(RebaseArgs),
    /// Make the previous deployment the default; again swaps back.
    Rollback,
    /// Keep a deployment (by index) whatever the retention count says.
    Pin(IndexArgs),
    /// Let retention drop a pinned deployment again.
    Unpin(IndexArgs),
    /// Remove the pending and/or rollback deployments, unreferenced boot
    /// files and objects.
    Cleanup(CleanupArgs),
    /// Remotes the updates come from.
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// The boot health check: run /etc/corral/health.d, count failed
    /// boots, roll back after too many.
    Check(CheckArgs),
    /// Deploy the newest commit once this host's rollout delay has passed,
    /// then reboot as the [updates] strategy allows (for the timer).
    Auto(AutoArgs),
    /// After a healthy boot, give the FleetLock reboot slot back.
    Steady(StatusArgs),
    /// The [updates] strategy, window, FleetLock id and what waits for a
    /// reboot.
    Updates(StatusArgs),
    /// Mark this boot complete for GRUB's boot counter; when GRUB fell
    /// back to the previous deployment, make that the default (run by
    /// corral-boot-complete.service).
    BootComplete(StatusArgs),
    /// Rewrite corral's GRUB menu from the boot entries and count the
    /// boots of a deployment finalized at shutdown (run after
    /// ostree-finalize-staged.service).
    GrubSync,
    /// Find out whether the deployment staged before the last reboot was
    /// finalized at shutdown; record a failure and deny its commit (run
    /// early in the boot, before ostree-boot-complete.service).
    FinalizeCheck(StatusArgs),
}

#[derive(Debug, Args)]
pub struct AutoArgs {
    /// Stop a transfer after this many seconds without progress
    /// (default: stall-timeout in /etc/corral/host.toml, 120).
    #[arg(long, value_name = "SECS")]
    pub stall_timeout: Option<u64>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Fetch and verify only; a later upgrade deploys without fetching.
    #[arg(long)]
    pub download_only: bool,
    /// Fetch objects one by one even when a static delta is published.
    #[arg(long)]
    pub no_static_deltas: bool,
    /// Deployments to keep (default: keep in /etc/corral/host.toml, 3).
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Stop a transfer after this many seconds without progress
    /// (default: stall-timeout in /etc/corral/host.toml, 120).
    #[arg(long, value_name = "SECS")]
    pub stall_timeout: Option<u64>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// On a booted host, write the deployment now instead of staging it
    /// (staged, /etc is merged again at shutdown and later edits are kept).
    #[arg(long)]
    pub no_stage: bool,
}

/// How to reach the registry an image comes from.
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    /// Registry credentials.
    #[arg(
        long,
        env = "CORRAL_REGISTRY_CREDS",
        value_name = "USER:PASS",
        hide_env_values = true
    )]
    pub creds: Option<String>,
    /// Talk plain HTTP to the registry (a local mirror); remembered in the
    /// deployment's origin for its upgrades.
    #[arg(long)]
    pub plain_http: bool,
    /// `--tls-verify=false` is `--plain-http`, as skopeo users write it.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub tls_verify: Option<bool>,
}

impl RegistryArgs {
    fn creds(&self) -> Result<Option<(String, String)>> {
        match &self.creds {
            Some(c) => {
                let (u, p) = c.split_once(':').context("--creds must be USER:PASS")?;
                Ok(Some((u.to_string(), p.to_string())))
            }
            None => Ok(None),
        }
    }

    fn plain_http(&self) -> bool {
        self.plain_http || self.tls_verify == Some(false)
    }
}

#[derive(Debug, Args)]
pub struct RebaseArgs {
    /// TRANSPORT:IMAGE, e.g. ostree-remote-registry:corral:HOST/corral/atomic-host:43.
    #[arg(value_name = "IMAGEREF")]
    pub image: String,
    /// Accept an ostree-unverified-registry: image (nothing is verified).
    #[arg(long)]
    pub insecure_unverified: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Deployments to keep (default: keep in /etc/corral/host.toml, 3).
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// On a booted host, write the deployment now instead of staging it.
    #[arg(long)]
    pub no_stage: bool,
    /// Stop a transfer after this many seconds without progress
    /// (default: stall-timeout in /etc/corral/host.toml, 120).
    #[arg(long, value_name = "SECS")]
    pub stall_timeout: Option<u64>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Only say whether there is an update: exit 0 if so, 1 if not.
    #[arg(long, conflicts_with = "download_only")]
    pub check: bool,
    /// Deploy the origin's newest commit even when it is older than the
    /// deployed one.
    #[arg(long)]
    pub allow_downgrade: bool,
    #[command(flatten)]
    pub fetch: FetchArgs,
    /// For a deployment made from an image (`rebase`).
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// A version (43.20260106.0) or a commit checksum (at least 6 digits)
    /// of the origin ref; its newest commit when left out.
    #[arg(value_name = "VERSION|CHECKSUM")]
    pub rev: Option<String>,
    /// Deploy from this REMOTE:REF (and make it the origin) instead of the
    /// current deployment's origin; needed for the first deployment.
    #[arg(long, value_name = "REMOTE:REF")]
    pub origin: Option<String>,
    #[command(flatten)]
    pub fetch: FetchArgs,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The deployment's index in `status` (0 is the default).
    pub index: usize,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Remove the pending deployment (not booted yet).
    #[arg(long)]
    pub pending: bool,
    /// Remove the rollback deployments.
    #[arg(long)]
    pub rollback: bool,
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add a remote that verifies commits and the summary with GPG.
    Add(RemoteAddArgs),
    /// The configured remotes.
    List(StatusArgs),
    /// Delete a remote and its keyring; refused while a deployment updates
    /// from it, unless --force.
    Delete(RemoteDeleteArgs),
    /// Point a remote at another URL, keeping its keys and options.
    SetUrl(RemoteSetUrlArgs),
}

#[derive(Debug, Args)]
pub struct RemoteDeleteArgs {
    pub name: String,
    /// Delete it even when deployments have it as their origin (their
    /// upgrades fail until they are deployed from another remote).
    #[arg(long)]
    pub force: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoteSetUrlArgs {
    pub name: String,
    /// The new http://, https:// or file:// URL.
    pub url: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoteAddArgs {
    pub name: String,
    /// http://, https:// or file:// URL of the OSTree repository
    /// (`http://MIRROR/ostree` for `corral mirror serve --ostree-repo`).
    pub url: String,
    /// The public key(s) that sign the remote's commits and summary.
    #[arg(long, value_name = "FILE")]
    pub gpg_key: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Failed boots before rolling back (default: max-failed-boots in
    /// /etc/corral/host.toml, 3).
    #[arg(long, value_name = "N")]
    pub max_failed_boots: Option<u32>,
    /// Seconds a script may run before it counts as failed.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub script_timeout: u64,
    /// Reboot after a failed check (to count the next boot), and after a
    /// rollback (to boot the previous deployment).
    #[arg(long)]
    pub reboot: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn lock(args: &HostArgs, what: &str) -> Result<HostLock> {
    HostLock::acquire(&args.sysroot, what, !args.no_wait)
}

/// Runs one `corral host` command.
pub fn run(args: HostArgs) -> Result<ExitCode> {
    // libostree reports some things (freed space after a cleanup) with
    // g_print; stdout is ours, for the answer and for --json.
    ostree::glib::set_print_handler(|msg| eprint!("{msg}"));
    let host = Host::open(&args.sysroot)?;
    match &args.command {
        HostCommand::Status(a) => {
            let s = status::status(&host)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_status(&s);
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Upgrade(a) => {
            let _lock = lock(&args, "upgrade")?;
            host.reload()?;
            if let Some(origin) = rebase::merge_origin(&host, args.osname.as_deref())? {
                if a.fetch.download_only {
                    anyhow::bail!(
                        "--download-only is for OSTree remotes; {} is deployed from an image",
                        origin.source
                    );
                }
                let opts = ImageOptions {
                    osname: args.osname.clone(),
                    plain_http: a.registry.plain_http(),
                    creds: a.registry.creds()?,
                    keep: a.fetch.keep,
                    no_stage: a.fetch.no_stage,
                    check: a.check,
                    stall: a.fetch.stall_timeout.map(Duration::from_secs),
                    ..Default::default()
                };
                let outcome = rebase::upgrade(&host, origin, &opts)?;
                report_image(&outcome, a.fetch.json)?;
                return Ok(match outcome {
                    ImageOutcome::UpToDate { .. } if a.check => ExitCode::from(1),
                    _ => ExitCode::SUCCESS,
                });
            }
            let opts = options(&args, &a.fetch, a.check, a.allow_downgrade);
            let outcome = upgrade::upgrade(&host, &opts)?;
            report(&outcome, a.fetch.json)?;
            Ok(match outcome {
                UpgradeOutcome::UpToDate { .. } | UpgradeOutcome::Denied { .. } if a.check => {
                    ExitCode::from(1)
                }
                _ => ExitCode::SUCCESS,
            })
        }
        HostCommand::Deploy(a) => {
            let _lock = lock(&args, "deploy")?;
            host.reload()?;
            let origin = a.origin.as_deref().map(Origin::parse).transpose()?;
            let opts = options(&args, &a.fetch, false, true);
            let outcome = upgrade::deploy(&host, a.rev.as_deref(), origin, &opts)?;
            report(&outcome, a.fetch.json)?;
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Rebase(a) => {
            let _lock = lock(&args, "rebase")?;
            host.reload()?;
            let source = ImageSource::parse(&a.image)?;
            let opts = ImageOptions {
                osname: args.osname.clone(),
                insecure_unverified: a.insecure_unverified,
                plain_http: a.registry.plain_http(),
                creds: a.registry.creds()?,
                keep: a.keep,
                no_stage: a.no_stage,
                stall: a.stall_timeout.map(Duration::from_secs),
                ..Default::default()
            };
            let outcome = rebase::rebase(&host, source, &opts)?;
            report_image(&outcome, a.json)?;
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Rollback => {
            let _lock = lock(&args, "rollback")?;
            host.reload()?;
            let (now, previous) = deploy::rollback(&host)?;
            match previous {
                Some(p) => println!(
                    "the default is now {}; {} is the rollback",
                    label(&host, &now),
                    label(&host, &p)
                ),
                None => println!("the default is now {}", label(&host, &now)),
            }
            if host.booted().is_some() {
                println!("reboot to boot it");
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Pin(i) | HostCommand::Unpin(i) => {
            let pin = matches!(args.command, HostCommand::Pin(_));
            let _lock = lock(&args, if pin { "pin" } else { "unpin" })?;
            host.reload()?;
            let d = deploy::set_pinned(&host, i.index, pin)?;
            println!(
                "deployment {} ({}) is {}",
                i.index,
                label(&host, &d),
                if pin { "pinned" } else { "no longer pinned" }
            );
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Cleanup(c) => {
            let _lock = lock(&args, "cleanup")?;
            host.reload()?;
            let cleaned = deploy::cleanup(&host, c.pending, c.rollback)?;
            for d in &cleaned.deployments {
                println!("removed deployment {d}");
            }
            println!("removed unreferenced boot files and objects");
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Remote(RemoteCommand::Add(r)) => {
            let _lock = lock(&args, "remote add")?;
            let n = remote::add(&host.repo(), &r.name, &r.url, &r.gpg_key)?;
            println!(
                "added remote {} ({}) with {n} key(s); commits and the summary must be signed by them",
                r.name, r.url
            );
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Remote(RemoteCommand::Delete(r)) => {
            let _lock = lock(&args, "remote delete")?;
            let users = remote::delete(&host, &r.name, r.force)?;
            if r.json {
                let v = serde_json::json!({ "deleted": r.name, "origin_of": users });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("deleted remote {} and its keys", r.name);
                for u in &users {
                    println!("deployment {u} still names it as its origin");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Remote(RemoteCommand::SetUrl(r)) => {
            let _lock = lock(&args, "remote set-url")?;
            let old = remote::set_url(&host.repo(), &r.name, &r.url)?;
            if r.json {
                let v = serde_json::json!({ "remote": r.name, "from": old, "to": r.url });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "remote {}: {old} -> {}; its keys and options are kept",
                    r.name, r.url
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Remote(RemoteCommand::List(a)) => {
            let list = remote::list(&host.repo())?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for r in list {
                    let verify = if r.gpg_verify && r.gpg_verify_summary {
                        "commits and summary verified"
                    } else if r.gpg_verify {
                        "commits verified"
                    } else {
                        "NOT verified: corral host refuses its commits"
                    };
                    println!("{}\t{}\t{verify}", r.name, r.url);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Check(c) => {
            let _lock = lock(&args, "check")?;
            host.reload()?;
            let out = health::check(
                &host,
                args.osname.as_deref(),
                c.max_failed_boots,
                Duration::from_secs(c.script_timeout),
                &health::boot_id()?,
                health::now(),
            )?;
            if c.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for s in &out.scripts {
                    println!(
                        "{} {} ({}){}",
                        if s.passed { "ok  " } else { "FAIL" },
                        s.name,
                        s.status,
                        if s.required { "" } else { ", wanted" }
                    );
                }
                if out.healthy {
                    println!("deployment {} is healthy", out.deployment);
                } else if out.counted {
                    println!(
                        "deployment {} failed its health check: failed boot {} of {}",
                        out.deployment, out.failed_boots, out.max_failed_boots
                    );
                } else {
                    println!(
                        "deployment {} failed its health check again in boot {}, counted already: failed boot {} of {}",
                        out.deployment, out.boot_id, out.failed_boots, out.max_failed_boots
                    );
                }
                if let Some(r) = &out.rolled_back {
                    println!("rolled back to {}: {}", r.to, r.reason);
                }
                if let Some(d) = &out.denied {
                    println!(
                        "upgrades skip commit {} from now on; `corral host deploy {}` tries it again",
                        d.checksum, d.checksum
                    );
                }
            }
            if c.reboot && !out.healthy {
                std::process::Command::new("systemctl")
                    .arg("reboot")
                    .status()
                    .context("running systemctl reboot")?;
            }
            Ok(if out.healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        HostCommand::Auto(a) => {
            let _lock = lock(&args, "auto")?;
            host.reload()?;
            let opts = UpgradeOptions {
                osname: args.osname.clone(),
                stall: a.stall_timeout.map(Duration::from_secs),
                progress: std::io::stderr().is_terminal() && !a.json,
                ..Default::default()
            };
            let r = auto::auto(&host, &opts, health::now())?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_auto(&r);
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::Steady(a) => {
            let r = auto::steady(&host, args.osname.as_deref())?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("{}", r.reason);
            }
            // 1: the slot stays held, the deployment is not healthy
            Ok(if r.fleet_lock && !r.released {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        HostCommand::Updates(a) => {
            let s = auto::updates_status(&host, args.osname.as_deref(), health::now())?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_updates(&s);
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::BootComplete(a) => {
            let _lock = lock(&args, "boot-complete")?;
            host.reload()?;
            if let Some(b) = host.booted() {
                // before the ostree stamp is forgotten, if nothing else ran
                finalize::reconcile(&host, &b.osname(), health::now())?;
            }
            let out = boot_count::boot_complete(&host, health::now())?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                match &out {
                    BootCompleted::NotCounting => println!("no boot is being counted"),
                    BootCompleted::Completed { deployment } => {
                        println!("deployment {deployment} completed its boot; GRUB stops counting")
                    }
                    BootCompleted::FellBack(r) => println!(
                        "GRUB fell back to {}: {}; it is the default now",
                        r.to, r.reason
                    ),
                    BootCompleted::OtherDeployment { deployment } => println!(
                        "booted {deployment}, not the default; GRUB goes on counting the default's boots"
                    ),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::FinalizeCheck(a) => {
            let _lock = lock(&args, "finalize-check")?;
            host.reload()?;
            let osname = host.osname(args.osname.as_deref())?;
            let out = finalize::reconcile(&host, &osname, health::now())?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                match &out {
                    Checked::NothingStaged => println!("nothing was staged"),
                    Checked::Waiting { deployment } => println!(
                        "{deployment} is staged in this boot; libostree finalizes it at shutdown"
                    ),
                    Checked::Finalized { deployment } => {
                        println!("{deployment} was finalized at shutdown")
                    }
                    Checked::Failed(f) => println!(
                        "{} {} was not finalized at shutdown: {}; its commit is denied to upgrades",
                        f.deployment,
                        f.version.as_deref().unwrap_or("(no version)"),
                        f.message
                    ),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        HostCommand::GrubSync => {
            // no lock: this runs at shutdown, after libostree finalized a
            // staged deployment under its own lock; both files are
            // replaced by rename
            let out = boot_count::sync_after_finalize(&host)?;
            if out.menu {
                println!(
                    "rewrote {}",
                    crate::grub::config_path(&host.boot_dir()).display()
                );
            } else {
                println!("the GRUB menu is not one corral wrote; left alone");
            }
            if let Some((d, n)) = &out.armed {
                println!("counting the boots of {d}: {n} may fail before GRUB falls back");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_auto(r: &auto::AutoReport) {
    let what = r
        .commit
        .as_ref()
        .map(|c| c.label())
        .unwrap_or_else(|| "(unknown commit)".into());
    if let Some(d) = &r.deployed {
        println!("deployed {} as the default", d.to.label());
    }
    match r.result {
        auto::AutoResult::UpToDate => println!("no update: {what} is the newest"),
        auto::AutoResult::WaitingRollout => println!(
            "{what} is out; this host's rollout delay is {} s: deploying after {}",
            r.delay.unwrap_or(0),
            upgrade::date(r.not_before.unwrap_or(0))
        ),
        auto::AutoResult::WaitingWindow => println!(
            "{what} waits for a reboot in the next maintenance window, {}",
            r.not_before
                .map(upgrade::date)
                .unwrap_or_else(|| "(none configured)".into())
        ),
        auto::AutoResult::WaitingLock => println!(
            "{what} waits for a reboot slot: {}",
            r.lock.as_deref().unwrap_or("")
        ),
        auto::AutoResult::Rebooted => println!("rebooting into {what}"),
    }
}

fn print_updates(s: &auto::UpdatesStatus) {
    println!("strategy:         {}", s.strategy.as_str());
    println!("rollout wariness: {} s", s.rollout_wariness);
    println!("reboot command:   {}", s.reboot_command.join(" "));
    if let Some(open) = s.in_window {
        println!(
            "window:           {}",
            if open { "open now" } else { "closed" }
        );
        if let Some(n) = s.next_window {
            println!("next window:      {}", upgrade::date(n));
        }
    }
    if let (Some(url), Some(group), Some(id)) =
        (&s.fleet_lock_url, &s.fleet_lock_group, &s.fleet_lock_id)
    {
        println!("fleet lock:       {url} group {group} as {id}");
    }
    println!(
        "waiting to boot:  {}",
        s.pending.as_deref().unwrap_or("nothing")
    );
}

fn options(args: &HostArgs, f: &FetchArgs, check: bool, allow_downgrade: bool) -> UpgradeOptions {
    UpgradeOptions {
        osname: args.osname.clone(),
        check,
        download_only: f.download_only,
        allow_downgrade,
        no_static_deltas: f.no_static_deltas,
        keep: f.keep,
        stall: f.stall_timeout.map(Duration::from_secs),
        progress: std::io::stderr().is_terminal() && !f.json,
        no_stage: f.no_stage,
    }
}

fn label(host: &Host, d: &ostree::Deployment) -> String {
    corral_ostree::commit::commit_info(&host.repo(), &d.csum())
        .map(|c| upgrade::CommitRef::of(&c).label())
        .unwrap_or_else(|_| d.csum()[..12].to_string())
}

fn print_packages(p: &PackageDiff, indent: &str) {
    if p.added.is_empty() && p.removed.is_empty() && p.changed.is_empty() {
        println!("{indent}no package changes");
        return;
    }
    for c in &p.changed {
        println!("{indent}{}.{} {} -> {}", c.name, c.arch, c.from, c.to);
    }
    for a in &p.added {
        println!("{indent}+ {a}");
    }
    for r in &p.removed {
        println!("{indent}- {r}");
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn report_image(outcome: &ImageOutcome, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcome)?);
        return Ok(());
    }
    match outcome {
        ImageOutcome::UpToDate {
            image,
            manifest_digest,
            commit,
        } => println!(
            "no update: {image} is {manifest_digest}, deployed already ({})",
            commit.label()
        ),
        ImageOutcome::Available { image, from, to } => {
            println!("update available: {image} {from} -> {to}")
        }
        ImageOutcome::Deployed(r) => {
            println!(
                "deployed {} from {} ({})",
                r.to.label(),
                r.image,
                r.manifest_digest
            );
            if let Some(from) = &r.from {
                println!("from: {}", from.label());
            }
            println!("verified: {}", r.verified);
            if let Some(base) = &r.base_commit {
                println!(
                    "derived: {} layer(s) applied onto {base}",
                    r.derived_layers.len()
                );
            }
            println!(
                "fetched: {} in {} layer(s), {} layer(s) already here{}",
                mib(r.fetch.bytes),
                r.fetch.layers_fetched.len(),
                r.fetch.layers_reused.len(),
                if r.fetch.resumed_bytes > 0 {
                    format!(", {} resumed", mib(r.fetch.resumed_bytes))
                } else {
                    String::new()
                }
            );
            print_packages(&r.packages, "    ");
            if let Some(rb) = &r.rollback {
                println!("rollback: {rb}");
            }
            for d in &r.dropped {
                println!("dropped: {d}");
            }
            if r.staged {
                println!("staged: written at the next shutdown; reboot to boot it");
            }
        }
    }
    Ok(())
}

fn report(outcome: &UpgradeOutcome, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcome)?);
        return Ok(());
    }
    match outcome {
        UpgradeOutcome::UpToDate { commit, pending } => {
            if *pending {
                println!(
                    "no update: {} is deployed already and boots next",
                    commit.label()
                );
            } else {
                println!("no update: {} is the newest", commit.label());
            }
        }
        UpgradeOutcome::Available {
            from,
            to,
            packages,
            delta,
        } => {
            println!(
                "update available: {} -> {}{}",
                from.label(),
                to.label(),
                if *delta {
                    " (a static delta is published)"
                } else {
                    ""
                }
            );
            print_packages(packages, "  ");
        }
        UpgradeOutcome::Denied {
            commit,
            date,
            reason,
            cause,
            ..
        } => {
            println!(
                "no update: commit {} was {} on {date}: {reason}; `corral host deploy {}` to try it again",
                commit.label(),
                cause.says(),
                commit.checksum
            );
        }
        UpgradeOutcome::Downloaded { to, pull } => {
            println!(
                "downloaded {} ({}, {} objects in {:.1} s); `corral host upgrade` deploys it",
                to.label(),
                mib(pull.bytes),
                pull.objects,
                pull.seconds
            );
        }
        UpgradeOutcome::Deployed(r) if r.staged => {
            println!(
                "staged {} as the default; it is written at shutdown (with /etc as it is then) and boots next",
                r.to.label()
            );
            report_deployed(r);
        }
        UpgradeOutcome::Deployed(r) => {
            println!("deployed {} as the default", r.to.label());
            report_deployed(r);
        }
    }
    Ok(())
}

fn report_deployed(r: &upgrade::DeployReport) {
    {
        {
            if let Some(rb) = &r.rollback {
                println!("rollback: {rb}");
            }
            println!("signature: {}", r.signature.describe());
            println!(
                "fetched {} in {} objects{} in {:.1} s",
                mib(r.pull.bytes),
                r.pull.objects,
                if r.pull.used_delta() {
                    " and a static delta"
                } else {
                    ""
                },
                r.pull.seconds
            );
            println!("packages:");
            print_packages(&r.packages, "  ");
            if !r.etc.local.is_empty() {
                println!("/etc: {} local change(s) kept", r.etc.local.len());
            }
            if !r.etc.conflicts.is_empty() {
                println!("/etc: changed both locally and in the new version (the local file was kept, the new default was not applied):");
                for c in &r.etc.conflicts {
                    println!("  /etc/{c}");
                }
            }
            for d in &r.dropped {
                println!("removed old deployment {d}");
            }
            for c in &r.undenied {
                println!("commit {c} is no longer denied to upgrades");
            }
        }
    }
}

fn print_status(s: &status::HostStatus) {
    if s.deployments.is_empty() {
        println!("{}: no deployments", s.sysroot);
        return;
    }
    if !s.booted {
        println!("{} is not booted; deployment 0 is the default", s.sysroot);
    }
    for d in &s.deployments {
        let role = match d.role {
            Role::Booted => "booted",
            Role::Pending => "pending",
            Role::Default => "default",
            Role::Rollback => "rollback",
            Role::Older => "",
        };
        println!(
            "{} {} {}{}",
            d.index,
            role,
            d.version.as_deref().unwrap_or("(no version)"),
            match (d.pinned, d.staged) {
                (true, _) => " (pinned)",
                (_, true) => " (staged)",
                _ => "",
            }
        );
        println!("    commit:    {}.{}", d.checksum, d.serial);
        println!("    date:      {}", d.date);
        println!("    origin:    {}", d.origin.as_deref().unwrap_or("(none)"));
        if let Some(img) = &d.image {
            println!("    image:     {}", img.reference);
            println!("    manifest:  {}", img.manifest_digest);
            if let Some(base) = &img.base_commit {
                println!("    base:      {base}");
                for l in &img.derived_layers {
                    println!("    derived:   {l}");
                }
            }
        }
        println!("    signature: {}", d.signature.describe());
        if let Some(h) = &d.health {
            if h.healthy {
                println!("    health:    ok");
            } else {
                println!(
                    "    health:    {} failed boot(s): {}",
                    h.failed_boots,
                    h.failed_checks.join(", ")
                );
            }
        }
    }
    if let Some(c) = &s.changes {
        println!("packages from {} to {}:", c.from, c.to);
        print_packages(&c.packages, "    ");
    }
    if let Some(r) = &s.last_rollback {
        println!(
            "last rollback by the health check: {} -> {}: {}",
            r.from, r.to, r.reason
        );
    }
    if !s.denied.is_empty() {
        println!("denied to upgrades (`corral host deploy CHECKSUM` tries one again):");
        for d in &s.denied {
            println!(
                "    {} {}: {} on {}: {}",
                d.checksum,
                d.version.as_deref().unwrap_or("(no version)"),
                d.cause.says(),
                upgrade::date(d.at),
                d.reason
            );
        }
    }
    if let Some(f) = &s.last_finalize_failure {
        println!(
            "not applied: {} {} was staged on {} and not finalized at shutdown: {}",
            f.checksum,
            f.version.as_deref().unwrap_or("(no version)"),
            upgrade::date(f.staged_at),
            f.message
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Top {
        #[command(flatten)]
        host: HostArgs,
    }

    fn rebase(args: &[&str]) -> RebaseArgs {
        let mut argv = vec!["host", "rebase", "ostree-unverified-registry:h:1/os:43"];
        argv.extend_from_slice(args);
        match Top::try_parse_from(argv).unwrap().host.command {
            HostCommand::Rebase(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_verify_false_is_plain_http_as_skopeo_users_write_it() {
        assert!(rebase(&["--tls-verify=false"]).registry.plain_http());
        assert!(rebase(&["--plain-http"]).registry.plain_http());
        assert!(!rebase(&["--tls-verify=true"]).registry.plain_http());
        assert!(!rebase(&[]).registry.plain_http());
        let r = rebase(&["--creds", "u:p", "--insecure-unverified"]);
        assert_eq!(r.registry.creds().unwrap(), Some(("u".into(), "p".into())));
        assert!(r.insecure_unverified);
        let r = rebase(&["--creds", "nocolon"]);
        assert!(r.registry.creds().is_err());
    }
}
