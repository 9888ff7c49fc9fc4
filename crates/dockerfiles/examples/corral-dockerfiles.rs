//! `corral dockerfiles` as a standalone program, for benchmarks and for
//! trying the subcommands before they are wired into the `corral` binary:
//! `cargo run --release -p corral-dockerfiles --example corral-dockerfiles -- lint`.

use clap::Parser;
use corral_dockerfiles::cli::{run, DockerfilesCommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "corral-dockerfiles",
    about = "Dockerfile library: lint, graph and plan"
)]
struct Opt {
    #[command(subcommand)]
    cmd: DockerfilesCommand,
}

fn main() -> ExitCode {
    match run(Opt::parse().cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
