//! The `corral` binary: everything lives in `corral_cli`. It does not link
//! libostree; the commands that need it run in `corral-ostree` (see
//! `corral_cli::ostree_helper`).

fn main() -> std::process::ExitCode {
    corral_cli::run_front_from_iter(std::env::args_os())
}
