//! The whole test suite (`scripts/test.sh` runs `cargo xtask ci`):
//! formatting, lints, unit tests and the end-to-end tests against the real
//! tools, in stages. The set-up that installs Debian packages and builds
//! tools and VM images stays in bash (scripts/setup.sh, scripts/vm-selinux.sh,
//! tests/fixtures/boot/build-tree.sh) and runs as subprocesses.
//!
//! It ends with a one-line timing table of its stages (also when a stage
//! fails, which it names), so a slow or broken set-up on a new machine
//! shows where; the test runner's own summary line stays the last line.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::workspace::{self, Workspace};
use crate::{generate, process, Failure};

pub fn run(mut ws: Workspace, test_args: &[String]) -> Result<(), Failure> {
    let mut suite = Suite {
        timing: Timing::new(),
        garage: None,
        vm_images: None,
        summary: None,
    };
    let result = stages(&mut ws, &mut suite, test_args);
    let failed = suite.timing.end();
    // stops the background jobs still running
    suite.garage = None;
    suite.vm_images = None;
    if let Err(f) = &result {
        if !f.message.is_empty() {
            eprintln!("{}", f.message);
        }
    }
    println!("{}", suite.timing.line());
    if let Err(f) = &result {
        eprintln!(
            "xtask ci: failed in stage: {} (exit {})",
            failed.as_deref().unwrap_or("before the first stage"),
            f.code
        );
    }
    // The test runner's own summary stays the last line, for whoever reads it.
    if let Some(summary) = suite.summary {
        println!("{summary}");
    }
    result.map_err(|f| Failure {
        message: String::new(),
        code: f.code,
    })
}

struct Suite {
    timing: Timing,
    /// The background jobs, stopped (with what they started) when dropped
    /// before they ended.
    garage: Option<Background>,
    vm_images: Option<Background>,
    summary: Option<String>,
}

fn stages(ws: &mut Workspace, suite: &mut Suite, test_args: &[String]) -> Result<(), Failure> {
    if std::env::var_os("CARGO_TERM_COLOR").is_none() {
        ws.set_env("CARGO_TERM_COLOR", "never");
    }
    // Garage (the replica tests' object store) is the longest set-up step on
    // a new machine and needs only Rust and a C compiler, so it builds in
    // the background from the start, at a lower priority, while apt, the VM
    // images and the workspace proceed; the tests wait for it.
    let mut garage = ws.command("nice");
    garage
        .args(["-n", "10", "bash"])
        .args(Workspace::setup_args("corral_install_garage"));
    let logs = ws.target_dir.join("xtask-ci");
    suite.garage = Some(Background::spawn("building garage", garage, &logs)?);

    suite.timing.stage("setup: Debian packages");
    run_stage(&mut ws.setup_function("corral_setup"))?;
    suite.timing.stage("setup: VM tools");
    run_stage(&mut ws.setup_function("corral_install_vm_tools"))?;

    // The VM images of the tests that boot a kernel of their own, cached in
    // /var/tmp/corral-tools/vm: the SELinux VM of tests/e2e/selinux_vm.rs
    // (about 3 minutes the first time on a machine) and the bootable Atomic
    // Host tree of tests/e2e/disk_boot.rs (about 2-3 minutes). Mostly
    // downloads and dpkg, so they are built in the background, one after
    // the other (they share a package cache), while garage and the
    // workspace compile.
    let mut vm = ws.command("bash");
    vm.args([
        "-c",
        "bash scripts/vm-selinux.sh build && bash tests/fixtures/boot/build-tree.sh",
    ]);
    let vm = Background::spawn("building the VM images", vm, &logs)?;
    println!(
        "==> VM images (in the background; log: {})",
        vm.log.display()
    );
    suite.vm_images = Some(vm);

    suite.timing.stage("cargo fmt --check");
    run_stage(ws.cargo().args(["fmt", "--all", "--", "--check"]))?;

    suite.timing.stage("build and clippy");
    lint_while_building(ws)?;
    let nextest = has_nextest(ws);
    let runner: &[&str] = if nextest {
        &["nextest", "run"]
    } else {
        &["test"]
    };
    let mut build = ws.cargo();
    build
        .args(runner)
        .args(["--locked", "--workspace", "--no-run"]);
    run_stage(&mut build)?;

    suite.timing.stage("generated man pages and completions");
    generate::check_with(ws, &ws.corral_bin())?;

    suite.timing.stage("waiting for the VM images");
    if let Some(vm) = suite.vm_images.take() {
        let secs = vm.wait()?;
        println!("    VM images ready {secs} s after they started");
    }

    suite.timing.stage("waiting for garage");
    if let Some(garage) = suite.garage.take() {
        garage.wait()?;
    }

    suite.timing.stage("tests");
    let mut test = ws.cargo();
    test.args(runner)
        .args(["--locked", "--workspace", "--no-fail-fast"])
        .args(test_args);
    let (status, summary) = run_teeing_summary(test, &mut std::io::stdout())?;
    suite.summary = summary;
    if !status.success() {
        return Err(Failure {
            message: String::new(),
            code: workspace::exit_code(status),
        });
    }
    Ok(())
}

