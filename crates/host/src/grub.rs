//! A GRUB menu written from libostree's Boot Loader Specification entries.
//!
//! Debian's GRUB has no `blscfg` module, so GRUB cannot read
//! `/boot/loader/entries/*.conf` itself. `corral disk build` writes
//! `/boot/grub/grub.cfg` with one `menuentry` per BLS entry, the default
//! deployment first, and marks the file with [`MARKER`]. Whenever
//! `corral host` changes the deployments it rewrites the file if (and only
//! if) it carries the marker, so a reboot boots the new default. A GRUB
//! configuration someone else wrote is never touched.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The first line of a corral-written `grub.cfg`.
pub const MARKER: &str =
    "# corral-grub-config: generated from the BLS entries in /boot/loader/entries";

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

    #[test]
    fn titles_are_quoted() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        let e = BlsEntry::parse("x", "title a b\nlinux /k\n").unwrap();
        assert_eq!(e.title, "a b");
        assert!(BlsEntry::parse("y", "title no kernel\n").is_none());
    }
}
