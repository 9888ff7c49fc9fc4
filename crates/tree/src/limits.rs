//! The resource limits of a sandboxed build: a cgroup of its own, made
//! for the build and removed after it, with a process-count limit
//! (`pids.max`) and a memory limit (`memory.max`, or cgroup v1's
//! `memory.limit_in_bytes`). A fork bomb or a memory hog in a scriptlet
//! then stops at the limit instead of taking the builder's host down
//! until the time limit.
//!
//! The process enters the cgroup before bwrap starts anything: the build
//! runs `sh -c`, which writes its own pid into each `cgroup.procs` and
//! only then execs bwrap, so every process of the build is born inside.
//! Both cgroup layouts are handled: v2's unified hierarchy (one directory
//! with both controllers) and v1's (a directory under `pids/` and one
//! under `memory/`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where the cgroup file systems are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The prefix of the cgroups builds make: `corral-tree-PID-N` under the
/// hierarchy's root (PID is the builder's process).
pub const CGROUP_PREFIX: &str = "corral-tree-";

/// The limits of a sandboxed build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    /// The most processes the build may run at once.
    pub pids_max: u32,
    /// The most memory (bytes) the build's processes may use.
    pub memory_max: u64,
    /// Whether a build for which no cgroup can be made fails
    /// ([`crate::TreeError::NoCgroup`]) or goes on without limits, with
    /// a warning.
    pub required: bool,
    /// Where the cgroup file systems are mounted ([`CGROUP_ROOT`]).
    pub cgroup_root: PathBuf,
}

/// 512 processes, 2 GiB of memory.
impl Default for SandboxLimits {
    fn default() -> SandboxLimits {
        SandboxLimits {
            pids_max: 512,
            memory_max: 2 << 30,
            required: false,
            cgroup_root: PathBuf::from(CGROUP_ROOT),
        }
    }
}

/// A build's cgroup (one directory per hierarchy). Dropping it kills what
/// is left in it and removes it.
#[derive(Debug)]
pub struct BuildCgroup {
    dirs: Vec<PathBuf>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl BuildCgroup {
    /// Makes a new cgroup under `root` (a cgroup mount: v2 when it has
    /// `cgroup.controllers`, else v1's per-controller directories) with
    /// `limits`.
    pub fn create(root: &Path, limits: &SandboxLimits) -> io::Result<BuildCgroup> {
        let name = format!(
            "{CGROUP_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut cg = BuildCgroup { dirs: Vec::new() };
        if root.join("cgroup.controllers").exists() {
            // Enable the controllers for the root's children (systemd
            // usually has); fails harmlessly when they already are.
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+pids +memory");
            let dir = root.join(&name);
            std::fs::create_dir(&dir)?;
            cg.dirs.push(dir.clone());
            let have = std::fs::read_to_string(dir.join("cgroup.controllers"))?;
            for c in ["pids", "memory"] {
                if !have.split_whitespace().any(|h| h == c) {
                    return Err(io::Error::other(format!(
                        "the {c} controller is not enabled in {}",
                        root.display()
                    )));
                }
            }
            std::fs::write(dir.join("pids.max"), limits.pids_max.to_string())?;
            std::fs::write(dir.join("memory.max"), limits.memory_max.to_string())?;
        } else {
            for (controller, file, value) in [
                ("pids", "pids.max", limits.pids_max.to_string()),
                (
                    "memory",
                    "memory.limit_in_bytes",
                    limits.memory_max.to_string(),
                ),
            ] {
                let base = root.join(controller);
                if !base.is_dir() {
                    return Err(io::Error::other(format!(
                        "no {controller} cgroup controller mounted at {}",
                        base.display()
                    )));
                }
                let dir = base.join(&name);
                std::fs::create_dir(&dir)?;
                cg.dirs.push(dir.clone());
                std::fs::write(dir.join(file), value)?;
            }
        }
        Ok(cg)
    }

    /// [`BuildCgroup::create`] under `limits.cgroup_root`.
    pub fn host(limits: &SandboxLimits) -> io::Result<BuildCgroup> {
        BuildCgroup::create(&limits.cgroup_root, limits)
    }

    /// The directories (one per hierarchy).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The `cgroup.procs` files a process must write its pid into.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// How many forks the process limit refused (`max` of `pids.events`).
    pub fn pids_refused(&self) -> u64 {
        self.dirs
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("pids.events")).ok())
            .filter_map(|e| {
                e.lines()
                    .find_map(|l| l.strip_prefix("max ")?.trim().parse::<u64>().ok())
            })
            .sum()
    }

