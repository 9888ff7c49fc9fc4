//! A GRUB menu written from libostree's Boot Loader Specification entries.
//!
//! Debian's GRUB has no `blscfg` module, so GRUB cannot read
//! `/boot/loader/entries/*.conf` itself. `corral disk build` writes
//! `/boot/grub/grub.cfg` with one `menuentry` per BLS entry, the default
//! deployment first, and marks the file with [`MARKER`]. Whenever
//! `corral host` changes the deployments it rewrites the file if (and only
//! if) it carries the marker, so a reboot boots the new default. A GRUB
//! configuration someone else wrote is never touched.
//!
//! The menu also counts boots (greenboot's scheme, done with GRUB's
//! environment block since Debian's GRUB has no `increment` module): when
//! a new deployment becomes the default corral [`arm`]s `boot_counter` in
//! `/boot/grub/grubenv`; every boot counts it down and saves it; when it
//! has run out GRUB boots entry 1, the previous deployment, and leaves
//! `boot_counter=-1`. A boot that completes [`disarm`]s it
//! (`corral host boot-complete`, crate::boot_count), making a fallback
//! permanent first. Nothing has to run on the host for a boot that never
//! comes up to be left behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::grubenv::{self, GrubEnv};

/// The first line of a corral-written `grub.cfg`.
pub const MARKER: &str =
    "# corral-grub-config: generated from the BLS entries in /boot/loader/entries";

/// The most boots the menu can count down (`max-failed-boots` above it
/// is clamped): GRUB has no arithmetic, so the menu spells out each step.
pub const MAX_BOOT_TRIES: u32 = 16;
/// The variable GRUB counts down.
pub const COUNTER: &str = "boot_counter";
/// What the counter was armed with, for the message after a fallback
/// (GRUB does not load it).
pub const TRIES: &str = "corral_boot_tries";

/// One BLS entry, the keys GRUB needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlsEntry {
    /// The file name without `.conf`; the menu entry's id.
    pub id: String,
    pub title: String,
    /// libostree numbers entries so the default has the highest version.
    pub version: u64,
    pub linux: String,
    pub initrd: Vec<String>,
    pub options: String,
}

impl BlsEntry {
    /// Parses the text of `ID.conf`; `None` if it names no kernel.
    pub fn parse(id: &str, text: &str) -> Option<BlsEntry> {
        let mut e = BlsEntry {
            id: id.to_string(),
            title: id.to_string(),
            version: 0,
            linux: String::new(),
            initrd: Vec::new(),
            options: String::new(),
        };
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let (key, value) = match line.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim()),
                None => continue,
            };
            match key {
                "title" => e.title = value.to_string(),
                "version" => e.version = value.parse().unwrap_or(0),
                "linux" => e.linux = value.to_string(),
                "initrd" => e.initrd.push(value.to_string()),
                "options" => e.options = value.to_string(),
                _ => {}
            }
        }
        (!e.linux.is_empty()).then_some(e)
    }
}

/// The entries in `DIR/loader/entries`, default first.
pub fn read_entries(boot_dir: &Path) -> Result<Vec<BlsEntry>> {
    let dir = boot_dir.join("loader/entries");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".conf") else {
            continue;
        };
        let text = std::fs::read_to_string(e.path())
            .with_context(|| format!("reading {}", e.path().display()))?;
        if let Some(entry) = BlsEntry::parse(id, &text) {
            out.push(entry);
        }
    }
    out.sort_by(|a, b| b.version.cmp(&a.version).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// A single-quoted GRUB word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// One word of a GRUB command: as is when it holds only characters GRUB's
/// script reads literally, else single-quoted (so `$`, `;`, quotes or
/// braces in a kernel argument reach the kernel unchanged).
fn word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./,:=+@%-".contains(c))
    {
        s.to_string()
    } else {
        quote(s)
    }
}

fn words(s: &str) -> String {
    s.split_whitespace().map(word).collect::<Vec<_>>().join(" ")
}

