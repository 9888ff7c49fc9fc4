//! What to rebuild, in order. Inputs are data (the graph, current context
//! hashes, changed files, what was built before behind [`BuiltImages`]) so
//! the planning itself does no I/O.

use crate::graph::{Graph, GraphError, Node};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The label a built image carries with its build context's hash.
pub const CONTEXT_HASH_LABEL: &str = "dev.corral.context-hash";

/// What is known about images built earlier. The lead backs it with the
/// Docker engine (labels and digests of local images); [`StateFile`] backs
/// it with a JSON file.
pub trait BuiltImages {
    /// The `dev.corral.context-hash` label of the built image, if built.
    fn context_hash(&self, image: &str) -> Option<String>;
    /// The digests of the library bases the built image was built on, as
    /// `name=digest` joined by `,` in name order (see [`base_digest_of`]).
    fn base_digest(&self, image: &str) -> Option<String>;
    /// The digest of the built image itself.
    fn image_digest(&self, image: &str) -> Option<String>;
}

/// The `base_digest` an image built now would record.
pub fn base_digest_of(bases: &BTreeSet<String>, built: &dyn BuiltImages) -> String {
    bases
        .iter()
        .map(|b| format!("{b}={}", built.image_digest(b).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The `base_digest` an image built now would record: its library bases,
/// then the external bases whose digest `built` knows (the engine knows
/// them, a state file does not), as `name=digest` joined by `,`.
pub fn node_base_digest(node: &Node, built: &dyn BuiltImages) -> String {
    let mut parts: Vec<String> = node
        .bases
        .iter()
        .map(|b| format!("{b}={}", built.image_digest(b).unwrap_or_default()))
        .collect();
    parts.extend(
        node.external
            .iter()
            .filter_map(|e| built.image_digest(e).map(|d| format!("{e}={d}"))),
    );
    parts.join(",")
}

/// Which images to consider changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Everything.
    All,
    /// Images with changed files (paths relative to the library root, as
    /// `<name>/...`; `library.toml` changes everything), plus dependents.
    Files(Vec<String>),
    /// The dependents of a library image or an external base image.
    BaseChanged(String),
    /// Images whose context hash or bases differ from what was built.
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub image: String,
    pub reasons: Vec<String>,
}

/// Images to rebuild, bases first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn render_text(&self) -> String {
        if self.steps.is_empty() {
            return "nothing to rebuild\n".into();
        }
        self.steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{}. {} ({})\n", i + 1, s.image, s.reasons.join("; ")))
            .collect()
    }
}

/// Plans a rebuild. `hashes` holds the current context hash of each image
/// (needed for [`Trigger::Changed`]).
pub fn plan(
    graph: &Graph,
    trigger: &Trigger,
    hashes: &BTreeMap<String, String>,
    built: &dyn BuiltImages,
) -> Result<Plan, GraphError> {
    let order = graph.order()?;
    let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add =
        |image: &str, why: String| reasons.entry(image.to_string()).or_default().push(why);
    match trigger {
        Trigger::All => {
            for n in &order {
                add(n, "--all".into());
            }
        }
        Trigger::Files(files) => {
            for f in files {
                let f = f.trim_start_matches("./");
                if f == "library.toml" {
                    for n in &order {
                        add(n, "library.toml changed".into());
                    }
                } else if let Some((dir, _)) = f.split_once('/') {
                    if graph.nodes.contains_key(dir) {
                        add(dir, format!("{f} changed"));
                    }
                }
            }
        }
        Trigger::BaseChanged(base) => {
            let users = if graph.nodes.contains_key(base) {
                graph
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.bases.contains(base))
                    .map(|(m, _)| m.clone())
                    .collect()
            } else {
                graph.users_of_external(base)
            };
            if users.is_empty() && !graph.nodes.contains_key(base) {
                return Err(GraphError::UnknownImage(base.clone()));
            }
            for u in users {
                add(&u, format!("base {base} changed"));
            }
        }
        Trigger::Changed => {
            for n in &order {
                match (built.context_hash(n), hashes.get(n)) {
                    (None, _) => add(n, "not built".into()),
                    (Some(old), Some(new)) if old != *new => add(n, "build context changed".into()),
                    _ => {
                        let node = &graph.nodes[n];
                        let has_bases = !(node.bases.is_empty() && node.external.is_empty());
                        if has_bases
                            && built.base_digest(n).as_deref()
                                != Some(node_base_digest(node, built).as_str())
                        {
                            add(n, "a base was rebuilt since".into());
                        }
                    }
                }
            }
        }
    }
    // dependents of anything rebuilt are rebuilt, after it
    let mut steps = Vec::new();
    let mut rebuilt: BTreeSet<String> = BTreeSet::new();
    for n in &order {
        let mut why = reasons.remove(n).unwrap_or_default();
        for b in &graph.nodes[n].bases {
            if rebuilt.contains(b) {
                why.push(format!("base {b} is rebuilt"));
            }
        }
        if !why.is_empty() {
            rebuilt.insert(n.clone());
            steps.push(Step {
                image: n.clone(),
                reasons: why,
            });
        }
    }
    Ok(Plan { steps })
}

/// One built image as the state file records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltRecord {
    pub context_hash: String,
    pub digest: String,
    #[serde(default)]
    pub base_digest: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub images: BTreeMap<String, BuiltRecord>,
}

/// [`BuiltImages`] backed by a JSON file, until the engine backs it.
#[derive(Debug, Clone, Default)]
pub struct StateFile {
    pub path: PathBuf,
    pub state: State,
}

impl StateFile {
    /// Loads the file; a missing file is an empty state.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let state = match crate::files::read_to_string(path, crate::files::STATE_LIMIT) {
            Ok(t) => {
                serde_json::from_str(&t).with_context(|| format!("parsing {}", path.display()))?
            }
            Err(e) if crate::files::is_not_found(&e) => State::default(),
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            path: path.to_path_buf(),
            state,
        })
    }

    pub fn save(&self) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(&self.state)?;
        std::fs::write(&self.path, text + "\n")
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// Records the plan's images as built from their current contexts. The
    /// digest is a stand-in derived from the inputs, so equal inputs give
    /// equal digests.
    pub fn record_plan(&mut self, plan: &Plan, graph: &Graph, hashes: &BTreeMap<String, String>) {
        for step in &plan.steps {
            let context_hash = hashes.get(&step.image).cloned().unwrap_or_default();
            let base_digest = node_base_digest(&graph.nodes[&step.image], self);
            let digest = format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!(
                    "{}\n{context_hash}\n{base_digest}",
                    step.image
                )))
            );
            self.state.images.insert(
                step.image.clone(),
                BuiltRecord {
                    context_hash,
                    digest,
                    base_digest,
                },
            );
        }
    }
}

impl BuiltImages for StateFile {
    fn context_hash(&self, image: &str) -> Option<String> {
        self.state.images.get(image).map(|r| r.context_hash.clone())
    }

    fn base_digest(&self, image: &str) -> Option<String> {
        self.state.images.get(image).map(|r| r.base_digest.clone())
    }

    fn image_digest(&self, image: &str) -> Option<String> {
        self.state.images.get(image).map(|r| r.digest.clone())
    }
}

#[cfg(test)]
mod tests;
