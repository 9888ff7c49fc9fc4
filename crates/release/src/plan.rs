//! The plan: for each step, each item and whether it is built or kept,
//! and why. `--dry-run` prints it; a run follows it.
//!
//! The decisions are pure functions of what was recorded
//! ([`crate::state`]) and what is current (recipes, repository metadata,
//! build contexts, cadences), so they are unit-tested without tools.

use serde::Serialize;

use crate::state::ItemRecord;
use corral_image::outdated::Staleness;

/// The pipeline's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Base images from tree recipes.
    Base,
    /// The curated Dockerfile library.
    Library,
    /// Atomic Host composes.
    Host,
    /// The release report.
    Report,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Base, Step::Library, Step::Host, Step::Report];

    pub fn title(self) -> &'static str {
        match self {
            Step::Base => "base images",
            Step::Library => "curated library",
            Step::Host => "Atomic Host",
            Step::Report => "release report",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Step::Base => "base",
            Step::Library => "library",
            Step::Host => "host",
            Step::Report => "report",
        }
    }
}

/// Build (or compose) an item, or keep what is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Build,
    Keep,
}

/// One item of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanItem {
    pub name: String,
    pub action: Action,
    pub reason: String,
    /// The hash of its inputs, recorded when it succeeds.
    pub input: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepPlan {
    pub step: Step,
    pub items: Vec<PlanItem>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub steps: Vec<StepPlan>,
}

impl Plan {
    /// The plan for people.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.steps.iter().enumerate() {
            out.push_str(&format!("{}. {}\n", i + 1, s.step.title()));
            if s.items.is_empty() {
                out.push_str("   (nothing configured)\n");
            }
            for item in &s.items {
                let verb = match (s.step, item.action) {
                    (Step::Host, Action::Build) => "compose",
                    (Step::Report, Action::Build) => "write",
                    (_, Action::Build) => "build",
                    (_, Action::Keep) => "keep",
                };
                out.push_str(&format!("   {verb:<8} {}: {}\n", item.name, item.reason));
            }
        }
        out
    }

    pub fn items(&self, step: Step) -> &[PlanItem] {
        self.steps
            .iter()
            .find(|s| s.step == step)
            .map(|s| s.items.as_slice())
            .unwrap_or(&[])
    }
}

/// What is known about a base image now.
#[derive(Debug, Clone)]
pub struct BaseFacts<'a> {
    /// The hash of the recipe file.
    pub recipe_hash: String,
    /// The last successful build, if any.
    pub built: Option<&'a ItemRecord>,
    /// Whether its layout is still on disk.
    pub layout_present: bool,
    /// The published SBOM against the repositories (none before a build).
    pub staleness: Option<Staleness>,
    /// Unix time now.
    pub now: i64,
    pub respin_days: u32,
}

/// Whether a base image is rebuilt, and why. A security advisory respins
/// at once; other updates wait for the respin cadence.
pub fn decide_base(f: &BaseFacts) -> (Action, String) {
    let Some(built) = f.built else {
        return (Action::Build, "not built yet".into());
    };
    if built.outputs.get("recipe").map(String::as_str) != Some(f.recipe_hash.as_str()) {
        return (Action::Build, "the recipe changed".into());
    }
    if !f.layout_present {
        return (Action::Build, "its image layout is missing".into());
    }
    let Some(stale) = f.staleness.as_ref().filter(|s| s.is_outdated()) else {
        return (Action::Keep, "up to date with its repositories".into());
    };
    let n = stale.updates.len();
    let plural = if n == 1 { "" } else { "s" };
    if !stale.advisories.is_empty() {
        return (
            Action::Build,
            format!(
                "security advisory {}: respin now ({n} package update{plural})",
                stale.advisory_ids()
            ),
        );
    }
    let due = built.at + i64::from(f.respin_days) * 86_400;
    if f.now >= due {
        return (
            Action::Build,
            format!(
                "{n} package update{plural}; the {}-day respin is due",
                f.respin_days
            ),
        );
    }
    (
        Action::Keep,
        format!(
            "{n} package update{plural} wait for the respin on {}",
            day(due)
        ),
    )
}

