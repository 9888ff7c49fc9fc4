//! `sign key|sign|verify|policy …`: corral-sign's commands until the lead
//! wires them into `corral`. The e2e tests run this binary.

use clap::{Parser, Subcommand};
use corral_sign::cli;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    #[command(subcommand)]
    Key(cli::KeyCommand),
    #[command(subcommand)]
    Sign(cli::SignCommand),
    #[command(subcommand)]
    Verify(cli::VerifyCommand),
    Policy(cli::PolicyArgs),
}

fn main() -> std::process::ExitCode {
    let result = match Args::parse().cmd {
        Cmd::Key(c) => cli::run_key(c),
        Cmd::Sign(c) => cli::run_sign(c),
        Cmd::Verify(c) => cli::run_verify(c),
        Cmd::Policy(a) => cli::run_policy(a),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        std::process::ExitCode::from(2)
    })
}
