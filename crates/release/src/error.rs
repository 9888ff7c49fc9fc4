//! The errors of reading a release's inputs. Running steps uses `anyhow`
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

/// Repository metadata could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepodataError {
    #[error("reading {location}")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    #[error("{0}: only local repositories (file:// or a path) can be read")]
    Remote(String),
}
