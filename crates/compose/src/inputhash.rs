//! The input hash: what a compose was made from, so an unchanged input
//! makes no new commit (rpm-ostree's `rpmostree.inputhash`).
//!
//! From a recipe: the recipe, each repository's metadata (`repomd.xml` of
//! local repositories; the URL of remote ones) and the installed package
//! set. From a ready tree: every entry's path, type, mode, owner, size and
//! content.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use corral_tree::Recipe;
use sha2::{Digest, Sha256};

/// Version of the hash's layout; bump it when what goes in changes.
const LAYOUT: &str = "corral-compose-inputhash-v1";

/// The input hash of a compose from `recipe` that installed `nevras`.
pub fn recipe_input_hash(recipe: &Recipe, nevras: &[String]) -> Result<String> {
    let mut h = Sha256::new();
    h.update(LAYOUT);
    h.update(b"\0recipe\0");
    // Repositories are hashed by content, not location: the same metadata
    // in another directory is the same input.
    let mut bare = recipe.clone();
    bare.repos.clear();
    let mut files = Vec::new();
    for file in &mut bare.files {
        if let Some(source) = file.source.take() {
            let data = std::fs::read(&source).with_context(|| format!("reading {source}"))?;
            files.push(hex::encode(Sha256::digest(&data)));
        }
    }
    h.update(serde_json::to_vec(&bare)?);
    for digest in files {
        h.update(digest);
    }
    for repo in &recipe.repos {
        h.update(b"\0repo\0");
        h.update(&repo.id);
        h.update(b"\0");
        let baseurl = repo.baseurl.as_deref().map(|u| dnf_vars(u, recipe));
        match baseurl.as_deref().and_then(local_path) {
            Some(dir) => {
                let repomd = Path::new(&dir).join("repodata/repomd.xml");
                let data = std::fs::read(&repomd)
                    .with_context(|| format!("reading {}", repomd.display()))?;
                h.update(Sha256::digest(&data));
            }
            None => {
                h.update(repo.baseurl.as_deref().unwrap_or_default());
                h.update(repo.metalink.as_deref().unwrap_or_default());
            }
        }
        h.update(repo.gpgcheck.to_string());
    }
    h.update(b"\0packages\0");
    let mut sorted = nevras.to_vec();
    sorted.sort();
    for nevra in sorted {
        h.update(nevra);
        h.update(b"\n");
    }
    Ok(hex::encode(h.finalize()))
}

