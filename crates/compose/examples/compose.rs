//! `compose …`: the compose command group on its own, for the end-to-end
//! tests until `corral compose` is wired in the CLI crate.

use std::process::ExitCode;

use clap::Parser;
use corral_compose::cli::{run, ComposeCommand};

#[derive(Debug, Parser)]
#[command(name = "compose")]
struct Top {
    #[command(subcommand)]
    command: ComposeCommand,
}

fn main() -> ExitCode {
    let top = match Top::try_parse() {
        Ok(t) => t,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    match run(top.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
