//! The errors of reading a release's configuration. Running steps uses `anyhow`
//! with context, as the crates it drives do.

use std::path::PathBuf;

/// `release.toml` could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not readable, not a regular file, too large or not UTF-8; the
    /// source says which, once.
    #[error(transparent)]
    Read(#[from] corral_configfile::ConfigFileError),
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}
