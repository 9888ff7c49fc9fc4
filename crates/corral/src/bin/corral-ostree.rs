//! `corral-ostree`: the same command line as `corral`, linked with
//! libostree. `corral` hands it `compose`, `disk`, `host` and `release`.

fn main() -> std::process::ExitCode {
    corral_cli::run_from_iter(std::env::args_os())
}
