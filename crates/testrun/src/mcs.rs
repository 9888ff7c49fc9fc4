//! The MCS category allocator: one `s0:cX,cY` pair per test run.
//!
//! Allocations live in one lock file (`mcs.lock` in [`McsAllocator::dir`]),
//! one `LOW HIGH PID` line each, read and rewritten under an exclusive
//! `flock`, so concurrent corral processes never hand out the same pair.
//! Lines whose process is gone are reclaimed: a run that crashed frees its
//! pair the next time anyone allocates.

use std::collections::HashSet;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where allocations are kept unless `CORRAL_MCS_DIR` or a flag says otherwise.
pub const DEFAULT_DIR: &str = "/run/corral";
/// The lock file's name inside the allocator's directory.
pub const LOCK_FILE: &str = "mcs.lock";

/// What can go wrong while allocating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McsError {
    #[error("all {pairs} category pairs in {range} are taken by live runs or containers")]
    Exhausted { range: McsRange, pairs: usize },
    // The io error is the source, not part of the message: `{:#}` prints
    // it once.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not an allocation (want `LOW HIGH PID`)")]
    Corrupt { path: PathBuf, line: usize },
    /// The allocation file is no regular file, or too large to be one.
    #[error(transparent)]
    File(#[from] corral_configfile::ConfigFileError),
    #[error("invalid MCS {what} {text:?}: {why}")]
    Parse {
        what: &'static str,
        text: String,
        why: String,
    },
}

/// An inclusive range of categories, written `LOW-HIGH` (`0-1023`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McsRange {
    pub low: u16,
    pub high: u16,
}

impl McsRange {
    /// The categories container engines use: c0 to c1023.
    pub const DEFAULT: McsRange = McsRange { low: 0, high: 1023 };

    /// How many distinct pairs the range holds.
    pub fn pairs(&self) -> usize {
        let n = usize::from(self.high - self.low) + 1;
        n * (n - 1) / 2
    }

    fn contains(&self, c: u16) -> bool {
        (self.low..=self.high).contains(&c)
    }
}

impl fmt::Display for McsRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}-c{}", self.low, self.high)
    }
}

impl FromStr for McsRange {
    type Err = McsError;

    /// ```
    /// use corral_testrun::mcs::McsRange;
    /// assert_eq!("0-3".parse::<McsRange>().unwrap(), McsRange { low: 0, high: 3 });
    /// assert_eq!("c10-c20".parse::<McsRange>().unwrap().pairs(), 55);
    /// assert!("5-5".parse::<McsRange>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, McsError> {
        let bad = |why: String| McsError::Parse {
            what: "range",
            text: s.to_string(),
            why,
        };
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| bad("want LOW-HIGH, e.g. 0-1023 or c100-c199".into()))?;
        let num = |t: &str| {
            t.trim_start_matches('c')
                .parse::<u16>()
                .map_err(|_| bad(format!("{t:?} is not a category number (0 to 1023)")))
        };
        let (low, high) = (num(a)?, num(b)?);
        if high > 1023 {
            return Err(bad(format!("c{high} is past c1023, the last category")));
        }
        if low >= high {
            return Err(bad(format!(
                "LOW must be below HIGH: each run takes two distinct categories, so a range holds at least two, as in {}-{}",
                low.min(1022),
                low.min(1022) + 1
            )));
        }
        Ok(McsRange { low, high })
    }
}

/// One sensitivity-and-categories level `s0:cLOW,cHIGH`, `LOW < HIGH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct McsLevel {
    pub low: u16,
    pub high: u16,
}

impl fmt::Display for McsLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s0:c{},c{}", self.low, self.high)
    }
}

impl FromStr for McsLevel {
    type Err = McsError;

    /// Parses `s0:c1,c2` (the order of the two categories does not matter).
    ///
    /// ```
    /// use corral_testrun::mcs::McsLevel;
    /// let l: McsLevel = "s0:c7,c3".parse().unwrap();
    /// assert_eq!(l.to_string(), "s0:c3,c7");
    /// ```
    fn from_str(s: &str) -> Result<Self, McsError> {
        let bad = |why: &str| McsError::Parse {
            what: "level",
            text: s.to_string(),
            why: why.to_string(),
        };
        let want = "want s0:cLOW,cHIGH";
        let cats = s.strip_prefix("s0:").ok_or_else(|| bad(want))?;
        let (a, b) = cats.split_once(',').ok_or_else(|| bad(want))?;
        let cat = |t: &str| {
            t.strip_prefix('c')
                .and_then(|n| n.parse::<u16>().ok())
                .ok_or_else(|| bad(want))
        };
        let (a, b) = (cat(a)?, cat(b)?);
        if a == b {
            return Err(bad("the two categories must differ"));
        }
        Ok(McsLevel {
            low: a.min(b),
            high: a.max(b),
        })
    }
}

/// One line of the lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub level: McsLevel,
    pub pid: u32,
}

/// Hands out category pairs no other live run holds.
#[derive(Debug, Clone)]
pub struct McsAllocator {
    dir: PathBuf,
    range: McsRange,
}

