//! The sandbox a tree build can run dnf in: bubblewrap (`bwrap`) with
//! namespaces of its own and only what the build needs of the host.
//!
//! Without it dnf and the rpm scriptlets it starts run on the builder's
//! host as root, held only by rpm's `chroot` into the tree: a scriptlet
//! that mounts `/proc` reads any host file through `/proc/PID/root` of a process outside the chroot, and
//! every network the host reaches is reachable. In the sandbox:
//!
//! - network, pid, ipc, uts (and, where the kernel allows, cgroup)
//!   namespaces of its own: the only interface is `lo`, nothing listens
//!   on it, so a repository on another host (or on this one) cannot be
//!   reached even if configured;
//! - the file system is `/usr` (and the `/bin`, `/lib`, ... links or
//!   directories beside it) read-only, a fresh `/proc` of the sandbox's
//!   own processes (its `sys` read-only: the sysctls are mostly the
//!   machine's), a minimal `/dev`, an `/etc` holding only the dynamic
//!   loader's cache and the `alternatives` and `rpm` directories
//!   (read-only), empty tmpfs `/tmp`, `/run` and `/var`; then the tree
//!   being built and dnf's private `HOME` (read-write) and the recipe's
//!   local repositories and keys (`file://`, read-only). Nothing else of
//!   the host: no `/root`, `/home`, `/srv`, `/var/tmp`, no other file of
//!   the builder's;
//! - the environment is cleared down to `PATH`, `HOME`, `LC_ALL` and
//!   `SOURCE_DATE_EPOCH`;
//! - root keeps only the capabilities rpm needs to install files
//!   ([`CAPS`]: ownership, modes, file capabilities, `chroot`, changing
//!   user): no `CAP_SYS_ADMIN` (no mounts), no `CAP_MKNOD`, no
//!   `CAP_NET_*`, no `CAP_SYS_PTRACE`, and no `CAP_DAC_READ_SEARCH`:
//!   with it, `open_by_handle_at` opens any file of a file system the
//!   sandbox sees a part of (the tree's), by its handle, past every bind
//!   (`CAP_DAC_OVERRIDE` already lets rpm read and write what it
//!   installs);
//! - `--die-with-parent`: stopping the build (its time limit) stops the
//!   sandbox and, with its pid namespace, every process in it.

use std::path::{Component, Path, PathBuf};

use crate::error::TreeError;
use crate::recipe::{Recipe, Repo};

/// The program.
pub const BWRAP: &str = "bwrap";

/// The capabilities root keeps in the sandbox.
pub const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// The directories beside `/usr` a merged-/usr or split host has.
const BESIDE_USR: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// What of `/etc` dnf and rpm read on the builder (the loader's cache,
/// the interpreter links, rpm's own configuration).
const FROM_ETC: &[&str] = &["ld.so.cache", "alternatives", "rpm"];

/// The local path a `file://` URL names, up to the first component with a
/// dnf variable (`$basearch`, `$releasever`) in it.
fn local_dir(url: &str) -> Option<PathBuf> {
    let path = url.strip_prefix("file://")?;
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) if n.to_string_lossy().contains('$') => break,
            Component::Normal(n) => out.push(n),
            Component::RootDir => {}
            // `..` or `.`: not bound at all
            _ => return None,
        }
    }
    (out != Path::new("/")).then_some(out)
}

/// Every URL of the recipe's repositories (base URLs, metalinks, keys),
/// with the repository that names it.
fn repository_urls(recipe: &Recipe) -> impl Iterator<Item = (&Repo, &String)> {
    recipe.repos.iter().flat_map(|repo| {
        repo.baseurl
            .iter()
            .chain(repo.metalink.iter())
            .chain(repo.gpgkey.iter())
            .map(move |url| (repo, url))
    })
}

/// The host paths the recipe's repositories and keys need, read-only.
pub fn repository_paths(recipe: &Recipe) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in repository_urls(recipe).filter_map(|(_, url)| local_dir(url)) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Refuses a recipe with a repository or key that is not a local file
/// (`file://`, as [`Recipe::resolve`] makes paths): the sandbox has no
/// network, so such a build could only fail in dnf, later and less
/// clearly.
pub fn check_local(recipe: &Recipe) -> Result<(), TreeError> {
    match repository_urls(recipe).find(|(_, url)| local_dir(url).is_none()) {
        Some((repo, url)) => Err(TreeError::NotLocal {
            repo: repo.id.clone(),
            url: url.clone(),
        }),
        None => Ok(()),
    }
}

