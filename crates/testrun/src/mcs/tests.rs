use super::*;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn allocator(dir: &Path, range: &str) -> McsAllocator {
    McsAllocator::new(dir, range.parse().unwrap())
}

#[test]
fn levels_round_trip_and_reject_nonsense() {
    let l: McsLevel = "s0:c1,c2".parse().unwrap();
    assert_eq!(l, McsLevel { low: 1, high: 2 });
    for bad in ["s0:c1,c1", "s0:c1", "s1:c1,c2", "s0:1,2", ""] {
        assert!(bad.parse::<McsLevel>().is_err(), "{bad}");
    }
    assert_eq!(McsRange::DEFAULT.pairs(), 1024 * 1023 / 2);
}

#[test]
fn pairs_are_distinct_and_released() {
    let dir = tempfile::tempdir().unwrap();
    let a = allocator(dir.path(), "0-1023");
    let one = a.allocate(&[]).unwrap();
    let two = a.allocate(&[]).unwrap();
    assert_ne!(one.level(), two.level());
    assert_eq!(a.live().unwrap().len(), 2);
    let freed = one.level();
    one.release().unwrap();
    assert_eq!(a.live().unwrap().len(), 1);
    drop(two);
    assert!(a.live().unwrap().is_empty());
    // a freed pair can be handed out again
    assert_eq!(a.allocate(&[]).unwrap().level(), freed);
}

#[test]
fn reserved_levels_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let a = allocator(dir.path(), "0-2");
    let reserved = ["s0:c0,c1".parse().unwrap(), "s0:c0,c2".parse().unwrap()];
    let lease = a.allocate(&reserved).unwrap();
    assert_eq!(lease.level().to_string(), "s0:c1,c2");
}

#[test]
fn exhaustion_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let a = allocator(dir.path(), "0-3");
    let held: Vec<_> = (0..6).map(|_| a.allocate(&[]).unwrap()).collect();
    let e = a.allocate(&[]).unwrap_err();
    assert!(matches!(e, McsError::Exhausted { pairs: 6, .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "all 6 category pairs in c0-c3 are taken by live runs or containers"
    );
    drop(held);
    a.allocate(&[]).unwrap();
}

#[test]
fn dead_owners_are_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(
        dir.path().join(LOCK_FILE),
        format!("0 1 {dead}\n0 2 {}\n", std::process::id()),
    )
    .unwrap();
    let a = allocator(dir.path(), "0-2");
    // c0,c1 belonged to a dead process and c0,c2 is ours
    let lease = a.allocate(&[]).unwrap();
    assert_eq!(lease.level().to_string(), "s0:c0,c1");
    std::mem::forget(lease);
    assert_eq!(a.live().unwrap().len(), 2);
}

#[test]
fn corrupt_lock_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(LOCK_FILE), "# header\n1 2\n").unwrap();
    let e = allocator(dir.path(), "0-3").allocate(&[]).unwrap_err();
    assert!(
        e.to_string()
            .ends_with(":2: not an allocation (want `LOW HIGH PID`)"),
        "{e}"
    );
}

/// The allocation file is state corral reads: a directory or a FIFO in
/// its place, or a file past the limit, is refused by name (and a FIFO
/// does not hang the open).
#[test]
fn allocation_file_that_is_no_file_or_too_large_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(LOCK_FILE);
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(ALLOCATION_FILE_LIMIT + 1).unwrap();
    let e = allocator(dir.path(), "0-3").allocate(&[]).unwrap_err();
    assert!(
        e.to_string().contains(LOCK_FILE) && e.to_string().contains("larger than the 16 MiB limit"),
        "{e}"
    );
    std::fs::remove_file(&path).unwrap();
    assert!(Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap()
        .success());
    let e = allocator(dir.path(), "0-3").allocate(&[]).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

const CHILD_DIR: &str = "CORRAL_MCS_LOAD_DIR";
const CHILDREN: usize = 8;
const PER_CHILD: usize = 125;

/// The body of one load-test process: allocate, print, wait for the
/// parent's go-ahead, then exit without releasing (as a crash would).
#[test]
fn load_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let a = McsAllocator::new(&dir, McsRange::DEFAULT);
    let mut out = std::io::stdout().lock();
    for _ in 0..PER_CHILD {
        let lease = a.allocate(&[]).unwrap();
        writeln!(out, "pair {}", lease.level()).unwrap();
        std::mem::forget(lease);
    }
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !dir.join("go").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::exit(0);
}

#[test]
fn eight_processes_never_share_a_pair_and_crashes_free_them() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            Command::new(&exe)
                .args(["mcs::tests::load_child", "--exact", "--nocapture"])
                .args(["--test-threads", "1"])
                .env(CHILD_DIR, dir.path())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut seen = HashSet::new();
    for child in &mut children {
        let mut got = 0;
        for line in BufReader::new(child.stdout.as_mut().unwrap()).lines() {
            let line = line.unwrap();
            // libtest prints `test NAME ... ` before the first line
            if line.ends_with("done") {
                break;
            }
            if let Some((_, level)) = line.split_once("pair ") {
                assert!(seen.insert(level.to_string()), "{level} handed out twice");
                got += 1;
            }
        }
        assert_eq!(got, PER_CHILD);
    }
    assert_eq!(seen.len(), CHILDREN * PER_CHILD);
    let a = McsAllocator::new(dir.path(), McsRange::DEFAULT);
    assert_eq!(a.live().unwrap().len(), CHILDREN * PER_CHILD);
    // all eight are alive and waiting: a new allocation is a 1,001st pair
    let extra = a.allocate(&[]).unwrap();
    assert!(!seen.contains(&extra.level().to_string()));
    drop(extra);

    std::fs::write(dir.path().join("go"), "").unwrap();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    // the children exited without releasing: their pairs are reclaimed
    assert!(a.live().unwrap().is_empty());
}

#[test]
fn range_errors_say_why() {
    let why = |s: &str| s.parse::<McsRange>().unwrap_err().to_string();
    assert_eq!(
        why("5-5"),
        "invalid MCS range \"5-5\": LOW must be below HIGH: each run takes two distinct categories, so a range holds at least two, as in 5-6"
    );
    assert!(why("9-3").contains("LOW must be below HIGH"));
    assert!(why("0-2000").ends_with("c2000 is past c1023, the last category"));
    assert!(why("x-3").ends_with("\"x\" is not a category number (0 to 1023)"));
    assert!(why("7").ends_with("want LOW-HIGH, e.g. 0-1023 or c100-c199"));
    let why = |s: &str| s.parse::<McsLevel>().unwrap_err().to_string();
    assert!(why("s0:c3,c3").ends_with("the two categories must differ"));
    assert!(why("s1:c1,c2").ends_with("want s0:cLOW,cHIGH"));
}

#[test]
fn io_errors_name_the_cause_once() {
    use std::error::Error;
    // a directory where the allocator wants its lock file
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(LOCK_FILE)).unwrap();
    let err = allocator(dir.path(), "0-3").live().unwrap_err();
    let lock = dir.path().join(LOCK_FILE);
    assert_eq!(err.to_string(), lock.display().to_string());
    assert!(
        err.source().unwrap().to_string().contains("directory"),
        "{err:?}"
    );
}
