//! Whether an unpacked upload is a library folder: a `Dockerfile` the
//! library's parser reads (with a `FROM`), an `image.toml` that passes the
//! library's schema, and a `help.md` in UTF-8 — the format of
//! docs/dockerfiles.md, checked with corral-dockerfiles' own parsers.

use std::fs;
use std::path::{Path, PathBuf};

use corral_dockerfiles::library::{ImageSpec, TomlError};
use corral_dockerfiles::parse::{Kind, ParseError};
use corral_dockerfiles::Dockerfile;

/// A checked library folder.
#[derive(Debug, Clone)]
pub struct LibraryFolder {
    /// The folder: the archive's top, or its only directory.
    pub root: PathBuf,
    pub dockerfile: Dockerfile,
    pub spec: ImageSpec,
    pub help: String,
}

/// Why an upload is not a library folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FolderError {
    #[error("the folder has no {0} (a library folder has Dockerfile, image.toml and help.md)")]
    Missing(&'static str),
    #[error("{0} is not a regular file")]
    NotAFile(&'static str),
    #[error("Dockerfile:{0}")]
    Dockerfile(ParseError),
    #[error("the Dockerfile has no FROM instruction")]
    NoFrom,
    #[error(transparent)]
    ImageToml(TomlError),
    #[error("help.md: {0}")]
    Help(&'static str),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Reads a tree recipe upload's `recipe.toml` (a regular file, not a
/// link), at the archive's top or in its one directory.
pub fn recipe_text(dir: &Path) -> Result<Vec<u8>, FolderError> {
    read_file(&folder_root(dir)?, crate::checks::tree::RECIPE_FILE)
}

/// The folder an archive holds: its top, or the one directory at its top
/// (`tar czf x.tar.gz NAME/` is how folders are usually packed).
fn folder_root(dir: &Path) -> Result<PathBuf, FolderError> {
    let read = |source| FolderError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let entries: Vec<_> = fs::read_dir(dir)
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    if let [only] = entries.as_slice() {
        if only.file_type().map_err(read)?.is_dir() {
            return Ok(only.path());
        }
    }
    Ok(dir.to_path_buf())
}

fn read_file(root: &Path, name: &'static str) -> Result<Vec<u8>, FolderError> {
    let path = root.join(name);
    // symlink_metadata: a link named Dockerfile is not read through.
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FolderError::Missing(name)),
        Err(source) => Err(FolderError::Read { path, source }),
        Ok(m) if !m.file_type().is_file() => Err(FolderError::NotAFile(name)),
        Ok(_) => fs::read(&path).map_err(|source| FolderError::Read { path, source }),
    }
}

/// Checks that `dir` (an unpacked upload) is a library folder.
pub fn library_folder(dir: &Path) -> Result<LibraryFolder, FolderError> {
    let root = folder_root(dir)?;
    let dockerfile = corral_dockerfiles::parse_bytes(&read_file(&root, "Dockerfile")?)
        .map_err(FolderError::Dockerfile)?;
    if !dockerfile.instructions.iter().any(|i| i.kind == Kind::From) {
        return Err(FolderError::NoFrom);
    }
    let toml = String::from_utf8(read_file(&root, "image.toml")?).map_err(|_| {
        FolderError::ImageToml(TomlError {
            path: "image.toml".into(),
            line: 1,
            column: 1,
            message: "the file is not UTF-8".into(),
        })
    })?;
    let spec = ImageSpec::parse("image.toml", &toml).map_err(FolderError::ImageToml)?;
    let help = String::from_utf8(read_file(&root, "help.md")?)
        .map_err(|_| FolderError::Help("the file is not UTF-8"))?;
    if help.trim().is_empty() {
        return Err(FolderError::Help("the file is empty"));
    }
    Ok(LibraryFolder {
        root,
        dockerfile,
        spec,
        help,
    })
}
