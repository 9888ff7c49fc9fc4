//! What `corral disk build` takes from a stream file (`ostree-refs/*.toml`):
//! its ref and its `[disk]` table. The rest of the file is the compose's
//! business; `corral compose` checks it.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The disk image formats `corral disk build` writes.
pub const DISK_FORMATS: &[&str] = &["qcow2", "raw", "raw.xz"];

/// A stream file as a disk build reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DiskStream {
    /// The OSTree ref the stream's commits go to.
    #[serde(rename = "ref")]
    pub ostree_ref: String,
    #[serde(default)]
    pub disk: DiskTable,
}

/// The stream's `[disk]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DiskTable {
    /// Virtual size, e.g. `10G` (suffixes K, M, G, T; powers of 1024).
    #[serde(default)]
    pub size: Option<String>,
    /// Kernel arguments after `root=UUID=…` and libostree's `ostree=…`.
    #[serde(default)]
    pub kargs: Vec<String>,
    /// The remote the host's origin points at (`REMOTE:REF`).
    #[serde(default)]
    pub remote_name: Option<String>,
    /// Where the host pulls updates from (the mirror's `/ostree` URL).
    #[serde(default)]
    pub remote_url: Option<String>,
    /// The formats published for the stream: `qcow2`, `raw`, `raw.xz`.
    #[serde(default)]
    pub formats: Vec<String>,
}

impl DiskStream {
    /// Parses the text of a stream file and checks its `[disk]` table.
    pub fn parse(text: &str) -> Result<DiskStream> {
        let stream: DiskStream = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| corral_configfile::line_col(text, s.start))
                .unwrap_or((0, 0));
            anyhow::anyhow!("{line}:{column}: {}", e.message().trim())
        })?;
        stream.disk.check()?;
        Ok(stream)
    }

    /// Reads a stream file (a few KiB; 1 MiB at most).
    pub fn read(path: &Path) -> Result<DiskStream> {
        let text = corral_configfile::read_to_string(path, 1024 * 1024)?;
        DiskStream::parse(&text).with_context(|| path.display().to_string())
    }
}

impl DiskTable {
    fn check(&self) -> Result<()> {
        if let Some(size) = &self.size {
            corral_configfile::parse_size(size).map_err(|e| anyhow::anyhow!("disk.size: {e}"))?;
        }
        for f in &self.formats {
            if !DISK_FORMATS.contains(&f.as_str()) {
                bail!(
                    "disk.formats: `{f}` is not one of {}",
                    DISK_FORMATS.join(", ")
                );
            }
        }
        if let Some(name) = &self.remote_name {
            if name.is_empty() || name.contains(['/', ':', ' ']) {
                bail!("disk.remote-name `{name}` may not be empty or hold '/', ':' or spaces");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str =
        "ref = \"corral/43/x86_64/atomic-host\"\nreleasever = \"43\"\n\n[sign]\ngpg-key = \"K\"\n";

    #[test]
    fn takes_the_ref_and_the_disk_table() {
        let s = DiskStream::parse(STREAM).unwrap();
        assert_eq!(s.ostree_ref, "corral/43/x86_64/atomic-host");
        assert_eq!(s.disk, DiskTable::default());
        let text = format!(
            "{STREAM}\n[disk]\nsize = \"8G\"\nkargs = [\"console=ttyS0\"]\nremote-name = \"corral\"\nformats = [\"qcow2\", \"raw.xz\"]\n"
        );
        let s = DiskStream::parse(&text).unwrap();
        assert_eq!(s.disk.size.as_deref(), Some("8G"));
        assert_eq!(s.disk.kargs, ["console=ttyS0"]);
        assert_eq!(s.disk.formats, ["qcow2", "raw.xz"]);
        let err = DiskStream::parse(&text.replace("\"raw.xz\"]", "\"vmdk\"]")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "disk.formats: `vmdk` is not one of qcow2, raw, raw.xz"
        );
        let err = DiskStream::parse(&text.replace("8G", "eight")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("disk.size: `eight` is not a size"),
            "{err}"
        );
        let err = DiskStream::parse(&text.replace("kargs", "karg")).unwrap_err();
        assert!(
            err.to_string().starts_with("9:1: unknown field `karg`"),
            "{err}"
        );
    }

    #[test]
    fn a_stream_path_that_is_not_a_small_file_is_refused_by_name() {
        let err = DiskStream::read(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero: is a character device, not a regular file"
        );
    }
}
