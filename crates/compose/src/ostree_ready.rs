//! Makes a root filesystem OSTree-ready, the way rpm-ostree's
//! postprocessing does: the kernel under `/usr/lib/modules/<kver>/`,
//! `/etc` as `/usr/etc`, `/var` as tmpfiles.d entries, the mutable
//! top-level directories as links into `/var`, the rpm database and
//! os-release under `/usr`, and `/sysroot` with the `/ostree` link.
//!
//! It works in place on a tree the compose owns (a build or a copy).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::ComposeError;

/// Directories that live in `/var` on a deployed host: the link and its
/// target (relative to the link's directory). `/usr/local` is the host's,
/// as on rpm-ostree systems, so it cannot be read-only with `/usr`.
pub const VAR_LINKS: &[(&str, &str)] = &[
    ("home", "var/home"),
    ("opt", "var/opt"),
    ("srv", "var/srv"),
    ("mnt", "var/mnt"),
    ("root", "var/roothome"),
    ("usr/local", "../var/usrlocal"),
];

/// Where the content of `/var` is described for systemd-tmpfiles.
pub const TMPFILES_CONF: &str = "usr/lib/tmpfiles.d/corral-var.conf";

/// Where regular files found in `/var` are kept, copied back at boot.
pub const FACTORY_VAR: &str = "usr/share/factory/var";

/// What the preparation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedTree {
    /// The kernel version (`/usr/lib/modules/<kver>`).
    pub kver: String,
    /// The initramfs was built here by the tree's dracut (the kernel
    /// package shipped none).
    pub dracut: bool,
    /// Entries written to the tmpfiles.d file.
    pub tmpfiles_entries: usize,
}

type Result<T> = std::result::Result<T, ComposeError>;

/// Prepares `root` in place. `version` is recorded in os-release as
/// `OSTREE_VERSION`; `epoch` is dracut's `SOURCE_DATE_EPOCH` when it
/// builds the initramfs.
pub fn make_ostree_ready(root: &Path, version: Option<&str>, epoch: u64) -> Result<PreparedTree> {
    let (kver, dracut) = place_kernel(root, epoch)?;
    move_rpmdb(root)?;
    os_release(root, version)?;
    link_into_var(root)?;
    selinux_store_to_etc(root)?;
    let tmpfiles_entries = var_to_tmpfiles(root)?;
    move_etc(root)?;
    sysroot(root)?;
    Ok(PreparedTree {
        kver,
        dracut,
        tmpfiles_entries,
    })
}

fn is_file(p: &Path) -> bool {
    p.symlink_metadata().map(|m| m.is_file()).unwrap_or(false)
}

fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(ComposeError::io("creating", dir))?;
    }
    std::fs::rename(from, to).map_err(ComposeError::io("moving", from))
}

fn symlink(target: &str, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link).map_err(ComposeError::io("creating the link", link))
}

fn remove_any(p: &Path) -> Result<()> {
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p).map_err(ComposeError::io("removing", p)),
        Ok(_) => std::fs::remove_file(p).map_err(ComposeError::io("removing", p)),
        Err(_) => Ok(()),
    }
}

fn mkdir(p: &Path, mode: u32) -> Result<()> {
    if !exists(p) {
        std::fs::create_dir_all(p).map_err(ComposeError::io("creating", p))?;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .map_err(ComposeError::io("setting the mode of", p))?;
    }
    Ok(())
}

