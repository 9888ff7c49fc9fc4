//! Step 2, the curated library: build the images whose build context or
//! base changed (bases first, through the Docker Engine), run their tests
//! in SELinux-labelled containers, push them and sign them.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use corral_dockerfiles::engine_build::{
    self, BuildOptions, BuildProgress, DockerEngine, RegistryMap,
};
use corral_dockerfiles::graph::Graph;
use corral_dockerfiles::library::Library;
use corral_testrun::engine::TestRunner;
use corral_testrun::label::{Enforcement, DEFAULT_TYPE};
use corral_testrun::mcs::{McsAllocator, McsRange, DEFAULT_DIR};
use corral_testrun::report::Outcome;
use corral_testrun::spec::Tests;

use crate::artifacts;
use crate::config::LibrarySection;
use crate::pipeline::{Release, StepResult};
use crate::plan::{decide_input, Action, PlanItem};
use crate::publish;
use crate::report::{ItemReport, TestSummary};
use crate::state::input_hash;

use super::{base, fail, once, runtime, FailedTests};

fn key(name: &str, sub: &str) -> String {
    format!("library/{name}/{sub}")
}

struct Loaded {
    lib: Library,
    graph: Graph,
    /// The selected images, bases first.
    order: Vec<String>,
}

fn load(section: &LibrarySection) -> anyhow::Result<Loaded> {
    let lib = Library::load(&section.path)
        .with_context(|| format!("loading the library {}", section.path.display()))?;
    let graph = Graph::build(&lib)?;
    let mut order = graph.order()?;
    for n in &section.images {
        anyhow::ensure!(
            lib.images.contains_key(n),
            "library.images names `{n}`, which is not in {}",
            section.path.display()
        );
    }
    if !section.images.is_empty() {
        // an image's library bases come along
        let mut wanted: std::collections::BTreeSet<String> =
            section.images.iter().cloned().collect();
        for n in order.iter().rev() {
            if wanted.contains(n) {
                wanted.extend(graph.nodes[n].bases.iter().cloned());
            }
        }
        order.retain(|n| wanted.contains(n));
    }
    Ok(Loaded { lib, graph, order })
}

/// Plans the library. `bases_to_build` is the base step's plan when it
/// runs before this one in the same run (a dry run's plan, or the plan
/// printed before a run): a base it builds counts with the input it is
/// built from, as the state will record it. `None` once the base step has
/// run or when it is not selected: the state says what is published.
pub fn plan(
    release: &Release,
    bases_to_build: Option<&[PlanItem]>,
) -> anyhow::Result<Vec<PlanItem>> {
    let Some(section) = &release.config.library else {
        return Ok(Vec::new());
    };
    let loaded = load(section)?;
    let hashes = engine_build::context_hashes(&loaded.lib)?;
    let provided = provided_bases(release, bases_to_build);
    let mut inputs: BTreeMap<String, String> = BTreeMap::new();
    let mut items = Vec::new();
    for name in &loaded.order {
        let node = &loaded.graph.nodes[name];
        let mut bases: Vec<String> = node
            .bases
            .iter()
            .map(|b| format!("{b}={}", inputs.get(b).cloned().unwrap_or_default()))
            .collect();
        bases.extend(node.external.iter().map(|e| {
            format!(
                "{e}={}",
                provided
                    .get(e)
                    .cloned()
                    .unwrap_or_else(|| "external".into())
            )
        }));
        let context = hashes.get(name).cloned().unwrap_or_default();
        let input = input_hash([context.as_str(), &bases.join("\n")]);
        inputs.insert(name.clone(), input.clone());
        let done = release.state.get(&key(name, "build"));
        let why = match done.and_then(|d| d.outputs.get("context")) {
            Some(c) if *c != context => "its build context changed".to_string(),
            _ => format!("a base changed ({})", node_bases(node)),
        };
        let (action, reason) = decide_input(done, &input, &why);
        items.push(PlanItem {
            name: name.clone(),
            action,
            reason,
            input,
        });
    }
    Ok(items)
}