/// The text of `grub.cfg` for `entries` (default first).
pub fn render(entries: &[BlsEntry]) -> String {
    let mut cfg = String::new();
    cfg.push_str(MARKER);
    cfg.push('\n');
    cfg.push_str(
        "# corral host rewrites this file whenever the deployments change; edits are lost.\n\
         set default=0\n\
         set timeout=3\n\
         serial --unit=0 --speed=115200\n\
         terminal_input console serial\n\
         terminal_output console serial\n\
         insmod part_gpt\n\
         insmod ext2\n",
    );
    if entries.len() >= 2 {
        cfg.push_str(&counting());
    }
    for e in entries {
        cfg.push_str(&format!(
            "\nmenuentry {} --id {} {{\n",
            quote(&e.title),
            quote(&e.id)
        ));
        cfg.push_str(&format!(
            "\tlinux {} {}\n",
            words(&e.linux),
            words(&e.options)
        ));
        if !e.initrd.is_empty() {
            cfg.push_str(&format!("\tinitrd {}\n", words(&e.initrd.join(" "))));
        }
        cfg.push_str("}\n");
    }
    cfg
}

/// The boot-counting part of the menu: entry 1 is the fallback when entry
/// 0 cannot even be loaded, and after `boot_counter` boots that did not
/// complete.
fn counting() -> String {
    let mut s = String::from(
        "\n# Boot counting (docs/host.md): corral sets boot_counter when a new\n\
         # deployment becomes the default and unsets it when a boot of it\n\
         # completes; at 0 the previous deployment (entry 1) boots instead.\n\
         set fallback=1\n\
         insmod loadenv\n\
         if [ -f \"${prefix}/grubenv\" ]; then\n\
         \tload_env -f \"${prefix}/grubenv\" boot_counter\n\
         fi\n\
         if [ -n \"${boot_counter}\" ]; then\n\
         \tif [ \"${boot_counter}\" = \"0\" -o \"${boot_counter}\" = \"-1\" ]; then\n\
         \t\tset default=1\n\
         \t\tset boot_counter=-1\n",
    );
    for n in 1..=MAX_BOOT_TRIES {
        s.push_str(&format!(
            "\telif [ \"${{boot_counter}}\" = \"{n}\" ]; then\n\t\tset boot_counter={}\n",
            n - 1
        ));
    }
    s.push_str(
        "\telse\n\
         \t\t# not a count this menu knows: fall back rather than boot forever\n\
         \t\tset default=1\n\
         \t\tset boot_counter=-1\n\
         \tfi\n\
         \tsave_env -f \"${prefix}/grubenv\" boot_counter\n\
         fi\n",
    );
    s
}

/// `DIR/grub/grubenv`.
pub fn env_path(boot_dir: &Path) -> PathBuf {
    boot_dir.join("grub/grubenv")
}

/// Where the boot counter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootCounter {
    /// Not counting: the default deployment has completed a boot.
    Off,
    /// `left` more boots of the default before GRUB falls back; `tries`
    /// is what it was armed with.
    Counting { left: u32, tries: Option<u32> },
    /// The count ran out and GRUB booted the previous deployment.
    FellBack { tries: Option<u32> },
}

/// Reads the counter from `DIR/grub/grubenv`.
pub fn counter(boot_dir: &Path) -> Result<BootCounter> {
    let env = grubenv::read(&env_path(boot_dir))?;
    let tries = env.get(TRIES).and_then(|t| t.parse().ok());
    Ok(match env.get(COUNTER) {
        None | Some("") => BootCounter::Off,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 => BootCounter::Counting {
                left: n.min(u32::MAX as i64) as u32,
                tries,
            },
            // 0 means the last try is under way: GRUB saves 0 and boots
            // entry 0 once more only when it counted down from 1
            Ok(0) => BootCounter::Counting { left: 0, tries },
            _ => BootCounter::FellBack { tries },
        },
    })
}

/// Starts counting the boots of a new default deployment: `tries` boots
/// (at most [`MAX_BOOT_TRIES`]) that do not complete and GRUB boots the
/// previous one. Only with a menu corral wrote; returns whether it did.
pub fn arm(boot_dir: &Path, tries: u32) -> Result<bool> {
    if !is_ours(boot_dir) {
        return Ok(false);
    }
    let tries = tries.clamp(1, MAX_BOOT_TRIES);
    let path = env_path(boot_dir);
    let mut env = grubenv::read(&path)?;
    env.set(COUNTER, &tries.to_string());
    env.set(TRIES, &tries.to_string());
    grubenv::write(&path, &env)?;
    tracing::info!(path = %path.display(), tries, "armed GRUB's boot counter");
    Ok(true)
}

