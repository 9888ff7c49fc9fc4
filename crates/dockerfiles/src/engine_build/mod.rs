//! Building the library through the Docker Engine API.
//!
//! - [`engine`]: the bollard client (inspect, build, tag, push).
//! - [`context_tar`]: the build context tar, from the same file list as the
//!   context hash ([`crate::library::context_files`]).
//! - [`registry_map`]: `--registry-map FROM=TO` for external FROM lines.
//! - [`provenance`]: the `dev.corral.*` labels every built image carries.
//! - [`engine_images`]: [`crate::plan::BuiltImages`] backed by the engine.
//! - [`schedule`]: bases first, independent images in parallel, a failure
//!   stopping only its dependents.
//! - [`platforms`]: one build per architecture an image lists, joined
//!   into an image index per tag.
//! - [`progress`]: build output on stderr.
//!
//! [`build_library`] ties them together; `corral dockerfiles build` calls it.

pub mod context_tar;
pub mod engine;
pub mod engine_images;
pub mod platforms;
pub mod progress;
pub mod provenance;
pub mod registry_map;
pub mod schedule;

pub use engine::{Credentials, DockerEngine, DEFAULT_ENGINE};
pub use engine_images::{library_reference, EngineImages};
pub use progress::BuildProgress;
pub use registry_map::{RegistryMap, RegistryMapping};
pub use schedule::Summary;

use crate::graph::{Graph, GraphError, Node};
use crate::library::{context_hash, Library};
use crate::plan::{self, node_base_digest, Trigger};
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};

/// What to build and where to put it.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Library images to build; empty means all.
    pub images: Vec<String>,
    /// Only the images a plan against the engine lists (of `images`).
    pub changed_only: bool,
    /// `REGISTRY[/namespace]` to push every tag to, as `…/<name>:<tag>`.
    pub push: Option<String>,
    pub credentials: Option<Credentials>,
    /// Builds at once (at least 1).
    pub jobs: usize,
    pub registry_map: RegistryMap,
    /// The build containers' network: `none` or `host`.
    pub network: String,
    /// Build every image for each architecture its image.toml lists and
    /// push one image index per tag (needs `push`); see [`platforms`].
    pub all_platforms: bool,
}

/// Builds the selected images of `lib`, bases first, and reports each one.
/// Errors are for what stops the whole run (an unknown image name, the
/// engine unreachable); a failed image is in the [`Summary`].
pub async fn build_library(
    engine: &DockerEngine,
    lib: &Library,
    graph: &Graph,
    opts: &BuildOptions,
    progress: &BuildProgress,
) -> anyhow::Result<Summary> {
    let order = graph.order()?;
    for n in &opts.images {
        if !graph.nodes.contains_key(n) {
            return Err(GraphError::UnknownImage(n.clone()).into());
        }
    }
    let mut selected: BTreeSet<String> = if opts.images.is_empty() {
        order.iter().cloned().collect()
    } else {
        opts.images.iter().cloned().collect()
    };
    if opts.changed_only {
        let built = EngineImages::load(engine, lib, graph, &opts.registry_map, None).await?;
        let hashes = context_hashes(lib)?;
        let plan = plan::plan(graph, &Trigger::Changed, &hashes, &built)?;
        let planned: BTreeSet<String> = plan.steps.into_iter().map(|s| s.image).collect();
        selected.retain(|n| planned.contains(n));
    }
    let order: Vec<String> = order.into_iter().filter(|n| selected.contains(n)).collect();
    let deps: BTreeMap<String, BTreeSet<String>> = order
        .iter()
        .map(|n| {
            let bases = graph.nodes[n]
                .bases
                .iter()
                .filter(|b| selected.contains(*b))
                .cloned()
                .collect();
            (n.clone(), bases)
        })
        .collect();
    if opts.all_platforms {
        return platforms::build_all_platforms(engine, lib, graph, opts, progress, &order, &deps)
            .await;
    }
    tracing::info!(images = order.len(), jobs = opts.jobs, "building");
    let summary = schedule::run_in_order(&order, &deps, opts.jobs, |name| async move {
        let result = build_one(engine, lib, graph, opts, progress, &name, None).await;
        match &result {
            Ok(()) => progress.finish(&name, "built"),
            Err(e) => progress.finish(&name, &format!("failed: {e:#}")),
        }
        result
    })
    .await;
    Ok(summary)
}

