//! `compose run`: a stream to a signed commit on its ref, with static
//! deltas, retention and a signed summary.
//!
//! The ref moves only at the end: a failure before that leaves it where it
//! was (the half-written commit is unreachable and goes at the next prune).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use corral_tree::{build_tree, BuildOptions, ReadyTree, RpmDb};
use ostree::gio;
use ostree::glib::prelude::*;
use serde::Serialize;

use crate::cadence::Clock;
use crate::delta::{self, DeltaDecision};
use crate::inputhash;
use crate::lockfile::Lockfile;
use crate::ostree_ready;
use crate::passwd;
use crate::postprocess;
use crate::published;
use crate::repo::{self, keys, CommitRequest};
use crate::sign::SigningKey;
use crate::stream::Stream;
use crate::version::ComposeVersion;
use crate::workdir::WorkDir;
use crate::writer::Labeler;

/// How to compose.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The archive repository.
    pub repo: PathBuf,
    /// A ready tree to commit instead of building the recipe.
    pub rootfs: Option<PathBuf>,
    /// Commit even when the input hash equals the head's.
    pub force: bool,
    /// Why this out-of-band compose is made.
    pub reason: Option<String>,
    pub deltas: bool,
    /// Compose only streams whose release day has come.
    pub due_only: bool,
    /// Override the stream's signing key / GnuPG home.
    pub gpg_key: Option<String>,
    pub gpg_homedir: Option<PathBuf>,
    /// Passed to the tree build (rpm install times, file time clamp).
    pub source_date_epoch: Option<i64>,
    /// Set the repository's `archive.zlib-level` (1 fastest … 9 smallest;
    /// libostree's default is 6). Persists in the repository's config.
    pub zlib_level: Option<u8>,
}

/// What a compose did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ComposeOutcome {
    Committed {
        #[serde(rename = "ref")]
        ostree_ref: String,
        version: String,
        checksum: String,
        parent: Option<String>,
        inputhash: String,
        /// The commit's timestamp (seconds since the epoch) and its source.
        timestamp: u64,
        timestamp_source: TimestampSource,
        /// The users and groups moved to `/usr/lib/passwd` and `/usr/lib/group`.
        users: Box<passwd::SplitReport>,
        /// The SELinux policy (`SELINUXTYPE`) the tree was labelled with;
        /// `None`: the tree has none and the commit is unlabelled.
        selinux_policy: Option<String>,
        /// Where the initramfs came from: `tree` (the kernel package) or
        /// `dracut` (built at compose time).
        initramfs: String,
        deltas: Vec<DeltaDecision>,
        /// Commits dropped by retention.
        pruned: Vec<String>,
        /// The stream file the website reads, rewritten
        /// ([`crate::published`]).
        stream_file: PathBuf,
    },
    /// The input hash equals the head's: no new commit.
    Unchanged {
        #[serde(rename = "ref")]
        ostree_ref: String,
        version: Option<String>,
        checksum: String,
    },
    /// `--due` and the release day has not come.
    NotDue {
        #[serde(rename = "ref")]
        ostree_ref: String,
        next_release_day: String,
    },
}

