//! `build_tree`: a recipe to a finished root filesystem.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::dnf;
use crate::error::TreeError;
use crate::footprint::{self, Saving};
use crate::limits::SandboxLimits;
use crate::normalize;
use crate::recipe::Recipe;
use crate::rpmdb::{Package, RpmDb};

/// Options of a tree build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// rpm install times and the clamp for file times. Without it the
    /// tree carries the time of the build and is not reproducible.
    pub source_date_epoch: Option<i64>,
    /// Stop dnf (and everything it started) after this long: the build
    /// fails with [`TreeError::TimedOut`] and leaves no tree.
    pub time_limit: Option<std::time::Duration>,
}

/// What a build installed and what the footprint policy saved.
#[derive(Debug, Clone, Serialize)]
pub struct TreeReport {
    pub name: String,
    pub rootfs: PathBuf,
    pub packages: Vec<Package>,
    /// Bytes of regular files in the finished tree.
    pub tree_bytes: u64,
    pub savings: Vec<Saving>,
    pub source_date_epoch: Option<i64>,
}

/// Installs `recipe` into `rootfs`, which must not exist or be empty.
///
/// The tree is built in a sibling temporary directory and renamed into
/// place only when it is complete; on any error `rootfs` is as it was.
pub fn build_tree(
    recipe: &Recipe,
    rootfs: &Path,
    opts: &BuildOptions,
) -> Result<TreeReport, TreeError> {
    build(recipe, rootfs, opts, None)
}

/// [`build_tree`] with dnf and its scriptlets in [`crate::sandbox`]'s
/// bubblewrap sandbox: no network, none of the host but what the build
/// needs. The recipe's repositories must be local (`file://`). The tree,
/// its rpm database and the footprint policy are the same as
/// [`build_tree`]'s.
pub fn build_tree_in_sandbox(
    recipe: &Recipe,
    rootfs: &Path,
    opts: &BuildOptions,
) -> Result<TreeReport, TreeError> {
    build(recipe, rootfs, opts, Some(&SandboxLimits::default()))
}

/// [`build_tree_in_sandbox`] with `limits`: the build runs in a cgroup of
/// its own ([`crate::limits`]) with that process count and memory, made
/// for the build and removed after it (also when it fails or times out).
/// [`build_tree_in_sandbox`] uses [`SandboxLimits::default`], which goes
/// on without limits (a warning) where no cgroup can be made.
pub fn build_tree_in_sandbox_with(
    recipe: &Recipe,
    rootfs: &Path,
    opts: &BuildOptions,
    limits: &SandboxLimits,
) -> Result<TreeReport, TreeError> {
    build(recipe, rootfs, opts, Some(limits))
}

fn build(
    recipe: &Recipe,
    rootfs: &Path,
    opts: &BuildOptions,
    sandbox: Option<&SandboxLimits>,
) -> Result<TreeReport, TreeError> {
    crate::binfmt::check_handler(&recipe.arch, Path::new(crate::binfmt::BINFMT_MISC))?;
    if let Ok(mut entries) = std::fs::read_dir(rootfs) {
        if entries.next().is_some() {
            return Err(TreeError::RootfsExists {
                path: rootfs.to_path_buf(),
            });
        }
    } else if rootfs.symlink_metadata().is_ok() {
        return Err(TreeError::RootfsExists {
            path: rootfs.to_path_buf(),
        });
    }
    let parent = match rootfs.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(TreeError::io("creating", &parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".corral-tree-")
        .tempdir_in(&parent)
        .map_err(TreeError::io("creating a staging directory in", &parent))?;
    // A tree's root is 0755 whatever the umask made of the temp dir.
    std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(TreeError::io("setting the mode of", staging.path()))?;
    let home = tempfile::tempdir().map_err(TreeError::io("creating", "a private HOME for dnf"))?;

    dnf::install(
        recipe,
        staging.path(),
        home.path(),
        opts.source_date_epoch,
        opts.time_limit,
        sandbox,
    )?;
    add_files(recipe, staging.path())?;

    let mut savings = Vec::new();
    let db = RpmDb::find(staging.path());
    if let Some(db) = &db {
        savings.extend(footprint::skipped_by_rpm(&db.files()?));
    }
    if recipe.footprint.drop_caches {
        savings.push(footprint::remove(
            staging.path(),
            "caches",
            footprint::CACHE_PATHS,
        )?);
    }
    if recipe.footprint.drop_logs {
        savings.push(footprint::remove(
            staging.path(),
            "logs",
            footprint::LOG_PATHS,
        )?);
    }
    let packages = match &db {
        Some(db) => db.packages()?,
        None => Vec::new(),
    };
    normalize::rpmdb_side_files(staging.path(), dnf::RPMDB_PATH)?;
    if let Some(epoch) = opts.source_date_epoch {
        normalize::clamp_mtimes(staging.path(), epoch)?;
    }
    let tree_bytes = tree_bytes(staging.path())?;

    // An empty directory at rootfs may stand in the way of the rename.
    if rootfs.is_dir() {
        std::fs::remove_dir(rootfs).map_err(TreeError::io("replacing", rootfs))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, rootfs).map_err(|source| {
        let _ = std::fs::remove_dir_all(&staged);
        TreeError::Io {
            path: rootfs.to_path_buf(),
            action: "moving the finished tree to",
            source,
        }
    })?;
    tracing::info!(rootfs = %rootfs.display(), packages = packages.len(), tree_bytes, "tree built");
    Ok(TreeReport {
        name: recipe.name.clone(),
        rootfs: rootfs.to_path_buf(),
        packages,
        tree_bytes,
        savings,
        source_date_epoch: opts.source_date_epoch,
    })
}

fn add_files(recipe: &Recipe, root: &Path) -> Result<(), TreeError> {
    for file in &recipe.files {
        let dest = inside_tree(root, &file.path)?;
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(TreeError::io("creating", dir))?;
        }
        // The file replaces a link at its path rather than writing
        // wherever the link points.
        if dest
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            std::fs::remove_file(&dest).map_err(TreeError::io("replacing the link", &dest))?;
        }
        match (&file.content, &file.source) {
            (Some(content), _) => {
                std::fs::write(&dest, content).map_err(TreeError::io("writing", &dest))?
            }
            (_, Some(source)) => {
                // std::fs::copy would copy /dev/zero until the disk is full
                let meta = std::fs::metadata(source).map_err(TreeError::io("reading", source))?;
                if !meta.is_file() {
                    return Err(TreeError::RecipeInvalid {
                        path: source.into(),
                        message: "a [[file]] source must be a regular file".into(),
                    });
                }
                std::fs::copy(source, &dest).map_err(TreeError::io("copying", source))?;
            }
            _ => unreachable!("validated: exactly one of content and source"),
        }
        let mode = u32::from_str_radix(&file.mode, 8).unwrap_or(0o644);
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
            .map_err(TreeError::io("setting the mode of", &dest))?;
    }
    Ok(())
}

