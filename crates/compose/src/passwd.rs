//! System users and groups move from `/etc` to `/usr/lib`, as rpm-ostree
//! does: `/etc/passwd` keeps `root`, `/etc/group` keeps `root` and the
//! stream's `etc-group-members`; the rest go to `/usr/lib/passwd` and
//! `/usr/lib/group`, which nss-altfiles reads.
//!
//! `/etc` is merged three-way on a host: a host whose `/etc/passwd` was
//! edited keeps its own, and users a package adds in an update would
//! never reach it. In `/usr/lib` they come with every deployment.
//!
//! Only a tree with nss-altfiles is split: without it the host could not
//! resolve the moved users (dbus, sshd and the like would fail to start),
//! so such a tree keeps its users in `/etc`, with a warning.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// What the split moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SplitReport {
    /// Users now in `/usr/lib/passwd`.
    pub usr_lib_users: Vec<String>,
    /// Groups now in `/usr/lib/group`.
    pub usr_lib_groups: Vec<String>,
    /// Whether the tree has nss-altfiles (`libnss_altfiles.so.2`); without
    /// it nothing is moved.
    pub altfiles: bool,
}

/// Splits `root`'s `/etc/passwd` and `/etc/group`; `etc_groups` stay in
/// `/etc/group` with `root`.
pub fn split(root: &Path, etc_groups: &[String]) -> Result<SplitReport> {
    let mut report = SplitReport {
        altfiles: has_altfiles(root),
        ..SplitReport::default()
    };
    if !report.altfiles {
        if root.join("etc/passwd").exists() {
            tracing::warn!(
                "the tree has no nss-altfiles (libnss_altfiles.so.2): its users stay in /etc/passwd, so users added by an update will not reach a host whose /etc/passwd was edited"
            );
        }
        return Ok(report);
    }
    let keep_users: BTreeSet<&str> = ["root"].into();
    let mut keep_groups: BTreeSet<&str> = ["root"].into();
    keep_groups.extend(etc_groups.iter().map(String::as_str));
    report.usr_lib_users = move_entries(root, "passwd", &keep_users)?;
    report.usr_lib_groups = move_entries(root, "group", &keep_groups)?;
    for g in etc_groups {
        let present = std::fs::read_to_string(root.join("etc/group"))
            .map(|t| t.lines().any(|l| l.split(':').next() == Some(g)))
            .unwrap_or(false);
        if !present {
            tracing::warn!(group = %g, "etc-group-members names a group the tree does not have");
        }
    }
    if report.usr_lib_users.is_empty() && report.usr_lib_groups.is_empty() {
        return Ok(report);
    }
    add_altfiles(root)?;
    Ok(report)
}

/// Moves the lines of `/etc/NAME` whose first field is not in `keep` to
/// `/usr/lib/NAME` (after what it holds already; a name it has wins).
fn move_entries(root: &Path, name: &str, keep: &BTreeSet<&str>) -> Result<Vec<String>> {
    let etc = root.join("etc").join(name);
    let usr = root.join("usr/lib").join(name);
    let Ok(text) = std::fs::read_to_string(&etc) else {
        return Ok(Vec::new());
    };
    let existing = std::fs::read_to_string(&usr).unwrap_or_default();
    let known: BTreeSet<&str> = existing
        .lines()
        .filter_map(|l| l.split(':').next())
        .collect();
    let (mut stay, mut moved_text) = (String::new(), existing.clone());
    let mut moved = Vec::new();
    for line in text.lines() {
        let entry = line.split(':').next().unwrap_or("");
        if line.trim().is_empty() || line.starts_with('#') || keep.contains(entry) {
            stay.push_str(line);
            stay.push('\n');
        } else {
            if !known.contains(entry) {
                moved_text.push_str(line);
                moved_text.push('\n');
            }
            moved.push(entry.to_string());
        }
    }
    if moved.is_empty() {
        return Ok(moved);
    }
    let mode = std::fs::metadata(&etc)
        .with_context(|| format!("reading {}", etc.display()))?
        .permissions()
        .mode();
    replace(&usr, &moved_text, 0o644)?;
    replace(&etc, &stay, mode)?;
    Ok(moved)
}