/// `YYYY-MM-DD` of a Unix time.
pub fn day(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// A library image's decision from its recorded and current input.
pub fn decide_input(done: Option<&ItemRecord>, input: &str, changed: &str) -> (Action, String) {
    match done {
        None => (Action::Build, "not built yet".into()),
        Some(r) if r.input == input => (Action::Keep, "unchanged".into()),
        Some(_) => (Action::Build, changed.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_image::outdated::{AdvisoryHit, PackageUpdate};
    use std::collections::BTreeMap;

    const DAY: i64 = 86_400;

    fn record(at: i64, recipe: &str) -> ItemRecord {
        ItemRecord {
            input: "x".into(),
            at,
            outputs: BTreeMap::from([("recipe".to_string(), recipe.to_string())]),
        }
    }

    fn update() -> PackageUpdate {
        PackageUpdate {
            name: "corral-hello".into(),
            arch: "x86_64".into(),
            installed: "1.0-1".into(),
            available: "1.1-1".into(),
        }
    }

    fn facts(built: Option<&ItemRecord>, staleness: Option<Staleness>, now: i64) -> BaseFacts<'_> {
        BaseFacts {
            recipe_hash: "r1".into(),
            built,
            layout_present: true,
            staleness,
            now,
            respin_days: 30,
        }
    }

    #[test]
    fn base_images_are_built_first_and_when_the_recipe_changes() {
        assert_eq!(decide_base(&facts(None, None, 0)).0, Action::Build);
        let old = record(0, "r0");
        let (a, why) = decide_base(&facts(Some(&old), None, DAY));
        assert_eq!((a, why.as_str()), (Action::Build, "the recipe changed"));
        let same = record(0, "r1");
        let (a, why) = decide_base(&facts(Some(&same), Some(Staleness::default()), DAY));
        assert_eq!(
            (a, why.as_str()),
            (Action::Keep, "up to date with its repositories")
        );
        let mut gone = facts(Some(&same), None, DAY);
        gone.layout_present = false;
        assert_eq!(decide_base(&gone).0, Action::Build);
    }

    #[test]
    fn updates_wait_for_the_monthly_respin_unless_an_advisory_says_now() {
        let built = record(1_767_225_600, "r1");
        let updates = Staleness {
            updates: vec![update()],
            advisories: vec![],
        };
        let (a, why) = decide_base(&facts(Some(&built), Some(updates.clone()), built.at + DAY));
        assert_eq!(a, Action::Keep);
        assert_eq!(why, "1 package update wait for the respin on 2026-01-31");
        let (a, why) = decide_base(&facts(
            Some(&built),
            Some(updates.clone()),
            built.at + 30 * DAY,
        ));
        assert_eq!(a, Action::Build);
        assert!(why.contains("30-day respin is due"), "{why}");
        let security = Staleness {
            advisories: vec![AdvisoryHit {
                id: "CORRAL-2026-0042".into(),
                severity: None,
                title: String::new(),
                fixed_in: vec![],
            }],
            ..updates
        };
        let (a, why) = decide_base(&facts(Some(&built), Some(security), built.at + DAY));
        assert_eq!(a, Action::Build);
        assert!(
            why.starts_with("security advisory CORRAL-2026-0042"),
            "{why}"
        );
    }

    #[test]
    fn inputs_decide_library_images() {
        let r = ItemRecord {
            input: "a".into(),
            at: 0,
            outputs: BTreeMap::new(),
        };
        assert_eq!(decide_input(None, "a", "changed").0, Action::Build);
        assert_eq!(decide_input(Some(&r), "a", "changed").0, Action::Keep);
        assert_eq!(
            decide_input(Some(&r), "b", "its context changed"),
            (Action::Build, "its context changed".into())
        );
    }

    #[test]
    fn renders_each_step_with_its_verbs() {
        let plan = Plan {
            steps: vec![
                StepPlan {
                    step: Step::Base,
                    items: vec![PlanItem {
                        name: "sample/base:43".into(),
                        action: Action::Build,
                        reason: "not built yet".into(),
                        input: "i".into(),
                    }],
                },
                StepPlan {
                    step: Step::Host,
                    items: vec![PlanItem {
                        name: "sample-atomic".into(),
                        action: Action::Keep,
                        reason: "not due until 2026-01-20".into(),
                        input: "i".into(),
                    }],
                },
                StepPlan {
                    step: Step::Library,
                    items: vec![],
                },
            ],
        };
        assert_eq!(
            plan.render_text(),
            "1. base images\n   build    sample/base:43: not built yet\n\
             2. Atomic Host\n   keep     sample-atomic: not due until 2026-01-20\n\
             3. curated library\n   (nothing configured)\n"
        );
    }
}
