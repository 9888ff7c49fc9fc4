//! `compose export`: a commit as an OCI image in the ostree container
//! format, into an OCI layout (`oci:DIR:TAG`) or a registry
//! (`docker://HOST/REPO:TAG`, through skopeo from a temporary layout).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use corral_ostree::container::export::{export_commit, ExportOptions, ExportedImage};

/// Where an image is written to or read from.
pub use corral_ostree::container::location::ImageLocation as Destination;

/// What an export did, for `--json`.
#[derive(Debug, serde::Serialize)]
pub struct ExportOutcome {
    #[serde(flatten)]
    pub image: ExportedImage,
    /// The registry reference pushed to, for `docker://`.
    pub pushed: Option<String>,
}

/// Exports `rev` of the repository at `repo` to `dest`. `tls_verify`
/// false lets skopeo push over plain HTTP (a local mirror).
pub fn export(
    repo: &Path,
    rev: &str,
    dest: &Destination,
    opts: &ExportOptions,
    tls_verify: bool,
) -> Result<ExportOutcome> {
    let ostree_repo = corral_ostree::commit::open(repo)?;
    let version = || -> Result<String> {
        let info = corral_ostree::commit::resolve(&ostree_repo, rev, rev)?;
        Ok(info.version.unwrap_or_else(|| "latest".into()))
    };
    match dest {
        Destination::Layout { dir, tag } => {
            let tag = match tag {
                Some(t) => t.clone(),
                None => version()?,
            };
            let image = export_commit(&ostree_repo, rev, dir, &tag, opts)?;
            Ok(ExportOutcome {
                image,
                pushed: None,
            })
        }
        Destination::Registry(reference) => {
            let work = tempfile::Builder::new()
                .prefix("corral-export-")
                .tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
                .context("creating a work directory")?;
            let layout = work.path().join("layout");
            let image = export_commit(&ostree_repo, rev, &layout, "export", opts)?;
            let out = Command::new("skopeo")
                .arg("copy")
                .arg("--quiet")
                .arg(format!("--dest-tls-verify={tls_verify}"))
                .arg(format!("oci:{}:export", layout.display()))
                .arg(format!("docker://{reference}"))
                .output()
                .context("running skopeo (is it installed?)")?;
            if !out.status.success() {
                bail!(
                    "pushing to docker://{reference}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(ExportOutcome {
                image,
                pushed: Some(reference.clone()),
            })
        }
    }
}

/// One line per layer and the manifest digest.
pub fn describe(outcome: &ExportOutcome) -> String {
    let image = &outcome.image;
    let mut s = format!(
        "commit {} ({}) exported in {} layers\n",
        image.commit,
        image.version.as_deref().unwrap_or("no version"),
        image.layers.len()
    );
    for l in &image.layers {
        let what = if l.components.is_empty() {
            "commit layer: commit, directories, unpackaged files".to_string()
        } else {
            l.components.join(", ")
        };
        s.push_str(&format!("  {} {:>10}  {what}\n", l.digest, l.size));
    }
    match &outcome.pushed {
        Some(r) => s.push_str(&format!("pushed docker://{r}@{}\n", image.manifest_digest)),
        None => s.push_str(&format!(
            "oci:{}:{} {}\n",
            image.layout.display(),
            image.tag,
            image.manifest_digest
        )),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert_eq!(
            "oci:/tmp/os:43.1".parse(),
            Ok(Destination::Layout {
                dir: "/tmp/os".into(),
                tag: Some("43.1".into())
            })
        );
        assert_eq!(
            "oci:out/os".parse(),
            Ok(Destination::Layout {
                dir: "out/os".into(),
                tag: None
            })
        );
        assert_eq!(
            "docker://127.0.0.1:5000/os:43".parse(),
            Ok(Destination::Registry("127.0.0.1:5000/os:43".into()))
        );
        assert!("os:43".parse::<Destination>().is_err());
        assert!("oci:".parse::<Destination>().is_err());
    }
}
