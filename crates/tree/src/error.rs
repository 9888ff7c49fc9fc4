//! Errors of tree recipes and builds.

use std::path::PathBuf;

/// What went wrong reading a recipe or building a tree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    #[error("{}:{line}:{column}: {message}", path.display())]
    RecipeSyntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    RecipeInvalid { path: PathBuf, message: String },
    #[error("{action} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("no package `{package}` in the repositories searched: {}", repos.join(", "))]
    PackageNotFound { package: String, repos: Vec<String> },
    #[error("{tool} failed ({status}): {detail}")]
    Tool {
        tool: &'static str,
        status: String,
        detail: String,
    },
    #[error("{}: the rootfs already exists and is not empty", path.display())]
    RootfsExists { path: PathBuf },
    #[error("{}: not a directory or a tar archive", path.display())]
    NotATree { path: PathBuf },
}

impl TreeError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> TreeError {
        let path = path.into();
        move |source| TreeError::Io {
            path,
            action,
            source,
        }
    }
}
