//! The dependency graph of the library, from each image's FROM lines.

use crate::library::Library;
use crate::parse::{expand, Body, ImageRef};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Why the graph could not be built or ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    #[error("{image}: base image {reference} is not in the library (no {base}/Dockerfile)")]
    MissingBase {
        image: String,
        reference: String,
        base: String,
    },
    #[error("{image}: base image {reference} uses tag {tag:?}, which {base}/image.toml does not list (tags: {tags})")]
    MissingTag {
        image: String,
        reference: String,
        base: String,
        tag: String,
        tags: String,
    },
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("{image}: FROM {from}: {message}")]
    From {
        image: String,
        from: String,
        message: String,
    },
    #[error("no image {0:?} in the library")]
    UnknownImage(String),
}

/// One library image in the graph.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Node {
    /// Library images this one is built FROM (any stage).
    pub bases: BTreeSet<String>,
    /// Images from outside the library it is built FROM.
    pub external: BTreeSet<String>,
    /// Number of build stages.
    pub stages: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Graph {
    pub nodes: BTreeMap<String, Node>,
}

impl Graph {
    /// Resolves every FROM of every library image.
    pub fn build(lib: &Library) -> Result<Self, GraphError> {
        let mut nodes = BTreeMap::new();
        for (name, img) in &lib.images {
            let (global, stages) = img.dockerfile.stages();
            let mut args: BTreeMap<String, Option<String>> = BTreeMap::new();
            for ins in global {
                if let Body::Arg(decls) = &ins.body {
                    for d in decls {
                        args.insert(d.name.clone(), d.default.clone());
                    }
                }
            }
            for (k, v) in &img.spec.image.build_args {
                args.insert(k.clone(), Some(v.clone()));
            }
            let mut node = Node {
                stages: stages.len(),
                ..Node::default()
            };
            let mut stage_names: Vec<String> = Vec::new();
            for stage in &stages {
                let from = &stage.from.image;
                let err = |message: String| GraphError::From {
                    image: name.clone(),
                    from: from.clone(),
                    message,
                };
                let image = expand(from, img.dockerfile.escape, |n| {
                    args.get(n).cloned().flatten()
                })
                .map_err(|e| err(e.to_string()))?;
                if let Some(n) = &stage.from.stage_name {
                    stage_names.push(n.text.to_ascii_lowercase());
                }
                let earlier = &stage_names
                    [..stage_names.len() - usize::from(stage.from.stage_name.is_some())];
                if image == "scratch" || earlier.contains(&image.to_ascii_lowercase()) {
                    continue;
                }
                let r = ImageRef::parse(&image).map_err(|e| err(format!("{image}: {e}")))?;
                match lib.image_for(&r.name()) {
                    Some(base) => {
                        let Some(base_img) = lib.images.get(base) else {
                            return Err(GraphError::MissingBase {
                                image: name.clone(),
                                reference: image,
                                base: base.to_string(),
                            });
                        };
                        if let Some(tag) = &r.tag {
                            if !base_img.spec.image.tags.contains(tag) {
                                return Err(GraphError::MissingTag {
                                    image: name.clone(),
                                    reference: image.clone(),
                                    base: base.to_string(),
                                    tag: tag.clone(),
                                    tags: base_img.spec.image.tags.join(", "),
                                });
                            }
                        }
                        node.bases.insert(base.to_string());
                    }
                    None => {
                        node.external.insert(image);
                    }
                }
            }
            nodes.insert(name.clone(), node);
        }
        let g = Self { nodes };
        g.order()?;
        Ok(g)
    }

    /// Every image after its bases; ties broken by name. A cycle is an error
    /// naming the images on it.
    pub fn order(&self) -> Result<Vec<String>, GraphError> {
        let mut pending: BTreeMap<&str, usize> = self
            .nodes
            .iter()
            .map(|(n, node)| (n.as_str(), node.bases.len()))
            .collect();
        let mut ready: BTreeSet<&str> = pending
            .iter()
            .filter(|(_, &d)| d == 0)
            .map(|(n, _)| *n)
            .collect();
        let mut out = Vec::new();
        while let Some(n) = ready.pop_first() {
            pending.remove(n);
            out.push(n.to_string());
            for (m, node) in &self.nodes {
                if node.bases.contains(n) {
                    if let Some(d) = pending.get_mut(m.as_str()) {
                        *d -= 1;
                        if *d == 0 {
                            ready.insert(m);
                        }
                    }
                }
            }
        }
        if pending.is_empty() {
            return Ok(out);
        }
        // every image left has a base that is also left: walk bases to a repeat
        let mut path: Vec<String> = Vec::new();
        let mut current = pending
            .keys()
            .next()
            .map(|s| s.to_string())
            .unwrap_or_default();
        while !path.contains(&current) {
            path.push(current.clone());
            current = self.nodes[&current]
                .bases
                .iter()
                .find(|b| pending.contains_key(b.as_str()))
                .cloned()
                .unwrap_or_default();
        }
        let start = path.iter().position(|p| *p == current).unwrap_or(0);
        let mut cycle: Vec<String> = path[start..].iter().rev().cloned().collect();
        cycle.push(cycle[0].clone());
        Err(GraphError::Cycle(cycle))
    }

    /// Images built (directly or not) FROM `name`, not including it.
    pub fn dependents(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            for (m, node) in &self.nodes {
                if node.bases.contains(&n) && out.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        out
    }

    /// Images whose FROM names the external image `reference` (with or
    /// without its tag).
    pub fn users_of_external(&self, reference: &str) -> BTreeSet<String> {
        let name_of = |s: &str| {
            ImageRef::parse(s)
                .map(|r| r.name())
                .unwrap_or_else(|_| s.to_string())
        };
        let has_tag =
            ImageRef::parse(reference).is_ok_and(|r| r.tag.is_some() || r.digest.is_some());
        self.nodes
            .iter()
            .filter(|(_, node)| {
                node.external
                    .iter()
                    .any(|e| e == reference || (!has_tag && name_of(e) == name_of(reference)))
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let order = self
            .order()
            .unwrap_or_else(|_| self.nodes.keys().cloned().collect());
        for name in order {
            let node = &self.nodes[&name];
            let from: Vec<String> = node
                .bases
                .iter()
                .cloned()
                .chain(node.external.iter().map(|e| format!("{e} (external)")))
                .collect();
            s.push_str(&format!("{name} <- {}\n", from.join(", ")));
        }
        s
    }

    pub fn render_dot(&self) -> String {
        let mut s = String::from("digraph dockerfiles {\n  rankdir=LR;\n");
        for (name, node) in &self.nodes {
            s.push_str(&format!("  \"{name}\";\n"));
            for b in &node.bases {
                s.push_str(&format!("  \"{b}\" -> \"{name}\";\n"));
            }
            for e in &node.external {
                s.push_str(&format!(
                    "  \"{e}\" [shape=box, style=dashed];\n  \"{e}\" -> \"{name}\";\n"
                ));
            }
        }
        s.push_str("}\n");
        s
    }

    pub fn render_json(&self) -> serde_json::Value {
        serde_json::json!({
            "order": self.order().unwrap_or_default(),
            "images": self.nodes,
        })
    }
}
