//! The programs a build runs, the Debian packages that ship them, and a
//! command runner that stops when the build is interrupted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::error::DiskError;

/// (program or path, Debian package).
pub const TOOLS: &[(&str, &str)] = &[
    ("sfdisk", "fdisk"),
    ("losetup", "mount"),
    ("mount", "mount"),
    ("umount", "mount"),
    ("mkfs.ext4", "e2fsprogs"),
    ("mkfs.vfat", "dosfstools"),
    ("mcopy", "mtools"),
    ("grub-mkimage", "grub-common"),
];

/// Fails with the Debian package to install when GRUB's modules for
/// `arch` are missing.
pub fn require_grub(arch: crate::arch::Arch) -> Result<(), DiskError> {
    let efi = arch.grub_efi_dir().join("linux.mod");
    let mut wanted = vec![(efi.display().to_string(), arch.grub_efi_package())];
    if arch.bios() {
        wanted.push(("/usr/lib/grub/i386-pc/boot.img".to_string(), "grub-pc-bin"));
    }
    for (tool, package) in wanted {
        if find(&tool).is_none() {
            return Err(DiskError::MissingTool { tool, package });
        }
    }
    Ok(())
}

/// Finds `tool` on `PATH`, where the build will run it (or checks the
/// path it is).
pub fn find(tool: &str) -> Option<std::path::PathBuf> {
    if tool.starts_with('/') {
        return Path::new(tool).exists().then(|| tool.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Fails with the Debian package to install for the first tool missing.
pub fn require(extra: &[(&str, &'static str)]) -> Result<(), DiskError> {
    for (tool, package) in TOOLS.iter().chain(extra) {
        if find(tool).is_none() {
            return Err(DiskError::MissingTool {
                tool: tool.to_string(),
                package,
            });
        }
    }
    Ok(())
}

/// Set when SIGINT or SIGTERM arrives; the build stops at the next step
/// and its guards remove what it made.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Watches SIGINT and SIGTERM on a thread of its own.
    pub fn watch_signals() -> Result<Interrupt> {
        let flag = Interrupt::default();
        let set = flag.0.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .context("starting the signal watcher")?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            rt.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    let _ = ready_tx.send(false);
                    return;
                };
                let _ = ready_tx.send(true);
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                set.store(true, Ordering::SeqCst);
            })
        });
        if !ready_rx.recv().unwrap_or(false) {
            bail!("could not watch SIGINT and SIGTERM");
        }
        Ok(flag)
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Fails if the build was interrupted.
    pub fn check(&self) -> Result<()> {
        if self.is_set() {
            return Err(DiskError::Interrupted.into());
        }
        Ok(())
    }

    /// Runs `cmd` to completion (killing it if the build is interrupted);
    /// fails with its stderr unless it succeeds. Returns stdout.
    pub fn run(&self, cmd: &mut Command, what: &str) -> Result<Vec<u8>> {
        self.check()?;
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("{what}: running {program}"))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let out = std::thread::spawn(move || read_all(stdout));
        let err = std::thread::spawn(move || read_all(stderr));
        let status = loop {
            if let Some(s) = child.try_wait().context("waiting for a child")? {
                break s;
            }
            if self.is_set() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DiskError::Interrupted.into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        if !status.success() {
            bail!(
                "{what}: {program} failed ({status}): {}",
                String::from_utf8_lossy(&stderr).trim()
            );
        }
        Ok(stdout)
    }
}

fn read_all(r: Option<impl std::io::Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut r) = r {
        let _ = r.read_to_end(&mut buf);
    }
    buf
}

/// A progress line on stderr.
pub fn step(msg: &str) {
    eprintln!("corral disk: {msg}");
}