/// Composes `stream` (read from `stream_path`) into `opts.repo`. The caller
/// holds the repository lock.
pub fn run(
    stream: &Stream,
    stream_path: &Path,
    opts: &RunOptions,
    clock: &dyn Clock,
) -> Result<ComposeOutcome> {
    let ostree_ref = stream.ostree_ref.clone();
    let repo = repo::open_or_create(&opts.repo)?;
    if let Some(level) = opts.zlib_level {
        set_zlib_level(&repo, level)?;
    }
    let head = repo::head(&repo, &ostree_ref)?;
    if opts.due_only {
        let head_day = head.as_ref().map(compose_day).transpose()?;
        let schedule = stream.cadence.schedule(clock.today(), head_day);
        if !schedule.due {
            return Ok(ComposeOutcome::NotDue {
                ostree_ref,
                next_release_day: crate::stream::format_date(schedule.next_release_day),
            });
        }
    }
    let key_name = opts.gpg_key.as_deref().unwrap_or(&stream.sign.gpg_key);
    let homedir = opts
        .gpg_homedir
        .as_deref()
        .or(stream.sign.gpg_homedir.as_deref());
    let key = SigningKey::find(key_name, homedir)
        .with_context(|| format!("finding the signing key of {ostree_ref}"))?;

    let work = WorkDir::create(Path::new(
        &std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()),
    ))?;
    let rootfs = work.path().join("rootfs");
    let (inputhash, packages) = match &opts.rootfs {
        Some(source) => {
            let tree = ReadyTree::open(source)
                .with_context(|| format!("opening the tree {}", source.display()))?;
            let hash = inputhash::with_postprocess(
                inputhash::tree_input_hash(tree.path())?,
                &stream.postprocess,
            )?;
            if let Some(done) = unchanged(&head, &hash, opts.force, &ostree_ref) {
                return Ok(done);
            }
            // Scripts may write into files in place: they get a copy that
            // shares no inode with the given tree.
            copy_tree(tree.path(), &rootfs, stream.postprocess.scripts.is_empty())?;
            let packages = match RpmDb::find(&rootfs) {
                Some(db) => db.packages().context("reading the tree's rpm database")?,
                None => Vec::new(),
            };
            (hash, packages)
        }
        None => {
            let recipe = stream.recipe().with_context(|| {
                format!(
                    "{} has no [tree] table: pass --rootfs DIR to commit a ready tree",
                    stream_path.display()
                )
            })?;
            let lock = stream.lockfile.as_deref().map(Lockfile::read).transpose()?;
            let build_recipe = match &lock {
                Some(lock) => lock.pin(recipe),
                None => recipe.clone(),
            };
            tracing::info!(stream = %stream_path.display(), locked = lock.is_some(), "building the tree");
            let report = build_tree(
                &build_recipe,
                &rootfs,
                &BuildOptions {
                    source_date_epoch: opts.source_date_epoch,
                    time_limit: None,
                },
            )
            .with_context(|| format!("building the tree of {}", stream_path.display()))?;
            if let Some(lock) = &lock {
                lock.verify(&rootfs).with_context(|| {
                    format!(
                        "the tree of {} differs from the lockfile {}",
                        stream_path.display(),
                        stream
                            .lockfile
                            .as_deref()
                            .unwrap_or(Path::new(""))
                            .display()
                    )
                })?;
            }
            let nevras: Vec<String> = report.packages.iter().map(|p| p.nevra()).collect();
            let hash = inputhash::with_postprocess(
                inputhash::recipe_input_hash(recipe, &nevras)?,
                &stream.postprocess,
            )?;
            (hash, report.packages)
        }
    };
    if let Some(done) = unchanged(&head, &inputhash, opts.force, &ostree_ref) {
        return Ok(done);
    }
    let mut nevras: Vec<String> = packages.iter().map(|p| p.nevra()).collect();
    nevras.sort();

    let version = ComposeVersion::next(
        &stream.releasever,
        clock.today(),
        head.as_ref().and_then(|h| h.version.as_deref()),
    );
    let (timestamp, timestamp_source) =
        commit_time(opts.source_date_epoch, &version, head.as_ref())?;
    let version = version.to_string();
    postprocess::apply(&rootfs, &stream.postprocess, timestamp)
        .with_context(|| format!("postprocessing the tree of {ostree_ref}"))?;
    let users = passwd::split(&rootfs, &stream.postprocess.etc_group_members)
        .with_context(|| format!("splitting the users of {ostree_ref} into /usr/lib"))?;
    let prepared = ostree_ready::make_ostree_ready(&rootfs, Some(&version), timestamp)
        .with_context(|| format!("making the tree of {ostree_ref} OSTree-ready"))?;
    let lacks = ostree_ready::finalize_lacks(&rootfs);
    if !lacks.is_empty() {
        tracing::warn!(
            "the tree has /etc/selinux/config but no {}: libostree runs semodule through bwrap to finish each upgrade to a deployment with a policy, so hosts upgrading to this commit will boot their old deployment again",
            lacks.join(" and no ")
        );
    }
    let selinux_policy = Labeler::load(&rootfs)?.policy_name();
    match &selinux_policy {
        Some(name) => tracing::info!(policy = %name, "labelling with the tree's SELinux policy"),
        None => tracing::warn!(
            "the tree has no SELinux policy (/etc/selinux/config): committing it unlabelled"
        ),
    }

    let mut metadata: Vec<(&'static str, ostree::glib::Variant)> = vec![
        (keys::VERSION, version.to_variant()),
        (keys::RPMOSTREE_INPUTHASH, inputhash.to_variant()),
        (keys::INPUTHASH, inputhash.to_variant()),
        (keys::PACKAGES, nevras.to_variant()),
        (keys::BOOTABLE, true.to_variant()),
        (keys::LINUX, prepared.kver.to_variant()),
        (
            keys::STREAM,
            stream_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
                .to_variant(),
        ),
    ];
    // Only a stream with a [tree] says what architecture it is for; a
    // ready tree of a stream without one is recorded without.
    if let Some(recipe) = stream.recipe() {
        metadata.push((keys::ARCH, recipe.arch.to_variant()));
    }
    if let Some(rev) = source_revision(stream_path) {
        metadata.push((keys::SOURCE_REVISION, rev.to_variant()));
    }
    if let Some(reason) = &opts.reason {
        metadata.push((keys::REASON, reason.to_variant()));
    }
    let subject = format!("{ostree_ref} {version}");
    let parent = head.as_ref().map(|h| h.checksum.clone());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let checksum = repo::commit_tree(
        &repo,
        &opts.repo,
        &rootfs,
        threads,
        &CommitRequest {
            parent: parent.as_deref(),
            subject: &subject,
            body: opts.reason.as_deref(),
            metadata,
            timestamp,
            selinux: selinux_policy.is_some(),
        },
    )?;
    drop(work);
    tracing::info!(%checksum, %version, "committed");

    repo.sign_commit(
        &checksum,
        &key.fingerprint,
        key.homedir_str(),
        gio::Cancellable::NONE,
    )
    .with_context(|| format!("signing commit {checksum} with {}", key.fingerprint))?;

    // Deltas from the commits that stay after retention, and from scratch.
    let history = repo::history(&repo, &ostree_ref)?;
    let keep = stream.retention.keep as usize;
    let mut deltas = Vec::new();
    if opts.deltas {
        for old in history.iter().take(keep.saturating_sub(1)) {
            deltas.push(delta::generate(
                &repo,
                &opts.repo,
                Some(&old.checksum),
                &checksum,
            )?);
        }
        deltas.push(delta::generate(&repo, &opts.repo, None, &checksum)?);
    }

    repo.set_ref_immediate(None, &ostree_ref, Some(&checksum), gio::Cancellable::NONE)
        .with_context(|| format!("moving {ostree_ref} to {checksum}"))?;

    let pruned = retain(&repo, &opts.repo, &ostree_ref, keep)?;
    publish_summary(&repo, &key)?;
    let stream_file = published::update(
        &repo,
        &opts.repo,
        &stream_name(stream_path),
        &ostree_ref,
        stream.description.as_deref().unwrap_or_default(),
        Some(key.fingerprint.as_str()),
    )?;
    Ok(ComposeOutcome::Committed {
        ostree_ref,
        version,
        checksum,
        parent,
        inputhash,
        timestamp,
        timestamp_source,
        users: Box::new(users),
        selinux_policy,
        initramfs: if prepared.dracut { "dracut" } else { "tree" }.to_string(),
        deltas,
        pruned,
        stream_file,
    })
}

