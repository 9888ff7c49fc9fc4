//! `corral test` on its own, until the `corral` binary wires it in.

use clap::Parser;

#[derive(Parser)]
#[command(name = "corral-test")]
struct Cli {
    #[command(flatten)]
    args: corral_testrun::cli::TestArgs,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    match corral_testrun::cli::run(Cli::parse().args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