/// One compile of the workspace serves the lints and the tests:
/// clippy-driver stands in for rustc on the workspace's crates
/// (RUSTC_WORKSPACE_WRAPPER, which is how `cargo clippy` runs it), lints
/// each crate and then compiles it, so the test build covers what `cargo
/// clippy --workspace --all-targets -- -D warnings` does (libraries,
/// binaries, tests, examples) without a second pass over the workspace and
/// its dependencies. A lint fails the build as it fails `cargo clippy`.
fn lint_while_building(ws: &mut Workspace) -> Result<(), Failure> {
    let driver = workspace::which("clippy-driver")
        .ok_or_else(|| Failure::no("clippy-driver is not on PATH: rustup component add clippy"))?;
    ws.set_env("RUSTC_WORKSPACE_WRAPPER", &driver.to_string_lossy());
    ws.set_env(
        "CLIPPY_ARGS",
        "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
    );
    // One build from scratch on a new machine gains nothing from incremental
    // compilation, which costs time and several GB of disk.
    if std::env::var_os("CARGO_INCREMENTAL").is_none() {
        ws.set_env("CARGO_INCREMENTAL", "0");
    }
    Ok(())
}

fn has_nextest(ws: &Workspace) -> bool {
    ws.cargo()
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a stage's command on the terminal; its exit code on failure.
fn run_stage(cmd: &mut Command) -> Result<(), Failure> {
    let status = workspace::status(cmd)?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure {
            message: String::new(),
            code: workspace::exit_code(status),
        })
    }
}

/// Runs the test runner with its stdout and stderr in one stream, copied
/// to `out` as it comes; returns its status and its last summary line.
fn run_teeing_summary(
    mut cmd: Command,
    out: &mut dyn Write,
) -> Result<(std::process::ExitStatus, Option<String>), Failure> {
    let (mut reader, writer) = std::io::pipe()?;
    cmd.stdout(writer.try_clone()?).stderr(writer);
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::usage(format!("running {}: {e}", workspace::describe(&cmd))))?;
    // the command holds the pipe's write ends; the read end sees EOF only
    // once they are closed
    drop(cmd);
    let mut lines = SummaryFinder::default();
    let mut buf = [0u8; 8192];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let _ = out.write_all(&buf[..n]);
        let _ = out.flush();
        lines.feed(&buf[..n]);
    }
    let status = child.wait()?;
    Ok((status, lines.finish()))
}

/// Keeps the last summary line of a test run's output: nextest's
/// `Summary [ 1.2s] …`, or `test result: …` of `cargo test`.
#[derive(Default)]
struct SummaryFinder {
    partial: Vec<u8>,
    last: Option<String>,
}

impl SummaryFinder {
    fn feed(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(at) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=at).collect();
            self.consider(&String::from_utf8_lossy(&line[..at]));
        }
    }

    fn consider(&mut self, line: &str) {
        let line = line.trim_end_matches('\r');
        if line.trim_start_matches(' ').starts_with("Summary [") || line.starts_with("test result:")
        {
            self.last = Some(line.to_string());
        }
    }

    fn finish(mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.partial);
        self.consider(&String::from_utf8_lossy(&rest));
        self.last
    }
}

