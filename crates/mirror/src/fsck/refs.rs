//! References: each tag resolves to a linked manifest whose content exists;
//! each manifest parses and everything it references (config, layers, index
//! children) is in *its* repository, as a pull from that repository needs;
//! each blob link and referrer entry points at something. A missing subject
//! is only a warning: OCI lets referrers be pushed before their subject.

use std::collections::{HashMap, HashSet};

use super::blobs::BlobInfo;
use super::links::{LinkIndex, Referenced, RepoLinks};
use super::report::{BadLink, BrokenManifest, Fix, FsckReport, MissingReference, UnresolvedTag};
use super::{Context, FsckOptions, Result};
use crate::manifest::references;
use crate::name::{Digest, RepoName};
use crate::storage::Storage;

/// Existence questions, answered from the listings and confirmed against
/// the store on a miss (the listing may predate a concurrent write).
struct Probe<'a> {
    store: &'a dyn Storage,
    blobs: &'a HashMap<Digest, BlobInfo>,
}

impl Probe<'_> {
    async fn blob(&self, d: &Digest) -> Result<bool> {
        if self.blobs.contains_key(d) {
            return Ok(true);
        }
        Ok(self
            .store
            .blob_size(d)
            .await
            .about(|| format!("looking up blob {d}"))?
            .is_some())
    }

    async fn blob_link(&self, repo: &RepoName, links: &RepoLinks, d: &Digest) -> Result<bool> {
        if links.blobs.contains(d) {
            return Ok(true);
        }
        self.store
            .has_blob_link(repo, d)
            .await
            .about(|| format!("looking up blob link {repo}@{d}"))
    }

    /// Whether the manifest is linked in `repo` with its content present.
    async fn manifest(&self, repo: &RepoName, links: &RepoLinks, d: &Digest) -> Result<bool> {
        if links.manifests.contains_key(d) && self.blobs.contains_key(d) {
            return Ok(true);
        }
        Ok(self
            .store
            .get_manifest(repo, d)
            .await
            .about(|| format!("reading manifest {repo}@{d}"))?
            .is_some())
    }
}

pub(super) async fn check(
    store: &dyn Storage,
    opts: &FsckOptions,
    index: &LinkIndex,
    blobs: &HashMap<Digest, BlobInfo>,
    report: &mut FsckReport,
) -> Result<Referenced> {
    let probe = Probe { store, blobs };
    let mut referenced = Referenced::new();
    for (repo, links) in &index.repos {
        let used = check_repo(&probe, opts, repo, links, report).await?;
        referenced.insert(repo.clone(), used);
    }
    Ok(referenced)
}

async fn check_repo(
    probe: &Probe<'_>,
    opts: &FsckOptions,
    repo: &RepoName,
    links: &RepoLinks,
    report: &mut FsckReport,
) -> Result<HashSet<Digest>> {
    let mirrored = opts.is_mirrored(repo);
    let mut used: HashSet<Digest> = HashSet::new();

    for (tag, d) in &links.tags {
        used.insert(d.clone());
        if probe.manifest(repo, links, d).await? {
            continue;
        }
        let problem = if links.manifests.contains_key(d) {
            "manifest content missing"
        } else {
            "no manifest link in the repository"
        };
        report.unresolved_tags.push(UnresolvedTag {
            repo: repo.to_string(),
            tag: tag.clone(),
            digest: d.to_string(),
            problem: problem.into(),
        });
    }

    for d in links.manifests.keys() {
        if !probe.blob(d).await? {
            report.broken_manifests.push(BrokenManifest {
                repo: repo.to_string(),
                digest: d.to_string(),
                problem: "manifest content missing".into(),
            });
            continue;
        }
        let Some(m) = probe
            .store
            .get_manifest(repo, d)
            .await
            .about(|| format!("reading manifest {repo}@{d}"))?
        else {
            // Unlinked since the listing (a delete or GC meanwhile).
            continue;
        };
        let v = match serde_json::from_slice::<serde_json::Value>(&m.body) {
            Ok(v) if v.is_object() => v,
            Ok(_) => {
                report.broken_manifests.push(BrokenManifest {
                    repo: repo.to_string(),
                    digest: d.to_string(),
                    problem: "manifest is not a JSON object".into(),
                });
                continue;
            }
            Err(e) => {
                report.broken_manifests.push(BrokenManifest {
                    repo: repo.to_string(),
                    digest: d.to_string(),
                    problem: format!("manifest does not parse: {e}"),
                });
                continue;
            }
        };
        let (blob_refs, children, subject) = references(&v);
        let config: Option<Digest> = v
            .get("config")
            .and_then(|c| c.get("digest"))
            .and_then(|x| x.as_str())
            .and_then(|x| x.parse().ok());
        let missing = |field: &str, digest: &Digest, problem: &str| MissingReference {
            repo: repo.to_string(),
            manifest: d.to_string(),
            field: field.into(),
            digest: digest.to_string(),
            problem: problem.into(),
        };
        for b in &blob_refs {
            used.insert(b.clone());
            let field = if config.as_ref() == Some(b) {
                "config"
            } else {
                "layer"
            };
            if !probe.blob(b).await? {
                if mirrored {
                    report.uncached_references += 1;
                } else {
                    report
                        .missing_references
                        .push(missing(field, b, "blob missing"));
                }
            } else if !mirrored && !probe.blob_link(repo, links, b).await? {
                // The blob exists but a pull from this repository is refused.
                report.missing_references.push(missing(
                    field,
                    b,
                    "blob not linked in the repository",
                ));
            }
        }
        for c in &children {
            used.insert(c.clone());
            if probe.manifest(repo, links, c).await? {
                continue;
            }
            if mirrored {
                report.uncached_references += 1;
            } else {
                let problem = if links.manifests.contains_key(c) {
                    "manifest content missing"
                } else {
                    "manifest not in the repository"
                };
                report
                    .missing_references
                    .push(missing("child manifest", c, problem));
            }
        }
        if let Some(s) = &subject {
            used.insert(s.clone());
            if !mirrored && !probe.manifest(repo, links, s).await? {
                report.missing_subjects.push(missing(
                    "subject",
                    s,
                    "subject manifest not in the repository (allowed: referrers may come first)",
                ));
            }
        }
    }

    for (subject, referrer, link) in &links.referrers {
        used.insert(referrer.clone());
        used.insert(subject.clone());
        if !probe.manifest(repo, links, referrer).await? {
            report.dangling_links.push(BadLink {
                path: link.rel_path(),
                problem: "referrer entry for a manifest the repository does not have".into(),
                link: link.clone(),
                // Nothing refers to a referrer entry; it only misleads the
                // referrers API into listing a manifest that is not there.
                fix: Fix::Remove,
            });
        }
    }

    let mut blob_links: Vec<&Digest> = links.blobs.iter().collect();
    blob_links.sort();
    for d in blob_links {
        if probe.blob(d).await? {
            continue;
        }
        report.dangling_links.push(BadLink {
            path: format!("repos/{repo}/_blobs/{}", d.hex()),
            problem: "blob link to a blob whose data is missing".into(),
            link: crate::storage::LinkFile {
                repo: repo.to_string(),
                kind: crate::storage::LinkKind::Blob,
                name: d.hex().to_string(),
                size: 0,
                modified: std::time::SystemTime::now(),
                content: None,
            },
            fix: Fix::RemoveUnlessReferenced(d.clone()),
        });
    }
    Ok(used)
}
