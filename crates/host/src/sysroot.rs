//! A sysroot and the roles of its deployments.
//!
//! On a booted host the roles are rpm-ostree's: the booted deployment, a
//! pending one (a newer default that has not been booted yet) and the
//! rollback. A sysroot in a directory (`--sysroot DIR`, an image being
//! built, a test) has no booted deployment; there deployment 0 is the
//! default, the one an upgrade merges from, and deployment 1 the rollback.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ostree::gio;
use ostree::glib;

/// An opened, loaded sysroot.
pub struct Host {
    path: PathBuf,
    sysroot: ostree::Sysroot,
}

/// A deployment's origin: where its updates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub remote: String,
    pub ostree_ref: String,
}

impl Origin {
    /// Parses `REMOTE:REF`; a ref without a remote has no updates.
    pub fn parse(refspec: &str) -> Result<Origin> {
        match refspec.split_once(':') {
            Some((remote, r)) if !remote.is_empty() && !r.is_empty() => Ok(Origin {
                remote: remote.to_string(),
                ostree_ref: r.to_string(),
            }),
            _ => bail!("origin `{refspec}` is not REMOTE:REF"),
        }
    }

    pub fn refspec(&self) -> String {
        format!("{}:{}", self.remote, self.ostree_ref)
    }

    /// The origin file libostree keeps beside a deployment.
    pub fn keyfile(&self) -> glib::KeyFile {
        let kf = glib::KeyFile::new();
        kf.set_string("origin", "refspec", &self.refspec());
        kf
    }
}

impl Host {
    /// Opens and loads the sysroot at `path` (`/` on a host).
    pub fn open(path: &Path) -> Result<Host> {
        if !path.join("ostree").is_dir() {
            bail!(
                "{} is not an OSTree sysroot (no ostree/ directory; `ostree admin init-fs` makes one)",
                path.display()
            );
        }
        let sysroot = ostree::Sysroot::new(Some(&gio::File::for_path(path)));
        sysroot
            .load(gio::Cancellable::NONE)
            .with_context(|| format!("loading the OSTree sysroot {}", path.display()))?;
        Ok(Host {
            path: path.to_path_buf(),
            sysroot,
        })
    }

    /// Reloads after another process (or this one) wrote deployments.
    pub fn reload(&self) -> Result<()> {
        self.sysroot
            .load(gio::Cancellable::NONE)
            .with_context(|| format!("reloading the OSTree sysroot {}", self.path.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn sysroot(&self) -> &ostree::Sysroot {
        &self.sysroot
    }

    pub fn repo(&self) -> ostree::Repo {
        self.sysroot.repo()
    }

    /// Deployments in boot order: 0 is the default.
    pub fn deployments(&self) -> Vec<ostree::Deployment> {
        self.sysroot.deployments()
    }

    pub fn booted(&self) -> Option<ostree::Deployment> {
        self.sysroot.booted_deployment()
    }

    /// The deployment an upgrade starts from and merges `/etc` with: the
    /// booted one, else the default.
    pub fn merge_deployment(&self, osname: Option<&str>) -> Option<ostree::Deployment> {
        self.sysroot.merge_deployment(osname)
    }

    /// The stateroot to work on: the merge deployment's, or the only
    /// one under `ostree/deploy/`.
    pub fn osname(&self, asked: Option<&str>) -> Result<String> {
        if let Some(os) = asked {
            return Ok(os.to_string());
        }
        if let Some(d) = self
            .booted()
            .or_else(|| self.deployments().into_iter().next())
        {
            return Ok(d.osname().to_string());
        }
        let deploy = self.path.join("ostree/deploy");
        let mut names: Vec<String> = std::fs::read_dir(&deploy)
            .with_context(|| format!("listing {}", deploy.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        match names.as_slice() {
            [one] => Ok(one.clone()),
            [] => bail!(
                "{} has no stateroot; make one with `ostree admin os-init NAME --sysroot {}`",
                self.path.display(),
                self.path.display()
            ),
            many => bail!(
                "{} has several stateroots ({}); pick one with --os",
                self.path.display(),
                many.join(", ")
            ),
        }
    }

    /// The deployment's checked-out root.
    pub fn deployment_dir(&self, d: &ostree::Deployment) -> PathBuf {
        self.path.join(self.sysroot.deployment_dirpath(d).as_str())
    }

    /// The stateroot's shared `/var`.
    pub fn var_dir(&self, osname: &str) -> PathBuf {
        self.path.join("ostree/deploy").join(osname).join("var")
    }

    /// The `/boot` of this sysroot.
    pub fn boot_dir(&self) -> PathBuf {
        self.path.join("boot")
    }

    /// The deployment's origin, if it has one of the form REMOTE:REF.
    pub fn origin(d: &ostree::Deployment) -> Option<Origin> {
        let kf = d.origin()?;
        let refspec = kf.string("origin", "refspec").ok()?;
        Origin::parse(&refspec).ok()
    }

    /// Finds a deployment by its index in boot order.
    pub fn by_index(&self, index: usize) -> Result<ostree::Deployment> {
        let all = self.deployments();
        let n = all.len();
        all.into_iter().nth(index).with_context(|| {
            format!("no deployment {index}; this sysroot has {n} (0 is the default)")
        })
    }
}

/// Same deployment (checksum and serial within one stateroot).
pub fn same(a: &ostree::Deployment, b: &ostree::Deployment) -> bool {
    a.equal(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_need_a_remote_and_a_ref() {
        let o = Origin::parse("corral:fedora/43/x86_64/atomic-host").unwrap();
        assert_eq!(o.remote, "corral");
        assert_eq!(o.ostree_ref, "fedora/43/x86_64/atomic-host");
        assert_eq!(o.refspec(), "corral:fedora/43/x86_64/atomic-host");
        for bad in ["fedora/43", ":x", "r:", ""] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_plain_directory_is_not_a_sysroot() {
        let dir = tempfile::tempdir().unwrap();
        let err = Host::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("is not an OSTree sysroot"), "{err}");
    }
}
