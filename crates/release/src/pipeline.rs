//! `corral release`: plan every step, then run them in order, recording
//! each item as it succeeds so a rerun after a failure picks up where it
//! stopped.

use std::path::PathBuf;
use std::time::Instant;

use crate::config::ReleaseConfig;
use crate::plan::{Plan, Step, StepPlan};
use crate::progress::StepProgress;
use crate::report::{Report, StepReport};
use crate::state::ReleaseState;
use crate::steps;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only plan.
    pub dry_run: bool,
    /// Run only these steps (all when empty).
    pub only: Vec<Step>,
    /// Compose every stream now, with this reason, whatever its cadence.
    pub out_of_band: Option<String>,
}

impl RunOptions {
    fn runs(&self, step: Step) -> bool {
        self.only.is_empty() || self.only.contains(&step)
    }
}

/// Everything a step needs.
pub struct Release<'a> {
    pub config: &'a ReleaseConfig,
    pub state: ReleaseState,
    pub opts: &'a RunOptions,
    pub progress: StepProgress,
    pub now: i64,
}

/// The outcome of a run.
pub struct Outcome {
    pub plan: Plan,
    pub report: Option<Report>,
    /// `release.json` and `release.md`, when written.
    pub report_files: Option<(PathBuf, PathBuf)>,
}

impl Outcome {
    /// 0 success, 1 an image failed its tests (it was not published).
    pub fn exit_code(&self) -> u8 {
        match &self.report {
            Some(r) if !r.success => 1,
            _ => 0,
        }
    }
}

/// Plans the selected steps against the current state.
pub fn plan(release: &Release) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    // What the base step will build, so that the library's plan is the
    // one the run will make after it.
    let mut bases: Option<Vec<crate::plan::PlanItem>> = None;
    for step in Step::ALL {
        if !release.opts.runs(step) {
            continue;
        }
        let items = match step {
            Step::Base => {
                let items = steps::base::plan(release)?;
                bases = Some(items.clone());
                items
            }
            Step::Library => steps::library::plan(release, bases.as_deref())?,
            Step::Host => steps::host::plan(release)?,
            Step::Report => steps::report_item(release),
        };
        plan.steps.push(StepPlan { step, items });
    }
    Ok(plan)
}

/// Plans, and unless `dry_run` runs the plan. A step that fails stops the
/// run (later steps need its results) but the report is still written.
pub fn run(config: &ReleaseConfig, opts: &RunOptions) -> anyhow::Result<Outcome> {
    // Taken before the state is read: a run that waited would plan on
    // stale state. A dry run only reads, and creates nothing.
    let _lock = if opts.dry_run {
        None
    } else {
        Some(crate::lock::ReleaseLock::acquire(&config.release.work)?)
    };
    let state = ReleaseState::load(&config.state_path())?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut release = Release {
        config,
        state,
        opts,
        progress: StepProgress::for_stderr(),
        now,
    };
    let first = plan(&release)?;
    if opts.dry_run {
        return Ok(Outcome {
            plan: first,
            report: None,
            report_files: None,
        });
    }
    let started = Instant::now();
    let mut report = Report {
        started: rfc3339(now),
        ..Report::default()
    };
    let selected: Vec<Step> = first.steps.iter().map(|s| s.step).collect();
    let mut failure = None;
    for (i, step) in selected.iter().enumerate() {
        if *step == Step::Report {
            continue;
        }
        release.progress.step(i + 1, selected.len(), step.title());
        let t = Instant::now();
        // Each step is planned again just before it runs: the base images
        // a library build depends on may have been rebuilt a moment ago.
        let result = match step {
            Step::Base => steps::base::run(&mut release),
            Step::Library => steps::library::run(&mut release),
            Step::Host => steps::host::run(&mut release),
            Step::Report => unreachable!("written below"),
        };
        let (items, error) = match result {
            Ok(items) => (items, None),
            Err(e) => {
                let message = format!("{:#}", e.error);
                release
                    .progress
                    .done(step.key(), &format!("failed: {message}"));
                failure = Some(e.error.context(step.title()));
                (e.items, Some(message))
            }
        };
        let stop = error.is_some();
        report.steps.push(StepReport {
            step: *step,
            seconds: t.elapsed().as_secs_f64(),
            items,
            error,
        });
        if stop {
            break;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.success = failure.is_none()
        && report
            .steps
            .iter()
            .flat_map(|s| &s.items)
            .all(|i| i.failed.is_none() && i.tests.as_ref().is_none_or(|t| t.failed == 0));
    // The report is written after every run that did something, whatever
    // --only selected: it is the record of that run.
    let files;
    {
        let n = selected.len() + usize::from(!selected.contains(&Step::Report));
        release.progress.step(n, n, Step::Report.title());
        let dir = config.release.work.join("reports");
        let (json, md) = report.write(&dir.join(stamp(now)))?;
        // The latest report also under a fixed name.
        report.write(&config.release.work)?;
        release.progress.done(
            "report",
            &format!("{} and {}", md.display(), json.display()),
        );
        files = Some((
            config.release.work.join("release.json"),
            config.release.work.join("release.md"),
        ));
    }
    if let Some(e) = failure {
        let where_ = files
            .as_ref()
            .map(|(_, md)| format!(" (report: {})", md.display()))
            .unwrap_or_default();
        return Err(e.context(format!("the release stopped{where_}")));
    }
    Ok(Outcome {
        plan: first,
        report: Some(report),
        report_files: files,
    })
}

/// A step's failure, with the items it finished before it.
pub struct StepError {
    pub items: Vec<crate::report::ItemReport>,
    pub error: anyhow::Error,
}

pub type StepResult = Result<Vec<crate::report::ItemReport>, StepError>;

fn rfc3339(unix: i64) -> String {
    corral_oci::rfc3339(unix).unwrap_or_else(|| unix.to_string())
}

/// `20261125T213000Z`, a report directory name.
fn stamp(unix: i64) -> String {
    rfc3339(unix).replace(['-', ':'], "")
}
