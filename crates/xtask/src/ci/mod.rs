//! The whole test suite (`scripts/test.sh` runs `cargo xtask ci`):
//! formatting, lints, unit tests and the end-to-end tests against the real
//! tools, in stages. The set-up that installs Debian packages and builds
//! tools and VM images stays in bash (scripts/setup.sh, scripts/vm-selinux.sh,
//! tests/fixtures/boot/build-tree.sh) and runs as subprocesses.
//!
//! It ends with a one-line timing table of its stages (also when a stage
//! fails, which it names), so a slow or broken set-up on a new machine
//! shows where; the test runner's own summary line stays the last line.
//!
//! - [`background`]: the set-up steps that run beside the build.
//! - [`timing`]: the stages' wall times and the timing line.
//! - [`summary`]: the test runner's output and its summary line.

mod background;
mod summary;
mod timing;

use std::process::{Command, Stdio};

use crate::workspace::{self, Workspace};
use crate::{generate, Failure};
use background::Background;
use summary::run_teeing_summary;
use timing::Timing;

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
    // workspace compile. Then ostree-ext's CLI, the OS image tests' peer
    // (it needs the Debian packages installed above).
    let mut vm = ws.command("bash");
    vm.args([
        "-c",
        "bash scripts/vm-selinux.sh build && bash tests/fixtures/boot/build-tree.sh \
         && source scripts/setup.sh && corral_install_ostree_ext_cli",
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
