//! The command line, parsed by hand (no dependencies).

use crate::Failure;

pub const USAGE: &str = "\
cargo xtask: the project's own tasks

  cargo xtask generate           write docs/man and completions/ from the built corral
  cargo xtask generate --check   fail naming the checked-in files that differ from it
  cargo xtask ci [ARGS...]       the whole test suite, stage by stage, timed (what
                                 scripts/test.sh runs); ARGS go to cargo nextest run
  cargo xtask bench              list the benchmark areas
  cargo xtask bench AREA [ARGS...]
                                 run scripts/bench-AREA.sh with ARGS

The target directory is $CARGO_TARGET_DIR, else the one cargo built xtask in.
";

#[derive(Debug, PartialEq, Eq)]
pub enum Task {
    Help,
    Generate {
        check: bool,
    },
    Ci {
        test_args: Vec<String>,
    },
    Bench {
        area: Option<String>,
        args: Vec<String>,
    },
}

pub fn parse(argv: &[String]) -> Result<Task, Failure> {
    let Some((task, rest)) = argv.split_first() else {
        return Err(Failure::usage(format!("no task given\n\n{USAGE}")));
    };
    match task.as_str() {
        "help" | "-h" | "--help" => Ok(Task::Help),
        "generate" => match rest {
            [] => Ok(Task::Generate { check: false }),
            [flag] if flag == "--check" => Ok(Task::Generate { check: true }),
            _ => Err(Failure::usage(format!(
                "generate takes only --check, not {}",
                rest.join(" ")
            ))),
        },
        // everything after `ci` is the test runner's (filters, -E, --)
        "ci" => Ok(Task::Ci {
            test_args: rest.to_vec(),
        }),
        "bench" => Ok(Task::Bench {
            area: rest.first().cloned(),
            args: rest.iter().skip(1).cloned().collect(),
        }),
        other => Err(Failure::usage(format!("unknown task {other}\n\n{USAGE}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<Task, Failure> {
        parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn generate_and_its_check() {
        assert_eq!(
            parsed(&["generate"]).unwrap(),
            Task::Generate { check: false }
        );
        assert_eq!(
            parsed(&["generate", "--check"]).unwrap(),
            Task::Generate { check: true }
        );
        let e = parsed(&["generate", "--chek"]).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("--chek"), "{}", e.message);
    }

    #[test]
    fn ci_passes_every_argument_to_the_test_runner() {
        assert_eq!(
            parsed(&["ci", "-E", "binary(architecture)", "--", "--nocapture"]).unwrap(),
            Task::Ci {
                test_args: vec![
                    "-E".into(),
                    "binary(architecture)".into(),
                    "--".into(),
                    "--nocapture".into()
                ]
            }
        );
        assert_eq!(parsed(&["ci"]).unwrap(), Task::Ci { test_args: vec![] });
    }

    #[test]
    fn bench_with_and_without_an_area() {
        assert_eq!(
            parsed(&["bench"]).unwrap(),
            Task::Bench {
                area: None,
                args: vec![]
            }
        );
        assert_eq!(
            parsed(&["bench", "pull", "3"]).unwrap(),
            Task::Bench {
                area: Some("pull".into()),
                args: vec!["3".into()]
            }
        );
    }

    #[test]
    fn no_task_or_an_unknown_one_is_a_usage_error() {
        for args in [&[][..], &["lint"][..]] {
            let e = parsed(args).unwrap_err();
            assert_eq!(e.code, 2, "{args:?}");
        }
        assert!(parsed(&["lint"])
            .unwrap_err()
            .message
            .contains("cargo xtask ci"));
        assert_eq!(parsed(&["--help"]).unwrap(), Task::Help);
    }
}
