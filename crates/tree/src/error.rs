//! Errors of tree recipes and builds.

use std::path::{Path, PathBuf};

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
    /// A step ran past the build's time limit and was stopped.
    #[error("{what} ran past the time limit of {secs} s and was stopped")]
    TimedOut { what: String, secs: u64 },
    // The io error is the source, not part of the message: the chain
    // printed with `{:#}` shows it once.
    #[error("{action} {}", path.display())]
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
    #[error(
        "cannot run {arch} programs on this host: the binfmt_misc handler {} is missing or \
         disabled (install qemu-user-static and binfmt-support, or run scripts/setup.sh)",
        path.display()
    )]
    NoBinfmtHandler { arch: String, path: PathBuf },
    /// A sandboxed build has no network: every repository and key must
    /// be a local file.
    #[error(
        "repository `{repo}` is not local ({url}): a sandboxed build has no network; \
         use a file:// URL or a path"
    )]
    NotLocal { repo: String, url: String },
    /// A program the build needs is not installed.
    #[error("{tool} is not installed: {hint}")]
    MissingTool {
        tool: &'static str,
        hint: &'static str,
    },
    /// No cgroup could be made for a sandboxed build that must have its
    /// process and memory limits.
    #[error(
        "cannot limit the sandboxed build's processes and memory: no cgroup could be made ({detail}); \
         run as root on a host with the pids and memory cgroup controllers"
    )]
    NoCgroup { detail: String },
    #[error("{}: not a directory or a tar archive", path.display())]
    NotATree { path: PathBuf },
    /// A recipe file that could not be read (missing, too large, a device).
    #[error(transparent)]
    Config(#[from] corral_configfile::ConfigFileError),
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

    /// A walkdir error as an io error on the entry it failed on. walkdir's
    /// own message already holds its io error's text, which the chain
    /// would then print twice.
    pub(crate) fn walk<'a>(
        action: &'static str,
        root: &'a Path,
    ) -> impl FnOnce(walkdir::Error) -> TreeError + 'a {
        move |e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            // a symlink loop has no io error: walkdir's message is all
            let text = e.to_string();
            let source = e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other(text));
            TreeError::Io {
                path,
                action,
                source,
            }
        }
    }
}
