//! `fsck --repair`: removes garbage, never content.
//!
//! Removed: temp files and upload sessions idle past the threshold, sessions
//! without a repository record (they can never finish), link files whose
//! target cannot be recovered (malformed tags, names that are not digests,
//! referrer entries for manifests that are gone), tags pointing at manifests
//! that are not there (nothing can pull them), and blob links to missing
//! blobs that no manifest of the repository uses.
//!
//! Recovered: repositories missing from the repository index are indexed;
//! a manifest link without a media type whose
//! manifest is present (the media type is read from it), and a referrer
//! entry whose manifest is present (the descriptor is rebuilt).
//!
//! Never removed: any blob (corrupt and orphan ones included) and any link
//! a tag, manifest or referrer entry of the repository still names. Each of
//! those stays listed under `kept` with what would fix it.
//!
//! Every candidate is looked at again just before it goes, since the store
//! may be live: a session written to or a tag re-pushed meanwhile stays.

use super::links::{LinkIndex, Referenced};
use super::report::{BadLink, Fix, FsckReport, RepairAction, RepairReport};
use super::{age, session_state, Context, FsckOptions, Result, State};
use crate::manifest::{media_type_of, references, referrer_descriptor};
use crate::name::{Digest, RepoName};
use crate::storage::Storage;

fn action(target: impl Into<String>, reason: impl Into<String>) -> RepairAction {
    RepairAction {
        target: target.into(),
        reason: reason.into(),
    }
}

pub(super) async fn repair(
    store: &dyn Storage,
    opts: &FsckOptions,
    report: &FsckReport,
    state: &State,
) -> Result<RepairReport> {
    let mut out = RepairReport::default();
    temp_files(store, opts, &mut out).await?;
    sessions(store, opts, &mut out).await?;
    tags(store, report, &mut out).await?;
    let unindexed: Vec<RepoName> = report
        .unindexed_repos
        .iter()
        .filter_map(|r| RepoName::parse(r))
        .collect();
    store
        .index_repos(&unindexed)
        .await
        .about(|| "adding repositories to the repository index".into())?;
    for r in &unindexed {
        out.recovered.push(action(
            format!("repository {r}"),
            "added to the repository index",
        ));
    }
    for b in &report.malformed_links {
        malformed(store, b, &state.index, &state.referenced, &mut out).await?;
    }
    for b in &report.dangling_links {
        dangling(store, b, &state.referenced, &mut out).await?;
    }
    for c in &report.corrupt_blobs {
        out.kept.push(action(
            format!("blob {}", c.digest),
            "content is wrong and repair never removes blobs; delete the file by hand, then re-push (a push does not replace an existing blob)",
        ));
    }
    for m in &report.broken_manifests {
        out.kept.push(action(
            format!("manifest {}@{}", m.repo, m.digest),
            format!("{}; re-push the manifest", m.problem),
        ));
    }
    for r in &report.missing_references {
        out.kept.push(action(
            format!("{} {} of {}@{}", r.field, r.digest, r.repo, r.manifest),
            format!("{}; re-push it to the repository", r.problem),
        ));
    }
    for a in out.removed.iter().chain(&out.recovered) {
        tracing::info!(what = %a.target, reason = %a.reason, "fsck repair");
    }
    Ok(out)
}

async fn temp_files(store: &dyn Storage, opts: &FsckOptions, out: &mut RepairReport) -> Result<()> {
    let temps = store
        .list_temp_files()
        .await
        .about(|| "listing temporary files".into())?;
    for t in temps {
        let idle = age(t.modified);
        if idle <= opts.idle {
            continue;
        }
        let path = t.path.display().to_string();
        if store
            .remove_temp_file(&t.path)
            .await
            .about(|| format!("removing temporary file {path}"))?
        {
            out.removed.push(action(
                format!("temp file {path}"),
                format!("{} bytes, idle {}s", t.bytes, idle.as_secs()),
            ));
        }
    }
    Ok(())
}