/// Finds the one kernel and puts it and its initramfs under
/// `/usr/lib/modules/<kver>/`, building the initramfs with the tree's
/// dracut when there is none; `/boot` is left empty.
fn place_kernel(root: &Path, epoch: u64) -> Result<(String, bool)> {
    let modules = root.join("usr/lib/modules");
    let boot = root.join("boot");
    let mut kvers = BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(&modules) {
        for e in entries.flatten() {
            if is_file(&e.path().join("vmlinuz")) {
                kvers.insert(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(&boot) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(kver) = name.strip_prefix("vmlinuz-") {
                if is_file(&e.path()) && !kver.contains("rescue") {
                    kvers.insert(kver.to_string());
                }
            }
        }
    }
    let kver = match kvers.len() {
        0 => return Err(ComposeError::NoKernel),
        1 => kvers.into_iter().next().unwrap_or_default(),
        count => {
            return Err(ComposeError::ManyKernels {
                count,
                kvers: kvers.into_iter().collect::<Vec<_>>().join(", "),
            })
        }
    };
    let dir = modules.join(&kver);
    for (name, boot_name) in [
        ("vmlinuz", format!("vmlinuz-{kver}")),
        ("initramfs.img", format!("initramfs-{kver}.img")),
    ] {
        let dest = dir.join(name);
        let from_boot = boot.join(&boot_name);
        if !is_file(&dest) && is_file(&from_boot) {
            rename(&from_boot, &dest)?;
        }
    }
    let mut dracut = false;
    if !is_file(&dir.join("initramfs.img")) {
        if !DRACUT.iter().any(|d| is_file(&root.join(d))) {
            return Err(ComposeError::NoInitramfs { kver });
        }
        run_dracut(root, &kver, epoch)?;
        dracut = true;
    }
    if let Ok(entries) = std::fs::read_dir(&boot) {
        for e in entries.flatten() {
            remove_any(&e.path())?;
        }
    }
    mkdir(&boot, 0o755)?;
    Ok((kver, dracut))
}

/// Where a tree has dracut.
const DRACUT: &[&str] = &["usr/bin/dracut", "usr/sbin/dracut"];

/// Builds `/usr/lib/modules/<kver>/initramfs.img` with the tree's own
/// dracut, as rpm-ostree does: generic (`--no-hostonly`, nothing of the
/// build machine), with the ostree module that mounts the deployment,
/// `--reproducible` at `SOURCE_DATE_EPOCH` so the same tree gives the same
/// bytes. It runs chrooted in new mount, network and PID namespaces: the
/// `/proc`, `/sys` and `/dev` it needs are mounted there and vanish with
/// them, and it has no network.
fn run_dracut(root: &Path, kver: &str, epoch: u64) -> Result<()> {
    for d in ["proc", "sys", "dev", "tmp"] {
        mkdir(&root.join(d), if d == "tmp" { 0o1777 } else { 0o755 })?;
    }
    let out_rel = format!("usr/lib/modules/{kver}/initramfs.img");
    let script = r#"set -e
mount -t proc proc "$1/proc"
mount --rbind /sys "$1/sys"
mount --rbind /dev "$1/dev"
exec chroot "$1" dracut --reproducible --no-hostonly --add ostree --force --quiet --tmpdir /tmp --kver "$2" "/$3"
"#;
    tracing::info!(%kver, "building the initramfs with the tree's dracut");
    let out = std::process::Command::new("unshare")
        .args([
            "--mount", "--net", "--pid", "--fork", "--ipc", "--uts", "--",
        ])
        .args(["/bin/sh", "-c", script, "sh"])
        .arg(root)
        .arg(kver)
        .arg(&out_rel)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C.UTF-8")
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .output()
        .map_err(ComposeError::io("running", "unshare"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || !is_file(&root.join(&out_rel)) {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        return Err(ComposeError::Dracut {
            kver: kver.to_string(),
            status: out.status.to_string(),
            detail: lines[lines.len().saturating_sub(12)..].join("\n"),
        });
    }
    Ok(())
}

/// The rpm database belongs to `/usr` (`/usr/lib/sysimage/rpm`).
fn move_rpmdb(root: &Path) -> Result<()> {
    let old = root.join("var/lib/rpm");
    let new = root.join("usr/lib/sysimage/rpm");
    let old_is_dir = old.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false);
    if old_is_dir {
        let new_has_content = std::fs::read_dir(&new)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if new_has_content {
            remove_any(&old)?;
        } else {
            remove_any(&new)?;
            rename(&old, &new)?;
        }
        // Tools that still look in /var/lib/rpm find it through a link.
        symlink("../../usr/lib/sysimage/rpm", &old)?;
    }
    Ok(())
}

/// os-release lives in `/usr/lib`; `/etc/os-release` links to it.
fn os_release(root: &Path, version: Option<&str>) -> Result<()> {
    let etc = root.join("etc/os-release");
    let usr = root.join("usr/lib/os-release");
    if is_file(&etc) {
        if is_file(&usr) {
            remove_any(&etc)?;
        } else {
            remove_any(&usr)?;
            rename(&etc, &usr)?;
        }
        symlink("../usr/lib/os-release", &etc)?;
    }
    if let (Some(version), true) = (version, is_file(&usr)) {
        let mut text = std::fs::read_to_string(&usr).map_err(ComposeError::io("reading", &usr))?;
        text = text
            .lines()
            .filter(|l| !l.starts_with("OSTREE_VERSION="))
            .map(|l| format!("{l}\n"))
            .collect();
        let _ = writeln!(text, "OSTREE_VERSION='{version}'");
        // A new file renamed over the old: the tree may be a hardlinked
        // copy of one that must not change.
        let mode = usr
            .metadata()
            .map_err(ComposeError::io("reading", &usr))?
            .permissions();
        let tmp = usr.with_extension("corral-tmp");
        std::fs::write(&tmp, text).map_err(ComposeError::io("writing", &tmp))?;
        std::fs::set_permissions(&tmp, mode)
            .map_err(ComposeError::io("setting the mode of", &tmp))?;
        std::fs::rename(&tmp, &usr).map_err(ComposeError::io("replacing", &usr))?;
    }
    Ok(())
}

/// `/home`, `/opt`, `/srv`, `/mnt`, `/root` and `/usr/local` become links into `/var`;
/// what they held moves there (and so into the tmpfiles entries).
fn link_into_var(root: &Path) -> Result<()> {
    mkdir(&root.join("var"), 0o755)?;
    for (name, target) in VAR_LINKS {
        let link = root.join(name);
        let dest = link.parent().unwrap_or(root).join(target);
        let meta = link.symlink_metadata().ok();
        match meta {
            Some(m) if m.file_type().is_symlink() => continue,
            Some(m) if m.is_dir() => {
                if exists(&dest) {
                    // Merge: what is in /var already wins.
                    for e in std::fs::read_dir(&link)
                        .map_err(ComposeError::io("reading", &link))?
                        .flatten()
                    {
                        let to = dest.join(e.file_name());
                        if !exists(&to) {
                            rename(&e.path(), &to)?;
                        }
                    }
                    remove_any(&link)?;
                } else {
                    rename(&link, &dest)?;
                }
            }
            Some(_) => remove_any(&link)?,
            None => mkdir(&dest, if *name == "root" { 0o700 } else { 0o755 })?,
        }
        symlink(target, &link)?;
    }
    Ok(())
}

/// Where libsemanage keeps its policy store unless `semanage.conf` says.
const SEMANAGE_DEFAULT_STORE_ROOT: &str = "/var/lib/selinux";

/// Moves semodule's policy store (the installed modules, `store-root` in
/// `/etc/selinux/semanage.conf`, `/var/lib/selinux` by default) to
/// `/etc/selinux` and says so in `semanage.conf`, as rpm-ostree does.
/// When a deployment has `/etc/selinux/config`, libostree finishes each
/// new deployment after the `/etc` merge by running
/// `semodule -N --rebuild-if-modules-changed` in it with only its `/usr`,
/// `/etc` and empty `/var`: a store left in `/var` is not there, semodule
/// fails, the finalize fails and the host boots its old deployment again.
/// In `/etc` the store also follows the tree through upgrades.
///
/// Returns whether a store was moved.
fn selinux_store_to_etc(root: &Path) -> Result<bool> {
    let conf = root.join("etc/selinux/semanage.conf");
    if !is_file(&conf) {
        return Ok(false);
    }
    let text = std::fs::read_to_string(&conf).map_err(ComposeError::io("reading", &conf))?;
    let mut configured = None;
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "store-root" {
                configured = Some(value.trim().to_string());
            }
        }
    }
    let store_root = configured
        .clone()
        .unwrap_or_else(|| SEMANAGE_DEFAULT_STORE_ROOT.to_string());
    let rel = store_root.trim_start_matches('/');
    if !(rel == "var" || rel.starts_with("var/")) {
        return Ok(false);
    }
    let from = root.join(rel);
    if !from.is_dir() || !exists(&root.join("etc/selinux")) {
        return Ok(false);
    }
    let to = root.join("etc/selinux");
    for store in std::fs::read_dir(&from)
        .map_err(ComposeError::io("reading", &from))?
        .flatten()
    {
        let dest = to.join(store.file_name());
        if !exists(&dest) {
            rename(&store.path(), &dest)?;
            continue;
        }
        // /etc/selinux/<type> has the policy and its contexts; the store
        // adds active/ and its lock files beside them.
        for entry in std::fs::read_dir(store.path())
            .map_err(ComposeError::io("reading", store.path()))?
            .flatten()
        {
            let target = dest.join(entry.file_name());
            if exists(&target) {
                return Err(ComposeError::Io {
                    path: target,
                    action: "moving the SELinux policy store to",
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "the tree has it in /etc/selinux and in the store",
                    ),
                });
            }
            rename(&entry.path(), &target)?;
        }
        remove_any(&store.path())?;
    }
    let line = "store-root = /etc/selinux";
    let rewritten = match configured {
        Some(_) => {
            text.lines()
                .map(|l| match l.split_once('=') {
                    Some((key, _)) if key.trim() == "store-root" => line.to_string(),
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        }
        // Top-level keys come before the [sections].
        None => {
            format!("# moved from {SEMANAGE_DEFAULT_STORE_ROOT} by corral compose\n{line}\n{text}")
        }
    };
    // Never write through an existing file: it may be hardlinked to the
    // caller's tree.
    remove_any(&conf)?;
    std::fs::write(&conf, rewritten).map_err(ComposeError::io("writing", &conf))?;
    tracing::info!(from = %store_root, "moved the SELinux policy store to /etc/selinux");
    Ok(true)
}

/// What a host needs to finish deploying this tree and the prepared tree
/// (`root`, after [`make_ostree_ready`]) lacks. With `/etc/selinux/config`
/// in a deployment, libostree's finalize runs `semodule` inside it through
/// the host's `/usr/bin/bwrap` (the host being an earlier commit of the
/// same tree): without either every upgrade to the commit fails to
/// finalize, and the host boots its old deployment again.
pub fn finalize_lacks(root: &Path) -> Vec<&'static str> {
    let mut lacks = Vec::new();
    if !exists(&root.join("usr/etc/selinux/config")) {
        return lacks;
    }
    if !exists(&root.join("usr/bin/bwrap")) {
        lacks.push("/usr/bin/bwrap");
    }
    if ![
        "usr/sbin/semodule",
        "usr/bin/semodule",
        "sbin/semodule",
        "bin/semodule",
    ]
    .iter()
    .any(|p| exists(&root.join(p)))
    {
        lacks.push("semodule");
    }
    lacks
}

/// Describes `/var` as systemd-tmpfiles entries and empties it: a
/// deployment's `/var` is the host's, created at boot.
fn var_to_tmpfiles(root: &Path) -> Result<usize> {
    let var = root.join("var");
    let mut conf = String::from(
        "# Generated by corral compose from the tree's /var; systemd-tmpfiles\n# creates these on a deployed host.\n",
    );
    let mut count = 0;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in walkdir::WalkDir::new(&var).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| ComposeError::Io {
            path: var.clone(),
            action: "walking",
            source: e.into(),
        })?;
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let abs = quote(&format!("/{}", rel.display()));
        let meta = entry
            .path()
            .symlink_metadata()
            .map_err(ComposeError::io("reading", entry.path()))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            let _ = writeln!(
                conf,
                "d {abs} {:04o} {} {} - -",
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid()
            );
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path())
                .map_err(ComposeError::io("reading", entry.path()))?;
            let _ = writeln!(conf, "L {abs} - - - - {}", target.display());
        } else if ft.is_file() {
            let factory = format!(
                "/{FACTORY_VAR}/{}",
                rel.strip_prefix("var").unwrap_or(rel).display()
            );
            let _ = writeln!(conf, "C {abs} - - - - {}", quote(&factory));
            files.push(rel.to_path_buf());
        } else {
            tracing::warn!(path = %abs, "a special file in /var is left out of the commit");
            continue;
        }
        count += 1;
    }
    for rel in files {
        let to = root
            .join(FACTORY_VAR)
            .join(rel.strip_prefix("var").unwrap_or(&rel));
        rename(&root.join(&rel), &to)?;
    }
    for e in std::fs::read_dir(&var)
        .map_err(ComposeError::io("reading", &var))?
        .flatten()
    {
        remove_any(&e.path())?;
    }
    let path = root.join(TMPFILES_CONF);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(ComposeError::io("creating", dir))?;
    }
    // Never write through an existing file: it may be hardlinked to the
    // caller's tree.
    remove_any(&path)?;
    std::fs::write(&path, conf).map_err(ComposeError::io("writing", &path))?;
    Ok(count)
}

