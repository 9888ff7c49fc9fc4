//! The sysroot on the image's mounted file systems, written with
//! libostree's sysroot API: what `ostree admin init-fs` and `os-init` do,
//! the commit pulled from a local repository, the remote the host upgrades
//! from (GPG verification on), and the deployment with its kernel
//! arguments and an `/etc/fstab` that mounts `/boot` and the ESP by UUID.

use std::path::Path;

use anyhow::{Context, Result};
use corral_host::sysroot::Origin;
use ostree::gio;
use ostree::glib;

/// What goes into the image's sysroot.
pub struct DeploySpec<'a> {
    /// The source repository (archive or bare) holding `commit`.
    pub source_repo: &'a Path,
    pub commit: &'a str,
    pub osname: &'a str,
    pub origin: Origin,
    /// `(url, gpg key file)` of the remote, if the host is to upgrade.
    pub remote: Option<(&'a str, &'a Path)>,
    /// The whole kernel command line (libostree appends `ostree=…`).
    pub kargs: Vec<String>,
    /// `/etc/fstab` lines of the deployment.
    pub fstab: String,
}

/// The checked-out deployment, relative to the sysroot.
pub struct Deployed {
    pub deployment_dir: String,
}

pub fn deploy(sysroot_dir: &Path, spec: &DeploySpec) -> Result<Deployed> {
    // what `ostree admin init-fs` makes besides the repository
    for d in [
        "boot", "dev", "home", "proc", "run", "sys", "tmp", "var", "root",
    ] {
        let p = sysroot_dir.join(d);
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
    }
    let sysroot = ostree::Sysroot::new(Some(&gio::File::for_path(sysroot_dir)));
    sysroot
        .ensure_initialized(gio::Cancellable::NONE)
        .with_context(|| format!("initialising the sysroot {}", sysroot_dir.display()))?;
    sysroot
        .load(gio::Cancellable::NONE)
        .with_context(|| format!("loading the sysroot {}", sysroot_dir.display()))?;
    sysroot
        .init_osname(spec.osname, gio::Cancellable::NONE)
        .with_context(|| format!("creating the stateroot {}", spec.osname))?;
    let repo = sysroot.repo();

    // libostree would otherwise look for a boot loader configuration to
    // regenerate and, finding Debian's grub-mkconfig, run it on the build
    // machine's disks. corral writes the GRUB menu from the BLS entries
    // itself (here and in `corral host`), so libostree only writes those.
    let config = repo.copy_config();
    config.set_string("sysroot", "bootloader", "none");
    repo.write_config(&config)
        .context("writing the image's /ostree/repo/config")?;
    repo.reload_config(gio::Cancellable::NONE)
        .context("reloading the image's /ostree/repo/config")?;

    pull_local(&repo, spec.source_repo, spec.commit)?;
    if let Some((url, key)) = spec.remote {
        corral_host::remote::add(&repo, &spec.origin.remote, url, key).with_context(|| {
            format!("adding remote {} ({url}) to the image", spec.origin.remote)
        })?;
    }
    // the origin's ref points at the commit, as after `corral host upgrade`
    repo.set_ref_immediate(
        Some(&spec.origin.remote),
        &spec.origin.ostree_ref,
        Some(spec.commit),
        gio::Cancellable::NONE,
    )
    .with_context(|| format!("setting {} to {}", spec.origin.refspec(), spec.commit))?;

    let kargs: Vec<&str> = spec.kargs.iter().map(String::as_str).collect();
    let opts = ostree::SysrootDeployTreeOpts {
        override_kernel_argv: Some(&kargs),
        ..Default::default()
    };
    let deployment = sysroot
        .deploy_tree_with_options(
            Some(spec.osname),
            spec.commit,
            Some(&spec.origin.keyfile()),
            None,
            Some(&opts),
            gio::Cancellable::NONE,
        )
        .with_context(|| format!("deploying {}", spec.commit))?;
    let rel = sysroot.deployment_dirpath(&deployment).to_string();
    let fstab = sysroot_dir.join(&rel).join("etc/fstab");
    let mut text = std::fs::read_to_string(&fstab).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&spec.fstab);
    std::fs::write(&fstab, text).with_context(|| format!("writing {}", fstab.display()))?;
    let labelled = crate::labels::label_unlabelled(&sysroot_dir.join(&rel), "etc")?;
    if labelled > 0 {
        tracing::info!(
            labelled,
            "labelled the deployment's /etc entries libostree left unlabelled"
        );
    }
    sysroot
        .write_deployments(&[deployment], gio::Cancellable::NONE)
        .context("writing the deployment and its boot entry")?;
    Ok(Deployed {
        deployment_dir: rel,
    })
}

/// `ostree pull-local`: the commit and its objects, no signature check
/// (the source is the compose's own repository).
fn pull_local(repo: &ostree::Repo, source: &Path, commit: &str) -> Result<()> {
    let source =
        std::path::absolute(source).with_context(|| format!("resolving {}", source.display()))?;
    let url = format!("file://{}", source.display());
    let options = glib::VariantDict::new(None);
    options.insert("refs", vec![commit.to_string()]);
    options.insert("gpg-verify", false);
    options.insert("gpg-verify-summary", false);
    options.insert("depth", 0i32);
    repo.pull_with_options(&url, &options.end(), None, gio::Cancellable::NONE)
        .with_context(|| format!("pulling {commit} from {}", source.display()))
}
