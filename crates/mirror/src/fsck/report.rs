//! What fsck found, in named sections, and its human rendering. The JSON
//! form is the same structure serialised.

use std::fmt::Write as _;

use serde::Serialize;

use crate::name::Digest;
use crate::storage::LinkFile;

/// What `--repair` may do about a bad link.
#[derive(Debug, Clone, Default)]
pub(super) enum Fix {
    /// Nothing can use it: remove.
    #[default]
    Remove,
    /// Remove unless a tag, manifest or referrer entry of the repository
    /// names this digest.
    RemoveUnlessReferenced(Digest),
    /// A manifest link without a media type: rewrite it from the manifest
    /// (or, when the content is gone too, treat as `RemoveUnlessReferenced`).
    RewriteMediaType(Digest),
    /// A referrer entry that is not a descriptor: rebuild it from the
    /// referrer manifest, or remove it when that is gone.
    RewriteReferrer { subject: Digest, referrer: Digest },
}

/// A blob whose content does not hash to its name.
#[derive(Debug, Clone, Serialize)]
pub struct CorruptBlob {
    pub digest: String,
    /// What the content actually hashes to.
    pub actual: String,
    pub bytes: u64,
}

/// A tag that cannot be pulled.
#[derive(Debug, Clone, Serialize)]
pub struct UnresolvedTag {
    pub repo: String,
    pub tag: String,
    pub digest: String,
    /// `no manifest link` or `manifest content missing`.
    pub problem: String,
}

/// A manifest linked in a repository whose content is missing or unusable.
#[derive(Debug, Clone, Serialize)]
pub struct BrokenManifest {
    pub repo: String,
    pub digest: String,
    pub problem: String,
}

/// A manifest's reference to content the repository does not have.
#[derive(Debug, Clone, Serialize)]
pub struct MissingReference {
    pub repo: String,
    /// The manifest holding the reference.
    pub manifest: String,
    /// `config`, `layer`, `child manifest` or `subject`.
    pub field: String,
    pub digest: String,
    pub problem: String,
}

/// A link file that is not in the form the store writes.
#[derive(Debug, Clone, Serialize)]
pub struct BadLink {
    /// Relative to the storage root (or bucket prefix).
    pub path: String,
    pub problem: String,
    #[serde(skip)]
    pub(super) link: LinkFile,
    #[serde(skip)]
    pub(super) fix: Fix,
}

/// A blob no repository links (GC's business, listed for information).
#[derive(Debug, Clone, Serialize)]
pub struct Orphan {
    pub digest: String,
    pub bytes: u64,
    pub age_secs: u64,
}

/// An upload session: `broken` (no readable repository record, so it can
/// never finish), `stale` (idle past the threshold) or `active`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionEntry {
    pub id: String,
    pub repo: Option<String>,
    pub bytes: u64,
    pub idle_secs: u64,
    pub state: String,
}

/// A temporary file: `stale` (idle past the threshold) or `recent` (possibly
/// a write in progress).
#[derive(Debug, Clone, Serialize)]
pub struct TempEntry {
    pub path: String,
    pub bytes: u64,
    pub idle_secs: u64,
    pub state: String,
}

/// One thing `--repair` did or decided not to do.
#[derive(Debug, Clone, Serialize)]
pub struct RepairAction {
    pub target: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    /// Garbage removed.
    pub removed: Vec<RepairAction>,
    /// Link files rewritten from the content they describe.
    pub recovered: Vec<RepairAction>,
    /// Damage left in place because something references it or it cannot
    /// be fixed without the lost data.
    pub kept: Vec<RepairAction>,
}

/// Totals per section, printed last.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub damage: usize,
    pub warnings: usize,
    pub garbage: usize,
    pub orphans: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct FsckReport {
    pub blobs_checked: usize,
    pub bytes_checked: u64,
    // --- damage
    pub corrupt_blobs: Vec<CorruptBlob>,
    pub unresolved_tags: Vec<UnresolvedTag>,
    /// Manifest links whose content is missing or does not parse.
    pub broken_manifests: Vec<BrokenManifest>,
    /// Config, layers and index children missing in the manifest's repository.
    pub missing_references: Vec<MissingReference>,
    pub malformed_links: Vec<BadLink>,
    /// Blob links to missing blobs, referrer entries for missing manifests.
    pub dangling_links: Vec<BadLink>,
    /// Repositories with manifests missing from the repository index, so
    /// from `_catalog` (`--repair` indexes them).
    pub unindexed_repos: Vec<String>,
    // --- warnings
    /// Subjects not (yet) in the repository: OCI allows pushing referrers
    /// before their subject, so this is not damage.
    pub missing_subjects: Vec<MissingReference>,
    /// References in mirrored repositories not fetched yet (fetched on demand).
    pub uncached_references: usize,
    // --- garbage and information
    pub orphans: Vec<Orphan>,
    pub upload_sessions: Vec<SessionEntry>,
    pub temp_files: Vec<TempEntry>,
    pub counts: Counts,
    pub damaged: bool,
    /// What `--repair` did; absent without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<RepairReport>,
}

