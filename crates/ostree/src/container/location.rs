//! Where an OS image is or goes, as skopeo users write it: `oci:DIR[:TAG]`
//! (an OCI layout directory; no tag means the only image in it, or the
//! commit's version when writing) or `docker://HOST/REPO[:TAG]`.

use std::path::PathBuf;

/// An OCI layout or a registry reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLocation {
    /// An OCI layout directory and the tag of the image in it.
    Layout { dir: PathBuf, tag: Option<String> },
    /// A registry reference (what follows `docker://`).
    Registry(String),
}

impl std::str::FromStr for ImageLocation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((dir, tag)) if !tag.contains('/') => (dir, Some(tag.to_string())),
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err(format!("`{s}`: oci: needs a directory"));
            }
            return Ok(ImageLocation::Layout {
                dir: dir.into(),
                tag: tag.filter(|t| !t.is_empty()),
            });
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            if rest.is_empty() {
                return Err(format!("`{s}`: docker:// needs an image reference"));
            }
            return Ok(ImageLocation::Registry(rest.to_string()));
        }
        Err(format!(
            "`{s}`: give oci:DIR[:TAG] or docker://HOST/REPO[:TAG]"
        ))
    }
}

impl std::fmt::Display for ImageLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageLocation::Layout { dir, tag: Some(t) } => write!(f, "oci:{}:{t}", dir.display()),
            ImageLocation::Layout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            ImageLocation::Registry(r) => write!(f, "docker://{r}"),
        }
    }
}
