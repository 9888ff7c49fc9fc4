//! `cargo xtask`: the project's own tasks, in Rust instead of long shell
//! scripts (the alias is in `.cargo/config.toml`). No dependencies, so it
//! builds in seconds on a new machine before anything else.
//!
//! - [`args`]: the command line (`generate [--check]`, `ci [ARGS…]`,
//!   `bench [AREA [ARGS…]]`).
//! - [`generate`]: docs/man and completions/ from the built `corral`, or
//!   the list of checked-in files that differ from it.
//! - [`ci`]: the test suite's stages (what `scripts/test.sh` runs), timed.
//! - [`bench`]: the benchmark scripts `scripts/bench-AREA.sh`.
//! - [`workspace`]: where the checkout and the target directory are, and
//!   the commands run in them; [`scratch`]: temporary directories;
//!   [`process`]: stopping a background job with everything it started.

mod args;
mod bench;
mod ci;
mod generate;
mod process;
mod scratch;
mod workspace;

use std::process::ExitCode;

use args::Task;

/// A failed task: what to print on stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    /// Exit code 2: the task could not run (bad usage, missing tool).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 2,
        }
    }

    /// Exit code 1: the task ran and the answer is no.
    pub fn no(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::usage(e.to_string())
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = args::parse(&argv).and_then(|task| {
        let ws = workspace::Workspace::locate()?;
        match task {
            Task::Help => {
                print!("{}", args::USAGE);
                Ok(())
            }
            Task::Generate { check: false } => generate::write(&ws),
            Task::Generate { check: true } => generate::check(&ws),
            Task::Ci { test_args } => ci::run(ws, &test_args),
            Task::Bench { area: None, .. } => bench::list(&ws),
            Task::Bench {
                area: Some(area),
                args,
            } => bench::run(&ws, &area, &args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("xtask: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}