/// A stream's name: its file's name without `.toml`.
pub fn stream_name(stream_path: &Path) -> String {
    stream_path
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The commit time: `SOURCE_DATE_EPOCH` when given, else the start (UTC)
/// of the compose day the version names, so the same inputs give the
/// same commit. Always after the parent's, by a second at least: hosts
/// refuse an update older than what they run, and only a strictly later
/// time tells them which of two commits is newer (a rollback, a
/// superseded denied commit).
pub fn commit_time(
    source_date_epoch: Option<i64>,
    version: &ComposeVersion,
    parent: Option<&repo::CommitInfo>,
) -> Result<(u64, TimestampSource)> {
    let (mut time, mut source) = match source_date_epoch {
        Some(epoch) => (
            u64::try_from(epoch)
                .with_context(|| format!("SOURCE_DATE_EPOCH {epoch} is before 1970"))?,
            TimestampSource::SourceDateEpoch,
        ),
        None => {
            let day = version
                .date()
                .with_context(|| format!("version {version} names no date"))?;
            let start = day.midnight().assume_utc().unix_timestamp();
            (start.max(0) as u64, TimestampSource::VersionDate)
        }
    };
    if let Some(parent) = parent {
        if parent.timestamp >= time {
            time = parent.timestamp + 1;
            source = TimestampSource::Parent;
        }
    }
    Ok((time, source))
}

/// Where a commit's timestamp came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimestampSource {
    /// The `SOURCE_DATE_EPOCH` environment variable.
    SourceDateEpoch,
    /// 00:00 UTC of the day in the version (`43.20261125.0`).
    VersionDate,
    /// A second after the parent's timestamp, which was as late as either
    /// or later.
    Parent,
}

