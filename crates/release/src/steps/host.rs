//! Step 3, Atomic Host: compose the streams that are due (or all of them,
//! out of band) into the OSTree repository the mirror serves, signed with
//! the release's GPG key; then publish each stream's head as an OS image
//! (the ostree container format, in package layers) beside the base
//! images in the mirror, tagged with the commit's version and the
//! stream's moving tag, signed as they are (cosign and GPG simple
//! signing), and recorded in the stream file the website reads.

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
use crate::publish;
use crate::report::{ItemReport, OsImageReport, PackageChanges};
use crate::state::input_hash;
use corral_image::repodata::{self, Repodata};

use super::{fail, once, runtime};

fn key(s: &StreamEntry) -> String {
    format!("host/{}/compose", s.name())
}

/// State keys of the OS image's sub-steps.
fn image_key(s: &StreamEntry, sub: &str) -> String {
    format!("host/{}/image-{sub}", s.name())
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
        let moving_tag = entry
            .image_tag
            .clone()
            .unwrap_or_else(|| stream.releasever.clone());
        let plans = corral_compose::plan::plan(&[(entry.name(), stream)], repo_path, &SystemClock)?;
        let schedule = &plans[0].schedule;
        let day = corral_compose::stream::format_date(schedule.next_release_day);
        parts.push(day.clone());
        let input = input_hash(&parts);
        let (action, why) = if let Some(why) = &release.opts.out_of_band {
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
        // The OS image step that follows (publish_image): the new head is
        // pushed under its version and the moving tag; a kept head's image
        // only when the mirror does not serve it.
        let image = format!("{}:{moving_tag}", release.config.os_image_repository(entry));
        let reason = match action {
            Action::Build => format!("{why}; then the new head as the OS image {image}, signed"),
            Action::Keep => {
                format!("{why}; the OS image {image} pushed again only if the mirror lost it")
            }
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
            head(release, entry, &mut report).map(|()| false)
        }
        .and_then(|composed| {
            let (pushed, signed) = match report.published.clone() {
                Some(commit) => publish_image(release, entry, &commit, &mut report)
                    .context("publishing the OS image")?,
                None => (false, false),
            };
            report.record_sub_steps(&[("compose", composed), ("push", pushed), ("sign", signed)]);
            Ok(())
        });
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

/// Composes; true when a new commit was made.
fn compose_one(
    release: &mut Release,
    entry: &StreamEntry,
    item: &PlanItem,
    report: &mut ItemReport,
) -> anyhow::Result<bool> {
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
    let composed = matches!(outcome, ComposeOutcome::Committed { .. });
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
    Ok(composed)
}

/// Publishes `commit` of `entry`'s stream as an OS image: exported in
/// package layers, pushed under the commit's version and the moving tag,
/// signed with every configured key, recorded in the stream file. Each
/// part is done once per input (the state); a push the mirror lost is
/// done again. Returns whether the push and the signing ran now.
fn publish_image(
    release: &mut Release,
    entry: &StreamEntry,
    commit: &str,
    report: &mut ItemReport,
) -> anyhow::Result<(bool, bool)> {
    let config = release.config;
    let repo_path = config
        .mirror
        .ostree_repo
        .clone()
        .context("mirror.ostree-repo is not set")?;
    let stream = Stream::read(&entry.file)?;
    let ostree = corral_ostree::commit::open(&repo_path)?;
    let version = corral_ostree::commit::resolve(&ostree, &stream.ostree_ref, commit)?
        .version
        .unwrap_or_else(|| commit[..commit.len().min(12)].to_string());
    let moving = entry
        .image_tag
        .clone()
        .unwrap_or_else(|| stream.releasever.clone());
    let repository = config.os_image_repository(entry);
    let mut tags = vec![version.clone()];
    if moving != version {
        tags.push(moving);
    }
    let references: Vec<String> = tags.iter().map(|t| format!("{repository}:{t}")).collect();
    let name = entry.name();
    let push_input = input_hash([
        commit,
        &references.join(" "),
        &entry.image_layers.to_string(),
    ]);
    // A record of an earlier push counts only while the mirror serves it.
    if let Some(done) = release.state.done(&image_key(entry, "push"), &push_input) {
        let digest = done.outputs.get("digest").cloned().unwrap_or_default();
        let rt = runtime()?;
        let served = references
            .iter()
            .all(|r| rt.block_on(publish::in_mirror(config, r, &digest)));
        if !served {
            release
                .progress
                .done(&name, "its OS image is not in the mirror any more");
            release.state.forget(&image_key(entry, "push"))?;
            release.state.forget(&image_key(entry, "sign"))?;
        }
    }
    let (out, pushed) = once(release, &image_key(entry, "push"), &push_input, |r| {
        r.progress
            .item(&name, &format!("pushing the OS image to {}", references[0]));
        let scratch = r.config.images_scratch(".os-image-")?;
        let layout = scratch.path().join("layout");
        let opts = corral_ostree::container::export::ExportOptions {
            max_layers: entry.image_layers,
            ..Default::default()
        };
        let image = corral_ostree::container::export::export_commit(
            &ostree, commit, &layout, &version, &opts,
        )
        .with_context(|| format!("exporting {commit} as an OS image"))?;
        for reference in &references {
            publish::push_layout(r.config, &layout, &version, reference)?;
        }
        let size: u64 = image.layers.iter().map(|l| l.size).sum();
        Ok(BTreeMap::from([
            ("digest".to_string(), image.manifest_digest.clone()),
            ("layers".to_string(), image.layers.len().to_string()),
            ("size".to_string(), size.to_string()),
        ]))
    })?;
    let digest = out
        .get("digest")
        .cloned()
        .context("the OS image push recorded no digest")?;
    let sign_input = input_hash([
        digest.as_str(),
        &references.join(" "),
        &super::base::signing_identity(release),
    ]);
    let (signed_out, signed) = once(release, &image_key(entry, "sign"), &sign_input, |r| {
        r.progress.item(&name, "signing the OS image");
        let made = runtime()?.block_on(publish::sign(r.config, &references))?;
        Ok(made
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("{i:02}"), s.to_record()))
            .collect())
    })?;
    let signatures: Vec<crate::report::Signature> = signed_out
        .values()
        .map(|v| crate::report::Signature::from_record(v))
        .collect();
    let layers = out.get("layers").and_then(|v| v.parse().ok()).unwrap_or(0);
    let size = out.get("size").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut kinds: Vec<String> = signatures.iter().map(|s| s.kind.clone()).collect();
    kinds.dedup();
    report.os_image = Some(OsImageReport {
        references: references.clone(),
        digest: digest.clone(),
        commit: commit.to_string(),
        layers,
        size,
    });
    report.signatures.extend(signatures);
    // What the website shows: the stream file compose wrote.
    let record = corral_ostree::stream_file::PublishedOsImage {
        repository,
        tags,
        digest: digest.clone(),
        commit: commit.to_string(),
        version: Some(version),
        layers,
        size,
        signatures: kinds,
    };
    let _lock = RepoLock::acquire(&repo_path, true)?;
    if let Some((file, mut published)) =
        corral_ostree::stream_file::find_by_ref(&repo_path, &stream.ostree_ref)
    {
        if published.os_image.as_ref() != Some(&record) {
            published.os_image = Some(record);
            corral_ostree::stream_file::write(&file, &published)?;
        }
    }
    if pushed || signed {
        release.progress.done(
            &name,
            &format!("published the OS image {}@{digest}", references[0]),
        );
    }
    Ok((pushed, signed))
}
