//! `compose plan`: each stream's head, next release day and whether a
//! regular compose is due.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::cadence::{Clock, Schedule};
use crate::compose::compose_day;
use crate::repo::{self, CommitInfo};
use crate::stream::{format_date, Stream};

/// One stream's line of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct ComposePlan {
    pub stream: String,
    #[serde(rename = "ref")]
    pub ostree_ref: String,
    pub head: Option<HeadSummary>,
    #[serde(flatten)]
    pub schedule: Schedule,
}

/// The ref's head commit.
#[derive(Debug, Clone, Serialize)]
pub struct HeadSummary {
    pub checksum: String,
    pub version: Option<String>,
    pub date: String,
    pub timestamp: u64,
}

/// Plans `stream` against the head `head` (if any) on `clock`'s day.
pub fn plan_stream(
    name: &str,
    stream: &Stream,
    head: Option<&CommitInfo>,
    clock: &dyn Clock,
) -> Result<ComposePlan> {
    let head_day = head.map(compose_day).transpose()?;
    let schedule = stream.cadence.schedule(clock.today(), head_day);
    Ok(ComposePlan {
        stream: name.to_string(),
        ostree_ref: stream.ostree_ref.clone(),
        head: head.zip(head_day).map(|(h, day)| HeadSummary {
            checksum: h.checksum.clone(),
            version: h.version.clone(),
            date: format_date(day),
            timestamp: h.timestamp,
        }),
        schedule,
    })
}

/// Plans every stream against the repository at `repo_path` (which may
/// not exist yet: then nothing has been composed).
pub fn plan(
    streams: &[(String, Stream)],
    repo_path: &Path,
    clock: &dyn Clock,
) -> Result<Vec<ComposePlan>> {
    let repo = if repo_path.join("config").exists() {
        Some(repo::open(repo_path)?)
    } else {
        None
    };
    streams
        .iter()
        .map(|(name, stream)| {
            let head = match &repo {
                Some(r) => repo::head(r, &stream.ostree_ref)?,
                None => None,
            };
            plan_stream(name, stream, head.as_ref(), clock)
        })
        .collect()
}

/// The plan as a table for people.
pub fn render(plans: &[ComposePlan]) -> String {
    let mut out = String::from("STREAM\tREF\tHEAD\tHEAD DATE\tNEXT RELEASE\tDUE\n");
    for p in plans {
        let (version, date) = match &p.head {
            Some(h) => (
                h.version
                    .clone()
                    .unwrap_or_else(|| h.checksum[..12].to_string()),
                h.date.clone(),
            ),
            None => ("-".into(), "-".into()),
        };
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            p.stream,
            p.ostree_ref,
            version,
            date,
            format_date(p.schedule.next_release_day),
            if p.schedule.due { "yes" } else { "no" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cadence::FixedClock;
    use time::macros::date;

    fn stream() -> Stream {
        let text = r#"
ref = "s/43/x86_64/atomic"
releasever = "43"
[cadence]
every-days = 14
anchor = 2026-01-06
[sign]
gpg-key = "k"
[tree]
name = "s"
releasever = "43"
packages = ["corral-kernel"]
[[tree.repo]]
id = "r"
baseurl = "/r"
gpgcheck = false
"#;
        Stream::parse(text, Path::new("s.toml")).unwrap()
    }

    fn head(ts: u64) -> CommitInfo {
        CommitInfo {
            checksum: "ab".repeat(32),
            version: Some("43.20261110.0".into()),
            timestamp: ts,
            parent: None,
            inputhash: None,
            packages: vec![],
            reason: None,
        }
    }

    #[test]
    fn plans_with_a_fixed_clock() {
        let clock = FixedClock(date!(2026 - 11 - 25));
        // 2026-11-10 12:00 UTC.
        let p = plan_stream("s", &stream(), Some(&head(1_794_312_000)), &clock).unwrap();
        assert_eq!(p.head.as_ref().unwrap().date, "2026-11-10");
        assert!(p.schedule.due);
        assert_eq!(format_date(p.schedule.next_release_day), "2026-11-24");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["due"], true);
        assert_eq!(json["next_release_day"], "2026-11-24");
        assert_eq!(json["head"]["version"], "43.20261110.0");
        let table = render(&[p]);
        assert!(
            table.contains("s\ts/43/x86_64/atomic\t43.20261110.0\t2026-11-10\t2026-11-24\tyes"),
            "{table}"
        );
    }

    /// Commit timestamps are reproducible (SOURCE_DATE_EPOCH), so the
    /// compose day comes from the version.
    #[test]
    fn the_compose_day_is_the_versions() {
        let clock = FixedClock(date!(2026 - 11 - 25));
        let mut h = head(1_767_225_600); // 2026-01-01
        h.version = Some("43.20261124.0".into());
        let p = plan_stream("s", &stream(), Some(&h), &clock).unwrap();
        assert_eq!(p.head.as_ref().unwrap().date, "2026-11-24");
        assert!(!p.schedule.due, "composed on the release day already");
        // A foreign commit without a compose version: its timestamp.
        h.version = Some("hand-made".into());
        let p = plan_stream("s", &stream(), Some(&h), &clock).unwrap();
        assert_eq!(p.head.as_ref().unwrap().date, "2026-01-01");
        assert!(p.schedule.due);
    }

    #[test]
    fn nothing_composed_yet() {
        let clock = FixedClock(date!(2026 - 01 - 05));
        let p = plan_stream("s", &stream(), None, &clock).unwrap();
        assert!(p.head.is_none());
        // The day before the anchor, the previous release day (2025-12-23) is owed.
        assert!(p.schedule.due);
    }
}