/// The input each base image is published from, under the name FROM lines
/// use: one answer for the plan and the run. Its input, not its digest: a
/// dry run cannot know the digest a respin will produce, but it knows the
/// inputs the respin is made from, and the run records exactly those.
fn provided_bases(
    release: &Release,
    bases_to_build: Option<&[PlanItem]>,
) -> BTreeMap<String, String> {
    let mut provided = BTreeMap::new();
    for b in &release.config.bases {
        let Some(name) = &b.provides else { continue };
        let planned = bases_to_build
            .and_then(|items| items.iter().find(|i| i.name == b.name()))
            .filter(|i| i.action == Action::Build)
            .map(|i| i.input.clone());
        let input = planned
            .or_else(|| {
                release
                    .state
                    .get(&base::key(b, "build"))
                    .map(|r| r.input.clone())
            })
            .unwrap_or_else(|| "not built".into());
        provided.insert(name.clone(), input);
    }
    provided
}

fn node_bases(node: &corral_dockerfiles::graph::Node) -> String {
    node.bases
        .iter()
        .chain(&node.external)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds, tests, pushes and signs each image in order, bases first. An
/// image that fails (to build, its tests, to push) stops only the images
/// built FROM it, directly or not; the others go on. The step fails at the
/// end if any image did, and the report says what happened to each.
pub fn run(release: &mut Release) -> StepResult {
    let Some(section) = release.config.library.clone() else {
        return Ok(Vec::new());
    };
    // the base step has run: the state says what each base is now
    let items = plan(release, None).map_err(|e| fail(vec![], e))?;
    let loaded = load(&section).map_err(|e| fail(vec![], e))?;
    let engine_url = release.config.engine_url();
    let mut reports: Vec<ItemReport> = items
        .iter()
        .map(|i| ItemReport::new(&i.name, i.action, &i.reason))
        .collect();
    let to_build: Vec<String> = items
        .iter()
        .filter(|i| i.action == Action::Build)
        .map(|i| i.name.clone())
        .collect();
    let t = Instant::now();
    let built = if to_build.is_empty() {
        engine_build::Summary::default()
    } else {
        match build_images(release, &loaded, &section, &to_build, &engine_url, &items) {
            Ok(summary) => summary,
            Err(e) => return Err(fail(reports, e)),
        }
    };
    let build_seconds = t.elapsed().as_secs_f64() / to_build.len().max(1) as f64;
    // image → what stopped it, for the images built FROM it
    let mut stopped: BTreeMap<String, String> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let t = Instant::now();
        let name = &item.name;
        let report = &mut reports[i];
        report.seconds = if item.action == Action::Build {
            build_seconds
        } else {
            0.0
        };
        if let Some(err) = built.failed.get(name) {
            report.failed = Some(format!("building: {err}"));
            stopped.insert(name.clone(), "failed to build".into());
            failures.push(Failure::other(name, format!("building {name}: {err}")));
            continue;
        }
        if let Some(base) = loaded.graph.nodes[name]
            .bases
            .iter()
            .find(|b| stopped.contains_key(*b))
        {
            let why = format!("its base {base} {}", stopped[base]);
            if built.built.contains(name) {
                report.record_sub_steps(&[("build", true)]);
            }
            tracing::info!(image = %name, %why, "skipped");
            release.progress.done(name, &format!("skipped: {why}"));
            report.skipped = Some(why);
            stopped.insert(name.clone(), "was skipped".into());
            continue;
        }
        let result = publish_one(release, &loaded, &section, item, &engine_url, report);
        report.seconds += t.elapsed().as_secs_f64();
        if let Err(e) = result {
            let e = e.context(format!("releasing {name}"));
            let tests = e.chain().any(|c| c.is::<FailedTests>());
            let what = if tests { "failed its tests" } else { "failed" };
            if report.ran.is_empty() {
                // it stopped before recording its sub-steps
                report.record_sub_steps(&[("build", built.built.contains(name))]);
            }
            report.failed = Some(format!("{e:#}"));
            release.progress.done(name, &format!("failed: {e:#}"));
            stopped.insert(name.clone(), what.into());
            failures.push(Failure {
                image: name.clone(),
                message: format!("{e:#}"),
                tests,
            });
        }
    }
    if failures.is_empty() {
        Ok(reports)
    } else {
        Err(fail(reports, FailedImages { failures }.into()))
    }
}

/// One image the library step could not publish.
#[derive(Debug)]
pub struct Failure {
    pub image: String,
    pub message: String,
    /// It failed its tests (the release's "no"), rather than could not run.
    pub tests: bool,
}

