//! One `corral host` writer per sysroot: a [`corral_pidlock::PidLock`] on
//! `ostree/corral-host.lock`, holding the pid and command of its holder
//! so that the next process can say whom it waits for.

use std::path::Path;

use corral_pidlock::{PidLock, PidLockError, Wait};

use crate::error::HostError;

/// The lock file inside the sysroot.
pub const LOCK_FILE: &str = "ostree/corral-host.lock";

/// Held while a command changes the sysroot; released on drop.
#[derive(Debug)]
pub struct HostLock {
    lock: PidLock,
}

/// The holder as the messages name it.
fn holder_name(holder: &str) -> String {
    match holder {
        "" => "another process".to_string(),
        h => h.to_string(),
    }
}

impl HostLock {
    /// Takes the lock. When another process holds it: with `wait`, says
    /// so on stderr and waits; without, fails naming the holder.
    pub fn acquire(sysroot: &Path, what: &str, wait: bool) -> Result<HostLock, anyhow::Error> {
        let path = sysroot.join(LOCK_FILE);
        let say = |holder: &str| {
            eprintln!(
                "waiting for {}, which holds {}",
                holder_name(holder),
                path.display()
            );
        };
        let wait = if wait { Wait::Yes(&say) } else { Wait::No };
        let record = format!("pid {} (corral host {what})", std::process::id());
        let lock = PidLock::acquire(&path, &record, wait).map_err(|e| match e {
            PidLockError::Held { path, holder } => HostError::Locked {
                path,
                holder: holder_name(&holder),
            }
            .into(),
            other => anyhow::Error::new(other),
        })?;
        Ok(HostLock { lock })
    }

    pub fn path(&self) -> &Path {
        self.lock.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_writer_is_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ostree")).unwrap();
        let first = HostLock::acquire(dir.path(), "upgrade", false).unwrap();
        // flock belongs to the open file description: a second open in
        // this process conflicts as another process would.
        let err = HostLock::acquire(dir.path(), "rollback", false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "locked by pid {} (corral host upgrade)",
                std::process::id()
            )),
            "{msg}"
        );
        drop(first);
        let again = HostLock::acquire(dir.path(), "rollback", false).unwrap();
        assert!(again.path().ends_with(LOCK_FILE));
    }
}
