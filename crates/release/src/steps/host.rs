//! Step 3, Atomic Host: compose the streams that are due (or all of them,
//! out of band) into the OSTree repository the mirror serves, signed with
//! the release's GPG key.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use corral_compose::cadence::SystemClock;
use corral_compose::compose::{self, ComposeOutcome, RunOptions};
use corral_compose::lock::RepoLock;
use corral_compose::{repo, Stream};

use crate::config::StreamEntry;
use crate::pipeline::{Release, StepResult};
use crate::plan::{Action, PlanItem};
use crate::report::{ItemReport, PackageChanges};
use crate::state::input_hash;
use corral_image::repodata::{self, Repodata};

use super::fail;

fn key(s: &StreamEntry) -> String {
    format!("host/{}/compose", s.name())
}

pub fn plan(release: &Release) -> anyhow::Result<Vec<PlanItem>> {
    let Some(repo_path) = &release.config.mirror.ostree_repo else {
        return Ok(Vec::new());
    };
    let mut items = Vec::new();
    for entry in &release.config.streams {
        let text = super::read_config(&entry.file)?;
        let stream = Stream::load(&entry.file)?;
        let mut parts = vec![input_hash([&text])];
        for url in stream
            .tree
            .repos
            .iter()
            .filter_map(|r| r.baseurl.as_deref())
        {
            // A remote repository's changes are left to compose's own
            // input hash, which makes no commit for an unchanged tree.
            if repodata::local_dir(url).is_ok() {
                parts.push(Repodata::repomd_hash(url)?);
            } else {
                parts.push(url.to_string());
            }
        }
        let plans = corral_compose::plan::plan(&[(entry.name(), stream)], repo_path, &SystemClock)?;
        let schedule = &plans[0].schedule;
        let day = corral_compose::stream::format_date(schedule.next_release_day);
        parts.push(day.clone());
        let input = input_hash(&parts);
        let (action, reason) = if let Some(why) = &release.opts.out_of_band {
            (Action::Build, format!("out of band: {why}"))
        } else if release.state.done(&key(entry), &input).is_some() {
            (
                Action::Keep,
                format!("composed for the release day {day} already"),
            )
        } else if schedule.due {
            (Action::Build, format!("due (release day {day})"))
        } else {
            (Action::Keep, format!("not due until {day}"))
        };
        items.push(PlanItem {
            name: entry.name(),
            action,
            reason,
            input,
        });
    }
    Ok(items)
}

pub fn run(release: &mut Release) -> StepResult {
    let items = plan(release).map_err(|e| fail(vec![], e))?;
    let mut reports = Vec::new();
    for (entry, item) in release.config.streams.clone().iter().zip(items) {
        let t = Instant::now();
        let mut report = ItemReport::new(&item.name, item.action, &item.reason);
        let result = if item.action == Action::Build {
            compose_one(release, entry, &item, &mut report)
        } else {
            head(release, entry, &mut report)
        };
        report.seconds = t.elapsed().as_secs_f64();
        reports.push(report);
        if let Err(e) = result {
            return Err(fail(
                reports,
                e.context(format!("composing {}", entry.name())),
            ));
        }
    }
    Ok(reports)
}

/// A kept stream's published head.
fn head(release: &Release, entry: &StreamEntry, report: &mut ItemReport) -> anyhow::Result<()> {
    let Some(repo_path) = &release.config.mirror.ostree_repo else {
        return Ok(());
    };
    if !repo_path.join("config").exists() {
        return Ok(());
    }
    let stream = Stream::read(&entry.file)?;
    let repo = repo::open(repo_path)?;
    report.published = repo::head(&repo, &stream.ostree_ref)?.map(|h| h.checksum);
    Ok(())
}

fn compose_one(
    release: &mut Release,
    entry: &StreamEntry,
    item: &PlanItem,
    report: &mut ItemReport,
) -> anyhow::Result<()> {
    let config = release.config;
    let repo_path = config
        .mirror
        .ostree_repo
        .clone()
        .context("mirror.ostree-repo is not set")?;
    release
        .progress
        .item(&item.name, &format!("composing ({})", item.reason));
    let stream = Stream::load(&entry.file)?;
    let _lock = RepoLock::acquire(&repo_path, true)?;
    let opts = RunOptions {
        repo: repo_path.clone(),
        rootfs: None,
        force: release.opts.out_of_band.is_some(),
        reason: release.opts.out_of_band.clone(),
        deltas: true,
        due_only: false,
        gpg_key: config.sign.gpg_key.clone(),
        gpg_homedir: config.sign.gpg_homedir.clone(),
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.parse().ok()),
        zlib_level: None,
    };
    let outcome = compose::run(&stream, &entry.file, &opts, &SystemClock)?;
    let mut outputs = BTreeMap::new();
    match &outcome {
        ComposeOutcome::Committed {
            version,
            checksum,
            parent,
            ..
        } => {
            let repo = repo::open(&repo_path)?;
            let new = repo::commit_info(&repo, checksum)?;
            let old = match parent {
                Some(p) => repo::commit_info(&repo, p)?.packages,
                None => Vec::new(),
            };
            report.packages = Some(PackageChanges::between(&old, &new.packages));
            report.published = Some(checksum.clone());
            let key = config
                .sign
                .gpg_key
                .clone()
                .unwrap_or_else(|| stream.sign.gpg_key.clone());
            report.signatures = vec![crate::report::Signature {
                kind: "gpg".into(),
                reference: format!("{} {version}", stream.ostree_ref),
                digest: checksum.clone(),
                key: key.clone(),
                location: "the commit's detached metadata".into(),
                verify: format!(
                    "gpg --export {key} > release-key.gpg && \
                     ostree --repo=REPO remote add --set=gpg-verify=true \
                     --gpg-import=release-key.gpg release {}/ostree && \
                     ostree --repo=REPO pull release {}",
                    config.mirror_url(),
                    stream.ostree_ref
                ),
            }];
            outputs.insert("commit".to_string(), checksum.clone());
            outputs.insert("version".to_string(), version.clone());
            release
                .progress
                .done(&item.name, &format!("committed {version} {checksum}"));
        }
        ComposeOutcome::Unchanged { checksum, .. } => {
            report
                .reason
                .push_str("; the input is the head's, no new commit");
            report.published = Some(checksum.clone());
            outputs.insert("commit".to_string(), checksum.clone());
            release.progress.done(&item.name, "unchanged");
        }
        ComposeOutcome::NotDue { .. } => {}
    }
    release
        .state
        .record(&key(entry), &item.input, release.now, outputs)?;
    Ok(())
}
