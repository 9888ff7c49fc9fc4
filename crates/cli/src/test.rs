//! `corral test`: which images to test and where their `image.toml` is.
//! The run itself is corral-testrun's; finding an image in the Dockerfile
//! library is here, so testrun needs nothing of corral-dockerfiles.

use anyhow::Context;
use corral_dockerfiles::library::{ImageSpec, Library};
use corral_testrun::cli::{Target, TestArgs};
use std::process::ExitCode;

/// Runs `corral test`: exit 2 when a target cannot be resolved.
pub fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    match targets(&args) {
        Ok(targets) => corral_testrun::cli::run(&args, &targets),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(crate::EXIT_ERROR))
        }
    }
}

/// The images `args` names: one reference with `--spec`, else library
/// image names or their `REGISTRY/NAME:TAG` references (all when none).
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TestArgs,
    }

    /// `corral test` and `corral dockerfiles build` talk to the same engine
    /// unless told otherwise.
    #[test]
    fn test_and_build_default_to_one_engine() {
        assert_eq!(
            corral_testrun::engine::DEFAULT_ENGINE,
            corral_dockerfiles::engine_build::DEFAULT_ENGINE
        );
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