async fn sessions(store: &dyn Storage, opts: &FsckOptions, out: &mut RepairReport) -> Result<()> {
    let sessions = store
        .list_upload_sessions()
        .await
        .about(|| "listing upload sessions".into())?;
    for s in sessions {
        let idle = age(s.last_activity);
        let why = match session_state(s.repo.is_some(), idle, opts) {
            "broken" => "broken: no readable repository record, it can never finish",
            "stale" => "stale",
            _ => continue,
        };
        if store
            .remove_upload_session(&s.id)
            .await
            .about(|| format!("removing upload session {}", s.id))?
        {
            let repo = s
                .repo
                .as_ref()
                .map_or("<missing>".into(), |r| r.to_string());
            out.removed.push(action(
                format!("upload session {}", s.id),
                format!(
                    "{why} (repo {repo}, {} bytes, idle {}s)",
                    s.bytes,
                    idle.as_secs()
                ),
            ));
        }
    }
    Ok(())
}

async fn tags(store: &dyn Storage, report: &FsckReport, out: &mut RepairReport) -> Result<()> {
    for t in &report.unresolved_tags {
        let (Some(repo), Ok(want)) = (RepoName::parse(&t.repo), t.digest.parse::<Digest>()) else {
            continue;
        };
        // Still pointing at the same missing manifest? A push may have
        // re-tagged it or supplied the manifest since.
        let now = store
            .get_tag(&repo, &t.tag)
            .await
            .about(|| format!("reading tag {repo}:{}", t.tag))?;
        if now.as_ref().map(|(d, _)| d) != Some(&want) {
            continue;
        }
        let present = store
            .get_manifest(&repo, &want)
            .await
            .about(|| format!("reading manifest {repo}@{want}"))?
            .is_some();
        if present {
            continue;
        }
        if store
            .delete_tag(&repo, &t.tag)
            .await
            .about(|| format!("removing tag {repo}:{}", t.tag))?
        {
            out.removed.push(action(
                format!("tag {repo}:{} -> {want}", t.tag),
                format!("{}; nothing can pull it", t.problem),
            ));
        }
    }
    Ok(())
}

async fn remove_link(store: &dyn Storage, b: &BadLink, out: &mut RepairReport) -> Result<()> {
    if store
        .remove_link_file(&b.link)
        .await
        .about(|| format!("removing {}", b.path))?
    {
        out.removed.push(action(b.path.clone(), b.problem.clone()));
    }
    Ok(())
}

fn is_referenced(referenced: &Referenced, repo: &str, d: &Digest) -> bool {
    RepoName::parse(repo)
        .and_then(|r| referenced.get(&r))
        .is_some_and(|set| set.contains(d))
}

async fn malformed(
    store: &dyn Storage,
    b: &BadLink,
    index: &LinkIndex,
    referenced: &Referenced,
    out: &mut RepairReport,
) -> Result<()> {
    let repo = RepoName::parse(&b.link.repo);
    match (&b.fix, repo) {
        (Fix::RewriteMediaType(d), Some(repo)) => {
            if let Some(media_type) = rewrite_media_type(store, &repo, d).await? {
                out.recovered.push(action(
                    b.path.clone(),
                    format!(
                        "{}; media type {media_type} read from the manifest",
                        b.problem
                    ),
                ));
            } else if is_referenced(referenced, repo.as_str(), d) {
                out.kept.push(action(
                    b.path.clone(),
                    format!(
                        "{}; manifest content missing or unreadable and something references it: re-push the manifest",
                        b.problem
                    ),
                ));
            } else {
                remove_link(store, b, out).await?;
            }
        }
        (Fix::RewriteReferrer { subject, referrer }, Some(repo)) => {
            let known = index
                .repos
                .get(&repo)
                .is_some_and(|r| r.manifests.contains_key(referrer));
            if known && rewrite_referrer(store, &repo, subject, referrer).await? {
                out.recovered.push(action(
                    b.path.clone(),
                    format!("{}; descriptor rebuilt from the manifest", b.problem),
                ));
            } else {
                remove_link(store, b, out).await?;
            }
        }
        (Fix::RemoveUnlessReferenced(d), _) if is_referenced(referenced, &b.link.repo, d) => {
            out.kept.push(action(
                b.path.clone(),
                format!("{}; still referenced", b.problem),
            ));
        }
        _ => {
            // A tag rewritten by a push since the scan is well-formed now.
            if let (crate::storage::LinkKind::Tag, Some(repo)) =
                (&b.link.kind, RepoName::parse(&b.link.repo))
            {
                if crate::name::valid_tag(&b.link.name)
                    && store
                        .get_tag(&repo, &b.link.name)
                        .await
                        .about(|| format!("reading tag {repo}:{}", b.link.name))?
                        .is_some()
                {
                    return Ok(());
                }
            }
            remove_link(store, b, out).await?;
        }
    }
    Ok(())
}

