//! Running another architecture's programs: the kernel's binfmt_misc
//! handlers from qemu-user-static.
//!
//! A tree for another architecture is installed by the host's dnf and rpm
//! (`--forcearch`), but the packages' scriptlets run inside the tree, as
//! that architecture's programs. The kernel hands those to qemu through a
//! binfmt_misc handler; without one every scriptlet fails with an exec
//! format error deep in rpm's output, so a build checks for it first.

use std::path::Path;

use crate::error::TreeError;

/// Where the kernel lists its binfmt_misc handlers.
pub const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// The name of the handler that runs `arch` programs on this host, or
/// `None` when this host runs them itself (its own architecture, or i686
/// on x86_64).
pub fn handler_name(arch: &str) -> Option<&'static str> {
    let host = std::env::consts::ARCH;
    if arch == host || (arch == "i686" && host == "x86_64") {
        return None;
    }
    Some(match arch {
        "x86_64" => "qemu-x86_64",
        "aarch64" => "qemu-aarch64",
        "ppc64le" => "qemu-ppc64le",
        "s390x" => "qemu-s390x",
        "i686" => "qemu-i386",
        "armv7hl" => "qemu-arm",
        "riscv64" => "qemu-riscv64",
        _ => "qemu-unknown",
    })
}

/// Checks that `dir` (normally [`BINFMT_MISC`]) has an enabled handler for
/// `arch`, when the host needs one.
pub fn check_handler(arch: &str, dir: &Path) -> Result<(), TreeError> {
    let Some(name) = handler_name(arch) else {
        return Ok(());
    };
    let path = dir.join(name);
    let enabled = std::fs::read_to_string(&path)
        .map(|text| text.lines().next() == Some("enabled"))
        .unwrap_or(false);
    if enabled {
        Ok(())
    } else {
        Err(TreeError::NoBinfmtHandler {
            arch: arch.to_string(),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_own_architecture_needs_no_handler() {
        let empty = tempfile::tempdir().unwrap();
        check_handler(std::env::consts::ARCH, empty.path()).unwrap();
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_missing_or_disabled_handler_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_handler("aarch64", dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("aarch64"), "{msg}");
        assert!(
            msg.contains(&dir.path().join("qemu-aarch64").display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("qemu-user-static"), "{msg}");

        std::fs::write(dir.path().join("qemu-aarch64"), "disabled\n").unwrap();
        assert!(check_handler("aarch64", dir.path()).is_err());

        std::fs::write(
            dir.path().join("qemu-aarch64"),
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n",
        )
        .unwrap();
        check_handler("aarch64", dir.path()).unwrap();
        // i686 runs natively on x86_64
        check_handler("i686", dir.path()).unwrap();
    }
}
