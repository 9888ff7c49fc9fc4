//! GRUB's environment block (`/boot/grub/grubenv`), the file GRUB's
//! `load_env` reads and `save_env` writes at boot.
//!
//! GRUB writes the block in place, through the sectors the file already
//! occupies, so it must exist before GRUB runs and be exactly
//! [`SIZE`] bytes: the header line, `name=value` lines, and `#` up to the
//! end. A file of another size or without the header is refused by GRUB
//! (and here). Linux rewrites it with a temp file and a rename; GRUB finds
//! the new file's sectors at the next boot.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The size of an environment block.
pub const SIZE: usize = 1024;
/// Its first line.
pub const HEADER: &str = "# GRUB Environment Block\n";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrubEnvError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a GRUB environment block: {why}")]
    Invalid { path: PathBuf, why: String },
    #[error(
        "{path}: the variables take {need} bytes, more than the {SIZE} of a GRUB environment block"
    )]
    TooLarge { path: PathBuf, need: usize },
    #[error("{path}: variable name {name:?} is not one GRUB can read back")]
    BadName { path: PathBuf, name: String },
}

/// The variables of one environment block, in name order (GRUB does not
/// care about the order; a stable one makes the file reproducible).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrubEnv {
    pub vars: BTreeMap<String, String>,
}

/// GRUB escapes `\` and newlines in values with a backslash.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\\n"),
            c => out.push(c),
        }
    }
    out
}

impl GrubEnv {
    /// Parses a block's bytes; `path` names it in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<GrubEnv, GrubEnvError> {
        let invalid = |why: String| GrubEnvError::Invalid {
            path: path.to_path_buf(),
            why,
        };
        if bytes.len() != SIZE {
            return Err(invalid(format!("{} bytes, not {SIZE}", bytes.len())));
        }
        if !bytes.starts_with(HEADER.as_bytes()) {
            return Err(invalid("no `# GRUB Environment Block` header".into()));
        }
        let text = String::from_utf8_lossy(&bytes[HEADER.len()..]);
        let mut env = GrubEnv::default();
        // lines, joining those whose newline was escaped
        let mut lines: Vec<String> = Vec::new();
        let mut cur = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(n) => cur.push(n),
                    None => break,
                },
                '\n' => lines.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        for line in lines {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                env.vars.insert(k.to_string(), v.to_string());
            }
        }
        Ok(env)
    }

    /// The block's bytes: exactly [`SIZE`], padded with `#`.
    pub fn render(&self, path: &Path) -> Result<Vec<u8>, GrubEnvError> {
        let mut out = HEADER.as_bytes().to_vec();
        for (k, v) in &self.vars {
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(GrubEnvError::BadName {
                    path: path.to_path_buf(),
                    name: k.clone(),
                });
            }
            out.extend_from_slice(format!("{k}={}\n", escape(v)).as_bytes());
        }
        if out.len() > SIZE {
            return Err(GrubEnvError::TooLarge {
                path: path.to_path_buf(),
                need: out.len(),
            });
        }
        out.resize(SIZE, b'#');
        Ok(out)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_string(), value.to_string());
    }

    pub fn unset(&mut self, name: &str) {
        self.vars.remove(name);
    }
}

/// Reads the block at `path`; an empty environment when there is none.
pub fn read(path: &Path) -> Result<GrubEnv, GrubEnvError> {
    match std::fs::read(path) {
        Ok(b) => GrubEnv::parse(path, &b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(GrubEnv::default()),
        Err(source) => Err(GrubEnvError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `env` to `path`: a synced temp file beside it renamed over it,
/// then the directory synced, so GRUB reads the old block or the new one.
pub fn write(path: &Path, env: &GrubEnv) -> Result<(), GrubEnvError> {
    let bytes = env.render(path)?;
    let werr = |source| GrubEnvError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(".grubenv.corral-tmp");
    let mut f = std::fs::File::create(&tmp).map_err(werr)?;
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .map_err(werr)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(werr)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn editenv(file: &Path, args: &[&str]) -> String {
        let out = Command::new("grub-editenv")
            .arg(file)
            .args(args)
            .output()
            .expect("grub-editenv (grub-common) is installed");
        assert!(
            out.status.success(),
            "grub-editenv {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_block_grub_editenv_wrote_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("grubenv");
        editenv(&f, &["create"]);
        assert_eq!(read(&f).unwrap(), GrubEnv::default());
        editenv(&f, &["set", "boot_counter=2", "saved_entry=ostree-1"]);
        let env = read(&f).unwrap();
        assert_eq!(env.get("boot_counter"), Some("2"));
        assert_eq!(env.get("saved_entry"), Some("ostree-1"));
        assert_eq!(env.vars.len(), 2);
    }

    #[test]
    fn grub_editenv_reads_what_we_write_and_other_variables_stay() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("grubenv");
        editenv(&f, &["create"]);
        editenv(&f, &["set", "saved_entry=x"]);
        let mut env = read(&f).unwrap();
        env.set("boot_counter", "3");
        env.set("note", "a\\b");
        write(&f, &env).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().len(), SIZE as u64);
        let listed = editenv(&f, &["list"]);
        let mut lines: Vec<&str> = listed.lines().collect();
        lines.sort();
        assert_eq!(lines, ["boot_counter=3", "note=a\\b", "saved_entry=x"]);
        env.unset("boot_counter");
        write(&f, &env).unwrap();
        assert!(!editenv(&f, &["list"]).contains("boot_counter"));
        assert_eq!(read(&f).unwrap(), env);
        assert!(!dir.path().join(".grubenv.corral-tmp").exists());
    }

    #[test]
    fn a_block_of_the_wrong_size_or_header_is_refused() {
        let p = Path::new("/boot/grub/grubenv");
        let err = GrubEnv::parse(p, b"# GRUB Environment Block\n").unwrap_err();
        assert!(err.to_string().contains("/boot/grub/grubenv"), "{err}");
        assert!(err.to_string().contains("not 1024"), "{err}");
        let err = GrubEnv::parse(p, &[b'#'; SIZE]).unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
        let mut env = GrubEnv::default();
        env.set("x", &"y".repeat(SIZE));
        assert!(matches!(env.render(p), Err(GrubEnvError::TooLarge { .. })));
        let mut env = GrubEnv::default();
        env.set("a b", "1");
        assert!(matches!(env.render(p), Err(GrubEnvError::BadName { .. })));
    }
}