/// Where the `[[file]]` at `path` (absolute, plain names: the recipe
/// checks) goes under `root`. A directory on the way that the packages
/// made a symbolic link would take the write wherever the link points, the
/// builder's own file system included when it is absolute: refused, naming
/// the link.
fn inside_tree(root: &Path, path: &str) -> Result<PathBuf, TreeError> {
    corral_oci::beneath::path_beneath(root, Path::new(path)).map_err(|e| {
        TreeError::RecipeInvalid {
            path: PathBuf::from(path),
            message: format!(
                "a [[file]] path goes through /{}, a symbolic link to {} in the tree: give the path without links",
                e.link.display(),
                e.target
            ),
        }
    })
}

/// Bytes held by regular files under `root`.
pub fn tree_bytes(root: &Path) -> Result<u64, TreeError> {
    let mut total = 0;
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.map_err(TreeError::walk("walking", root))?;
        if entry.file_type().is_file() {
            total += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe_with(path: &str) -> Recipe {
        let mut recipe: Recipe = toml::from_str(
            "name = \"t\"\nreleasever = \"43\"\narch = \"x86_64\"\npackages = [\"p\"]\n",
        )
        .unwrap();
        recipe.files.push(crate::recipe::ExtraFile {
            path: path.into(),
            content: Some("from the recipe\n".into()),
            source: None,
            mode: "0644".into(),
        });
        recipe
    }

    #[test]
    fn a_file_never_writes_through_a_link_out_of_the_tree() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/lib/systemd/system")).unwrap();
        std::fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
        // A package's absolute links, as Fedora trees have them: one to a
        // directory, one to a file (a unit enabled in .wants).
        std::os::unix::fs::symlink(outside.path(), r.join("etc/away")).unwrap();
        let victim = outside.path().join("victim.service");
        std::fs::write(&victim, "the builder's own file\n").unwrap();
        std::os::unix::fs::symlink(&victim, r.join("etc/systemd/system/x.service")).unwrap();

        let err = add_files(&recipe_with("/etc/away/planted"), r).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/etc/away") && msg.contains("symbolic link"),
            "{msg}"
        );
        assert!(
            !outside.path().join("planted").exists(),
            "wrote through the link"
        );

        // The last component a link: the file replaces the link.
        add_files(&recipe_with("/etc/systemd/system/x.service"), r).unwrap();
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "the builder's own file\n"
        );
        let placed = r.join("etc/systemd/system/x.service");
        assert!(!placed.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(
            std::fs::read_to_string(placed).unwrap(),
            "from the recipe\n"
        );

        // Plain directories, existing or not, are fine.
        add_files(&recipe_with("/usr/lib/systemd/system/new/y.conf"), r).unwrap();
        assert!(r.join("usr/lib/systemd/system/new/y.conf").is_file());
    }
}