/// `url` with the variables dnf expands in a repository URL that a recipe
/// determines: `$basearch` and `$arch` (the recipe's architecture, so an
/// aarch64 tree hashes the aarch64 repository's metadata) and
/// `$releasever`, bare or braced.
fn dnf_vars(url: &str, recipe: &Recipe) -> String {
    let mut out = url.to_string();
    for (name, value) in [
        ("basearch", &recipe.arch),
        ("arch", &recipe.arch),
        ("releasever", &recipe.releasever),
    ] {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    out
}

/// `hash` extended with the stream's `[postprocess]` table: a changed
/// script or unit list is a changed input. Without one, `hash` as is.
pub fn with_postprocess(hash: String, pp: &crate::stream::Postprocess) -> Result<String> {
    if pp.is_empty() {
        return Ok(hash);
    }
    let mut h = Sha256::new();
    h.update(LAYOUT);
    h.update(b"\0postprocess\0");
    h.update(&hash);
    h.update(serde_json::to_vec(pp)?);
    Ok(hex::encode(h.finalize()))
}

fn local_path(url: &str) -> Option<String> {
    if let Some(path) = url.strip_prefix("file://") {
        return Some(path.to_string());
    }
    url.starts_with('/').then(|| url.to_string())
}

/// The input hash of a ready tree: its content.
pub fn tree_input_hash(root: &Path) -> Result<String> {
    let mut h = Sha256::new();
    h.update(LAYOUT);
    h.update(b"\0tree\0");
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name();
    let mut buf = vec![0u8; 1 << 16];
    for entry in walker {
        let entry = entry.with_context(|| format!("walking {}", root.display()))?;
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let meta = entry
            .path()
            .symlink_metadata()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update(format!(
            "\0{:o}\0{}\0{}\0{}\0",
            meta.mode(),
            meta.uid(),
            meta.gid(),
            if meta.is_file() { meta.len() } else { 0 }
        ));
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            h.update(target.as_os_str().as_encoded_bytes());
        } else if ft.is_file() {
            let mut f = std::fs::File::open(entry.path())
                .with_context(|| format!("opening {}", entry.path().display()))?;
            loop {
                let n = f
                    .read(&mut buf)
                    .with_context(|| format!("reading {}", entry.path().display()))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        } else if !ft.is_dir() {
            h.update(meta.rdev().to_string());
        }
        h.update(b"\n");
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(baseurl: &str) -> Recipe {
        let text = format!(
            "name = \"t\"\nreleasever = \"43\"\npackages = [\"a\"]\n[[repo]]\nid = \"r\"\nbaseurl = \"{baseurl}\"\ngpgcheck = false\n"
        );
        Recipe::parse(&text, Path::new("t.toml")).unwrap()
    }

    fn repo_dir(repomd: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("repodata")).unwrap();
        std::fs::write(dir.path().join("repodata/repomd.xml"), repomd).unwrap();
        dir
    }

    #[test]
    fn recipe_hash_is_stable_and_location_free() {
        let a = repo_dir("<repomd>1</repomd>");
        let b = repo_dir("<repomd>1</repomd>");
        let pk = vec!["a-1-1.x86_64".to_string(), "b-2-1.noarch".to_string()];
        let ha = recipe_input_hash(&recipe(&a.path().display().to_string()), &pk).unwrap();
        let hb = recipe_input_hash(&recipe(&b.path().display().to_string()), &pk).unwrap();
        assert_eq!(ha, hb);
        assert_eq!(ha.len(), 64);
        // Package order does not matter.
        let rev: Vec<String> = pk.iter().rev().cloned().collect();
        assert_eq!(
            recipe_input_hash(&recipe(&a.path().display().to_string()), &rev).unwrap(),
            ha
        );
    }

    #[test]
    fn a_basearch_url_hashes_the_metadata_of_the_recipes_architecture() {
        let top = tempfile::tempdir().unwrap();
        for (arch, n) in [("x86_64", 1), ("aarch64", 2)] {
            let dir = top.path().join(arch).join("repodata");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("repomd.xml"), format!("<repomd>{n}</repomd>")).unwrap();
        }
        let pk = vec!["a-1-1.noarch".to_string()];
        let url = format!("{}/$basearch", top.path().display());
        let x86 = recipe(&url);
        let arm = x86.for_arch("aarch64").unwrap();
        let hx = recipe_input_hash(&x86, &pk).unwrap();
        let ha = recipe_input_hash(&arm, &pk).unwrap();
        assert_ne!(hx, ha);
        // the same as naming the aarch64 directory (up to the recipe text)
        let mut direct = arm.clone();
        direct.repos[0].baseurl = Some(format!("{}/aarch64", top.path().display()));
        assert_eq!(
            dnf_vars(&url, &arm),
            direct.repos[0].baseurl.clone().unwrap()
        );
        assert_eq!(dnf_vars("/r/${releasever}/$arch", &arm), "/r/43/aarch64");
    }

    #[test]
    fn recipe_hash_changes_with_metadata_packages_and_recipe() {
        let a = repo_dir("<repomd>1</repomd>");
        let c = repo_dir("<repomd>2</repomd>");
        let pk = vec!["a-1-1.x86_64".to_string()];
        let base = recipe_input_hash(&recipe(&a.path().display().to_string()), &pk).unwrap();
        assert_ne!(
            recipe_input_hash(&recipe(&c.path().display().to_string()), &pk).unwrap(),
            base
        );
        assert_ne!(
            recipe_input_hash(
                &recipe(&a.path().display().to_string()),
                &["a-1-2.x86_64".to_string()]
            )
            .unwrap(),
            base
        );
        let mut more = recipe(&a.path().display().to_string());
        more.packages.push("b".into());
        assert_ne!(recipe_input_hash(&more, &pk).unwrap(), base);
    }

    #[test]
    fn postprocess_changes_the_hash_only_when_given() {
        use crate::stream::Postprocess;
        let base = "ab".repeat(32);
        assert_eq!(
            with_postprocess(base.clone(), &Postprocess::default()).unwrap(),
            base
        );
        let mut pp = Postprocess {
            units: vec!["a.service".into()],
            ..Postprocess::default()
        };
        let one = with_postprocess(base.clone(), &pp).unwrap();
        assert_ne!(one, base);
        pp.units.push("b.service".into());
        assert_ne!(with_postprocess(base, &pp).unwrap(), one);
    }

    #[test]
    fn tree_hash_follows_content_mode_and_links() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/bin")).unwrap();
        std::fs::write(t.path().join("usr/bin/a"), "one").unwrap();
        std::os::unix::fs::symlink("a", t.path().join("usr/bin/b")).unwrap();
        let h1 = tree_input_hash(t.path()).unwrap();
        assert_eq!(tree_input_hash(t.path()).unwrap(), h1);
        std::fs::write(t.path().join("usr/bin/a"), "two").unwrap();
        let h2 = tree_input_hash(t.path()).unwrap();
        assert_ne!(h2, h1);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            t.path().join("usr/bin/a"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let h3 = tree_input_hash(t.path()).unwrap();
        assert_ne!(h3, h2);
        std::fs::remove_file(t.path().join("usr/bin/b")).unwrap();
        std::os::unix::fs::symlink("c", t.path().join("usr/bin/b")).unwrap();
        assert_ne!(tree_input_hash(t.path()).unwrap(), h3);
    }
}