/// bwrap's arguments (up to and including `--`) for running a build whose
/// tree is `installroot` and whose private home is `home`, with `env` as
/// the only environment besides `PATH`.
pub fn bwrap_args(
    recipe: &Recipe,
    installroot: &Path,
    home: &Path,
    env: &[(&str, String)],
) -> Vec<String> {
    let s = |p: &Path| p.display().to_string();
    let mut args: Vec<String> = [
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "corral-tree-build",
        "--clearenv",
        "--cap-drop",
        "ALL",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    for cap in CAPS {
        args.extend(["--cap-add".into(), cap.to_string()]);
    }
    args.extend(["--ro-bind".into(), "/usr".into(), "/usr".into()]);
    for name in BESIDE_USR {
        let host = Path::new("/").join(name);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(&host) {
                    args.extend(["--symlink".into(), s(&target), s(&host)]);
                }
            }
            Ok(m) if m.is_dir() => args.extend(["--ro-bind".into(), s(&host), s(&host)]),
            _ => {}
        }
    }
    args.extend(["--tmpfs".into(), "/etc".into()]);
    for name in FROM_ETC {
        let host = Path::new("/etc").join(name);
        if host.exists() {
            args.extend(["--ro-bind".into(), s(&host), s(&host)]);
        }
    }
    for (flag, dir) in [
        ("--proc", "/proc"),
        ("--dev", "/dev"),
        ("--tmpfs", "/tmp"),
        ("--tmpfs", "/run"),
        ("--tmpfs", "/var"),
    ] {
        args.extend([flag.into(), dir.into()]);
    }
    // bwrap leaves the new /proc's sys writable, and most sysctls are the
    // whole machine's: root in the sandbox could set kernel.core_pattern
    // to a program of the tree, which the kernel would then run as the
    // host's root. Read-only; what a process reads there is still its own
    // namespaces' view (the sandbox's hostname).
    args.extend(["--ro-bind".into(), "/proc/sys".into(), "/proc/sys".into()]);
    // Parents before children, so a bind inside another is not hidden.
    let mut binds: Vec<(&str, PathBuf)> = repository_paths(recipe)
        .into_iter()
        .map(|p| ("--ro-bind", p))
        .collect();
    binds.push(("--bind", installroot.to_path_buf()));
    binds.push(("--bind", home.to_path_buf()));
    binds.sort_by_key(|(_, p)| p.components().count());
    for (flag, path) in binds {
        args.extend([flag.into(), s(&path), s(&path)]);
    }
    args.extend([
        "--setenv".into(),
        "PATH".into(),
        "/usr/sbin:/usr/bin:/sbin:/bin".into(),
    ]);
    for (k, v) in env {
        args.extend(["--setenv".into(), k.to_string(), v.clone()]);
    }
    args.extend(["--chdir".into(), "/".into(), "--".into()]);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe() -> Recipe {
        Recipe::parse(
            r#"
name = "t"
releasever = "43"
packages = ["p"]
[[repo]]
id = "base"
baseurl = "file:///srv/repos/main"
gpgkey = ["file:///srv/keys/KEY"]
[[repo]]
id = "arch"
baseurl = "file:///srv/repos/$basearch/os"
gpgcheck = false
[[repo]]
id = "far"
baseurl = "https://example.com/repo"
gpgcheck = false
"#,
            Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn local_repositories_and_keys_are_bound_up_to_their_variables() {
        assert_eq!(
            repository_paths(&recipe()),
            [
                PathBuf::from("/srv/repos/main"),
                PathBuf::from("/srv/keys/KEY"),
                PathBuf::from("/srv/repos"),
            ]
        );
        assert_eq!(local_dir("file:///a/../etc"), None);
        match check_local(&recipe()) {
            Err(TreeError::NotLocal { repo, url }) => {
                assert_eq!(
                    (repo.as_str(), url.as_str()),
                    ("far", "https://example.com/repo")
                )
            }
            other => panic!("{other:?}"),
        }
        let mut local = recipe();
        local.repos.pop();
        check_local(&local).unwrap();
        local.repos[0].gpgkey = vec!["https://example.com/KEY".into()];
        assert!(
            matches!(check_local(&local), Err(TreeError::NotLocal { repo, .. }) if repo == "base")
        );
        assert_eq!(local_dir("file:///$x/y"), None);
    }

    fn at_least_after(s: &str, first: &str, then: &str) -> bool {
        matches!((s.find(first), s.find(then)), (Some(a), Some(b)) if a < b)
    }

    #[test]
    fn the_sandbox_binds_the_tree_and_nothing_private_of_the_host() {
        let args = bwrap_args(
            &recipe(),
            Path::new("/var/tmp/b/.corral-tree-1"),
            Path::new("/tmp/h"),
            &[("HOME", "/tmp/h".into())],
        );
        let joined = args.join(" ");
        for ns in ["--unshare-net", "--unshare-pid", "--die-with-parent"] {
            assert!(args.iter().any(|a| a == ns), "{ns}");
        }
        assert!(joined.contains("--ro-bind /usr /usr"));
        assert!(at_least_after(
            &joined,
            "--proc /proc",
            "--ro-bind /proc/sys /proc/sys"
        ));
        assert!(joined.contains("--bind /var/tmp/b/.corral-tree-1 /var/tmp/b/.corral-tree-1"));
        assert!(joined.contains("--ro-bind /srv/repos /srv/repos"));
        assert!(joined.contains("--clearenv"));
        assert!(joined.contains("--setenv HOME /tmp/h"));
        // The whole of /etc, /root, /home or / is never bound.
        for (i, a) in args.iter().enumerate() {
            if a == "--bind" || a == "--ro-bind" {
                let src = &args[i + 1];
                for private in ["/", "/etc", "/root", "/home", "/var", "/var/tmp", "/srv"] {
                    assert_ne!(src, private, "{joined}");
                }
            }
        }
        // The repositories (parents) come before a bind inside them, the
        // tmpfs over /tmp and /var before the binds under them.
        let at = |needle: &str| joined.find(needle).unwrap();
        assert!(at("--tmpfs /var") < at("--bind /var/tmp/b"));
        assert!(at("--tmpfs /tmp") < at("--bind /tmp/h"));
        assert!(at("--ro-bind /srv/repos /srv/repos") < at("--ro-bind /srv/repos/main"));
        for cap in [
            "CAP_SYS_ADMIN",
            "CAP_MKNOD",
            "CAP_DAC_READ_SEARCH",
            "CAP_SYS_PTRACE",
        ] {
            assert!(!CAPS.contains(&cap), "{cap}");
        }
        assert_eq!(args.last().unwrap(), "--");
    }
}
