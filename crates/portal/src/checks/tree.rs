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

use corral_tree::{build_tree_in_sandbox, BuildOptions, Recipe};

use super::{Outcome, Results};

/// The recipe's file name in an upload.
pub const RECIPE_FILE: &str = "recipe.toml";

fn not_run(why: &str) -> Outcome {
    Outcome::failed(format!("not run: {why}\n"))
}

/// Runs the three checks on a recipe's text. Blocks (dnf).
/// `time_limit` bounds the tree build (the `[portal.checks] timeout` the
/// Dockerfile builds have too).
pub fn check_recipe(
    text: &[u8],
    repos: &[toml::Table],
    scratch: &Path,
    time_limit: std::time::Duration,
) -> Results {
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
    let (build, test) = build_and_test(text, &recipe, repos, scratch, time_limit);
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
fn options(time_limit: std::time::Duration) -> BuildOptions {
    BuildOptions {
        source_date_epoch: Some(0),
        time_limit: Some(time_limit),
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
    time_limit: std::time::Duration,
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
    build_tree_in_sandbox(&recipe, &rootfs, &options(time_limit))
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
    time_limit: std::time::Duration,
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
    let report =
        match build_tree_in_sandbox(&built, &work.path().join("rootfs"), &options(time_limit)) {
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
