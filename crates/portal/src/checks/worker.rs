//! The check runner's loop: every few seconds, the current revisions with
//! pending checks are unpacked again from their kept archive, checked, and
//! their results and logs recorded (the store's audit log names the
//! runner as [`ACTOR`]); tree recipes get their own checks
//! ([`super::tree`]). Then the published revisions the mirror lacks are
//! pushed and signed ([`crate::publish`]): a Dockerfile folder's image
//! from the engine, a tree recipe's tree built again (sandboxed, as its
//! build check built it) and packed into an OCI layout.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::{log_reference, CheckRunner, Outcome, Results};
use crate::model::{CheckKind, Revision, TemplateKind};
use crate::publish::Publisher;
use crate::upload;
use crate::web::{now, Portal};

/// Who the audit log says recorded the checks.
pub const ACTOR: &str = "corral-checks";

/// Checks every waiting revision once; returns how many were checked.
pub async fn run_once(portal: &Arc<Portal>, runner: &CheckRunner) -> anyhow::Result<usize> {
    let p = portal.clone();
    let todo = tokio::task::spawn_blocking(move || -> anyhow::Result<Todo> {
        let mut store = p.store();
        let revisions = store.checks_to_run()?;
        let mut out = Vec::new();
        for r in revisions {
            if let Some(t) = store.template(&r.template)? {
                out.push((r, t.kind));
            }
        }
        Ok(out)
    })
    .await??;
    for (rev, kind) in &todo {
        let results = check(portal, runner, rev, *kind).await;
        record(portal, runner, rev, results)
            .await
            .with_context(|| format!("recording the checks of {} {}", rev.template, rev.number))?;
    }
    Ok(todo.len())
}

/// The revisions [`run_once`] looks at.
type Todo = Vec<(Revision, TemplateKind)>;

/// Pushes and signs the published revisions the mirror does not have yet
/// (`done` remembers those it has); returns how many were pushed.
pub async fn publish_pending(
    portal: &Arc<Portal>,
    runner: &CheckRunner,
    publisher: &Publisher,
    done: &mut HashSet<(String, u32)>,
) -> anyhow::Result<usize> {
    let p = portal.clone();
    let listed = tokio::task::spawn_blocking(move || p.store().listed()).await??;
    let mut pushed = 0;
    for t in listed {
        let Some(rev) = t.published_revision else {
            continue;
        };
        let key = (t.name.clone(), rev);
        if done.contains(&key) {
            continue;
        }
        if !publisher.is_published(&t.name, rev).await? {
            match t.kind {
                TemplateKind::DockerfileFolder => {
                    let local = super::local_image(&t.name, rev);
                    publisher.publish(&t.name, rev, &local).await
                }
                TemplateKind::TreeRecipe => {
                    publish_tree(portal, runner, publisher, &t.name, rev).await
                }
            }
            .with_context(|| format!("publishing {} {rev}", t.name))?;
            pushed += 1;
        }
        done.insert(key);
    }
    Ok(pushed)
}

/// Builds revision `rev` of the tree recipe `template` again, packs it
/// into an OCI layout and publishes that.
async fn publish_tree(
    portal: &Arc<Portal>,
    runner: &CheckRunner,
    publisher: &Publisher,
    template: &str,
    rev: u32,
) -> anyhow::Result<String> {
    let p = portal.clone();
    let checks = runner.config().clone();
    let name = template.to_string();
    let (layout_dir, tag) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let revision = p
            .store()
            .revision(&name, rev)?
            .with_context(|| format!("{name} has no revision {rev}"))?;
        let (_unpacked, upload) = read_upload(
            &p.config().archive_dir,
            &p.config().uploads,
            &checks.scratch,
            &revision.archive_digest,
            TemplateKind::TreeRecipe,
        )?;
        let Upload::Recipe(text) = upload else {
            anyhow::bail!("{name} {rev} is not a tree recipe");
        };
        let dir = tempfile::Builder::new()
            .prefix("corral-portal-publish-")
            .tempdir_in(&checks.scratch)
            .with_context(|| {
                format!("making a scratch directory in {}", checks.scratch.display())
            })?;
        let tag = rev.to_string();
        let labels = [(super::REVISION_LABEL.to_string(), format!("{name}:{rev}"))].into();
        super::tree::build_image(
            &text,
            &checks.tree_repos,
            &checks.scratch,
            Duration::from_secs(checks.timeout_secs),
            &dir.path().join("layout"),
            &tag,
            labels,
        )?;
        Ok((dir, tag))
    })
    .await??;
    publisher
        .publish_layout(template, rev, &layout_dir.path().join("layout"), &tag)
        .await
}

/// Runs [`run_once`] and [`publish_pending`] every `every`, forever;
/// errors are logged.
pub async fn run(
    portal: Arc<Portal>,
    runner: CheckRunner,
    publisher: Option<Publisher>,
    every: Duration,
) {
    let mut done = HashSet::new();
    loop {
        if let Err(e) = run_once(&portal, &runner).await {
            tracing::error!("the check runner: {e:#}");
        }
        if let Some(publisher) = &publisher {
            if let Err(e) = publish_pending(&portal, &runner, publisher, &mut done).await {
                tracing::error!("publishing: {e:#}");
            }
        }
        // Replicas sharing the database learn of each other's withdrawals.
        let p = portal.clone();
        match tokio::task::spawn_blocking(move || p.refresh_listings()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("refreshing the listings: {e:#}"),
            Err(e) => tracing::error!("refreshing the listings: {e:#}"),
        }
        tokio::time::sleep(every).await;
    }
}

