//! `corral` and `corral-ostree`: two binaries, one command line.
//!
//! Loading libostree and the libraries it brings (glib, gio, gpgme, curl,
//! ...) costs ~9 ms of CPU at every process start, several times what the
//! rest of corral needs. So `corral` is built without it and runs every
//! command that does not use it; `compose`, `disk`, `host` and `release`
//! are handed to `corral-ostree`, which has the same command line and links
//! libostree. The hand-off is an `exec`: same process, arguments, standard
//! streams, environment and exit code.
//!
//! `corral-ostree` is found at [`ENV`] if set, else beside the running
//! binary under its name plus `-ostree` (`/usr/bin/corral` →
//! `/usr/bin/corral-ostree`; a copy at `/tmp/corral-x` →
//! `/tmp/corral-x-ostree`).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

/// Environment variable naming the `corral-ostree` binary.
pub const ENV: &str = "CORRAL_OSTREE_BIN";

/// Where `corral-ostree` is expected for the binary at `exe`.
pub fn beside(exe: &Path) -> PathBuf {
    let mut name = exe.as_os_str().to_owned();
    name.push("-ostree");
    PathBuf::from(name)
}

/// The `corral-ostree` binary: `$CORRAL_OSTREE_BIN`, or [`beside`] the
/// running binary.
pub fn locate() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(ENV) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("finding the running corral binary")?;
    Ok(beside(&exe))
}

/// Replaces this process with `corral-ostree` running `args` (`args[0]` is
/// the program name and is kept). Returns only on failure.
pub fn exec(args: &[OsString]) -> anyhow::Result<ExitCode> {
    let helper = locate()?;
    let mut command = std::process::Command::new(&helper);
    if let Some(arg0) = args.first() {
        command.arg0(arg0);
    }
    let err = command.args(args.iter().skip(1)).exec();
    Err(err).with_context(|| {
        format!(
            "running {}: this command needs libostree, which corral runs in \
             corral-ostree (install it beside corral, or set {ENV})",
            helper.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_is_named_after_the_running_binary() {
        assert_eq!(
            beside(Path::new("/usr/bin/corral")),
            Path::new("/usr/bin/corral-ostree")
        );
        assert_eq!(
            beside(Path::new("/var/tmp/corral-bin-x")),
            Path::new("/var/tmp/corral-bin-x-ostree")
        );
    }
}
