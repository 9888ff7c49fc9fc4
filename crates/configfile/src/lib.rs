//! Reading the small files corral takes as configuration (recipes, stream
//! files, `library.toml`, Dockerfiles, state files) so that a wrong path
//! cannot hang or exhaust the process.
//!
//! [`read_to_string`] and [`read`] refuse anything but a regular file
//! (`/dev/zero`, a FIFO, a socket, a directory) by name before reading a
//! byte, and stop at a size limit ([`DEFAULT_LIMIT`] unless the caller
//! chooses a smaller one). Errors name the path once: the I/O error is the
//! source of [`ConfigFileError::Io`], not part of its message, so printing
//! the chain with `{:#}` shows it a single time.
//!
//! [`parse_size`] reads the sizes those files hold (`10G`, `512M`);
//! [`line_col`] turns a parser's byte offset into the line and column an
//! error names.
//!
//! ```no_run
//! let text = corral_configfile::read_to_string(
//!     "recipes/sample-base.toml".as_ref(),
//!     corral_configfile::DEFAULT_LIMIT,
//! )?;
//! # Ok::<(), corral_configfile::ConfigFileError>(())
//! ```

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The limit for configuration files when the caller has no tighter one:
/// far above any real recipe, library or state file, far below memory.
pub const DEFAULT_LIMIT: u64 = 4 * 1024 * 1024;

/// Why a configuration file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// Opening or reading failed; the I/O error is the source.
    #[error("reading {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The path is a device, a FIFO, a socket or a directory.
    #[error("{}: is {kind}, not a regular file", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    /// The file is larger than the limit for this kind of file.
    #[error("{}: larger than the {} limit for this file", path.display(), human(*limit))]
    TooLarge { path: PathBuf, limit: u64 },
    /// The file is not UTF-8 text.
    #[error("{}: not UTF-8 text (invalid byte at offset {offset})", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
}

/// Reads a configuration file of at most `limit` bytes as UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, ConfigFileError> {
    let bytes = read(path, limit)?;
    String::from_utf8(bytes).map_err(|e| ConfigFileError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Reads a configuration file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ConfigFileError> {
    let io = |source| ConfigFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Looked at before opening: opening a FIFO with no writer blocks, and
    // opening some devices has side effects.
    let meta = std::fs::metadata(path).map_err(io)?;
    check_kind(path, &meta)?;
    if meta.len() > limit {
        return Err(too_large(path, limit));
    }
    // O_NONBLOCK so that a FIFO swapped in after the check cannot block the
    // open; the opened file is checked again below.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    check_kind(path, &file.metadata().map_err(io)?)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // One byte past the limit tells a file that grew past it from one that
    // ends exactly there.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, limit));
    }
    Ok(bytes)
}

fn check_kind(path: &Path, meta: &Metadata) -> Result<(), ConfigFileError> {
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(ConfigFileError::NotAFile {
        path: path.to_path_buf(),
        kind,
    })
}

fn too_large(path: &Path, limit: u64) -> ConfigFileError {
    ConfigFileError::TooLarge {
        path: path.to_path_buf(),
        limit,
    }
}

/// `4 MiB`, `64 KiB`, `100 bytes`.
fn human(n: u64) -> String {
    if n >= 1024 * 1024 && n % (1024 * 1024) == 0 {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// Parses a size like `10G`, `512M` or `1073741824` (bytes); the
/// suffixes K, M, G and T are powers of 1024.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let (digits, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 10G, 512M or a byte count"))?;
    n.checked_mul(1u64 << shift)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is out of range"))
}

/// 1-based line and column (in characters) of byte `offset` in `text`,
/// for errors that point into a configuration file.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn reads_a_small_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.toml");
        std::fs::write(&p, "name = \"x\"\n").unwrap();
        assert_eq!(read_to_string(&p, 64).unwrap(), "name = \"x\"\n");
        // exactly at the limit is fine
        assert_eq!(read(&p, 11).unwrap().len(), 11);
    }

    #[test]
    fn refuses_a_file_over_the_limit_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.toml");
        std::fs::write(&p, vec![b'#'; 1025]).unwrap();
        let err = read(&p, 1024).unwrap_err();
        assert!(matches!(err, ConfigFileError::TooLarge { limit: 1024, .. }));
        assert_eq!(
            err.to_string(),
            format!("{}: larger than the 1 KiB limit for this file", p.display())
        );
    }

    #[test]
    fn refuses_dev_zero_without_reading_it() {
        let err = read_to_string(Path::new("/dev/zero"), DEFAULT_LIMIT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero: is a character device, not a regular file"
        );
    }

    #[test]
    fn refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo failed");
        let err = read(&p, DEFAULT_LIMIT).unwrap_err();
        assert!(
            matches!(err, ConfigFileError::NotAFile { kind: "a FIFO", .. }),
            "{err}"
        );
        let err = read(dir.path(), DEFAULT_LIMIT).unwrap_err();
        assert!(err
            .to_string()
            .ends_with("is a directory, not a regular file"));
    }

    #[test]
    fn a_missing_file_names_the_path_once() {
        let err = read(Path::new("/nonexistent/r.toml"), DEFAULT_LIMIT).unwrap_err();
        // The message names the path; the io error is only the source, so
        // the chain printed with `{:#}` says "No such file" once.
        assert_eq!(err.to_string(), "reading /nonexistent/r.toml");
        let source = err.source().unwrap().to_string();
        assert!(source.starts_with("No such file or directory"), "{source}");
    }

    #[test]
    fn names_invalid_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin");
        std::fs::write(&p, b"ab\xffcd").unwrap();
        let err = read_to_string(&p, 64).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: not UTF-8 text (invalid byte at offset 2)", p.display())
        );
    }

    #[test]
    fn sizes_are_powers_of_1024() {
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert!(parse_size("1GiB").is_err());
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab\ncd", 99), (2, 3));
        // an offset inside a character counts from its start
        assert_eq!(line_col("é\nx", 1), (1, 1));
    }
}
