//! `corral test`: run images' `image.toml` tests in labelled containers.

use crate::engine::TestRunner;
use crate::label::{Enforcement, DEFAULT_TYPE};
use crate::mcs::{McsAllocator, McsRange, DEFAULT_DIR};
use crate::report::Report;
use anyhow::Context;
use corral_dockerfiles::library::Library;
use corral_dockerfiles::library::{ImageSpec, Tests};
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
    #[arg(long, value_name = "URL", env = "DOCKER_HOST", default_value = corral_dockerfiles::engine_build::DEFAULT_ENGINE)]
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

/// One image to test.
#[derive(Debug)]
struct Target {
    name: String,
    reference: String,
    tests: Tests,
}

fn targets(args: &TestArgs) -> anyhow::Result<Vec<Target>> {
    if let Some(spec) = &args.spec {
        let [reference] = args.targets.as_slice() else {
            anyhow::bail!("--spec takes exactly one IMAGE reference");
        };
        let text = corral_configfile::read_to_string(spec, corral_configfile::DEFAULT_LIMIT)?;
        let parsed = ImageSpec::parse(&spec.display().to_string(), &text)?;
        return Ok(vec![Target {
            name: reference.clone(),
            reference: reference.clone(),
            tests: parsed.tests,
        }]);
    }
    let lib = Library::load(&args.library)
        .with_context(|| format!("loading the library {}", args.library.display()))?;
    let registry = lib
        .config
        .library
        .registry
        .trim_end_matches('/')
        .to_string();
    let reference =
        |name: &str, spec: &ImageSpec| format!("{registry}/{name}:{}", spec.image.tags[0]);
    if args.targets.is_empty() {
        return Ok(lib
            .images
            .values()
            .map(|i| Target {
                name: i.name.clone(),
                reference: reference(&i.name, &i.spec),
                tests: i.spec.tests.clone(),
            })
            .collect());
    }
    args.targets
        .iter()
        .map(|t| {
            if let Some(i) = lib.images.get(t) {
                return Ok(Target {
                    name: i.name.clone(),
                    reference: reference(&i.name, &i.spec),
                    tests: i.spec.tests.clone(),
                });
            }
            // REGISTRY/NAME:TAG of a library image
            let name = t
                .strip_prefix(&format!("{registry}/"))
                .and_then(|rest| rest.split(':').next());
            match name.and_then(|n| lib.images.get(n)) {
                Some(i) => Ok(Target {
                    name: i.name.clone(),
                    reference: t.clone(),
                    tests: i.spec.tests.clone(),
                }),
                None => anyhow::bail!(
                    "{t} is neither an image of {} nor one of its references (give --spec for other images)",
                    args.library.display()
                ),
            }
        })
        .collect()
}

/// Runs `corral test`.
pub fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let targets = match targets(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = match rt.block_on(run_targets(&args, &targets)) {
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

    /// A spec file is configuration: a directory or a file past the limit
    /// is refused by name.
    #[test]
    fn a_spec_that_is_no_file_or_too_large_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(corral_configfile::DEFAULT_LIMIT + 1)
            .unwrap();
        for (spec, want) in [
            (dir.path().to_path_buf(), "is a directory"),
            (big, "big.toml: larger than the 4 MiB limit"),
        ] {
            let spec = spec.to_str().unwrap().to_string();
            let c = Cli::try_parse_from(["test", "r.example/app:1", "--spec", &spec]).unwrap();
            let err = format!("{:#}", targets(&c.args).err().unwrap());
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn library_names_and_references_resolve() {
        let lib = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/dockerfiles"
        );
        let c = Cli::try_parse_from([
            "test",
            "--library",
            lib,
            "base2",
            "quay.io/corral-fixtures/app:43-stable",
        ])
        .unwrap();
        let t = targets(&c.args).unwrap();
        assert_eq!(t[0].reference, "quay.io/corral-fixtures/base2:43");
        assert_eq!(
            (t[1].name.as_str(), t[1].reference.as_str()),
            ("app", "quay.io/corral-fixtures/app:43-stable")
        );
        let c = Cli::try_parse_from(["test", "--library", lib, "nope"]).unwrap();
        assert!(targets(&c.args).is_err());
    }

    #[test]
    fn the_curated_library_tests_parse() {
        let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dockerfiles");
        let c = Cli::try_parse_from(["test", "--library", lib]).unwrap();
        let t = targets(&c.args).unwrap();
        let pg = t.iter().find(|t| t.name == "postgresql").unwrap();
        assert_eq!(pg.reference, "quay.io/corral/postgresql:43");
        assert_eq!(pg.tests.mounts[0].target, "/var/lib/pgsql/data");
        let nginx = t.iter().find(|t| t.name == "nginx").unwrap();
        assert!(nginx.tests.mounts[0].shared);
    }
}