impl std::fmt::Display for TimestampSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimestampSource::SourceDateEpoch => "SOURCE_DATE_EPOCH",
            TimestampSource::VersionDate => "the version's date",
            TimestampSource::Parent => "the parent commit",
        })
    }
}

/// Content objects of an archive repository are zlib streams; a lower
/// level trades some size of plain pulls (static deltas are unaffected)
/// for compose time.
fn set_zlib_level(repo: &ostree::Repo, level: u8) -> Result<()> {
    anyhow::ensure!(
        (1..=9).contains(&level),
        "zlib level {level} is not between 1 and 9"
    );
    let config = repo.copy_config();
    if config.integer("archive", "zlib-level").ok() == Some(i32::from(level)) {
        return Ok(());
    }
    config.set_integer("archive", "zlib-level", i32::from(level));
    // write_config_and_reload is newer than Debian's libostree 2022.7.
    repo.write_config(&config)
        .context("writing archive.zlib-level to the repository config")?;
    repo.reload_config(gio::Cancellable::NONE)
        .context("reloading the repository config")
}

fn unchanged(
    head: &Option<repo::CommitInfo>,
    hash: &str,
    force: bool,
    ostree_ref: &str,
) -> Option<ComposeOutcome> {
    let head = head.as_ref()?;
    (!force && head.inputhash.as_deref() == Some(hash)).then(|| ComposeOutcome::Unchanged {
        ostree_ref: ostree_ref.to_string(),
        version: head.version.clone(),
        checksum: head.checksum.clone(),
    })
}

/// Keeps the newest `keep` commits of `ostree_ref`: older commit objects
/// are deleted, then everything no ref reaches is pruned.
pub fn retain(
    repo: &ostree::Repo,
    repo_path: &Path,
    ostree_ref: &str,
    keep: usize,
) -> Result<Vec<String>> {
    let history = repo::history(repo, ostree_ref)?;
    let mut dropped = Vec::new();
    for old in history.iter().skip(keep) {
        repo.delete_object(
            ostree::ObjectType::Commit,
            &old.checksum,
            gio::Cancellable::NONE,
        )
        .with_context(|| format!("deleting commit {}", old.checksum))?;
        dropped.push(old.checksum.clone());
    }
    if !dropped.is_empty() {
        let (total, pruned, freed) = repo
            .prune(
                ostree::RepoPruneFlags::REFS_ONLY,
                -1,
                gio::Cancellable::NONE,
            )
            .context("pruning unreachable objects")?;
        tracing::info!(total, pruned, freed, commits = dropped.len(), "retention");
    }
    delta::prune_orphans(repo, repo_path)?;
    Ok(dropped)
}

