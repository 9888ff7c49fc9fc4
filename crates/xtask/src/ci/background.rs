//! The set-up steps that run beside the build (garage, the VM images).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::process;
use crate::Failure;

/// A set-up step running in the background, its output in a log file that
/// is printed if it fails.
pub struct Background {
    name: &'static str,
    child: Option<Child>,
    pub log: PathBuf,
    started: Instant,
}

impl Background {
    /// Starts `cmd` with its output in `LOGS/NAME.log` (NAME with dashes
    /// for spaces). The logs live in a directory of their own, overwritten
    /// by the next run, so a run killed by a signal leaves nothing behind
    /// elsewhere.
    pub fn spawn(name: &'static str, mut cmd: Command, logs: &Path) -> Result<Self, Failure> {
        std::fs::create_dir_all(logs)
            .map_err(|e| Failure::usage(format!("creating {}: {e}", logs.display())))?;
        let log = logs.join(format!(
            "{}.log",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
        ));
        let file = std::fs::File::create(&log)?;
        cmd.stdout(file.try_clone()?)
            .stderr(file)
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| Failure::usage(format!("{name}: {e}")))?;
        Ok(Background {
            name,
            child: Some(child),
            log,
            started: Instant::now(),
        })
    }

    /// Waits for the step; on failure prints its log and fails. The
    /// seconds since it started.
    pub fn wait(mut self) -> Result<u64, Failure> {
        let mut child = self.child.take().expect("a job is waited for once");
        let status = child.wait()?;
        if !status.success() {
            if let Ok(log) = std::fs::read(&self.log) {
                let _ = std::io::stderr().write_all(&log);
            }
            return Err(Failure::no(format!("{} failed (log above)", self.name)));
        }
        Ok(self.started.elapsed().as_secs())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            process::stop_tree(child);
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_still_running_when_the_suite_ends_is_stopped() {
        let logs = crate::scratch::Scratch::new("test-logs").unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("300");
        let job = Background::spawn("sleeping", cmd, logs.path()).unwrap();
        let proc_dir = PathBuf::from(format!("/proc/{}", job.child.as_ref().unwrap().id()));
        let log = job.log.clone();
        assert!(proc_dir.exists() && log.exists());
        drop(job);
        // reaped, so gone from /proc at once
        assert!(!proc_dir.exists(), "the job still runs");
        assert!(!log.exists(), "the log is removed");
    }

    #[test]
    fn a_failed_background_job_fails_with_its_log() {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", "echo the reason; exit 4"]);
        let logs = crate::scratch::Scratch::new("test-logs").unwrap();
        let job = Background::spawn("building a test thing", cmd, logs.path()).unwrap();
        let log = job.log.clone();
        let e = job.wait().unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(e.message, "building a test thing failed (log above)");
        assert!(!log.exists(), "the log is removed");
    }
}
