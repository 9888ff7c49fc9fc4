//! Step 1, base images: build the images whose recipe changed or whose
//! packages need a respin, test them, push them to the mirror and sign
//! them.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use corral_image::outdated::{self, Staleness};
use corral_image::repodata::Repodata;
use corral_tree::Recipe;

use crate::artifacts;
use crate::config::BaseImage;
use crate::pipeline::{Release, StepResult};
use crate::plan::{decide_base, Action, BaseFacts, PlanItem};
use crate::publish;
use crate::report::{ItemReport, PackageChanges};
use crate::state::input_hash;

use super::{fail, once, read_config, runtime, FailedTests};

/// State keys of base image `b`'s sub-steps.
pub fn key(b: &BaseImage, sub: &str) -> String {
    format!("base/{}/{sub}", b.name())
}

/// What is current about `b`: its recipe's hash, the inputs' hash and how
/// its published packages compare with the repositories.
struct Current {
    recipe_hash: String,
    input: String,
    staleness: Option<Staleness>,
}

fn current(release: &Release, b: &BaseImage) -> anyhow::Result<Current> {
    let text = read_config(&b.recipe)?;
    let recipe = Recipe::load(&b.recipe)?;
    let recipe_hash = input_hash([&text]);
    let mut parts = vec![recipe_hash.clone()];
    for r in &recipe.repos {
        let url = outdated::repo_url(&recipe, r);
        parts.push(
            Repodata::repomd_hash(&url)
                .with_context(|| format!("reading the metadata of repository `{}`", r.id))?,
        );
    }
    let sbom = release.config.sbom_of(b);
    let staleness = if sbom.exists() {
        let installed = outdated::sbom_packages(&sbom)?;
        let repos = outdated::recipe_repodata(&recipe)?;
        Some(outdated::compare(&installed, &repos))
    } else {
        None
    };
    Ok(Current {
        recipe_hash,
        input: input_hash(&parts),
        staleness,
    })
}

pub fn plan(release: &Release) -> anyhow::Result<Vec<PlanItem>> {
    release
        .config
        .bases
        .iter()
        .map(|b| {
            let cur = current(release, b).with_context(|| format!("planning {}", b.name()))?;
            let (action, reason) = decide_base(&BaseFacts {
                recipe_hash: cur.recipe_hash,
                built: release.state.get(&key(b, "build")),
                layout_present: release.config.layout_of(b).join("index.json").exists(),
                staleness: cur.staleness,
                now: release.now,
                respin_days: release.config.release.respin_days,
            });
            Ok(PlanItem {
                name: b.name(),
                action,
                reason,
                input: cur.input,
            })
        })
        .collect()
}

pub fn run(release: &mut Release) -> StepResult {
    let items = plan(release).map_err(|e| fail(vec![], e))?;
    let mut reports = Vec::new();
    for (b, item) in release.config.bases.clone().iter().zip(items) {
        let t = Instant::now();
        let mut report = ItemReport::new(&item.name, item.action, &item.reason);
        match run_one(release, b, &item, &mut report) {
            Ok(()) => {
                report.seconds = t.elapsed().as_secs_f64();
                reports.push(report);
            }
            Err(e) => {
                report.seconds = t.elapsed().as_secs_f64();
                reports.push(report);
                return Err(fail(reports, e.context(format!("releasing {}", b.name()))));
            }
        }
    }
    Ok(reports)
}

