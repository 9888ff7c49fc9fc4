//! The pipeline's steps, one module each: plan (what and why) and run.

pub mod base;
pub mod host;
pub mod library;

use std::collections::BTreeMap;

use crate::pipeline::{Release, StepError};
use crate::plan::{Action, PlanItem};
use crate::report::ItemReport;

/// An image failed its tests; it is not pushed or signed. The release's
/// "the answer is no" (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{image} failed its tests ({}); not published", summary.failures.join(", "))]
pub struct FailedTests {
    pub image: String,
    pub summary: crate::report::TestSummary,
}

/// The report step's one line of the plan.
pub fn report_item(release: &Release) -> Vec<PlanItem> {
    vec![PlanItem {
        name: "release.md, release.json".into(),
        action: Action::Build,
        reason: format!("into {}", release.config.release.work.display()),
        input: String::new(),
    }]
}

/// Runs a sub-step of `item` unless the state says it succeeded on
/// `input`; records it when it does. Returns its outputs (recorded or
/// new) and whether it ran.
pub(crate) fn once(
    release: &mut Release,
    key: &str,
    input: &str,
    f: impl FnOnce(&mut Release) -> anyhow::Result<BTreeMap<String, String>>,
) -> anyhow::Result<(BTreeMap<String, String>, bool)> {
    if let Some(done) = release.state.done(key, input) {
        return Ok((done.outputs.clone(), false));
    }
    let outputs = f(release)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    release.state.record(key, input, now, outputs.clone())?;
    Ok((outputs, true))
}

/// Reads a recipe, stream file or test spec: configuration, so a size
/// limit and an error that names the file.
pub(crate) fn read_config(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    Ok(corral_configfile::read(
        path,
        corral_configfile::DEFAULT_LIMIT,
    )?)
}

/// Turns an error into a step failure that keeps the finished items.
pub(crate) fn fail(items: Vec<ItemReport>, error: anyhow::Error) -> StepError {
    StepError { items, error }
}

/// A runtime for the async clients (registry, engine).
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
