//! The curated library folder: `library.toml` and one folder per image
//! with a `Dockerfile`, `help.md` and `image.toml`.

mod context;
mod image_toml;

pub use context::{context_files, context_hash, ContextEntry, ContextEntryKind, DockerIgnore};
pub use image_toml::*;

use crate::files;
use crate::parse::Dockerfile;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `dockerfiles/library.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryConfig {
    pub library: LibrarySection,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LibrarySection {
    /// Library images are published as `<registry>/<name>:<tag>` and name
    /// each other that way in FROM, e.g. `quay.io/corral/base:43`.
    pub registry: String,
}

/// One image of the library.
#[derive(Debug, Clone)]
pub struct LibraryImage {
    pub name: String,
    pub dir: PathBuf,
    pub dockerfile: Dockerfile,
    pub spec: ImageSpec,
}

/// The whole library, loaded.
#[derive(Debug, Clone)]
pub struct Library {
    pub root: PathBuf,
    pub config: LibraryConfig,
    pub images: BTreeMap<String, LibraryImage>,
}

impl Library {
    /// Loads `root/library.toml` and every `root/<name>/Dockerfile`.
    pub fn load(root: &Path) -> anyhow::Result<Self> {
        let cfg_path = root.join("library.toml");
        let text = files::read_to_string(&cfg_path, files::CONFIG_LIMIT)?;
        let config: LibraryConfig = from_toml(&cfg_path.display().to_string(), &text)?;
        let mut images = BTreeMap::new();
        let mut entries: Vec<_> = std::fs::read_dir(root)
            .with_context(|| format!("listing {}", root.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("listing {}", root.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let dir = entry.path();
            let df_path = dir.join("Dockerfile");
            if !dir.is_dir() || !df_path.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = files::read(&df_path, files::CONFIG_LIMIT)?;
            let dockerfile = crate::parse::parse_bytes(&bytes)
                .with_context(|| format!("parsing {}", df_path.display()))?;
            let toml_path = dir.join("image.toml");
            let text = files::read_to_string(&toml_path, files::CONFIG_LIMIT)?;
            let spec = ImageSpec::parse(&toml_path.display().to_string(), &text)?;
            images.insert(
                name.clone(),
                LibraryImage {
                    name,
                    dir,
                    dockerfile,
                    spec,
                },
            );
        }
        Ok(Self {
            root: root.to_path_buf(),
            config,
            images,
        })
    }

    /// The library image a fully qualified reference names, if any:
    /// `quay.io/corral/base` → `base`.
    pub fn image_for<'r>(&self, reference_name: &'r str) -> Option<&'r str> {
        let prefix = format!("{}/", self.config.library.registry.trim_end_matches('/'));
        reference_name.strip_prefix(&prefix)
    }
}
