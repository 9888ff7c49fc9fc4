//! How qemu runs a guest here: KVM when it works, else TCG.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::scratch;

/// How qemu runs a guest: with KVM when it works here, else in software
/// (TCG), which CI machines without KVM fall back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    /// Software emulation, and why not KVM.
    Tcg(String),
}

impl Accel {
    /// KVM if this process can open `/dev/kvm` read-write and qemu with
    /// `-accel kvm -cpu host` gets somewhere within 30 s: with `kernel`,
    /// the kernel prints its banner on the serial console; without, the
    /// firmware (SeaBIOS) prints. Opening `/dev/kvm` is not enough: on a
    /// host whose KVM is a paravirtual one (`kvm_pvm`) qemu starts but an
    /// ordinary distribution kernel hangs before its first line, and some
    /// nested hosts refuse `-cpu host`'s MSRs. `CORRAL_QEMU_ACCEL=tcg`
    /// asks for software emulation.
    pub fn probe(kernel: Option<&Path>) -> Accel {
        if std::env::var("CORRAL_QEMU_ACCEL").as_deref() == Ok("tcg") {
            return Accel::Tcg("CORRAL_QEMU_ACCEL=tcg".into());
        }
        if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
        {
            return Accel::Tcg(format!("/dev/kvm: {e}"));
        }
        let dir = scratch();
        let serial = dir.path().join("serial.log");
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-accel", "kvm", "-cpu", "host", "-m", "512", "-nographic"])
            .args(["-monitor", "none", "-no-reboot", "-serial"])
            .arg(format!("file:{}", serial.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let want = match kernel {
            Some(k) => {
                cmd.arg("-kernel")
                    .arg(k)
                    .args(["-append", "console=ttyS0 panic=-1"]);
                "Linux version"
            }
            None => "SeaBIOS",
        };
        let mut child = cmd.spawn().expect("starting qemu-system-x86_64");
        let started = Instant::now();
        let verdict = loop {
            let text =
                String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
            if text.contains(want) {
                break Accel::Kvm;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                let first = err.lines().next().unwrap_or("").to_string();
                break Accel::Tcg(format!(
                    "qemu -accel kvm -cpu host exited ({status}): {first}"
                ));
            }
            if started.elapsed() > Duration::from_secs(30) {
                break Accel::Tcg(format!(
                    "/dev/kvm opens, but no {want:?} on the console within 30 s under KVM"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let _ = child.kill();
        let _ = child.wait();
        verdict
    }

    /// qemu's arguments: `-accel kvm -cpu host`, or `-accel tcg`.
    pub fn qemu_args(&self) -> &'static [&'static str] {
        match self {
            Accel::Kvm => &["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg(_) => &["-accel", "tcg"],
        }
    }

    /// A guest's vCPUs (`-smp`): two with KVM; one under TCG, where each
    /// vCPU is a host thread that emulates it, the suite runs two tests at
    /// once on two cores, and a test may boot two guests side by side.
    pub fn smp(&self) -> &'static str {
        match self {
            Accel::Kvm => "2",
            Accel::Tcg(_) => "1",
        }
    }

    /// `kvm`, or `tcg (why)`, for the test's output.
    pub fn describe(&self) -> String {
        match self {
            Accel::Kvm => "kvm".into(),
            Accel::Tcg(why) => format!("tcg ({why})"),
        }
    }
}