/// Stops counting: the default completed a boot, or an administrator
/// chose the default. Returns whether a counter was set.
pub fn disarm(boot_dir: &Path) -> Result<bool> {
    let path = env_path(boot_dir);
    let mut env = grubenv::read(&path)?;
    if env.get(COUNTER).is_none() && env.get(TRIES).is_none() {
        return Ok(false);
    }
    env.unset(COUNTER);
    env.unset(TRIES);
    grubenv::write(&path, &env)?;
    tracing::info!(path = %path.display(), "stopped GRUB's boot counter");
    Ok(true)
}

/// `DIR/grub/grub.cfg`.
pub fn config_path(boot_dir: &Path) -> PathBuf {
    boot_dir.join("grub/grub.cfg")
}

/// Writes `grub.cfg` from the BLS entries: a temp file beside it, synced,
/// then renamed over it, so GRUB sees the old or the new menu, never half.
pub fn write(boot_dir: &Path) -> Result<PathBuf> {
    let entries = read_entries(boot_dir)?;
    if entries.is_empty() {
        anyhow::bail!(
            "{} holds no boot entries; there is nothing to boot",
            boot_dir.join("loader/entries").display()
        );
    }
    let path = config_path(boot_dir);
    let dir = path.parent().context("grub.cfg has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(".grub.cfg.corral-tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(render(&entries).as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    // GRUB's save_env writes into an existing block and cannot create one
    let env = env_path(boot_dir);
    if !env.exists() {
        grubenv::write(&env, &GrubEnv::default())?;
    }
    Ok(path)
}

/// Whether `grub.cfg` under `boot_dir` is one corral wrote.
pub fn is_ours(boot_dir: &Path) -> bool {
    std::fs::read_to_string(config_path(boot_dir))
        .map(|t| t.lines().next() == Some(MARKER))
        .unwrap_or(false)
}

/// Rewrites a corral-written `grub.cfg` after the deployments changed;
/// returns whether it did.
pub fn refresh(boot_dir: &Path) -> Result<bool> {
    if !is_ours(boot_dir) {
        return Ok(false);
    }
    let path = write(boot_dir)?;
    tracing::info!(path = %path.display(), "rewrote the GRUB menu from the boot entries");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = "title corral sample Atomic Host 43 (ostree:corral:0)\n\
        version 2\n\
        options root=UUID=1234 console=ttyS0 ostree=/ostree/boot.1/corral/abc/0\n\
        linux /ostree/corral-abc/vmlinuz-6.1.0\n\
        initrd /ostree/corral-abc/initramfs-6.1.0.img\n";

    #[test]
    fn entries_become_menu_entries_default_first() {
        let dir = tempfile::tempdir().unwrap();
        let entries = dir.path().join("loader/entries");
        std::fs::create_dir_all(&entries).unwrap();
        std::fs::write(entries.join("ostree-2.conf"), ENTRY).unwrap();
        std::fs::write(
            entries.join("ostree-1.conf"),
            ENTRY
                .replace("version 2", "version 1")
                .replace(":0)", ":1)")
                .replace("abc", "def"),
        )
        .unwrap();
        let path = write(dir.path()).unwrap();
        let cfg = std::fs::read_to_string(path).unwrap();
        assert!(is_ours(dir.path()));
        let first = cfg.find("(ostree:corral:0)").unwrap();
        let second = cfg.find("(ostree:corral:1)").unwrap();
        assert!(first < second, "{cfg}");
        assert!(cfg.contains(
            "\tlinux /ostree/corral-abc/vmlinuz-6.1.0 root=UUID=1234 console=ttyS0 ostree=/ostree/boot.1/corral/abc/0\n"
        ));
        assert!(cfg.contains("\tinitrd /ostree/corral-def/initramfs-6.1.0.img\n"));
    }

    #[test]
    fn a_foreign_config_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("grub")).unwrap();
        std::fs::write(config_path(dir.path()), "set default=1\n").unwrap();
        assert!(!refresh(dir.path()).unwrap());
        assert_eq!(
            std::fs::read_to_string(config_path(dir.path())).unwrap(),
            "set default=1\n"
        );
    }

    #[test]
    fn kernel_arguments_grub_would_expand_are_quoted() {
        let e = BlsEntry::parse(
            "x",
            "linux /k\noptions root=UUID=1 quiet a=$x b=c;reboot systemd.setenv=Z=\"1 2\"\n",
        )
        .unwrap();
        let cfg = render(&[e]);
        assert!(
            cfg.contains(
                "\tlinux /k root=UUID=1 quiet 'a=$x' 'b=c;reboot' 'systemd.setenv=Z=\"1' '2\"'\n"
            ),
            "{cfg}"
        );
    }

    fn two_entries(dir: &Path) {
        let entries = dir.join("loader/entries");
        std::fs::create_dir_all(&entries).unwrap();
        std::fs::write(entries.join("ostree-2.conf"), ENTRY).unwrap();
        std::fs::write(
            entries.join("ostree-1.conf"),
            ENTRY
                .replace("version 2", "version 1")
                .replace("abc", "def"),
        )
        .unwrap();
    }

    #[test]
    fn the_menu_counts_boots_and_grub_script_check_accepts_it() {
        let dir = tempfile::tempdir().unwrap();
        two_entries(dir.path());
        let path = write(dir.path()).unwrap();
        let cfg = std::fs::read_to_string(&path).unwrap();
        assert!(cfg.contains("set fallback=1\n"), "{cfg}");
        assert!(cfg.contains("save_env -f \"${prefix}/grubenv\" boot_counter"));
        // every count the menu can arm steps down by one
        for n in 1..=MAX_BOOT_TRIES {
            assert!(
                cfg.contains(&format!(
                    "= \"{n}\" ]; then\n\t\tset boot_counter={}\n",
                    n - 1
                )),
                "{n}"
            );
        }
        let out = std::process::Command::new("grub-script-check")
            .arg(&path)
            .output()
            .expect("grub-script-check (grub-common) is installed");
        assert!(
            out.status.success(),
            "grub-script-check: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // the block GRUB's save_env needs exists from the start
        assert_eq!(
            std::fs::metadata(env_path(dir.path())).unwrap().len(),
            grubenv::SIZE as u64
        );
        assert_eq!(counter(dir.path()).unwrap(), BootCounter::Off);
    }

    #[test]
    fn one_entry_has_nothing_to_fall_back_to() {
        let cfg = render(&[BlsEntry::parse("x", "linux /k\n").unwrap()]);
        assert!(!cfg.contains("fallback"), "{cfg}");
        assert!(!cfg.contains("boot_counter"), "{cfg}");
    }

    #[test]
    fn arming_counting_and_disarming() {
        let dir = tempfile::tempdir().unwrap();
        // no corral menu: nothing to count with
        assert!(!arm(dir.path(), 3).unwrap());
        two_entries(dir.path());
        write(dir.path()).unwrap();
        assert!(arm(dir.path(), 2).unwrap());
        assert_eq!(
            counter(dir.path()).unwrap(),
            BootCounter::Counting {
                left: 2,
                tries: Some(2)
            }
        );
        // what GRUB's save_env leaves after the count ran out
        let mut env = grubenv::read(&env_path(dir.path())).unwrap();
        env.set(COUNTER, "-1");
        grubenv::write(&env_path(dir.path()), &env).unwrap();
        assert_eq!(
            counter(dir.path()).unwrap(),
            BootCounter::FellBack { tries: Some(2) }
        );
        assert!(disarm(dir.path()).unwrap());
        assert!(!disarm(dir.path()).unwrap());
        assert_eq!(counter(dir.path()).unwrap(), BootCounter::Off);
        // a count above what the menu spells out is clamped
        arm(dir.path(), 1000).unwrap();
        assert_eq!(
            counter(dir.path()).unwrap(),
            BootCounter::Counting {
                left: MAX_BOOT_TRIES,
                tries: Some(MAX_BOOT_TRIES)
            }
        );
    }

    #[test]
    fn titles_are_quoted() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        let e = BlsEntry::parse("x", "title a b\nlinux /k\n").unwrap();
        assert_eq!(e.title, "a b");
        assert!(BlsEntry::parse("y", "title no kernel\n").is_none());
    }
}