/// Writes `path` as a new file renamed over the old one: the tree may be
/// a hardlinked copy whose inodes must not change.
fn replace(path: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("corral-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

fn has_altfiles(root: &Path) -> bool {
    [
        "usr/lib64",
        "usr/lib",
        "usr/lib/x86_64-linux-gnu",
        "usr/lib/aarch64-linux-gnu",
    ]
    .iter()
    .any(|d| root.join(d).join("libnss_altfiles.so.2").exists())
}

/// `passwd:` and `group:` in nsswitch.conf look in altfiles after files.
fn add_altfiles(root: &Path) -> Result<()> {
    let path = root.join("etc/nsswitch.conf");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let mut changed = false;
    let mut out = String::new();
    for line in text.lines() {
        let db = line.split(':').next().unwrap_or("").trim();
        if (db == "passwd" || db == "group") && !line.split_whitespace().any(|w| w == "altfiles") {
            let (head, services) = line.split_once(':').unwrap_or((line, ""));
            let mut words: Vec<&str> = services.split_whitespace().collect();
            let at = words
                .iter()
                .position(|w| *w == "files")
                .map_or(0, |i| i + 1);
            words.insert(at, "altfiles");
            out.push_str(&format!("{head}: {}\n", words.join(" ")));
            changed = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if changed {
        let mode = std::fs::metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode();
        replace(&path, &out, mode)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::create_dir_all(t.path().join("usr/lib64")).unwrap();
        std::fs::write(t.path().join("usr/lib64/libnss_altfiles.so.2"), "").unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\nsvc:x:990:990::/:/sbin/nologin\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:\nnobody:x:65534:\nsvc:x:990:\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/nsswitch.conf"),
            "# test\npasswd:         files systemd\ngroup: files\nhosts: files dns\n",
        )
        .unwrap();
        t
    }

    fn read(t: &tempfile::TempDir, rel: &str) -> String {
        std::fs::read_to_string(t.path().join(rel)).unwrap()
    }

    #[test]
    fn root_and_etc_groups_stay_the_rest_moves() {
        let t = tree();
        let r = split(t.path(), &["wheel".to_string()]).unwrap();
        assert_eq!(r.usr_lib_users, ["nobody", "svc"]);
        assert_eq!(r.usr_lib_groups, ["nobody", "svc"]);
        assert!(r.altfiles);
        assert_eq!(read(&t, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
        assert_eq!(
            read(&t, "usr/lib/passwd"),
            "nobody:x:65534:65534:nobody:/:/sbin/nologin\nsvc:x:990:990::/:/sbin/nologin\n"
        );
        assert_eq!(read(&t, "etc/group"), "root:x:0:\nwheel:x:10:\n");
        assert_eq!(read(&t, "usr/lib/group"), "nobody:x:65534:\nsvc:x:990:\n");
        assert_eq!(
            read(&t, "etc/nsswitch.conf"),
            "# test\npasswd: files altfiles systemd\ngroup: files altfiles\nhosts: files dns\n"
        );
        // A second pass (a ready tree composed again) changes nothing.
        let again = split(t.path(), &["wheel".to_string()]).unwrap();
        assert!(again.usr_lib_users.is_empty() && again.usr_lib_groups.is_empty());
        assert_eq!(read(&t, "usr/lib/group"), "nobody:x:65534:\nsvc:x:990:\n");
    }

    #[test]
    fn files_are_replaced_not_written_through() {
        let t = tree();
        let outside = t.path().join("outside");
        std::fs::hard_link(t.path().join("etc/passwd"), &outside).unwrap();
        split(t.path(), &[]).unwrap();
        assert!(read(&t, "outside").contains("svc:x:990"));
        assert!(!read(&t, "etc/passwd").contains("svc"));
    }

    /// Without nss-altfiles the host could not resolve moved users.
    #[test]
    fn a_tree_without_altfiles_keeps_its_users_in_etc() {
        let t = tree();
        std::fs::remove_file(t.path().join("usr/lib64/libnss_altfiles.so.2")).unwrap();
        let before = read(&t, "etc/passwd");
        let r = split(t.path(), &[]).unwrap();
        assert_eq!(r, SplitReport::default());
        assert_eq!(read(&t, "etc/passwd"), before);
        assert!(!t.path().join("usr/lib/passwd").exists());
        assert!(!read(&t, "etc/nsswitch.conf").contains("altfiles"));
    }

    #[test]
    fn a_tree_without_passwd_is_left_alone() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(split(t.path(), &[]).unwrap(), SplitReport::default());
        assert!(!t.path().join("usr/lib/passwd").exists());
    }
}
