//! The process-count limit of build steps. The engine's build API takes
//! memory and CPU limits but no process count, so the engine that runs the
//! checks is started with a cgroup parent (`"cgroup-parent"` in its
//! daemon.json, the same as `[portal.checks] pids_cgroup`) and, before each
//! build, the runner sets that cgroup's `pids.max`: every process of every
//! step container counts against it, and a fork past it fails in the
//! step. After the build the runner reads whether the limit was reached
//! and how many forks were refused.
//! The runner builds one revision at a time, so the limit is the build's.

use std::io;
use std::path::{Path, PathBuf};

/// Where the cgroup file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One cgroup's process limit.
#[derive(Debug, Clone)]
pub struct PidsLimit {
    dir: PathBuf,
    max: u32,
}

impl PidsLimit {
    /// The pids cgroup `cgroup` (an absolute cgroup path, `/corral-portal`)
    /// under `root`: its own directory in cgroup v2's unified hierarchy,
    /// under `pids/` in cgroup v1's.
    pub fn under(root: &Path, cgroup: &str, max: u32) -> PidsLimit {
        let base = if root.join("cgroup.controllers").exists() {
            root.to_path_buf()
        } else {
            root.join("pids")
        };
        PidsLimit {
            dir: base.join(cgroup.trim_start_matches('/')),
            max,
        }
    }

    /// [`PidsLimit::under`] the host's cgroup mount.
    pub fn host(cgroup: &str, max: u32) -> PidsLimit {
        PidsLimit::under(Path::new(CGROUP_ROOT), cgroup, max)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    /// Makes the cgroup afresh (when no container is left in it, so its
    /// `pids.peak` starts at zero) and sets its limit; returns the forks
    /// refused so far.
    pub fn apply(&self) -> io::Result<u64> {
        // Fails while a container's cgroup is still inside: then the old
        // one is kept.
        let _ = std::fs::remove_dir(&self.dir);
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.dir.join("pids.max"), self.max.to_string())?;
        self.refused()
    }

    /// How many forks the limit has refused (`max` of `pids.events`;
    /// cgroup v1 counts them in the step container's own cgroup, gone
    /// after the build, so this stays 0 there).
    pub fn refused(&self) -> io::Result<u64> {
        let events = std::fs::read_to_string(self.dir.join("pids.events"))?;
        Ok(refused_in(&events))
    }

    /// Whether the processes in the cgroup reached the limit since
    /// [`PidsLimit::apply`] (`pids.peak`, where the kernel keeps it).
    pub fn reached(&self) -> bool {
        std::fs::read_to_string(self.dir.join("pids.peak"))
            .ok()
            .and_then(|p| p.trim().parse::<u64>().ok())
            .is_some_and(|peak| peak >= u64::from(self.max))
    }
}

fn refused_in(events: &str) -> u64 {
    events
        .lines()
        .find_map(|l| l.strip_prefix("max ")?.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_hierarchy_and_reads_the_events() {
        let v1 = tempfile::tempdir().unwrap();
        let l = PidsLimit::under(v1.path(), "/corral-portal", 64);
        assert_eq!(l.dir(), v1.path().join("pids/corral-portal"));
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "pids\n").unwrap();
        let l = PidsLimit::under(v2.path(), "/corral-portal", 64);
        assert_eq!(l.dir(), v2.path().join("corral-portal"));
        assert_eq!(refused_in("max 17\n"), 17);
        assert_eq!(refused_in("max.imposed 1\nmax 3\n"), 3);
        assert_eq!(refused_in(""), 0);
    }
}
