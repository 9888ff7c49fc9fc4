//! Stopping a background job together with everything it started (a
//! `cargo install` under a `bash -c` under `nice`): its descendants are
//! found in /proc, since killing only the direct child would leave them
//! running.

use std::collections::BTreeMap;
use std::process::Child;

/// Sends SIGTERM to `child` and its descendants, then reaps `child`.
pub fn stop_tree(child: &mut Child) {
    let mut pids = descendants(child.id(), &parents());
    pids.push(child.id());
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .args(pids.iter().map(u32::to_string))
        .stderr(std::process::Stdio::null())
        .status();
    let _ = child.wait();
}

/// Each process's parent, from /proc/PID/stat.
fn parents() -> BTreeMap<u32, u32> {
    let mut map = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return map;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(ppid) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| parent_in_stat(&stat))
        {
            map.insert(pid, ppid);
        }
    }
    map
}

/// The parent pid in a /proc/PID/stat line: `PID (COMM) STATE PPID …`,
/// where COMM may hold spaces and parentheses.
fn parent_in_stat(stat: &str) -> Option<u32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

/// The descendants of `pid`, children before grandchildren.
fn descendants(pid: u32, parents: &BTreeMap<u32, u32>) -> Vec<u32> {
    let mut found = Vec::new();
    let mut level = vec![pid];
    while !level.is_empty() {
        level = parents
            .iter()
            .filter(|(_, ppid)| level.contains(*ppid))
            .map(|(p, _)| *p)
            .collect();
        found.extend(&level);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parent_after_a_command_name_with_spaces() {
        assert_eq!(parent_in_stat("42 (bash) S 7 42 42 0"), Some(7));
        assert_eq!(parent_in_stat("43 (a (b) c) R 42 1 1"), Some(42));
        assert_eq!(parent_in_stat("garbage"), None);
    }

    #[test]
    fn finds_children_and_grandchildren_only() {
        let parents = BTreeMap::from([(10, 1), (11, 10), (12, 11), (13, 11), (20, 1)]);
        assert_eq!(descendants(10, &parents), [11, 12, 13]);
        assert_eq!(descendants(20, &parents), Vec::<u32>::new());
    }

    #[test]
    fn stops_a_job_and_the_process_it_started() {
        let mut child = std::process::Command::new("bash")
            .args(["-c", "sleep 300 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let sleep: u32 = line.trim().parse().unwrap();
        let proc_dir = std::path::PathBuf::from(format!("/proc/{sleep}"));
        assert!(proc_dir.exists());
        stop_tree(&mut child);
        // the sleep was bash's child, now re-parented and gone (a zombie
        // at most for a moment, until init reaps it)
        let gone = (0..100).any(|_| {
            let state = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
            let zombie_or_gone = state.is_empty() || state.contains(") Z ");
            if !zombie_or_gone {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            zombie_or_gone
        });
        assert!(gone, "sleep {sleep} still runs");
    }
}