fn publish_summary(repo: &ostree::Repo, key: &SigningKey) -> Result<()> {
    repo.regenerate_summary(None, gio::Cancellable::NONE)
        .context("regenerating the summary")?;
    repo.add_gpg_signature_summary(
        &[key.fingerprint.as_str()],
        key.homedir_str(),
        gio::Cancellable::NONE,
    )
    .with_context(|| format!("signing the summary with {}", key.fingerprint))?;
    Ok(())
}

/// Copies a ready tree with owners, modes, times and xattrs: hardlinks on
/// the same filesystem (the preparation only renames, unlinks and writes
/// new files, so the original is never changed), else a full copy with
/// reflinks where the filesystem can.
fn copy_tree(from: &Path, to: &Path, hardlinks: bool) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    if hardlinks {
        let linked = Command::new("cp")
            .args(["-a", "--link", "--"])
            .arg(from.join("."))
            .arg(to)
            .output()
            .context("running cp")?;
        if linked.status.success() {
            return Ok(());
        }
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
        std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    }
    let out = Command::new("cp")
        .args(["-a", "--reflink=auto", "--"])
        .arg(from.join("."))
        .arg(to)
        .output()
        .context("running cp")?;
    anyhow::ensure!(
        out.status.success(),
        "copying {} to {}: {}",
        from.display(),
        to.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// The git revision of the stream file's checkout, `-dirty` when the file
/// has uncommitted changes.
fn source_revision(stream_path: &Path) -> Option<String> {
    let dir = stream_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--"])
        .arg(stream_path.file_name()?)
        .output()
        .ok()?;
    if !status.stdout.is_empty() {
        rev.push_str("-dirty");
    }
    Some(rev)
}

/// The compose day of a commit: the day its version names, else the UTC
/// day of its timestamp (commit timestamps are reproducible, not the
/// wall clock, so only the version says when it was composed).
pub fn compose_day(info: &repo::CommitInfo) -> Result<time::Date> {
    match info
        .version
        .as_deref()
        .and_then(ComposeVersion::parse)
        .and_then(|v| v.date())
    {
        Some(day) => Ok(day),
        None => day_of(info.timestamp),
    }
}

/// The UTC day of a commit timestamp.
pub fn day_of(timestamp: u64) -> Result<time::Date> {
    Ok(time::OffsetDateTime::from_unix_timestamp(timestamp as i64)
        .with_context(|| format!("commit timestamp {timestamp} is out of range"))?
        .date())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(timestamp: u64) -> repo::CommitInfo {
        repo::CommitInfo {
            checksum: "ab".repeat(32),
            version: None,
            timestamp,
            parent: None,
            inputhash: None,
            packages: vec![],
            reason: None,
        }
    }

    #[test]
    fn commit_time_is_never_the_wall_clock() {
        let v = ComposeVersion::parse("43.20261125.1").unwrap();
        assert_eq!(
            commit_time(Some(1_767_225_600), &v, None).unwrap(),
            (1_767_225_600, TimestampSource::SourceDateEpoch)
        );
        // 2026-11-25 00:00:00 UTC.
        assert_eq!(
            commit_time(None, &v, None).unwrap(),
            (1_795_564_800, TimestampSource::VersionDate)
        );
        assert_eq!(
            commit_time(None, &v, Some(&parent(1_795_600_000))).unwrap(),
            (1_795_600_001, TimestampSource::Parent)
        );
        // the same day's next compose is a second later than its parent
        assert_eq!(
            commit_time(None, &v, Some(&parent(1_795_564_800))).unwrap(),
            (1_795_564_801, TimestampSource::Parent)
        );
        assert_eq!(
            commit_time(None, &v, Some(&parent(1_795_564_799))).unwrap(),
            (1_795_564_800, TimestampSource::VersionDate)
        );
        // SOURCE_DATE_EPOCH too: a child is never as old as its parent
        assert_eq!(
            commit_time(Some(1_767_225_600), &v, Some(&parent(1_767_225_600))).unwrap(),
            (1_767_225_601, TimestampSource::Parent)
        );
        assert!(commit_time(Some(-1), &v, None).is_err());
    }
}