fn run_one(
    release: &mut Release,
    b: &BaseImage,
    item: &PlanItem,
    report: &mut ItemReport,
) -> anyhow::Result<()> {
    let config = release.config;
    let layout = config.layout_of(b);
    let sbom = config.sbom_of(b);
    if item.action == Action::Build {
        release
            .progress
            .item(&item.name, &format!("building ({})", item.reason));
        let old = if sbom.exists() {
            outdated::nevras(&outdated::sbom_packages(&sbom)?)
        } else {
            Vec::new()
        };
        let recipe_hash = input_hash([read_config(&b.recipe)?]);
        let digest = build(release, b)?;
        let new = outdated::nevras(&outdated::sbom_packages(&sbom)?);
        report.packages = Some(PackageChanges::between(&old, &new));
        let outputs = BTreeMap::from([
            ("digest".to_string(), digest.clone()),
            ("recipe".to_string(), recipe_hash),
        ]);
        release
            .state
            .record(&key(b, "build"), &item.input, release.now, outputs)?;
        release
            .progress
            .done(&item.name, &format!("built {digest}"));
    }
    let mut subs = vec![("build", item.action == Action::Build)];
    let digest = release
        .state
        .get(&key(b, "build"))
        .and_then(|r| r.outputs.get("digest").cloned())
        .with_context(|| format!("{} has never been built", b.name()))?;
    report.published = Some(digest.clone());

    if let Some(spec) = &b.tests {
        // edited checks run again on the same image
        let spec_text = read_config(spec)?;
        let test_input = input_hash([digest.as_bytes(), &spec_text]);
        let (out, ran) = once(release, &key(b, "test"), &test_input, |r| {
            r.progress.item(&item.name, "testing");
            let summary = test(r, b, &spec.clone())?;
            if summary.failed > 0 {
                return Err(FailedTests {
                    image: b.name(),
                    summary,
                }
                .into());
            }
            Ok(summary.to_outputs())
        })
        .inspect_err(|e| {
            if let Some(failed) = e.downcast_ref::<FailedTests>() {
                report.tests = Some(failed.summary.clone());
            }
        })?;
        subs.push(("test", ran));
        report.tests = Some(crate::report::TestSummary::from_outputs(&out));
    }

    let reference = config.mirror_reference(b);
    if release.state.done(&key(b, "push"), &digest).is_some()
        && !runtime()?.block_on(publish::in_mirror(config, &reference, &digest))
    {
        release
            .progress
            .done(&item.name, "not in the mirror any more");
        release.state.forget(&key(b, "push"))?;
        release.state.forget(&key(b, "sign"))?;
        release.state.forget(&key(b, "advisories"))?;
    }
    let (_, ran) = once(release, &key(b, "push"), &digest, |r| {
        r.progress
            .item(&item.name, &format!("pushing to {reference}"));
        publish::push_layout(r.config, &layout, &b.tag, &reference)?;
        Ok(BTreeMap::new())
    })?;
    subs.push(("push", ran));
    let sign_input = input_hash([digest.as_str(), &signing_identity(release)]);
    let (out, ran) = once(release, &key(b, "sign"), &sign_input, |r| {
        r.progress.item(&item.name, "signing");
        let made =
            runtime()?.block_on(publish::sign(r.config, std::slice::from_ref(&reference)))?;
        Ok(made
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("{i:02}"), s.to_record()))
            .collect())
    })?;
    subs.push(("sign", ran));
    publish_advisories(release, b, &reference, &digest)?;
    report.signatures = out
        .values()
        .map(|v| crate::report::Signature::from_record(v))
        .collect();
    report.record_sub_steps(&subs);
    release
        .progress
        .done(&item.name, &format!("published {reference}"));
    Ok(())
}

/// Pushes the security advisories outstanding for the published image
/// (what `corral image outdated` says) as an artifact referring to it,
/// whenever they differ from the last ones pushed: an advisory published
/// after the image shows up on its page without a rebuild.
fn publish_advisories(
    release: &mut Release,
    b: &BaseImage,
    reference: &str,
    digest: &str,
) -> anyhow::Result<()> {
    let recipe = Recipe::load(&b.recipe)?;
    let installed = outdated::sbom_packages(&release.config.sbom_of(b))?;
    // No list rather than an empty one ("none outstanding") when the
    // repositories cannot be read.
    let repos = match outdated::recipe_repodata(&recipe) {
        Ok(repos) => repos,
        Err(e) => {
            tracing::warn!(image = %b.name(), error = format!("{e:#}"), "no advisories published");
            return Ok(());
        }
    };
    let list = artifacts::advisories(&installed, &outdated::compare(&installed, &repos));
    let content = serde_json::to_vec(&list)?;
    let input = input_hash([digest.as_bytes(), &content]);
    let now = release.now;
    once(release, &key(b, "advisories"), &input, |r| {
        r.progress.item(&b.name(), "publishing its advisories");
        let client =
            corral_registry::Client::new(r.config.mirror.plain_http, publish::credentials()?);
        let image = corral_registry::ImageRef::parse(reference)?;
        let created = corral_oci::rfc3339(now);
        let artifact = runtime()?.block_on(async {
            let subject = publish::mirror_subject(&client, reference).await?;
            anyhow::ensure!(
                subject.digest == digest,
                "{reference} is {} in the mirror, not {digest}",
                subject.digest
            );
            publish::push_artifact(
                &client,
                &image,
                &subject,
                artifacts::ADVISORIES_ARTIFACT_TYPE,
                &content,
                created.as_deref(),
            )
            .await
        })?;
        Ok(BTreeMap::from([("artifact".to_string(), artifact)]))
    })
    .with_context(|| format!("publishing the advisories of {reference}"))?;
    Ok(())
}

