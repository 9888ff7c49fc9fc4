//! The errors of reading repository metadata. Building and inspecting
//! images use `anyhow` with context, as the crates they drive do.

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
