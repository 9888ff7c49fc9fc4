//! Where an image's SPDX SBOM goes: into the layout as a blob the
//! manifest names (so the manifest digest covers it), and beside the
//! layout as `DIR.spdx.json`, for people and scanners.

use std::path::{Path, PathBuf};

use anyhow::Context;
use corral_oci::ExtraBlob;
use corral_tree::rpmdb::Package;

/// The annotation prefix of the SBOM blob in the manifest
/// (`dev.corral.sbom.digest`, `dev.corral.sbom.mediatype`).
pub const ANNOTATION_PREFIX: &str = "dev.corral.sbom";

/// The SBOM of an image named `name` whose tree is `root`, as the blob
/// the layout carries.
pub fn blob(
    name: &str,
    root: &Path,
    packages: &[Package],
    created: i64,
) -> anyhow::Result<ExtraBlob> {
    let doc = corral_tree::sbom::spdx_document(name, &purl_namespace(root), packages, created);
    Ok(ExtraBlob {
        media_type: corral_tree::sbom::SPDX_MEDIA_TYPE.to_string(),
        data: serde_json::to_vec_pretty(&doc)?,
        annotation_prefix: ANNOTATION_PREFIX.to_string(),
    })
}

/// `out/base` → `out/base.spdx.json`.
pub fn path_beside(layout: &Path) -> PathBuf {
    let mut name = layout.file_name().unwrap_or_default().to_os_string();
    name.push(".spdx.json");
    layout.with_file_name(name)
}

/// Writes `data` to `path` through a temporary file in the same
/// directory, so a reader sees the old file or the whole new one.
pub fn write_beside(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut tmp, data)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The distribution's id from the tree's os-release, for package URLs.
fn purl_namespace(root: &Path) -> String {
    for rel in ["etc/os-release", "usr/lib/os-release"] {
        // The tree is input: its os-release may be a link to /dev/zero.
        if let Ok(text) = corral_configfile::read_to_string(&root.join(rel), 64 * 1024) {
            for line in text.lines() {
                if let Some(id) = line.strip_prefix("ID=") {
                    return id.trim_matches('"').to_string();
                }
            }
        }
    }
    "corral".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbom_sits_beside_the_layout() {
        assert_eq!(
            path_beside(Path::new("out/base")),
            PathBuf::from("out/base.spdx.json")
        );
    }

    #[test]
    fn the_namespace_is_the_trees_distribution() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(purl_namespace(root.path()), "corral");
        std::fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        std::fs::write(root.path().join("usr/lib/os-release"), "ID=\"fedora\"\n").unwrap();
        assert_eq!(purl_namespace(root.path()), "fedora");
    }
}