/// The keys a signature is made with: another key means signing again.
pub(crate) fn signing_identity(release: &Release) -> String {
    let s = &release.config.sign;
    format!(
        "{:?} {:?}",
        s.cosign_key.as_ref().map(|p| p.display().to_string()),
        s.gpg_key
    )
}

/// Builds into a new layout beside the old one, then swaps them. With
/// `platforms` the layout's tag names an index of one image per platform,
/// each platform's SBOM beside it; the one the release compares with the
/// repositories (`sbom_of`) is the recipe's own architecture's.
fn build(release: &Release, b: &BaseImage) -> anyhow::Result<String> {
    let layout = release.config.layout_of(b);
    let scratch = release.config.images_scratch(".build-")?;
    let new_layout = scratch.path().join("layout");
    let req = corral_image::BuildRequest::from_recipe(&b.recipe, &new_layout, &b.tag);
    let platforms = b
        .parsed_platforms()
        .map_err(|e| anyhow::anyhow!("{}: {e}", b.name()))?;
    let (digest, sbom, beside) = if platforms.is_empty() {
        let built = corral_image::build(&req, &())?;
        (built.manifest_digest.clone(), built.sbom_file(), Vec::new())
    } else {
        let built = corral_image::multi::build_platforms(&req, &platforms, &())?;
        let arch = Recipe::load(&b.recipe)?.arch;
        let main = built
            .platforms
            .iter()
            .find(|p| p.arch == arch)
            .unwrap_or(&built.platforms[0])
            .sbom_file
            .clone();
        let beside = platforms
            .iter()
            .zip(&built.platforms)
            .map(|(p, r)| {
                (
                    r.sbom_file.clone(),
                    corral_image::multi::sbom_path(&layout, p),
                )
            })
            .collect();
        std::fs::copy(&main, scratch.path().join("main.spdx.json"))
            .with_context(|| format!("copying {}", main.display()))?;
        (
            built.index_digest,
            scratch.path().join("main.spdx.json"),
            beside,
        )
    };
    if layout.exists() {
        std::fs::remove_dir_all(&layout)
            .with_context(|| format!("removing the old layout {}", layout.display()))?;
    }
    std::fs::rename(&new_layout, &layout)
        .with_context(|| format!("moving the new layout to {}", layout.display()))?;
    std::fs::rename(&sbom, release.config.sbom_of(b))
        .with_context(|| format!("moving the SBOM beside {}", layout.display()))?;
    for (from, to) in beside {
        std::fs::rename(&from, &to)
            .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
    }
    Ok(digest)
}

/// Loads the image into the engine and runs the tests of `spec` on it.
fn test(
    release: &Release,
    b: &BaseImage,
    spec: &std::path::Path,
) -> anyhow::Result<crate::report::TestSummary> {
    let text = corral_configfile::read_to_string(spec, corral_configfile::DEFAULT_LIMIT)?;
    let parsed = corral_dockerfiles::library::ImageSpec::parse(&spec.display().to_string(), &text)?;
    let engine = release.config.engine_url();
    let name = b
        .provides
        .clone()
        .unwrap_or_else(|| release.config.mirror_reference(b));
    publish::load_into_engine(&engine, &release.config.layout_of(b), &b.tag, &name)?;
    crate::steps::library::run_tests(&engine, &b.name(), &name, &parsed.tests)
}