fn quote(path: &str) -> String {
    if path
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", path.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        path.to_string()
    }
}

/// `/etc` is the default configuration in `/usr/etc`; ostree merges it
/// into each deployment's `/etc`.
fn move_etc(root: &Path) -> Result<()> {
    let etc = root.join("etc");
    let usr_etc = root.join("usr/etc");
    if exists(&usr_etc) {
        let empty = std::fs::read_dir(&usr_etc)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(ComposeError::Io {
                path: usr_etc,
                action: "moving /etc to",
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the tree already has a non-empty /usr/etc",
                ),
            });
        }
        remove_any(&usr_etc)?;
    }
    if exists(&etc) {
        rename(&etc, &usr_etc)?;
    } else {
        mkdir(&usr_etc, 0o755)?;
    }
    Ok(())
}

/// `/sysroot` is where the physical root is mounted; `/ostree` points into it.
fn sysroot(root: &Path) -> Result<()> {
    mkdir(&root.join("sysroot"), 0o755)?;
    let link = root.join("ostree");
    remove_any(&link)?;
    symlink("sysroot/ostree", &link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in [
            "etc",
            "usr/bin",
            "usr/lib",
            "var/lib/rpm",
            "var/log",
            "var/cache/x",
            "home/alice",
            "root",
            "opt/app",
            "usr/local/bin",
            "boot",
            "tmp",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(r.join("etc/os-release"), "ID=corral\nVERSION_ID=43\n").unwrap();
        std::fs::write(r.join("var/lib/rpm/rpmdb.sqlite"), "db").unwrap();
        std::fs::write(r.join("var/log/boot.log"), "log").unwrap();
        std::os::unix::fs::symlink("../run", r.join("var/run")).unwrap();
        std::fs::write(r.join("opt/app/run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(r.join("boot/vmlinuz-6.1.0-t"), "kernel").unwrap();
        std::fs::write(r.join("boot/initramfs-6.1.0-t.img"), "initramfs").unwrap();
        std::fs::write(r.join("boot/System.map-6.1.0-t"), "map").unwrap();
        t
    }

    fn link(p: PathBuf) -> String {
        std::fs::read_link(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .display()
            .to_string()
    }

    #[test]
    fn transforms_a_tree() {
        let t = sample_tree();
        let r = t.path();
        let out = make_ostree_ready(r, Some("43.20261125.0"), 0).unwrap();
        assert_eq!(out.kver, "6.1.0-t");
        // Kernel.
        assert_eq!(
            std::fs::read_to_string(r.join("usr/lib/modules/6.1.0-t/vmlinuz")).unwrap(),
            "kernel"
        );
        assert!(r.join("usr/lib/modules/6.1.0-t/initramfs.img").is_file());
        assert_eq!(std::fs::read_dir(r.join("boot")).unwrap().count(), 0);
        // /etc.
        assert!(!exists(&r.join("etc")));
        assert!(r.join("usr/etc/passwd").is_file());
        assert_eq!(link(r.join("usr/etc/os-release")), "../usr/lib/os-release");
        let osr = std::fs::read_to_string(r.join("usr/lib/os-release")).unwrap();
        assert!(osr.contains("ID=corral\n") && osr.contains("OSTREE_VERSION='43.20261125.0'"));
        // rpmdb.
        assert!(r.join("usr/lib/sysimage/rpm/rpmdb.sqlite").is_file());
        // /var is empty; its content is described.
        assert_eq!(std::fs::read_dir(r.join("var")).unwrap().count(), 0);
        let conf = std::fs::read_to_string(r.join(TMPFILES_CONF)).unwrap();
        for want in [
            "d /var/home 0755 0 0 - -",
            "d /var/home/alice 0755 0 0 - -",
            "d /var/opt/app 0755 0 0 - -",
            "C /var/opt/app/run.sh - - - - /usr/share/factory/var/opt/app/run.sh",
            "L /var/lib/rpm - - - - ../../usr/lib/sysimage/rpm",
            "L /var/run - - - - ../run",
            "d /var/cache/x 0755 0 0 - -",
            "d /var/usrlocal/bin 0755 0 0 - -",
            "C /var/log/boot.log - - - - /usr/share/factory/var/log/boot.log",
        ] {
            assert!(
                conf.lines().any(|l| l == want),
                "missing `{want}` in\n{conf}"
            );
        }
        assert!(conf.contains("d /var/roothome "), "{conf}");
        assert!(r.join("usr/share/factory/var/opt/app/run.sh").is_file());
        // Links into /var, /sysroot and /ostree.
        for (name, target) in VAR_LINKS {
            assert_eq!(link(r.join(name)), *target);
        }
        assert!(r.join("sysroot").is_dir());
        assert_eq!(link(r.join("ostree")), "sysroot/ostree");
    }

    #[test]
    fn kernel_already_under_modules() {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("usr/lib/modules/6.1.0-corral");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("vmlinuz"), "k").unwrap();
        std::fs::write(m.join("initramfs.img"), "i").unwrap();
        let out = make_ostree_ready(t.path(), None, 0).unwrap();
        assert_eq!(out.kver, "6.1.0-corral");
        assert!(t.path().join("usr/etc").is_dir());
    }

    #[test]
    fn no_kernel_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        let err = make_ostree_ready(t.path(), None, 0).unwrap_err();
        assert!(matches!(err, ComposeError::NoKernel), "{err}");
        assert!(err.to_string().contains("no kernel"));
    }

    #[test]
    fn missing_initramfs_and_two_kernels_are_errors() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("boot")).unwrap();
        std::fs::write(t.path().join("boot/vmlinuz-1"), "k").unwrap();
        let err = make_ostree_ready(t.path(), None, 0).unwrap_err();
        assert!(matches!(err, ComposeError::NoInitramfs { .. }), "{err}");
        std::fs::write(t.path().join("boot/vmlinuz-2"), "k").unwrap();
        let err = make_ostree_ready(t.path(), None, 0).unwrap_err();
        assert!(err.to_string().contains("2 kernels (1, 2)"), "{err}");
    }

    /// A Debian-style tree: the policy in /etc/selinux/default, semodule's
    /// store in /var/lib/selinux/default.
    fn tree_with_policy_store(conf: &str) -> tempfile::TempDir {
        let t = sample_tree();
        let r = t.path();
        for d in [
            "etc/selinux/default/policy",
            "var/lib/selinux/default/active/modules/400/corral",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/selinux/config"), "SELINUXTYPE=default\n").unwrap();
        std::fs::write(r.join("etc/selinux/semanage.conf"), conf).unwrap();
        std::fs::write(r.join("etc/selinux/default/policy/policy.33"), "policy").unwrap();
        std::fs::write(
            r.join("var/lib/selinux/default/active/modules/400/corral/cil"),
            "module",
        )
        .unwrap();
        std::fs::write(r.join("var/lib/selinux/default/semanage.read.LOCK"), "").unwrap();
        t
    }

    #[test]
    fn the_selinux_policy_store_moves_to_etc() {
        let conf = "module-store = direct\n[setfiles]\npath = /sbin/setfiles\n[end]\n";
        let t = tree_with_policy_store(conf);
        let r = t.path();
        make_ostree_ready(r, None, 0).unwrap();
        let store = r.join("usr/etc/selinux/default");
        assert_eq!(
            std::fs::read_to_string(store.join("active/modules/400/corral/cil")).unwrap(),
            "module"
        );
        assert!(store.join("semanage.read.LOCK").is_file());
        assert!(store.join("policy/policy.33").is_file());
        let written = std::fs::read_to_string(r.join("usr/etc/selinux/semanage.conf")).unwrap();
        // a top-level key, before the first section
        let at = written
            .find("\nstore-root = /etc/selinux\n")
            .expect(&written);
        assert!(at < written.find("[setfiles]").unwrap(), "{written}");
        assert!(written.ends_with(conf), "{written}");
        // nothing of the store is left for /var
        let tmpfiles = std::fs::read_to_string(r.join(TMPFILES_CONF)).unwrap();
        assert!(!tmpfiles.contains("/var/lib/selinux/default"), "{tmpfiles}");
    }

    #[test]
    fn a_store_root_under_var_is_rewritten_and_one_elsewhere_kept() {
        let t = tree_with_policy_store("store-root = /var/lib/selinux\nexpand-check=0\n");
        make_ostree_ready(t.path(), None, 0).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("usr/etc/selinux/semanage.conf")).unwrap(),
            "store-root = /etc/selinux\nexpand-check=0\n"
        );
        assert!(t
            .path()
            .join("usr/etc/selinux/default/active/modules/400/corral/cil")
            .is_file());

        let t = tree_with_policy_store("store-root = /usr/lib/selinux\n");
        make_ostree_ready(t.path(), None, 0).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("usr/etc/selinux/semanage.conf")).unwrap(),
            "store-root = /usr/lib/selinux\n"
        );
        assert!(!t.path().join("usr/etc/selinux/default/active").exists());
    }

    #[test]
    fn a_store_that_collides_with_etc_is_an_error() {
        let t = tree_with_policy_store("");
        std::fs::create_dir_all(t.path().join("etc/selinux/default/active")).unwrap();
        match make_ostree_ready(t.path(), None, 0).unwrap_err() {
            ComposeError::Io { path, source, .. } => {
                assert!(path.ends_with("etc/selinux/default/active"), "{path:?}");
                assert!(
                    source
                        .to_string()
                        .contains("in /etc/selinux and in the store"),
                    "{source}"
                );
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_policy_without_bwrap_and_semodule_is_reported() {
        let t = tree_with_policy_store("");
        make_ostree_ready(t.path(), None, 0).unwrap();
        assert_eq!(finalize_lacks(t.path()), ["/usr/bin/bwrap", "semodule"]);
        std::fs::write(t.path().join("usr/bin/bwrap"), "").unwrap();
        std::fs::create_dir_all(t.path().join("usr/sbin")).unwrap();
        std::fs::write(t.path().join("usr/sbin/semodule"), "").unwrap();
        assert!(finalize_lacks(t.path()).is_empty());
        // without a policy, nothing is run
        let t = sample_tree();
        make_ostree_ready(t.path(), None, 0).unwrap();
        assert!(finalize_lacks(t.path()).is_empty());
    }
}