/// The manifest's body if it is present, intact and parses.
async fn read_manifest(
    store: &dyn Storage,
    repo: &RepoName,
    d: &Digest,
) -> Result<Option<(String, bytes::Bytes, serde_json::Value)>> {
    let Some(m) = store
        .get_manifest(repo, d)
        .await
        .about(|| format!("reading manifest {repo}@{d}"))?
    else {
        return Ok(None);
    };
    // A corrupt body would be stored under another digest by a rewrite.
    if Digest::of_bytes(&m.body) != *d {
        return Ok(None);
    }
    match serde_json::from_slice::<serde_json::Value>(&m.body) {
        Ok(v) if v.is_object() => Ok(Some((m.media_type, m.body, v))),
        _ => Ok(None),
    }
}

/// Rewrites a manifest link's media type from the manifest; the media type
/// written, or `None` when the manifest cannot be read.
async fn rewrite_media_type(
    store: &dyn Storage,
    repo: &RepoName,
    d: &Digest,
) -> Result<Option<String>> {
    let Some((_, body, v)) = read_manifest(store, repo, d).await? else {
        return Ok(None);
    };
    let media_type = media_type_of(None, &v);
    store
        .put_manifest(repo, &media_type, body)
        .await
        .about(|| format!("rewriting manifest link {repo}@{d}"))?;
    Ok(Some(media_type))
}

/// Rebuilds a referrer entry the way a manifest push writes it (see
/// `manifest::store`); whether the manifest allowed it.
async fn rewrite_referrer(
    store: &dyn Storage,
    repo: &RepoName,
    subject: &Digest,
    referrer: &Digest,
) -> Result<bool> {
    let Some((media_type, body, v)) = read_manifest(store, repo, referrer).await? else {
        return Ok(false);
    };
    if references(&v).2.as_ref() != Some(subject) {
        return Ok(false);
    }
    let media_type = if media_type.trim().is_empty() {
        media_type_of(None, &v)
    } else {
        media_type
    };
    let desc = referrer_descriptor(&media_type, referrer, body.len(), &v);
    store
        .add_referrer(repo, subject, referrer, desc)
        .await
        .about(|| format!("rewriting referrer entry {repo}@{subject} <- {referrer}"))?;
    Ok(true)
}

async fn dangling(
    store: &dyn Storage,
    b: &BadLink,
    referenced: &Referenced,
    out: &mut RepairReport,
) -> Result<()> {
    if let Fix::RemoveUnlessReferenced(d) = &b.fix {
        if is_referenced(referenced, &b.link.repo, d) {
            out.kept.push(action(
                b.path.clone(),
                format!(
                    "{}; a manifest of the repository uses it: re-push the blob",
                    b.problem
                ),
            ));
            return Ok(());
        }
        // Re-uploaded since the scan: the link is right again.
        if store
            .blob_size(d)
            .await
            .about(|| format!("looking up blob {d}"))?
            .is_some()
        {
            return Ok(());
        }
    }
    remove_link(store, b, out).await
}
