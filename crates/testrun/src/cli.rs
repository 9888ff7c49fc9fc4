//! `corral test`: run images' `image.toml` tests in labelled containers.

use crate::engine::TestRunner;
use crate::label::{Enforcement, DEFAULT_TYPE};
use crate::mcs::{McsAllocator, McsRange, DEFAULT_DIR};
use crate::report::Report;
use crate::spec::Tests;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run image tests in containers confined by SELinux labels, each run with
/// its own MCS category pair. Exit 0: all passed; 1: some failed; 2: could not run.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  corral test --library dockerfiles --junit report.xml
  corral test --spec dockerfiles/nginx/image.toml 127.0.0.1:5000/sample/nginx:43")]
pub struct TestArgs {
    /// Library image names (all when none), or one image reference with --spec
    #[arg(value_name = "NAME|IMAGE")]
    pub targets: Vec<String>,
    /// The Dockerfile library
    #[arg(long, default_value = "dockerfiles")]
    pub library: PathBuf,
    /// The image.toml whose tests run against the IMAGE reference
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Write a JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// The Docker Engine
    #[arg(long, value_name = "URL", env = "DOCKER_HOST", default_value = crate::engine::DEFAULT_ENGINE)]
    pub engine: String,
    /// The SELinux process type of the test containers
    #[arg(long, value_name = "TYPE", default_value = DEFAULT_TYPE)]
    pub label_type: String,
    /// Where the MCS allocations shared by corral processes are kept
    #[arg(long, value_name = "DIR", env = "CORRAL_MCS_DIR", default_value = DEFAULT_DIR)]
    pub mcs_dir: PathBuf,
    /// The MCS categories to allocate from, LOW-HIGH
    #[arg(
        long,
        value_name = "RANGE",
        env = "CORRAL_MCS_RANGE",
        default_value = "0-1023"
    )]
    pub mcs_range: McsRange,
    /// Keep the test containers and their mount directories (for docker inspect)
    #[arg(long)]
    pub keep: bool,
    /// Where host directories for mounts are made
    #[arg(long, value_name = "DIR", default_value = "/var/tmp")]
    pub scratch: PathBuf,
}

/// One image to test: what the CLI resolved a NAME or IMAGE argument to.
#[derive(Debug, Clone)]
pub struct Target {
    /// The report's name for it (a library image's name, or the reference).
    pub name: String,
    /// The image the containers run.
    pub reference: String,
    pub tests: Tests,
}

/// Runs `corral test` over `targets`, which the caller resolved from
/// `args.targets`, `--library` and `--spec`.
pub fn run(args: &TestArgs, targets: &[Target]) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = match rt.block_on(run_targets(args, targets)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(ExitCode::from(report.exit_code()))
}

async fn run_targets(args: &TestArgs, targets: &[Target]) -> anyhow::Result<Report> {
    let enforcement = Enforcement::detect();
    let runner = TestRunner {
        docker: TestRunner::connect(&args.engine).await?,
        allocator: McsAllocator::new(&args.mcs_dir, args.mcs_range),
        process_type: args.label_type.clone(),
        keep: args.keep,
        enforcement,
        scratch: args.scratch.clone(),
    };
    let mut images = Vec::new();
    for t in targets {
        images.push(runner.run_image(&t.name, &t.reference, &t.tests).await);
    }
    Ok(Report {
        enforcement,
        enforcement_note: enforcement.describe().to_string(),
        images,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TestArgs,
    }

    #[test]
    fn parses_flags() {
        let c = Cli::try_parse_from([
            "test",
            "app",
            "--json",
            "--junit",
            "r.xml",
            "--mcs-range",
            "0-3",
            "--keep",
        ])
        .unwrap();
        assert_eq!(c.args.targets, ["app"]);
        assert_eq!(c.args.mcs_range, McsRange { low: 0, high: 3 });
        assert_eq!(c.args.label_type, "container_t");
        assert!(Cli::try_parse_from(["test", "--mcs-range", "3-1"]).is_err());
    }
}
