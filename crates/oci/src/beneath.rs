//! Writing below a root directory without leaving it: a path from a layer
//! or a recipe is joined onto the root only when no directory on the way
//! is a symbolic link. An absolute link in a tree (Fedora trees have them)
//! points at the machine's own file system, not the tree's, so writing,
//! removing or linking through one would reach outside.

use std::path::{Component, Path, PathBuf};

/// A directory on the way to a path is a symbolic link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} goes through /{}, a symbolic link to {target}", path.display(), link.display())]
pub struct LinkOnTheWay {
    /// The path asked for, relative to the root.
    pub path: PathBuf,
    /// The link, relative to the root.
    pub link: PathBuf,
    /// Where it points.
    pub target: String,
}

/// `root` joined with `rel` (plain names; `/` and `.` are skipped) when
/// none of the directories on the way exists as a symbolic link. The last
/// component may be one: callers replace it or, for a link entry, write
/// it. Names that climb with `..` must be refused before this is called.
pub fn path_beneath(root: &Path, rel: &Path) -> Result<PathBuf, LinkOnTheWay> {
    let names: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut walked = PathBuf::new();
    for name in names.iter().take(names.len().saturating_sub(1)) {
        walked.push(name);
        match root.join(&walked).symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(root.join(&walked))
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                return Err(LinkOnTheWay {
                    path: rel.to_path_buf(),
                    link: walked,
                    target,
                });
            }
            Ok(_) => {}
            // Missing from here on: made as plain directories.
            Err(_) => break,
        }
    }
    Ok(root.join(names.iter().collect::<PathBuf>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_on_the_way_are_refused_and_the_last_name_may_be_one() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("usr/away")).unwrap();
        std::os::unix::fs::symlink("lib", r.join("usr/rel")).unwrap();

        let err = path_beneath(r, Path::new("usr/away/passwd")).unwrap_err();
        assert_eq!(err.link, Path::new("usr/away"));
        assert_eq!(err.target, "/etc");
        assert!(err
            .to_string()
            .contains("/usr/away, a symbolic link to /etc"));
        // relative links are refused too: one rule, nothing to resolve
        assert!(path_beneath(r, Path::new("usr/rel/x")).is_err());
        assert_eq!(
            path_beneath(r, Path::new("/usr/away")).unwrap(),
            r.join("usr/away")
        );
        assert_eq!(
            path_beneath(r, Path::new("usr/lib/new/dir/file")).unwrap(),
            r.join("usr/lib/new/dir/file")
        );
    }
}
