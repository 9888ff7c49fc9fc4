//! The `corral` binary: everything lives in `corral_cli`.

fn main() -> std::process::ExitCode {
    corral_cli::run_from_iter(std::env::args_os())
}
