//! [`BuiltImages`] backed by the engine: the labels and IDs of the local
//! images, read once into a snapshot (the plan itself stays synchronous).

use super::engine::{DockerEngine, LocalImage};
use super::provenance::BASE_DIGEST_LABEL;
use super::registry_map::RegistryMap;
use crate::graph::Graph;
use crate::library::Library;
use crate::plan::{BuiltImages, CONTEXT_HASH_LABEL};
use std::collections::{BTreeMap, BTreeSet};

/// The local reference of a library image: `<registry>/<name>:<first tag>`.
pub fn library_reference(lib: &Library, name: &str) -> String {
    let tag = lib
        .images
        .get(name)
        .and_then(|i| i.spec.image.tags.first())
        .map_or("latest", String::as_str);
    format!(
        "{}/{name}:{tag}",
        lib.config.library.registry.trim_end_matches('/')
    )
}

/// What the engine has of the library images and their external bases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineImages {
    /// Library image name → the image under [`library_reference`].
    pub library: BTreeMap<String, LocalImage>,
    /// External FROM reference (as the Dockerfile names it) → the ID of the
    /// image the registry map resolves it to.
    pub external: BTreeMap<String, String>,
}

impl EngineImages {
    /// Reads the library images named in `names` (all when None) and the
    /// external bases they are built FROM.
    pub async fn load(
        engine: &DockerEngine,
        lib: &Library,
        graph: &Graph,
        map: &RegistryMap,
        names: Option<&BTreeSet<String>>,
    ) -> anyhow::Result<Self> {
        let mut out = Self::default();
        for (name, node) in &graph.nodes {
            if names.is_some_and(|n| !n.contains(name)) {
                continue;
            }
            if let Some(img) = engine.inspect(&library_reference(lib, name)).await? {
                out.library.insert(name.clone(), img);
            }
            for ext in &node.external {
                if out.external.contains_key(ext) {
                    continue;
                }
                if let Some(img) = engine.inspect(&map.apply(ext)).await? {
                    out.external.insert(ext.clone(), img.id);
                }
            }
        }
        Ok(out)
    }
}

impl BuiltImages for EngineImages {
    fn context_hash(&self, image: &str) -> Option<String> {
        self.library
            .get(image)?
            .labels
            .get(CONTEXT_HASH_LABEL)
            .cloned()
    }

    fn base_digest(&self, image: &str) -> Option<String> {
        self.library
            .get(image)?
            .labels
            .get(BASE_DIGEST_LABEL)
            .cloned()
    }

    fn image_digest(&self, image: &str) -> Option<String> {
        match self.library.get(image) {
            Some(i) => Some(i.id.clone()),
            None => self.external.get(image).cloned(),
        }
    }
}
