//! Disks from an OS image: `corral disk build --image oci:DIR[:TAG]` or
//! `--image docker://HOST/REPO:TAG`, a commit in the ostree container
//! format (as `corral compose export` and `corral release` publish it),
//! imported with corral-ostree's import into a temporary archive
//! repository beside the output; the build then deploys that commit as it
//! deploys one of a repository. The import checks every object against its
//! checksum, so the deployed commit is the one the image names.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ostree::gio;

use crate::tools::Interrupt;

/// Where the OS image is.
pub use corral_ostree::container::location::ImageLocation as ImageSource;

/// The image and how to reach its registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInput {
    pub source: ImageSource,
    /// For `docker://`: false talks plain HTTP (a local mirror).
    pub tls_verify: bool,
}

/// An imported image: the temporary repository holding its commit
/// (removed when dropped).
pub struct Imported {
    _work: tempfile::TempDir,
    pub repo: PathBuf,
    pub commit: String,
    pub manifest_digest: String,
}

/// Imports `input` into a new archive repository in a hidden directory of
/// `dir`, and points `ostree_ref` there at its commit.
pub fn import(
    input: &ImageInput,
    dir: &Path,
    ostree_ref: &str,
    int: &Interrupt,
) -> Result<Imported> {
    let work = tempfile::Builder::new()
        .prefix(".corral-disk-image-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a work directory in {}", dir.display()))?;
    let (layout, tag) = match &input.source {
        ImageSource::Layout { dir, tag } => (dir.clone(), tag.clone().unwrap_or_default()),
        ImageSource::Registry(reference) => {
            crate::tools::require(&[("skopeo", "skopeo")])?;
            let layout = work.path().join("layout");
            int.run(
                std::process::Command::new("skopeo")
                    .args(["copy", "--quiet"])
                    .arg(format!("--src-tls-verify={}", input.tls_verify))
                    .arg(format!("docker://{reference}"))
                    .arg(format!("oci:{}:image", layout.display())),
                &format!("copying docker://{reference}"),
            )?;
            (layout, "image".to_string())
        }
    };
    let repo_path = work.path().join("repo");
    let repo = ostree::Repo::new(&gio::File::for_path(&repo_path));
    repo.create(ostree::RepoMode::Archive, gio::Cancellable::NONE)
        .with_context(|| format!("creating {}", repo_path.display()))?;
    let imported = corral_ostree::container::import::import_layout(&repo, &layout, &tag)
        .with_context(|| format!("importing {}", input.source))?;
    if imported.commit.len() != 64 {
        bail!("{} names no commit", input.source);
    }
    repo.set_ref_immediate(
        None,
        ostree_ref,
        Some(imported.commit.as_str()),
        gio::Cancellable::NONE,
    )
    .with_context(|| format!("setting {ostree_ref}"))?;
    Ok(Imported {
        _work: work,
        repo: repo_path,
        commit: imported.commit,
        manifest_digest: imported.manifest_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(
            "oci:/tmp/os:43.1".parse(),
            Ok(ImageSource::Layout {
                dir: "/tmp/os".into(),
                tag: Some("43.1".into())
            })
        );
        assert_eq!(
            "oci:out/os".parse(),
            Ok(ImageSource::Layout {
                dir: "out/os".into(),
                tag: None
            })
        );
        assert_eq!(
            "docker://127.0.0.1:5000/os/sample-atomic:43".parse(),
            Ok(ImageSource::Registry(
                "127.0.0.1:5000/os/sample-atomic:43".into()
            ))
        );
        for bad in [
            "oci:",
            "docker://",
            "out/os",
            "ostree-image-signed:docker://x",
        ] {
            assert!(bad.parse::<ImageSource>().is_err(), "{bad}");
        }
        assert_eq!(
            "docker://h/r:t".parse::<ImageSource>().unwrap().to_string(),
            "docker://h/r:t"
        );
    }
}
