//! The checks of a tree recipe (`recipe.toml` at the top of the upload):
//! **lint**, the recipe parses and passes corral-tree's rules (the error
//! names the line and column) and gives its files as content, never as a
//! path on the runner's host; **build**, the recipe's own repositories
//! replaced by the portal's (`[[portal.checks.tree_repo]]`, local
//! repositories: nothing is fetched from the network), dnf resolves and
//! installs the packages into a scratch tree, dnf and the rpm scriptlets
//! in corral-tree's bubblewrap sandbox (no network, none of the host but
//! the scratch tree and the repositories; a missing package is named); **test**, the tree's rpm database lists every package the recipe
//! names. The scratch tree is removed afterwards.

use std::fmt::Write as _;
use std::path::Path;

use corral_tree::{build_tree_in_sandbox_with, BuildOptions, Recipe, SandboxLimits};

/// The limits of a tree build: its time, and its sandbox's processes and
/// memory (a cgroup of its own; no cgroup, no build: the content is
/// hostile).
#[derive(Debug, Clone)]
pub struct TreeLimits {
    pub time: std::time::Duration,
    pub pids_max: u32,
    pub memory_max: u64,
    /// Where the cgroup file systems are mounted (the host's).
    pub cgroup_root: std::path::PathBuf,
}

impl TreeLimits {
    /// The limits `[portal.checks]` gives: `timeout`, `pids_max`,
    /// `tree_memory`.
    pub fn of(c: &crate::config::ChecksConfig) -> TreeLimits {
        TreeLimits {
            time: std::time::Duration::from_secs(c.timeout_secs),
            pids_max: c.pids_max,
            memory_max: c.tree_memory,
            cgroup_root: corral_tree::limits::CGROUP_ROOT.into(),
        }
    }

    fn sandbox(&self) -> SandboxLimits {
        SandboxLimits {
            pids_max: self.pids_max,
            memory_max: self.memory_max,
            required: true,
            cgroup_root: self.cgroup_root.clone(),
        }
    }
}

/// A time limit with the default process and memory limits.
impl From<std::time::Duration> for TreeLimits {
    fn from(time: std::time::Duration) -> TreeLimits {
        let d = SandboxLimits::default();
        TreeLimits {
            time,
            pids_max: d.pids_max,
            memory_max: d.memory_max,
            cgroup_root: d.cgroup_root,
        }
    }
}

use super::{Outcome, Results};

/// The recipe's file name in an upload.
pub const RECIPE_FILE: &str = "recipe.toml";

fn not_run(why: &str) -> Outcome {
    Outcome::failed(format!("not run: {why}\n"))
}

/// Runs the three checks on a recipe's text. Blocks (dnf).
/// `limits` bound the tree build (the `[portal.checks] timeout` and
/// `pids_max` the Dockerfile builds have too, and `tree_memory`).
pub fn check_recipe(
    text: &[u8],
    repos: &[toml::Table],
    scratch: &Path,
    limits: impl Into<TreeLimits>,
) -> Results {
    let limits = limits.into();
    let origin = Path::new(RECIPE_FILE);
    let failed_lint = |log: String| Results {
        lint: Outcome::failed(log),
        build: not_run("the lint failed"),
        test: not_run("the lint failed"),
        image: None,
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return failed_lint(format!("{RECIPE_FILE}: the file is not UTF-8\n"));
    };
    let recipe = match Recipe::parse(text, origin) {
        Ok(r) => r,
        Err(e) => return failed_lint(format!("{e}\n")),
    };
    // A `source` is a path on the machine that builds: the runner's host
    // here, so only inline content is taken.
    if let Some(f) = recipe.files.iter().find(|f| f.source.is_some()) {
        return failed_lint(format!(
            "{RECIPE_FILE}: file {}: a source file is a path on the runner's host; \
             portal recipes give their files as content\n",
            f.path
        ));
    }
    let lint = Outcome::passed(format!(
        "{RECIPE_FILE}: {} for {} release {}, packages: {}\n",
        recipe.name,
        recipe.arch,
        recipe.releasever,
        recipe.packages.join(", ")
    ));
    let (build, test) = build_and_test(text, &recipe, repos, scratch, &limits);
    Results {
        lint,
        build,
        test,
        image: None,
    }
}