impl Failure {
    fn other(image: &str, message: String) -> Failure {
        Failure {
            image: image.to_string(),
            message,
            tests: false,
        }
    }
}

/// Images of the library that failed; the others were published.
#[derive(Debug, thiserror::Error)]
#[error("{}", failures.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; "))]
pub struct FailedImages {
    pub failures: Vec<Failure>,
}

impl FailedImages {
    /// Every failure is of tests: exit code 1, not 2.
    pub fn only_tests(&self) -> bool {
        self.failures.iter().all(|f| f.tests)
    }
}

/// Loads the base images into the engine under the names FROM lines use,
/// then builds `names` (bases first) and records each built image. A
/// failed image (and what is FROM it) is in the summary, not an error.
fn build_images(
    release: &mut Release,
    loaded: &Loaded,
    section: &LibrarySection,
    names: &[String],
    engine_url: &str,
    items: &[PlanItem],
) -> anyhow::Result<engine_build::Summary> {
    let config = release.config;
    for b in &config.bases {
        if let Some(name) = &b.provides {
            release.progress.item(name, "loading into the engine");
            publish::load_into_engine(engine_url, &config.layout_of(b), &b.tag, name)?;
        }
    }
    release
        .progress
        .item("library", &format!("building {}", names.join(", ")));
    let opts = BuildOptions {
        images: names.to_vec(),
        changed_only: false,
        push: None,
        credentials: None,
        jobs: section.jobs,
        registry_map: RegistryMap::new(Vec::new()),
        network: "none".into(),
        all_platforms: false,
    };
    let progress = BuildProgress::for_stderr();
    let summary = runtime()?.block_on(async {
        let engine = DockerEngine::connect(engine_url).await?;
        engine_build::build_library(&engine, &loaded.lib, &loaded.graph, &opts, &progress).await
    })?;
    let hashes = engine_build::context_hashes(&loaded.lib)?;
    for name in &summary.built {
        let item = items.iter().find(|i| &i.name == name).expect("planned");
        let outputs = BTreeMap::from([(
            "context".to_string(),
            hashes.get(name).cloned().unwrap_or_default(),
        )]);
        release
            .state
            .record(&key(name, "build"), &item.input, release.now, outputs)?;
        release.progress.done(name, "built");
    }
    Ok(summary)
}