/// A set-up step running in the background, its output in a log file that
/// is printed if it fails.
struct Background {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
    started: Instant,
}

impl Background {
    /// Starts `cmd` with its output in `LOGS/NAME.log` (NAME with dashes
    /// for spaces). The logs live in a directory of their own, overwritten
    /// by the next run, so a run killed by a signal leaves nothing behind
    /// elsewhere.
    fn spawn(name: &'static str, mut cmd: Command, logs: &Path) -> Result<Self, Failure> {
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
    fn wait(mut self) -> Result<u64, Failure> {
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

/// The stages' wall times.
struct Timing {
    start: Instant,
    done: Vec<(String, u64)>,
    current: Option<(String, Instant)>,
}

impl Timing {
    fn new() -> Self {
        Timing {
            start: Instant::now(),
            done: Vec::new(),
            current: None,
        }
    }

    /// Ends the running stage and starts the next one.
    fn stage(&mut self, name: &str) {
        self.end();
        println!("==> {name}");
        self.current = Some((name.to_string(), Instant::now()));
    }

    /// Ends the running stage; its name.
    fn end(&mut self) -> Option<String> {
        let (name, started) = self.current.take()?;
        self.done.push((name.clone(), started.elapsed().as_secs()));
        Some(name)
    }

    fn line(&self) -> String {
        timing_line(&self.done, self.start.elapsed().as_secs())
    }
}

/// `timing: STAGE Ns | STAGE Ns | total Ns`.
fn timing_line(stages: &[(String, u64)], total: u64) -> String {
    let mut line = String::from("timing: ");
    for (name, secs) in stages {
        line += &format!("{name} {secs}s | ");
    }
    line + &format!("total {total}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timing_line_lists_stages_then_the_total() {
        let stages = vec![
            ("setup: Debian packages".to_string(), 3),
            ("cargo fmt --check".to_string(), 1),
        ];
        assert_eq!(
            timing_line(&stages, 5),
            "timing: setup: Debian packages 3s | cargo fmt --check 1s | total 5s"
        );
        assert_eq!(timing_line(&[], 0), "timing: total 0s");
    }

    #[test]
    fn a_failed_stage_is_ended_and_named() {
        let mut timing = Timing::new();
        timing.stage("a");
        timing.stage("b");
        assert_eq!(timing.end().as_deref(), Some("b"));
        assert_eq!(timing.end(), None);
        assert_eq!(timing.done.len(), 2);
        assert!(timing.line().starts_with("timing: a 0s | b 0s | total "));
    }

    #[test]
    fn keeps_the_last_summary_line_across_chunks() {
        let mut finder = SummaryFinder::default();
        finder.feed(b"test result: ok. 3 passed\n   Compiling x\n");
        finder.feed(b"     Summary [  12.5");
        finder.feed(b"s] 40 tests run: 40 passed, 2 skipped\n    PASS foo\n");
        assert_eq!(
            finder.finish().as_deref(),
            Some("     Summary [  12.5s] 40 tests run: 40 passed, 2 skipped")
        );

        let mut cargo_test = SummaryFinder::default();
        cargo_test.feed(b"test result: ok. 1 passed\ntest result: FAILED. 2 passed; 1 failed");
        assert_eq!(
            cargo_test.finish().as_deref(),
            Some("test result: FAILED. 2 passed; 1 failed")
        );

        let mut none = SummaryFinder::default();
        none.feed(b"error: could not compile\nno Summary [ here\n");
        assert_eq!(none.finish(), None);
    }

    #[test]
    fn the_test_runners_output_is_read_to_the_end() {
        let mut cmd = Command::new("bash");
        cmd.args([
            "-c",
            "echo out; echo '     Summary [ 1s] 1 test run' >&2; echo 'test result: x'; exit 3",
        ]);
        let mut out = Vec::new();
        let (status, summary) = run_teeing_summary(cmd, &mut out).unwrap();
        assert_eq!(status.code(), Some(3));
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("out\n") && out.contains("Summary ["),
            "{out}"
        );
        assert_eq!(summary.as_deref(), Some("test result: x"));
    }

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