/// `args` with TARGETARCH set to `arch`, unless image.toml's build-args
/// already set it (a cross build says so there).
pub fn with_target_arch(args: &BTreeMap<String, String>, arch: &str) -> BTreeMap<String, String> {
    let mut args = args.clone();
    args.entry("TARGETARCH".to_string())
        .or_insert_with(|| arch.to_string());
    args
}

/// The current context hash of every library image.
pub fn context_hashes(lib: &Library) -> anyhow::Result<BTreeMap<String, String>> {
    lib.images
        .iter()
        .map(|(name, img)| {
            context_hash(&img.dir)
                .with_context(|| format!("hashing the build context of {name}"))
                .map(|h| (name.clone(), h))
        })
        .collect()
}

/// The base digest `node` would record if built now.
async fn current_base_digest(
    engine: &DockerEngine,
    lib: &Library,
    node: &Node,
    map: &RegistryMap,
) -> anyhow::Result<String> {
    let mut now = EngineImages::default();
    for b in &node.bases {
        if let Some(img) = engine.inspect(&library_reference(lib, b)).await? {
            now.library.insert(b.clone(), img);
        }
    }
    for e in &node.external {
        if let Some(img) = engine.inspect(&map.apply(e)).await? {
            now.external.insert(e.clone(), img.id);
        }
    }
    Ok(node_base_digest(node, &now))
}

/// Builds `name` (for `platform`, `os/arch`, or the engine's own), tags
/// it and, unless it is a platform build, pushes its tags.
async fn build_one(
    engine: &DockerEngine,
    lib: &Library,
    graph: &Graph,
    opts: &BuildOptions,
    progress: &BuildProgress,
    name: &str,
    platform: Option<&str>,
) -> anyhow::Result<()> {
    let img = &lib.images[name];
    let dir = img.dir.clone();
    let df_path = dir.join("Dockerfile");
    let text = crate::files::read_to_string(&df_path, crate::files::CONFIG_LIMIT)?;
    let dockerfile = registry_map::rewrite_from(
        &text,
        &img.dockerfile,
        &img.spec.image.build_args,
        lib,
        &opts.registry_map,
    );
    let (hash, context) = tokio::task::spawn_blocking(move || {
        let hash = context_hash(&dir)?;
        let tar = context_tar::context_tar(&dir, &dockerfile, context_tar::source_date_epoch())?;
        anyhow::Ok((hash, tar))
    })
    .await
    .context("packing the build context")?
    .with_context(|| format!("packing the build context of {name}"))?;
    let base_digest = current_base_digest(engine, lib, &graph.nodes[name], &opts.registry_map)
        .await
        .with_context(|| format!("reading the bases of {name}"))?;
    // The classic builder does not set the platform ARGs BuildKit does;
    // the `architecture` label (CR029) comes from TARGETARCH.
    let build_args = if img.spec.image.build_args.contains_key("TARGETARCH") {
        img.spec.image.build_args.clone()
    } else if let Some(p) = platform {
        let arch = p.split('/').nth(1).unwrap_or(p);
        with_target_arch(&img.spec.image.build_args, arch)
    } else {
        with_target_arch(&img.spec.image.build_args, &engine.arch().await?)
    };
    let revision = provenance::source_revision(&img.dir);
    let reference = library_reference(lib, name);
    match platform {
        Some(p) => progress.line(name, &format!("building {reference} for {p}")),
        None => progress.line(name, &format!("building {reference}")),
    }
    let id = engine
        .build(
            engine::BuildRequest {
                tag: reference.clone(),
                context,
                build_args,
                labels: provenance::labels(&hash, &base_digest, revision.as_deref()),
                network: opts.network.clone(),
                platform: platform.map(str::to_string),
            },
            |l| progress.line(name, l),
        )
        .await?;
    tracing::info!(image = name, id = %id, "built");
    let repo = reference
        .rsplit_once(':')
        .map_or(reference.as_str(), |(r, _)| r);
    for tag in img.spec.image.tags.iter().skip(1) {
        engine.tag(&reference, repo, tag).await?;
    }
    if let (Some(registry), None) = (&opts.push, platform) {
        let target = format!("{}/{name}", registry.trim_end_matches('/'));
        for tag in &img.spec.image.tags {
            engine.tag(&reference, &target, tag).await?;
            progress.line(name, &format!("pushing {target}:{tag}"));
            engine
                .push(&target, tag, opts.credentials.as_ref(), |l| {
                    progress.line(name, l)
                })
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