impl McsAllocator {
    pub fn new(dir: impl Into<PathBuf>, range: McsRange) -> Self {
        Self {
            dir: dir.into(),
            range,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn range(&self) -> McsRange {
        self.range
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    /// Allocates a pair for this process that is neither held by a live
    /// run nor in `reserved` (the levels of containers already running).
    pub fn allocate(&self, reserved: &[McsLevel]) -> Result<McsLease, McsError> {
        self.allocate_for(std::process::id(), reserved)
    }

    fn allocate_for(&self, pid: u32, reserved: &[McsLevel]) -> Result<McsLease, McsError> {
        let mut locked = self.lock()?;
        let mut live = locked.read_live()?;
        let taken: HashSet<McsLevel> = live
            .iter()
            .map(|a| a.level)
            .chain(reserved.iter().copied())
            .collect();
        let level = (self.range.low..self.range.high)
            .flat_map(|low| (low + 1..=self.range.high).map(move |high| McsLevel { low, high }))
            .find(|l| !taken.contains(l))
            .ok_or(McsError::Exhausted {
                range: self.range,
                pairs: self.range.pairs(),
            })?;
        live.push(Allocation { level, pid });
        locked.write(&live)?;
        tracing::debug!(%level, pid, "mcs pair allocated");
        Ok(McsLease {
            allocator: self.clone(),
            level,
            pid,
            released: false,
        })
    }

    /// The allocations of live processes (dead owners' lines are dropped
    /// from the file on the way).
    pub fn live(&self) -> Result<Vec<Allocation>, McsError> {
        let mut locked = self.lock()?;
        let live = locked.read_live()?;
        locked.write(&live)?;
        Ok(live)
    }

    fn release(&self, level: McsLevel, pid: u32) -> Result<(), McsError> {
        let mut locked = self.lock()?;
        let mut live = locked.read_live()?;
        live.retain(|a| !(a.level == level && a.pid == pid));
        locked.write(&live)?;
        tracing::debug!(%level, pid, "mcs pair released");
        Ok(())
    }

    fn lock(&self) -> Result<LockedFile, McsError> {
        let path = self.lock_path();
        let io = |source| McsError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(|source| McsError::Io {
            path: self.dir.clone(),
            source,
        })?;
        // O_NONBLOCK: a FIFO in its place must not hang the open; it is
        // refused below with anything else that is no regular file.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&path)
            .map_err(io)?;
        if !file.metadata().map_err(io)?.is_file() {
            return Err(corral_configfile::ConfigFileError::NotAFile {
                path,
                kind: "not a regular file",
            }
            .into());
        }
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io(e.into()))?;
        Ok(LockedFile {
            file,
            path: path.clone(),
            range: self.range,
        })
    }
}

/// The size limit of the allocation file: a line per live pair, and there
/// are at most 523,776 pairs in 0-1023 at ~20 bytes each.
const ALLOCATION_FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// The lock file, held under `flock` until dropped.
struct LockedFile {
    file: File,
    path: PathBuf,
    range: McsRange,
}

impl LockedFile {
    fn io(&self, source: std::io::Error) -> McsError {
        McsError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The allocations whose owners are alive. Allocations outside this
    /// allocator's range are kept: another process may use another range.
    fn read_live(&mut self) -> Result<Vec<Allocation>, McsError> {
        let mut text = String::new();
        // One byte past the limit tells a file over it from one ending there.
        (&self.file)
            .take(ALLOCATION_FILE_LIMIT + 1)
            .read_to_string(&mut text)
            .map_err(|e| self.io(e))?;
        if text.len() as u64 > ALLOCATION_FILE_LIMIT {
            return Err(corral_configfile::ConfigFileError::TooLarge {
                path: self.path.clone(),
                limit: ALLOCATION_FILE_LIMIT,
            }
            .into());
        }
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let a = parse_line(line).ok_or_else(|| McsError::Corrupt {
                path: self.path.clone(),
                line: i + 1,
            })?;
            if pid_alive(a.pid) {
                out.push(a);
            } else {
                tracing::info!(level = %a.level, pid = a.pid, in_range = self.range.contains(a.level.low), "reclaiming the pair of a dead run");
            }
        }
        Ok(out)
    }

    fn write(&mut self, live: &[Allocation]) -> Result<(), McsError> {
        let mut text = String::from("# corral MCS allocations: LOW HIGH PID\n");
        for a in live {
            text.push_str(&format!("{} {} {}\n", a.level.low, a.level.high, a.pid));
        }
        self.file.set_len(0).map_err(|e| self.io(e))?;
        self.file.rewind().map_err(|e| self.io(e))?;
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| self.io(e))?;
        Ok(())
    }
}

fn parse_line(line: &str) -> Option<Allocation> {
    let mut it = line.split_whitespace();
    let low = it.next()?.parse().ok()?;
    let high = it.next()?.parse().ok()?;
    let pid = it.next()?.parse().ok()?;
    (it.next().is_none() && low < high).then_some(Allocation {
        level: McsLevel { low, high },
        pid,
    })
}

/// Whether `pid` names a running (or zombie) process.
fn pid_alive(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // EPERM still means the process exists
    !matches!(
        rustix::process::test_kill_process(p),
        Err(rustix::io::Errno::SRCH)
    )
}

/// A pair held by this process until [`McsLease::release`] or drop.
#[derive(Debug)]
pub struct McsLease {
    allocator: McsAllocator,
    level: McsLevel,
    pid: u32,
    released: bool,
}

impl McsLease {
    pub fn level(&self) -> McsLevel {
        self.level
    }

    /// Gives the pair back.
    pub fn release(mut self) -> Result<(), McsError> {
        self.released = true;
        self.allocator.release(self.level, self.pid)
    }
}

impl Drop for McsLease {
    fn drop(&mut self) {
        if !self.released {
            if let Err(e) = self.allocator.release(self.level, self.pid) {
                tracing::warn!(level = %self.level, "releasing the mcs pair: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests;
