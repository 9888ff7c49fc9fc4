//! The check runner's loop: every few seconds, the current revisions with
//! pending checks are unpacked again from their kept archive, checked, and
//! their results and logs recorded (the store's audit log names the
//! runner as [`ACTOR`]); tree recipes get their own checks
//! ([`super::tree`]). Then the published revisions the mirror lacks are
//! pushed and signed ([`crate::publish`]): a Dockerfile folder's image
//! from the engine, a tree recipe's tree built again (sandboxed, as its
//! build check built it) and packed into an OCI layout. A publication
//! that fails waits out a [`Backoff`] before it is tried again.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// How long [`publish_pending`] waits before it tries a failed
/// publication again: `first` after the first failure, doubling up to
/// `cap`. Each wait is stretched by up to a quarter at random, so replicas
/// sharing a database do not all retry at the same moment.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            first: Duration::from_secs(30),
            cap: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// The wait after the `failures`-th failure in a row (from 1), before
    /// the random stretch.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.first
            .saturating_mul(1 << doublings)
            .min(self.cap.max(self.first))
    }

    fn jittered(&self, failures: u32) -> Duration {
        let mut b = [0u8; 2];
        let spread = match getrandom::getrandom(&mut b) {
            Ok(()) => f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX),
            Err(_) => 0.0,
        };
        self.delay(failures).mul_f64(1.0 + spread / 4.0)
    }
}

/// What [`publish_pending`] remembers between passes: the revisions the
/// mirror has, and the failed ones with their next attempt.
#[derive(Debug, Default)]
pub struct PublishState {
    backoff: Backoff,
    done: HashSet<(String, u32)>,
    failed: HashMap<(String, u32), Failed>,
}

#[derive(Debug)]
struct Failed {
    times: u32,
    next: Instant,
}

impl PublishState {
    pub fn new(backoff: Backoff) -> PublishState {
        PublishState {
            backoff,
            ..PublishState::default()
        }
    }

    /// When revision `rev` of `template` may be tried again, if it failed.
    pub fn next_attempt(&self, template: &str, rev: u32) -> Option<Instant> {
        self.failed
            .get(&(template.to_string(), rev))
            .map(|f| f.next)
    }
}

/// Pushes and signs the published revisions the mirror does not have yet;
/// returns how many were pushed. A revision whose publication fails (the
/// build, the mirror, the signature) is recorded in the audit log with the
/// error and not tried again before its [`Backoff`] has passed; the others
/// go on.
pub async fn publish_pending(
    portal: &Arc<Portal>,
    runner: &CheckRunner,
    publisher: &Publisher,
    state: &mut PublishState,
) -> anyhow::Result<usize> {
    let p = portal.clone();
    let listed = tokio::task::spawn_blocking(move || p.store().listed()).await??;
    let mut pushed = 0;
    for t in listed {
        let Some(rev) = t.published_revision else {
            continue;
        };
        let key = (t.name.clone(), rev);
        if state.done.contains(&key) {
            continue;
        }
        if state
            .failed
            .get(&key)
            .is_some_and(|f| Instant::now() < f.next)
        {
            continue;
        }
        match publish_one(portal, runner, publisher, &t.name, rev, t.kind).await {
            Ok(was_pushed) => {
                pushed += usize::from(was_pushed);
                state.failed.remove(&key);
                state.done.insert(key);
            }
            Err(e) => {
                let times = state.failed.get(&key).map_or(0, |f| f.times) + 1;
                let wait = state.backoff.jittered(times);
                let error = format!("{e:#}");
                tracing::error!(template = %t.name, revision = rev, failures = times, retry_in_secs = wait.as_secs(), "publishing: {error}");
                state.failed.insert(
                    key,
                    Failed {
                        times,
                        next: Instant::now() + wait,
                    },
                );
                let p = portal.clone();
                let name = t.name.clone();
                tokio::task::spawn_blocking(move || {
                    p.store()
                        .record_publish_failure(ACTOR, &name, rev, &error, wait, now())
                })
                .await?
                .with_context(|| format!("recording the failed publication of {} {rev}", t.name))?;
            }
        }
    }
    Ok(pushed)
}

/// Publishes one revision unless the mirror has it; whether it pushed.
async fn publish_one(
    portal: &Arc<Portal>,
    runner: &CheckRunner,
    publisher: &Publisher,
    name: &str,
    rev: u32,
    kind: TemplateKind,
) -> anyhow::Result<bool> {
    if publisher.is_published(name, rev).await? {
        return Ok(false);
    }
    match kind {
        TemplateKind::DockerfileFolder => {
            let local = super::local_image(name, rev);
            publisher.publish(name, rev, &local).await
        }
        TemplateKind::TreeRecipe => publish_tree(portal, runner, publisher, name, rev).await,
    }
    .with_context(|| format!("publishing {name} {rev}"))?;
    Ok(true)
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
            &super::tree::TreeLimits::of(&checks),
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
    let mut state = PublishState::default();
    loop {
        if let Err(e) = run_once(&portal, &runner).await {
            tracing::error!("the check runner: {e:#}");
        }
        if let Some(publisher) = &publisher {
            if let Err(e) = publish_pending(&portal, &runner, publisher, &mut state).await {
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
            let limit = super::tree::TreeLimits::of(runner.config());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=7).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 900, 900]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(900));
        for n in [1, 3, 9] {
            let j = b.jittered(n);
            assert!(j >= b.delay(n) && j <= b.delay(n).mul_f64(1.25), "{j:?}");
        }
    }
}
