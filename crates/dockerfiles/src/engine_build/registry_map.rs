//! `--registry-map FROM=TO`: external base images named under `FROM` are
//! taken from `TO` instead, e.g. `quay.io/corral=127.0.0.1:5000/corral` or
//! a locally loaded test base. The Dockerfile sent to the engine has its
//! FROM rewritten; the one on disk (and so the context hash) is unchanged.

use crate::library::Library;
use crate::parse::{expand, Body, Dockerfile};
use std::collections::BTreeMap;

/// One `FROM=TO` prefix mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryMapping {
    pub from: String,
    pub to: String,
}

impl std::str::FromStr for RegistryMapping {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (from, to) = s
            .split_once('=')
            .ok_or_else(|| format!("registry mapping {s:?} is not FROM=TO"))?;
        let (from, to) = (from.trim_end_matches('/'), to.trim_end_matches('/'));
        if from.is_empty() || to.is_empty() {
            return Err(format!("registry mapping {s:?} has an empty side"));
        }
        Ok(Self {
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

/// Mappings, the longest `from` first so the most specific one wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryMap {
    mappings: Vec<RegistryMapping>,
}

impl RegistryMap {
    pub fn new(mut mappings: Vec<RegistryMapping>) -> Self {
        mappings.sort_by_key(|m| std::cmp::Reverse(m.from.len()));
        Self { mappings }
    }

    /// The reference the engine should use for `reference`.
    ///
    /// ```
    /// use corral_dockerfiles::engine_build::{RegistryMap, RegistryMapping};
    /// let m = RegistryMap::new(vec!["quay.io/corral=localhost/test".parse().unwrap()]);
    /// assert_eq!(m.apply("quay.io/corral/base:43"), "localhost/test/base:43");
    /// assert_eq!(m.apply("quay.io/corral-x/base:43"), "quay.io/corral-x/base:43");
    /// ```
    pub fn apply(&self, reference: &str) -> String {
        for m in &self.mappings {
            if let Some(rest) = reference.strip_prefix(m.from.as_str()) {
                if rest.is_empty() || rest.starts_with(['/', ':', '@']) {
                    return format!("{}{rest}", m.to);
                }
            }
        }
        reference.to_string()
    }
}

/// The FROM references of a Dockerfile with the build args applied, each
/// with its byte span: `(start, end, expanded reference)`. Stage names and
/// `scratch` are left out.
pub(crate) fn from_references(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
) -> Vec<(usize, usize, String)> {
    let (global, stages) = df.stages();
    let mut args: BTreeMap<String, Option<String>> = BTreeMap::new();
    for ins in global {
        if let Body::Arg(decls) = &ins.body {
            for d in decls {
                args.insert(d.name.clone(), d.default.clone());
            }
        }
    }
    for (k, v) in build_args {
        args.insert(k.clone(), Some(v.clone()));
    }
    let mut names: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for stage in &stages {
        let Ok(image) = expand(&stage.from.image, df.escape, |n| {
            args.get(n).cloned().flatten()
        }) else {
            continue;
        };
        let is_stage = names.contains(&image.to_ascii_lowercase());
        if let Some(n) = &stage.from.stage_name {
            names.push(n.text.to_ascii_lowercase());
        }
        if image == "scratch" || is_stage {
            continue;
        }
        let span = stage.from.image_span;
        out.push((span.start, span.end, image));
    }
    out
}

/// `text` (the Dockerfile `df` was parsed from) with every external FROM
/// reference mapped. Library references are kept: they name images this
/// build tags locally.
pub fn rewrite_from(
    text: &str,
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    lib: &Library,
    map: &RegistryMap,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, image) in from_references(df, build_args) {
        let name = crate::parse::ImageRef::parse(&image)
            .map(|r| r.name())
            .unwrap_or_default();
        let mapped = map.apply(&image);
        if lib.image_for(&name).is_some() || mapped == image || text.get(start..end).is_none() {
            continue;
        }
        out.push_str(&text[last..start]);
        out.push_str(&mapped);
        last = end;
    }
    out.push_str(&text[last..]);
    out
}
