//! Runs the mirror server: `serve [corral mirror serve flags...]`. Used by the
//! crash test and the benchmark without needing the whole `corral` binary.

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: corral_mirror::cli::ServeArgs,
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    corral_mirror::cli::run(corral_mirror::cli::MirrorCommand::Serve(args.serve))
}