impl FsckReport {
    /// Whether anything is damaged (exit 1). Orphans, idle sessions and temp
    /// files are garbage, not damage; missing subjects are warnings.
    pub fn damaged(&self) -> bool {
        self.damage_count() > 0
    }

    fn damage_count(&self) -> usize {
        self.corrupt_blobs.len()
            + self.unresolved_tags.len()
            + self.broken_manifests.len()
            + self.missing_references.len()
            + self.malformed_links.len()
            + self.dangling_links.len()
            + self.unindexed_repos.len()
    }

    /// Garbage `--repair` would remove: broken or stale sessions and stale
    /// temp files.
    pub fn garbage_count(&self) -> usize {
        self.upload_sessions
            .iter()
            .filter(|s| s.state != "active")
            .count()
            + self
                .temp_files
                .iter()
                .filter(|t| t.state == "stale")
                .count()
    }

    /// Fills in `counts` and `damaged` once the sections are complete.
    pub(super) fn finish(&mut self) {
        self.counts = Counts {
            damage: self.damage_count(),
            warnings: self.missing_subjects.len(),
            garbage: self.garbage_count(),
            orphans: self.orphans.len(),
        };
        self.damaged = self.damaged();
    }

    /// The report for people: one section per kind of finding, counts last.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut section = |title: &str, lines: Vec<String>| {
            if !lines.is_empty() {
                let _ = writeln!(out, "{title} ({}):", lines.len());
                for l in lines {
                    let _ = writeln!(out, "  {l}");
                }
            }
        };
        section(
            "corrupt blobs",
            self.corrupt_blobs
                .iter()
                .map(|c| {
                    format!(
                        "{}: content hashes to {} ({} bytes)",
                        c.digest, c.actual, c.bytes
                    )
                })
                .collect(),
        );
        section(
            "tags that do not resolve",
            self.unresolved_tags
                .iter()
                .map(|t| format!("{}:{} -> {}: {}", t.repo, t.tag, t.digest, t.problem))
                .collect(),
        );
        section(
            "broken manifests",
            self.broken_manifests
                .iter()
                .map(|m| format!("{}@{}: {}", m.repo, m.digest, m.problem))
                .collect(),
        );
        let refs = |v: &[MissingReference]| -> Vec<String> {
            v.iter()
                .map(|r| {
                    format!(
                        "{}@{} {} {}: {}",
                        r.repo, r.manifest, r.field, r.digest, r.problem
                    )
                })
                .collect()
        };
        section("missing references", refs(&self.missing_references));
        let links = |v: &[BadLink]| -> Vec<String> {
            v.iter()
                .map(|l| format!("{}: {}", l.path, l.problem))
                .collect()
        };
        section("malformed link files", links(&self.malformed_links));
        section("dangling links", links(&self.dangling_links));
        section(
            "repositories missing from the repository index (not in _catalog)",
            self.unindexed_repos.clone(),
        );
        section(
            "warning: subjects not in their repository (allowed: OCI lets referrers come first)",
            refs(&self.missing_subjects),
        );
        section(
            "orphan blobs (no repository links them; gc removes them)",
            self.orphans
                .iter()
                .map(|o| format!("{} ({} bytes, {}s old)", o.digest, o.bytes, o.age_secs))
                .collect(),
        );
        section(
            "upload sessions",
            self.upload_sessions
                .iter()
                .map(|s| {
                    format!(
                        "{} {} repo {} ({} bytes, idle {}s)",
                        s.state,
                        s.id,
                        s.repo.as_deref().unwrap_or("<missing>"),
                        s.bytes,
                        s.idle_secs
                    )
                })
                .collect(),
        );
        section(
            "temp files",
            self.temp_files
                .iter()
                .map(|t| {
                    format!(
                        "{} {} ({} bytes, idle {}s)",
                        t.state, t.path, t.bytes, t.idle_secs
                    )
                })
                .collect(),
        );
        if let Some(r) = &self.repair {
            let actions = |v: &[RepairAction]| -> Vec<String> {
                v.iter()
                    .map(|a| format!("{}: {}", a.target, a.reason))
                    .collect()
            };
            section("repair: removed", actions(&r.removed));
            section("repair: recovered", actions(&r.recovered));
            section("repair: kept (needs the lost data)", actions(&r.kept));
        }
        let _ = writeln!(
            out,
            "checked {} blobs ({} bytes): {} damaged, {} warnings, {} garbage, {} orphans{}",
            self.blobs_checked,
            self.bytes_checked,
            self.counts.damage,
            self.counts.warnings,
            self.counts.garbage,
            self.counts.orphans,
            match &self.repair {
                Some(r) => format!(
                    "; repair removed {}, recovered {}, kept {}",
                    r.removed.len(),
                    r.recovered.len(),
                    r.kept.len()
                ),
                None => String::new(),
            }
        );
        if self.uncached_references > 0 {
            let _ = writeln!(
                out,
                "{} references in mirrored repositories not cached yet (fetched on demand)",
                self.uncached_references
            );
        }
        out
    }
}
