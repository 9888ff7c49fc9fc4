//! SELinux labels: the engine's `label=…` options, the levels of running
//! containers, enforcement, and the host side of `:Z`/`:z` relabelling.

use crate::mcs::McsLevel;
use std::path::Path;

/// The process type test containers run as unless told otherwise.
pub const DEFAULT_TYPE: &str = "container_t";
/// The file type a relabelled volume gets.
pub const FILE_TYPE: &str = "container_file_t";
const XATTR: &str = "security.selinux";

/// `HostConfig.SecurityOpt` for a run.
///
/// ```
/// let level = "s0:c1,c2".parse().unwrap();
/// assert_eq!(
///     corral_testrun::label::security_opts("container_t", level),
///     ["label=type:container_t", "label=level:s0:c1,c2"]
/// );
/// ```
pub fn security_opts(process_type: &str, level: McsLevel) -> Vec<String> {
    vec![
        format!("label=type:{process_type}"),
        format!("label=level:{level}"),
    ]
}

/// `HostConfig.SecurityOpt` as an engine reports it, one option an entry.
/// dockerd keeps the entries as given; podman joins the label options with
/// commas, which a level's own comma makes ambiguous, so entries are split
/// only where a new `label=` option starts.
///
/// ```
/// use corral_testrun::label::split_security_opts;
/// let podman = vec!["label=type:container_t,label=level:s0:c0,c1".to_string()];
/// assert_eq!(
///     split_security_opts(&podman),
///     ["label=type:container_t", "label=level:s0:c0,c1"]
/// );
/// let dockerd = vec!["label=level:s0:c0,c1".to_string(), "no-new-privileges".to_string()];
/// assert_eq!(split_security_opts(&dockerd), dockerd);
/// ```
pub fn split_security_opts(opts: &[String]) -> Vec<String> {
    opts.iter()
        .flat_map(|o| {
            o.split(",label=")
                .enumerate()
                .map(|(i, part)| {
                    if i == 0 {
                        part.to_string()
                    } else {
                        format!("label={part}")
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The process label a run's container has where SELinux is enforcing.
pub fn process_label(process_type: &str, level: McsLevel) -> String {
    format!("system_u:system_r:{process_type}:{level}")
}

/// The file label of a volume: private to `level`, or shared (`s0`) when None.
pub fn file_label(level: Option<McsLevel>) -> String {
    match level {
        Some(l) => format!("system_u:object_r:{FILE_TYPE}:{l}"),
        None => format!("system_u:object_r:{FILE_TYPE}:s0"),
    }
}

/// The MCS levels a container holds, from its `SecurityOpt`, `ProcessLabel`
/// and `MountLabel`; anything that is not a two-category level is ignored.
///
/// ```
/// use corral_testrun::label::levels_in_use;
/// let opts = vec!["label=level:s0:c4,c5".to_string()];
/// let got = levels_in_use(&opts, &["system_u:system_r:container_t:s0:c9,c8", ""]);
/// assert_eq!(got.iter().map(|l| l.to_string()).collect::<Vec<_>>(), ["s0:c4,c5", "s0:c8,c9"]);
/// let podman = vec!["label=type:container_t,label=level:s0:c2,c3".to_string()];
/// assert_eq!(levels_in_use(&podman, &[])[0].to_string(), "s0:c2,c3");
/// ```
pub fn levels_in_use(security_opt: &[String], labels: &[&str]) -> Vec<McsLevel> {
    let opts = split_security_opts(security_opt);
    let from_opts = opts.iter().filter_map(|o| {
        o.strip_prefix("label=level:")
            .or(o.strip_prefix("label:level:"))
    });
    // a full label is user:role:type:level, and the level holds a colon
    let from_labels = labels.iter().filter_map(|l| l.splitn(4, ':').nth(3));
    let mut out: Vec<McsLevel> = from_opts
        .chain(from_labels)
        .filter_map(|l| l.parse().ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether the host enforces SELinux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    Enforcing,
    Permissive,
    /// No `/sys/fs/selinux`: SELinux is built in but not active, or absent.
    Disabled,
}

impl Enforcement {
    /// Reads `/sys/fs/selinux/enforce`.
    pub fn detect() -> Self {
        Self::from_file(Path::new("/sys/fs/selinux/enforce"))
    }

    fn from_file(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Ok(s) if s.trim() == "1" => Enforcement::Enforcing,
            Ok(_) => Enforcement::Permissive,
            Err(_) => Enforcement::Disabled,
        }
    }

    /// What a report says about the labels.
    pub fn describe(&self) -> &'static str {
        match self {
            Enforcement::Enforcing => "SELinux is enforcing: labels were set and enforced",
            Enforcement::Permissive => {
                "SELinux is permissive: labels were set but not enforced (denials are only logged)"
            }
            Enforcement::Disabled => {
                "SELinux is not active on this host: labels were set but not enforced"
            }
        }
    }
}

/// Relabels `dir` and everything under it with [`file_label`], as the
/// engine does for `:Z` (private) and `:z` (shared); returns the label.
/// As root this works whether or not SELinux is active.
pub fn relabel(dir: &Path, level: Option<McsLevel>) -> std::io::Result<String> {
    let label = file_label(level);
    relabel_tree(dir, &label)?;
    Ok(label)
}

fn relabel_tree(path: &Path, label: &str) -> std::io::Result<()> {
    rustix::fs::lsetxattr(
        path,
        XATTR,
        label.as_bytes(),
        rustix::fs::XattrFlags::empty(),
    )?;
    if path.symlink_metadata()?.is_dir() {
        for entry in std::fs::read_dir(path)? {
            relabel_tree(&entry?.path(), label)?;
        }
    }
    Ok(())
}

/// The `security.selinux` label of `path`, if it has one.
pub fn file_label_of(path: &Path) -> std::io::Result<Option<String>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, XATTR, &mut buf[..]) {
        Ok(n) => Ok(Some(
            String::from_utf8_lossy(&buf[..n])
                .trim_end_matches('\0')
                .to_string(),
        )),
        Err(rustix::io::Errno::NODATA) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforcement_from_the_enforce_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("enforce");
        assert_eq!(Enforcement::from_file(&f), Enforcement::Disabled);
        std::fs::write(&f, "0").unwrap();
        assert_eq!(Enforcement::from_file(&f), Enforcement::Permissive);
        std::fs::write(&f, "1\n").unwrap();
        assert_eq!(Enforcement::from_file(&f), Enforcement::Enforcing);
    }

    #[test]
    fn relabel_sets_the_xattr_on_the_tree() {
        // tmpfs may not take security.* xattrs without an LSM; /var/tmp is a disk
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f"), "x").unwrap();
        let level = "s0:c3,c9".parse().unwrap();
        let label = relabel(dir.path(), Some(level)).unwrap();
        assert_eq!(label, "system_u:object_r:container_file_t:s0:c3,c9");
        for p in [dir.path().to_path_buf(), dir.path().join("sub/f")] {
            assert_eq!(file_label_of(&p).unwrap().as_deref(), Some(label.as_str()));
        }
        relabel(dir.path(), None).unwrap();
        assert_eq!(
            file_label_of(dir.path()).unwrap().unwrap(),
            "system_u:object_r:container_file_t:s0"
        );
    }
}