/// The recipe as the portal builds it: the author's repositories
/// replaced by the portal's, resolved; and its text (before resolving:
/// the portal's repositories are absolute already).
fn portal_recipe(text: &str, repos: &[toml::Table]) -> Result<(Recipe, String), String> {
    let origin = Path::new(RECIPE_FILE);
    if repos.is_empty() {
        return Err(
            "no package repositories to build from: the portal has no [[portal.checks.tree_repo]]"
                .into(),
        );
    }
    // The recipe's repositories are the author's; the build uses the
    // portal's alone.
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| format!("{RECIPE_FILE}: {e}"))?;
    doc.insert(
        "repo".into(),
        toml::Value::Array(repos.iter().cloned().map(toml::Value::Table).collect()),
    );
    let spliced = toml::to_string(&doc).map_err(|e| format!("{RECIPE_FILE}: {e}"))?;
    let mut built =
        Recipe::parse(&spliced, origin).map_err(|e| format!("the portal's repositories: {e}"))?;
    built
        .resolve(Path::new("/"), origin, &|_| None)
        .map_err(|e| format!("the portal's repositories: {e}"))?;
    corral_tree::sandbox::check_local(&built)
        .map_err(|e| format!("the portal's repositories: {e}"))?;
    Ok((built, spliced))
}

/// The build options of the portal's tree builds.
fn options(limits: &TreeLimits) -> BuildOptions {
    BuildOptions {
        source_date_epoch: Some(0),
        time_limit: Some(limits.time),
    }
}

/// Builds a recipe's tree as the build check does (the portal's
/// repositories, in the sandbox) and packs it with corral-image, as
/// `corral image build --rootfs` does, into the new OCI layout `layout`
/// tagged `tag`; `labels` go into the image's config. Blocks (dnf).
pub fn build_image(
    text: &[u8],
    repos: &[toml::Table],
    scratch: &Path,
    limits: &TreeLimits,
    layout: &Path,
    tag: &str,
    labels: std::collections::BTreeMap<String, String>,
) -> anyhow::Result<corral_image::BuildResult> {
    use anyhow::Context;
    let text = std::str::from_utf8(text).context("the recipe is not UTF-8")?;
    let (recipe, resolved) = portal_recipe(text, repos).map_err(anyhow::Error::msg)?;
    let work = tempfile::Builder::new()
        .prefix("corral-portal-tree-")
        .tempdir_in(scratch)
        .with_context(|| format!("making a scratch directory in {}", scratch.display()))?;
    let rootfs = work.path().join("rootfs");
    build_tree_in_sandbox_with(&recipe, &rootfs, &options(limits), &limits.sandbox())
        .with_context(|| format!("building the tree of {}", recipe.name))?;
    let recipe_file = work.path().join(RECIPE_FILE);
    std::fs::write(&recipe_file, resolved)
        .with_context(|| format!("writing {}", recipe_file.display()))?;
    let request = corral_image::BuildRequest {
        rootfs: Some(rootfs),
        // the newest package's build time, from the tree's rpm database
        source_date_epoch: None,
        labels,
        threads: 1,
        ..corral_image::BuildRequest::from_recipe(&recipe_file, layout, tag)
    };
    corral_image::build(&request, &())
        .with_context(|| format!("packing the tree of {}", recipe.name))
}

fn build_and_test(
    text: &str,
    recipe: &Recipe,
    repos: &[toml::Table],
    scratch: &Path,
    limits: &TreeLimits,
) -> (Outcome, Outcome) {
    let failed_build = |log: String| (Outcome::failed(log), not_run("the build failed"));
    let built = match portal_recipe(text, repos) {
        Ok((built, _)) => built,
        Err(e) => return failed_build(format!("{e}\n")),
    };
    let mut log = format!(
        "{RECIPE_FILE}: built from the portal's repositories: {}\n",
        built
            .repos
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let work = match tempfile::Builder::new()
        .prefix("corral-portal-tree-")
        .tempdir_in(scratch)
    {
        Ok(w) => w,
        Err(e) => return failed_build(format!("making a scratch directory: {e}\n")),
    };
    let report = match build_tree_in_sandbox_with(
        &built,
        &work.path().join("rootfs"),
        &options(limits),
        &limits.sandbox(),
    ) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(log, "the build failed: {e}");
            return failed_build(log);
        }
    };
    for p in &report.packages {
        let _ = writeln!(
            log,
            "installed {}-{}-{}.{}",
            p.name, p.version, p.release, p.arch
        );
    }
    let build = Outcome::passed(log);
    // Names only: a provide or a file path is dnf's to match.
    let missing: Vec<&str> = recipe
        .packages
        .iter()
        .map(String::as_str)
        .filter(|n| !n.contains(['/', '(', ' ', '*']))
        .filter(|n| !report.packages.iter().any(|p| p.name == *n))
        .collect();
    let test = if missing.is_empty() {
        Outcome::passed(format!(
            "the tree's rpm database lists every package the recipe names ({} installed)\n",
            report.packages.len()
        ))
    } else {
        Outcome::failed(format!(
            "not in the tree's rpm database: {}\n",
            missing.join(", ")
        ))
    };
    (build, test)
}
