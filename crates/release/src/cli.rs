//! `corral release`: the clap arguments and what they run. The `corral`
//! binary mounts [`ReleaseArgs`] and calls [`run`].

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::ReleaseConfig;
use crate::pipeline::{self, RunOptions};
use crate::plan::Step;

/// Run the release: base images, the curated library and Atomic Host
/// streams, each only where its inputs changed, then the report. A rerun
/// after a failure skips what already succeeded. Exit 0: released; 1: an
/// image failed its tests (it was not published); 2: could not run.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  corral release --dry-run
  corral release --config release.toml --only base,library
  corral release --out-of-band 'kernel security fix'")]
pub struct ReleaseArgs {
    /// The release configuration.
    #[arg(long, value_name = "FILE", default_value = "release.toml")]
    pub config: PathBuf,
    /// Print the plan (what each step would do and why) and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only these steps.
    #[arg(long, value_enum, value_name = "STEP", num_args = 1.., value_delimiter = ',')]
    pub only: Vec<Step>,
    /// Compose every stream now, whatever its cadence, recording REASON.
    #[arg(long, value_name = "REASON")]
    pub out_of_band: Option<String>,
    /// Print the plan (with --dry-run) or the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ReleaseArgs) -> anyhow::Result<ExitCode> {
    let config = ReleaseConfig::load(&args.config)?;
    let opts = RunOptions {
        dry_run: args.dry_run,
        only: args.only.clone(),
        out_of_band: args.out_of_band.clone(),
    };
    let outcome = match pipeline::run(&config, &opts) {
        Ok(o) => o,
        Err(e) if is_test_failure(&e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e),
    };
    if args.dry_run {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&outcome.plan)?);
        } else {
            print!("{}", outcome.plan.render_text());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(report) = &outcome.report {
        if args.json {
            println!("{}", serde_json::to_string_pretty(report)?);
        } else {
            print!("{}", outcome.plan.render_text());
            if let Some((json, md)) = &outcome.report_files {
                println!("report: {} ({})", md.display(), json.display());
            }
        }
    }
    Ok(ExitCode::from(outcome.exit_code()))
}

/// Failed image tests are the "answer is no" of a release.
fn is_test_failure(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<crate::steps::FailedTests>()
            || c.downcast_ref::<crate::steps::library::FailedImages>()
                .is_some_and(|f| f.only_tests())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ReleaseArgs,
    }

    #[test]
    fn parses_steps_and_defaults() {
        let c = Cli::try_parse_from(["release"]).unwrap();
        assert_eq!(c.args.config, PathBuf::from("release.toml"));
        assert!(c.args.only.is_empty() && !c.args.dry_run);
        let c = Cli::try_parse_from(["release", "--only", "base,host", "--dry-run"]).unwrap();
        assert_eq!(c.args.only, [Step::Base, Step::Host]);
        let c = Cli::try_parse_from(["release", "--only", "library", "report"]).unwrap();
        assert_eq!(c.args.only, [Step::Library, Step::Report]);
        assert!(Cli::try_parse_from(["release", "--only", "lunch"]).is_err());
    }
}