/// Tests, pushes and signs one image, each unless done on this input.
fn publish_one(
    release: &mut Release,
    loaded: &Loaded,
    section: &LibrarySection,
    item: &PlanItem,
    engine_url: &str,
    report: &mut ItemReport,
) -> anyhow::Result<()> {
    let name = &item.name;
    let img = &loaded.lib.images[name];
    let local = engine_build::library_reference(&loaded.lib, name);
    let built = item.action == Action::Build;

    let tests = img.spec.tests.clone();
    let (out, ran) = once(release, &key(name, "test"), &item.input, |r| {
        r.progress.item(name, "testing in a labelled container");
        let summary = run_tests(engine_url, name, &local, &tests)?;
        if summary.failed > 0 {
            return Err(FailedTests {
                image: name.clone(),
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
    let mut subs = vec![("build", built), ("test", ran)];
    report.tests = Some(TestSummary::from_outputs(&out));

    let repo = format!(
        "{}/{}/{name}",
        release.config.mirror.registry, section.namespace
    );
    let tags = img.spec.image.tags.clone();
    if let Some(done) = release.state.done(&key(name, "push"), &item.input) {
        let digest = done.outputs.get("digest").cloned().unwrap_or_default();
        let first = format!("{repo}:{}", tags[0]);
        if !runtime()?.block_on(publish::in_mirror(release.config, &first, &digest)) {
            release.progress.done(name, "not in the mirror any more");
            release.state.forget(&key(name, "push"))?;
            release.state.forget(&key(name, "sign"))?;
            release.state.forget(&key(name, "artifacts"))?;
        }
    }
    let (out, ran) = once(release, &key(name, "push"), &item.input, |r| {
        r.progress.item(name, &format!("pushing to {repo}"));
        let creds = publish::credentials()?
            .map(|(username, password)| engine_build::Credentials { username, password });
        runtime()?.block_on(async {
            let engine = DockerEngine::connect(engine_url).await?;
            for tag in &tags {
                engine.tag(&local, &repo, tag).await?;
                engine.push(&repo, tag, creds.as_ref(), |_| {}).await?;
            }
            anyhow::Ok(())
        })?;
        let digest = runtime()?.block_on(publish::mirror_digest(
            r.config,
            &format!("{repo}:{}", tags[0]),
        ))?;
        Ok(BTreeMap::from([("digest".to_string(), digest)]))
    })?;
    subs.push(("push", ran));
    report.published = out.get("digest").cloned();
    let digest = out.get("digest").cloned().unwrap_or_default();
    let first = format!("{repo}:{}", tags[0]);
    once(
        release,
        &key(name, "artifacts"),
        &input_hash([item.input.as_str(), &digest]),
        |r| {
            r.progress.item(name, "publishing its help and Dockerfile");
            push_artifacts(r, img, &first, &digest)
        },
    )
    .with_context(|| format!("publishing the help and Dockerfile of {first}"))?;

    let sign_input = input_hash([item.input.as_str(), &base::signing_identity(release)]);
    let (out, ran) = once(release, &key(name, "sign"), &sign_input, |r| {
        r.progress.item(name, "signing");
        let references: Vec<String> = tags.iter().map(|t| format!("{repo}:{t}")).collect();
        let made: BTreeMap<String, String> = runtime()?
            .block_on(publish::sign(r.config, &references))?
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("{i:02}"), s.to_record()))
            .collect();
        Ok(made)
    })?;
    subs.push(("sign", ran));
    report.signatures = out
        .values()
        .map(|v| crate::report::Signature::from_record(v))
        .collect();
    report.record_sub_steps(&subs);
    release
        .progress
        .done(name, &format!("published {repo}:{}", tags.join(",")));
    Ok(())
}

/// Pushes `img`'s help (its `help.md`) and its Dockerfile with the lint
/// findings as artifacts referring to the image `reference` is, `digest`.
fn push_artifacts(
    release: &Release,
    img: &corral_dockerfiles::library::LibraryImage,
    reference: &str,
    digest: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let client =
        corral_registry::Client::new(release.config.mirror.plain_http, publish::credentials()?);
    let image = corral_registry::ImageRef::parse(reference)?;
    let created = corral_oci::rfc3339(release.now);
    let mut contents = vec![(
        artifacts::BUILD_ARTIFACT_TYPE,
        artifacts::library_build_info(img)?,
    )];
    if let Some(help) = artifacts::library_help(img)? {
        contents.push((artifacts::HELP_ARTIFACT_TYPE, help));
    }
    runtime()?.block_on(async {
        let subject = publish::mirror_subject(&client, reference).await?;
        anyhow::ensure!(
            subject.digest == digest,
            "{reference} is {} in the mirror, not {digest}",
            subject.digest
        );
        let mut out = BTreeMap::new();
        for (artifact_type, content) in &contents {
            let d = publish::push_artifact(
                &client,
                &image,
                &subject,
                artifact_type,
                content,
                created.as_deref(),
            )
            .await?;
            out.insert(artifact_type.to_string(), d);
        }
        Ok(out)
    })
}

/// Runs `tests` against `reference` in the engine, in a labelled container
/// with its own MCS categories.
pub fn run_tests(
    engine_url: &str,
    name: &str,
    reference: &str,
    tests: &Tests,
) -> anyhow::Result<TestSummary> {
    let enforcement = Enforcement::detect();
    let image = runtime()?.block_on(async {
        let runner = TestRunner {
            docker: TestRunner::connect(engine_url).await?,
            allocator: McsAllocator::new(
                std::env::var_os("CORRAL_MCS_DIR").unwrap_or_else(|| DEFAULT_DIR.into()),
                McsRange { low: 0, high: 1023 },
            ),
            process_type: DEFAULT_TYPE.to_string(),
            keep: false,
            enforcement,
            scratch: "/var/tmp".into(),
        };
        anyhow::Ok(runner.run_image(name, reference, tests).await)
    })?;
    if let Some(e) = &image.error {
        anyhow::bail!("testing {reference}: {e}");
    }
    let count = |o: Outcome| image.cases.iter().filter(|c| c.outcome == o).count();
    Ok(TestSummary {
        passed: count(Outcome::Passed),
        failed: count(Outcome::Failed),
        skipped: count(Outcome::Skipped),
        failures: image
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .map(|c| c.name.clone())
            .collect(),
        level: image.level.clone(),
        enforcement: match enforcement {
            Enforcement::Enforcing => "enforcing",
            Enforcement::Permissive => "permissive",
            Enforcement::Disabled => "disabled",
        }
        .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReleaseConfig;
    use crate::pipeline::RunOptions;
    use crate::progress::StepProgress;
    use crate::state::ReleaseState;
    use std::path::Path;

    fn config(work: &Path) -> ReleaseConfig {
        let lib = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/dockerfiles"
        );
        let text = format!(
            "[release]\nwork = \"{}\"\n[mirror]\nregistry = \"127.0.0.1:5000\"\n\
             [[base]]\nrecipe = \"r.toml\"\nimage = \"sample/base\"\ntag = \"43\"\n\
             provides = \"quay.io/corral/base:43\"\n\
             [library]\npath = \"{lib}\"\nnamespace = \"sample\"\n",
            work.display()
        );
        ReleaseConfig::parse(&text, Path::new("release.toml"), Path::new("/"), &|_| None).unwrap()
    }

    fn actions(items: &[PlanItem]) -> Vec<(String, Action, String)> {
        items
            .iter()
            .map(|i| (i.name.clone(), i.action, i.reason.clone()))
            .collect()
    }

    #[test]
    fn a_respun_base_rebuilds_its_users_and_theirs_in_the_plan_and_the_run() {
        let work = tempfile::tempdir().unwrap();
        let config = config(work.path());
        let opts = RunOptions::default();
        let mut release = Release {
            config: &config,
            state: ReleaseState::load(&config.state_path()).unwrap(),
            opts: &opts,
            progress: StepProgress::for_stderr(),
            now: 0,
        };
        let base_built = |release: &mut Release, input: &str, digest: &str| {
            let outputs = BTreeMap::from([("digest".to_string(), digest.to_string())]);
            release
                .state
                .record("base/sample/base:43/build", input, 0, outputs)
                .unwrap();
        };
        base_built(&mut release, "in1", "sha256:aaaa");
        let first = plan(&release, None).unwrap();
        assert_eq!(
            actions(&first),
            [
                ("base2".into(), Action::Build, "not built yet".into()),
                ("app".into(), Action::Build, "not built yet".into()),
                ("other".into(), Action::Build, "not built yet".into()),
            ]
        );
        // as a run records them
        let lib = Library::load(&config.library.as_ref().unwrap().path).unwrap();
        let hashes = engine_build::context_hashes(&lib).unwrap();
        for i in &first {
            let outputs = BTreeMap::from([("context".to_string(), hashes[&i.name].clone())]);
            release
                .state
                .record(&key(&i.name, "build"), &i.input, 0, outputs)
                .unwrap();
        }
        assert!(plan(&release, None)
            .unwrap()
            .iter()
            .all(|i| i.action == Action::Keep && i.reason == "unchanged"));

        let rebuilt = [
            (
                "base2".into(),
                Action::Build,
                "a base changed (quay.io/corral/base:43)".into(),
            ),
            ("app".into(), Action::Build, "a base changed (base2)".into()),
            (
                "other".into(),
                Action::Build,
                "a base changed (quay.io/corral/base:43)".into(),
            ),
        ];
        // the plan made before the base step runs (a dry run) sees the
        // respin the base step is about to make
        let base_item = |action| PlanItem {
            name: "sample/base:43".into(),
            action,
            reason: "security advisory".into(),
            input: "in2".into(),
        };
        let predicted = plan(&release, Some(&[base_item(Action::Build)])).unwrap();
        assert_eq!(actions(&predicted), rebuilt);
        // a base that is kept counts with what it was built from, not with
        // the input it would have if it were respun
        assert!(plan(&release, Some(&[base_item(Action::Keep)]))
            .unwrap()
            .iter()
            .all(|i| i.action == Action::Keep));
        // the run, after the base step recorded the respin, plans the same
        base_built(&mut release, "in2", "sha256:bbbb");
        let after = plan(&release, None).unwrap();
        assert_eq!(actions(&after), rebuilt);
        assert_eq!(after, predicted, "the dry run and the run disagree");
    }
}
