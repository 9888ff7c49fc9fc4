//! `corral mirror publish ostree|disk-images --config FILE DIR`: uploads
//! an OSTree repository or disk images into the bucket the replicas serve
//! them from ([`crate::publish`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;
use crate::publish::PublishReport;

#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    #[command(subcommand)]
    pub what: PublishWhat,
}

#[derive(clap::Subcommand, Debug)]
pub enum PublishWhat {
    /// Upload an OSTree archive repository to the bucket under [s3] ostree_prefix
    Ostree(PublishTarget),
    /// Upload a directory of disk images (with .sha256, .asc) under [s3] disk_images_prefix
    DiskImages(PublishTarget),
}

#[derive(clap::Args, Debug)]
pub struct PublishTarget {
    /// The mirror's TOML configuration: its [s3] table names the bucket and prefix
    #[arg(long)]
    pub config: PathBuf,
    /// Machine-readable report of what was uploaded
    #[arg(long)]
    pub json: bool,
    /// The repository or directory to publish
    pub dir: PathBuf,
}

pub fn run(args: PublishArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let (t, ostree) = match &args.what {
        PublishWhat::Ostree(t) => (t, true),
        PublishWhat::DiskImages(t) => (t, false),
    };
    let config = Config::load(&t.config)?;
    let s3 = config.s3.as_ref().with_context(|| {
        format!(
            "{} has no [s3] table: publishing needs the replicas' bucket",
            t.config.display()
        )
    })?;
    let (key, prefix) = if ostree {
        ("ostree_prefix", &s3.ostree_prefix)
    } else {
        ("disk_images_prefix", &s3.disk_images_prefix)
    };
    let prefix = prefix.as_deref().with_context(|| {
        format!(
            "{} sets no [s3] {key}: the replicas would not serve what is published",
            t.config.display()
        )
    })?;
    let report = rt.block_on(async {
        let store = crate::storage::open_bucket(s3)?;
        let r = if ostree {
            crate::publish::publish_ostree(store, prefix, &t.dir).await
        } else {
            crate::publish::publish_disk_images(store, prefix, &t.dir).await
        };
        r.with_context(|| format!("publishing {} to bucket {}", t.dir.display(), s3.bucket))
    })?;
    print_report(&report, t.json)?;
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &PublishReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    for u in &report.uploaded {
        println!("uploaded {} ({} bytes)", u.key, u.bytes);
    }
    println!(
        "uploaded {} files ({} bytes); {} already in the bucket",
        report.uploaded.len(),
        report.bytes_uploaded,
        report.skipped
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::MirrorCommand;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Top {
        #[command(subcommand)]
        cmd: MirrorCommand,
    }

    #[test]
    fn parse_publish() {
        let t = Top::try_parse_from([
            "mirror",
            "publish",
            "ostree",
            "--config",
            "m.toml",
            "--json",
            "/srv/repo",
        ])
        .unwrap();
        let MirrorCommand::Publish(PublishArgs {
            what: PublishWhat::Ostree(t),
        }) = t.cmd
        else {
            panic!("not publish ostree")
        };
        assert_eq!(
            (t.config, t.dir, t.json),
            ("m.toml".into(), "/srv/repo".into(), true)
        );
        assert!(Top::try_parse_from([
            "mirror",
            "publish",
            "disk-images",
            "--config",
            "m.toml",
            "/srv/d"
        ])
        .is_ok());
        assert!(
            Top::try_parse_from(["mirror", "publish", "ostree", "/srv/repo"]).is_err(),
            "--config is required"
        );
    }

    #[test]
    fn refuses_a_config_without_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("m.toml");
        std::fs::write(
            &cfg,
            "[s3]\nendpoint = \"http://127.0.0.1:1\"\nbucket = \"b\"\n",
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = run(
            PublishArgs {
                what: PublishWhat::Ostree(PublishTarget {
                    config: cfg,
                    json: false,
                    dir: dir.path().into(),
                }),
            },
            &rt,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("ostree_prefix"), "{e:#}");
    }
}
