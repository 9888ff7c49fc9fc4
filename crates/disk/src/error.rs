//! The refusals a user can act on; everything else is an `anyhow` chain
//! naming the file, device or command at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    #[error("{tool} is not installed (Debian package {package})")]
    MissingTool { tool: String, package: &'static str },
    #[error("{rev} is not in the repository {repo} (its refs: {refs})")]
    UnknownRev {
        rev: String,
        repo: PathBuf,
        refs: String,
    },
    #[error(
        "a {size} image is too small for commit {commit}: it needs at least {needed_mib} MiB \
         ({tree_mib} MiB of tree); pass --size {suggest}"
    )]
    TooSmall {
        size: String,
        commit: String,
        needed_mib: u64,
        tree_mib: u64,
        suggest: String,
    },
    #[error("the output directory {0} does not exist")]
    NoOutputDir(PathBuf),
    #[error("{0}")]
    Unsupported(String),
    #[error("the build was interrupted; no image was written")]
    Interrupted,
}
