//! Reading the files a library is made of: Dockerfiles, `library.toml`,
//! `image.toml`, `.dockerignore` and the state file are read with a size
//! limit and refused when they are devices or FIFOs
//! ([`corral_configfile`]); errors name the path once.

use std::path::Path;

/// The largest Dockerfile, `library.toml`, `image.toml` or `.dockerignore`
/// read: real ones are a few KiB.
pub const CONFIG_LIMIT: u64 = 1024 * 1024;

/// The largest state file read (one record per library image).
pub const STATE_LIMIT: u64 = corral_configfile::DEFAULT_LIMIT;

/// A configuration file's bytes, at most `limit` of them.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, corral_configfile::ConfigFileError> {
    corral_configfile::read(path, limit)
}

/// A configuration file's text, at most `limit` bytes of it.
pub fn read_to_string(
    path: &Path,
    limit: u64,
) -> Result<String, corral_configfile::ConfigFileError> {
    corral_configfile::read_to_string(path, limit)
}

/// Whether reading failed because the file does not exist.
pub fn is_not_found(e: &corral_configfile::ConfigFileError) -> bool {
    matches!(e, corral_configfile::ConfigFileError::Io { source, .. }
        if source.kind() == std::io::ErrorKind::NotFound)
}

/// A walkdir error as an io error that names the entry. walkdir's own
/// message already holds its io error's text, so adding context to it
/// would print "No such file or directory" twice.
pub fn walk_error(root: &Path, e: walkdir::Error) -> anyhow::Error {
    let path = e.path().unwrap_or(root).display().to_string();
    let text = e.to_string();
    match e.into_io_error() {
        Some(io) => anyhow::Error::new(io).context(format!("reading {path}")),
        // a symlink loop: walkdir's message is all there is
        None => anyhow::anyhow!(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_errors_name_the_cause_once() {
        let missing = Path::new("/nonexistent/lib");
        let e = walkdir::WalkDir::new(missing)
            .into_iter()
            .next()
            .unwrap()
            .unwrap_err();
        let msg = format!("{:#}", walk_error(missing, e));
        assert_eq!(
            msg,
            "reading /nonexistent/lib: No such file or directory (os error 2)"
        );
    }
}
