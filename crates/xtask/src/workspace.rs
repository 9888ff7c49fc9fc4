//! Where the checkout and the target directory are, and the commands the
//! tasks run there.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::Failure;

pub struct Workspace {
    /// The checkout (the workspace's root).
    pub root: PathBuf,
    /// `$CARGO_TARGET_DIR`, else the directory cargo built xtask in, so
    /// the tasks' builds land beside it.
    pub target_dir: PathBuf,
    /// The cargo that runs us (`$CARGO`), else `cargo` on PATH.
    cargo: OsString,
    /// Set on every command made after it is added (`ci` adds the lint
    /// wrapper before its build stage).
    env: Vec<(String, String)>,
}

impl Workspace {
    pub fn locate() -> Result<Self, Failure> {
        // `cargo run` names crates/xtask of the checkout it runs in; the
        // path built in is a fallback (a copy of the checkout may reuse a
        // build of another)
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let root = manifest_dir
            .ancestors()
            .nth(2)
            .map(Path::to_path_buf)
            .ok_or_else(|| Failure::usage("no workspace above crates/xtask"))?;
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => std::env::current_exe()
                .ok()
                .and_then(|exe| target_of_exe(&exe))
                .unwrap_or_else(|| root.join("target")),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Ok(Workspace {
            root,
            target_dir,
            cargo,
            env: Vec::new(),
        })
    }

    /// A checkout at `root` (tests).
    #[cfg(test)]
    pub fn at(root: PathBuf) -> Self {
        Workspace {
            target_dir: root.join("target"),
            root,
            cargo: "cargo".into(),
            env: Vec::new(),
        }
    }

    /// `$CARGO_TARGET_DIR/debug/corral`.
    pub fn corral_bin(&self) -> PathBuf {
        self.target_dir.join("debug").join("corral")
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    /// `program` in the checkout, with the target directory and the
    /// environment the tasks add; without what `cargo run` set for xtask
    /// itself (the package's name, version and manifest), which is not
    /// the children's business.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root);
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(set_by_cargo_run) {
                cmd.env_remove(key);
            }
        }
        match self.library_path() {
            Some(path) => cmd.env("LD_LIBRARY_PATH", path),
            None => cmd.env_remove("LD_LIBRARY_PATH"),
        };
        cmd.env("CARGO_TARGET_DIR", &self.target_dir);
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// LD_LIBRARY_PATH without what `cargo run` put in front of it (the
    /// target directory's and the toolchain's library directories), so
    /// the tools the tests run load only the system's libraries.
    fn library_path(&self) -> Option<OsString> {
        let path = std::env::var_os("LD_LIBRARY_PATH")?;
        // $CARGO is <toolchain>/bin/cargo
        let toolchain = Path::new(&self.cargo)
            .ancestors()
            .nth(2)
            .map(Path::to_path_buf);
        let kept: Vec<PathBuf> = std::env::split_paths(&path)
            .filter(|dir| !dir.starts_with(&self.target_dir))
            .filter(|dir| {
                !toolchain
                    .as_ref()
                    .is_some_and(|t| !t.as_os_str().is_empty() && dir.starts_with(t))
            })
            .collect();
        if kept.is_empty() {
            return None;
        }
        std::env::join_paths(kept).ok()
    }

    pub fn cargo(&self) -> Command {
        self.command(&self.cargo)
    }

    /// `bash -c 'source scripts/setup.sh && FUNCTION'`: the set-up steps
    /// that stay in bash (Debian packages, tools built from source).
    pub fn setup_function(&self, function: &str) -> Command {
        let mut cmd = self.command("bash");
        cmd.args(Self::setup_args(function));
        cmd
    }

    /// bash's arguments for [`Workspace::setup_function`].
    pub fn setup_args(function: &str) -> [String; 3] {
        [
            "-c".into(),
            format!("source scripts/setup.sh && {function}"),
            "corral-setup".into(),
        ]
    }
}

/// `<target>/debug/xtask` → `<target>`.
fn target_of_exe(exe: &Path) -> Option<PathBuf> {
    let profile_dir = exe.parent()?;
    (profile_dir.file_name()? == "debug").then(|| profile_dir.parent().map(Path::to_path_buf))?
}

/// The variables `cargo run` sets for the program it runs (besides
/// `CARGO`, which the children's own cargo sets again).
fn set_by_cargo_run(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
        )
}

/// Runs `cmd` with the terminal's streams; its exit status.
pub fn status(cmd: &mut Command) -> Result<ExitStatus, Failure> {
    cmd.status()
        .map_err(|e| Failure::usage(format!("running {}: {e}", describe(cmd))))
}

/// The exit code a failed child passes on: its own, or 128 + the signal
/// that killed it, as a shell reports it.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1).max(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
        (None, None) => 1,
    }
}

/// `program arg arg…`, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// `program` found on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_dir_is_where_cargo_built_xtask() {
        assert_eq!(
            target_of_exe(Path::new("/var/tmp/t/debug/xtask")),
            Some(PathBuf::from("/var/tmp/t"))
        );
        assert_eq!(target_of_exe(Path::new("/usr/bin/xtask")), None);
    }

    #[test]
    fn only_what_cargo_run_set_for_xtask_is_dropped() {
        assert!(set_by_cargo_run("CARGO_PKG_NAME"));
        assert!(set_by_cargo_run("CARGO_MANIFEST_DIR"));
        for kept in [
            "CARGO_TARGET_DIR",
            "CARGO_INCREMENTAL",
            "CARGO_HOME",
            "PATH",
        ] {
            assert!(!set_by_cargo_run(kept), "{kept}");
        }
    }

    #[test]
    fn exit_codes_pass_on() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        // killed by SIGTERM
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }
}