/// What an upload holds, unpacked again.
enum Upload {
    Folder(Box<upload::LibraryFolder>),
    Recipe(Vec<u8>),
}

/// The kept archive `digest`, unpacked again under `scratch`. Blocks.
fn read_upload(
    archive_dir: &Path,
    limits: &upload::Limits,
    scratch: &Path,
    digest: &str,
    kind: TemplateKind,
) -> anyhow::Result<(upload::Unpacked, Upload)> {
    let path = crate::web::submit::archive_path(archive_dir, digest, "tar")
        .context("the archive digest is not sha256")?;
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let unpacked = upload::unpack(std::io::BufReader::new(file), limits, scratch)
        .with_context(|| format!("unpacking {}", path.display()))?;
    let upload = match kind {
        TemplateKind::DockerfileFolder => {
            Upload::Folder(Box::new(upload::library_folder(unpacked.dir.path())?))
        }
        TemplateKind::TreeRecipe => {
            Upload::Recipe(upload::folder::recipe_text(unpacked.dir.path())?)
        }
    };
    Ok((unpacked, upload))
}

async fn check(
    portal: &Arc<Portal>,
    runner: &CheckRunner,
    rev: &Revision,
    kind: TemplateKind,
) -> Results {
    let archive_dir = portal.config().archive_dir.clone();
    let limits = portal.config().uploads;
    let scratch = runner.config().scratch.clone();
    let digest = rev.archive_digest.clone();
    let unpacked = tokio::task::spawn_blocking(move || {
        read_upload(&archive_dir, &limits, &scratch, &digest, kind)
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    match unpacked {
        Ok((_dir, Upload::Folder(folder))) => {
            tracing::info!(template = %rev.template, revision = rev.number, "checks start");
            runner.run(&rev.template, rev.number, &folder).await
        }
        Ok((_dir, Upload::Recipe(text))) => {
            tracing::info!(template = %rev.template, revision = rev.number, "tree checks start");
            let repos = runner.config().tree_repos.clone();
            let scratch = runner.config().scratch.clone();
            let limit = std::time::Duration::from_secs(runner.config().timeout_secs);
            tokio::task::spawn_blocking(move || {
                super::tree::check_recipe(&text, &repos, &scratch, limit)
            })
            .await
            .unwrap_or_else(|e| {
                let failed = || Outcome::failed(format!("the tree checks stopped: {e}\n"));
                Results {
                    lint: failed(),
                    build: failed(),
                    test: failed(),
                    image: None,
                }
            })
        }
        Err(e) => {
            let why = format!("the archive could not be read again: {e:#}\n");
            let failed = || Outcome::failed(why.clone());
            Results {
                lint: failed(),
                build: failed(),
                test: failed(),
                image: None,
            }
        }
    }
}

fn write_log(dir: &Path, reference: &str, text: &str) -> std::io::Result<()> {
    let path = dir.join(reference);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

async fn record(
    portal: &Arc<Portal>,
    runner: &CheckRunner,
    rev: &Revision,
    results: Results,
) -> anyhow::Result<()> {
    let p = portal.clone();
    let log_dir = runner.config().log_dir.clone();
    let (template, number) = (rev.template.clone(), rev.number);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut store = p.store();
        for (kind, outcome) in [
            (CheckKind::Lint, &results.lint),
            (CheckKind::Build, &results.build),
            (CheckKind::Test, &results.test),
        ] {
            let reference = log_reference(&template, number, kind.as_str());
            write_log(&log_dir, &reference, &outcome.log)
                .with_context(|| format!("writing {}", log_dir.join(&reference).display()))?;
            store.record_check(
                ACTOR,
                &template,
                number,
                kind,
                outcome.status,
                Some(&reference),
                now(),
            )?;
            tracing::info!(%template, revision = number, check = kind.as_str(), status = outcome.status.as_str(), "check recorded");
        }
        Ok(())
    })
    .await?
}

/// How often [`start`]'s runner looks for new revisions.
pub const EVERY: Duration = Duration::from_secs(2);

/// Runs the check runner beside a server, on a thread of its own with its
/// own runtime (builds and test runs are long; the pages stay quick).
pub fn start(
    portal: Arc<Portal>,
    checks: crate::config::ChecksConfig,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("portal-checks".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return tracing::error!("the check runner's runtime: {e}"),
            };
            rt.block_on(async move {
                let engine = checks.engine.clone();
                let publisher = match portal.config().publish.clone() {
                    Some(c) => match Publisher::new(c, &engine).await {
                        Ok(p) => Some(p),
                        Err(e) => return tracing::error!("publishing cannot start: {e:#}"),
                    },
                    None => None,
                };
                match CheckRunner::connect(checks).await {
                    Ok(runner) => run(portal, runner, publisher, EVERY).await,
                    Err(e) => tracing::error!(engine, "the check runner cannot start: {e:#}"),
                }
            });
        })
}