    /// Whether the memory limit killed a process (`oom_kill` of
    /// `memory.events`, v2) or was hit (`memory.failcnt`, v1).
    pub fn memory_hit(&self) -> bool {
        self.dirs.iter().any(|d| {
            let v2 = std::fs::read_to_string(d.join("memory.events"))
                .ok()
                .and_then(|e| {
                    e.lines()
                        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse::<u64>().ok())
                });
            let v1 = std::fs::read_to_string(d.join("memory.failcnt"))
                .ok()
                .and_then(|c| c.trim().parse::<u64>().ok());
            v2.or(v1).is_some_and(|n| n > 0)
        })
    }

    fn pids(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in self.procs_files() {
            if let Ok(text) = std::fs::read_to_string(f) {
                for p in text.split_whitespace() {
                    if !out.iter().any(|o| o == p) {
                        out.push(p.to_string());
                    }
                }
            }
        }
        out
    }
}

impl Drop for BuildCgroup {
    /// Kills every process left in the cgroup and removes it: a cgroup
    /// can only be removed once empty, so this waits (a few seconds at
    /// most) for the kills to land.
    fn drop(&mut self) {
        for _ in 0..100 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for d in &self.dirs {
                let _ = std::fs::write(d.join("cgroup.kill"), "1");
            }
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .arg("--")
                .args(&pids)
                .stderr(std::process::Stdio::null())
                .status();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        for d in self.dirs.iter().rev() {
            for _ in 0..50 {
                match std::fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
                }
            }
            if d.exists() {
                tracing::warn!(cgroup = %d.display(), "could not remove the build's cgroup");
            }
        }
    }
}

/// The `sh -c` script that moves itself into each `cgroup.procs` given
/// before `--`, then execs what follows.
pub const ENTER: &str =
    r#"while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@""#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_one_directory_per_hierarchy_and_removes_them() {
        let limits = SandboxLimits {
            pids_max: 64,
            memory_max: 1 << 30,
            required: true,
            ..SandboxLimits::default()
        };
        let v1 = tempfile::tempdir().unwrap();
        assert!(BuildCgroup::create(v1.path(), &limits).is_err());
        std::fs::create_dir(v1.path().join("pids")).unwrap();
        std::fs::create_dir(v1.path().join("memory")).unwrap();
        let cg = BuildCgroup::create(v1.path(), &limits).unwrap();
        let dirs = cg.dirs().to_vec();
        assert_eq!(dirs.len(), 2);
        assert!(dirs[0].starts_with(v1.path().join("pids")));
        assert_eq!(
            std::fs::read_to_string(dirs[0].join("pids.max")).unwrap(),
            "64"
        );
        assert_eq!(
            std::fs::read_to_string(dirs[1].join("memory.limit_in_bytes")).unwrap(),
            (1u64 << 30).to_string()
        );
        // (a real cgroup directory's files go with it; these are plain files)
        for d in &dirs {
            std::fs::remove_file(d.join(if d.starts_with(v1.path().join("pids")) {
                "pids.max"
            } else {
                "memory.limit_in_bytes"
            }))
            .unwrap();
        }
        drop(cg);
        assert!(dirs.iter().all(|d| !d.exists()));

        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "pids memory\n").unwrap();
        // Not a real cgroup: the child has no cgroup.controllers.
        assert!(BuildCgroup::create(v2.path(), &limits).is_err());
    }
}
