//! Link file format: parses what [`Storage::scan_links`] returns into the
//! index the other checks use, and names every link that is not in the form
//! the store writes. Pure: no I/O, so every malformation has a unit test.
//!
//! [`Storage::scan_links`]: crate::storage::Storage::scan_links

use std::collections::{BTreeMap, HashMap, HashSet};

use super::report::{BadLink, Fix};
use crate::name::{Digest, RepoName};
use crate::storage::{LinkFile, LinkKind};

/// The well-formed links of one repository.
#[derive(Debug, Default)]
pub(super) struct RepoLinks {
    pub blobs: HashSet<Digest>,
    /// Manifest digest -> media type (empty when the link lacks one).
    pub manifests: BTreeMap<Digest, String>,
    /// Tag -> digest.
    pub tags: BTreeMap<String, Digest>,
    /// (subject, referrer, the entry).
    pub referrers: Vec<(Digest, Digest, LinkFile)>,
}

/// All repositories' links, and the malformed ones.
#[derive(Debug, Default)]
pub(super) struct LinkIndex {
    pub repos: BTreeMap<RepoName, RepoLinks>,
    pub malformed: Vec<BadLink>,
}

impl LinkIndex {
    /// Every digest some repository links as a blob or a manifest.
    pub fn linked(&self) -> HashSet<&Digest> {
        self.repos
            .values()
            .flat_map(|r| r.blobs.iter().chain(r.manifests.keys()))
            .collect()
    }
}

fn digest_name(name: &str) -> Option<Digest> {
    Digest::from_hex(name)
}

fn bad(link: &LinkFile, problem: impl Into<String>, fix: Fix) -> BadLink {
    BadLink {
        path: link.rel_path(),
        problem: problem.into(),
        link: link.clone(),
        fix,
    }
}

const NOT_HEX: &str = "name is not a lowercase sha256 hex digest";

/// Sorts one link into the index or the malformed list (a manifest link
/// without a media type goes to both: it still names a manifest).
fn add(index: &mut LinkIndex, link: &LinkFile) {
    let Some(repo) = RepoName::parse(&link.repo) else {
        index.malformed.push(bad(
            link,
            format!("{:?} is not a valid repository name", link.repo),
            Fix::Remove,
        ));
        return;
    };
    let content = link.content.as_deref().unwrap_or_default();
    let r = index.repos.entry(repo).or_default();
    match &link.kind {
        LinkKind::Blob => match digest_name(&link.name) {
            Some(d) => {
                r.blobs.insert(d);
            }
            None => index.malformed.push(bad(link, NOT_HEX, Fix::Remove)),
        },
        LinkKind::Manifest => {
            let Some(d) = digest_name(&link.name) else {
                index.malformed.push(bad(link, NOT_HEX, Fix::Remove));
                return;
            };
            let media_type = std::str::from_utf8(content).unwrap_or("").trim();
            if media_type.is_empty() {
                let problem = if link.size == 0 {
                    "empty file (a manifest link holds its media type)"
                } else {
                    "media type is empty or not text"
                };
                index
                    .malformed
                    .push(bad(link, problem, Fix::RewriteMediaType(d.clone())));
            }
            r.manifests.insert(d, media_type.to_string());
        }
        LinkKind::Tag => {
            if !crate::name::valid_tag(&link.name) {
                index
                    .malformed
                    .push(bad(link, "name is not a valid tag", Fix::Remove));
                return;
            }
            let text = std::str::from_utf8(content).unwrap_or("");
            match text.trim().parse::<Digest>() {
                Ok(d) => {
                    r.tags.insert(link.name.clone(), d);
                }
                Err(_) if link.size == 0 => index.malformed.push(bad(
                    link,
                    "empty file (a tag holds a digest)",
                    Fix::Remove,
                )),
                Err(_) => index.malformed.push(bad(
                    link,
                    format!("content {:?} is not a digest", truncate(text)),
                    Fix::Remove,
                )),
            }
        }
        LinkKind::Referrer { subject } => {
            let (Some(s), Some(d)) = (digest_name(subject), digest_name(&link.name)) else {
                index.malformed.push(bad(
                    link,
                    "subject or referrer name is not a lowercase sha256 hex digest",
                    Fix::Remove,
                ));
                return;
            };
            let descriptor = serde_json::from_slice::<serde_json::Value>(content).ok();
            let named = descriptor
                .as_ref()
                .and_then(|v| v.get("digest"))
                .and_then(|x| x.as_str())
                .and_then(|x| x.parse::<Digest>().ok());
            let problem = match (&descriptor, &named) {
                _ if link.size == 0 => Some("empty file (a referrer entry holds a descriptor)"),
                (Some(v), _) if !v.is_object() => Some("content is not a descriptor"),
                (None, _) => Some("content is not JSON"),
                (_, None) => Some("descriptor has no digest"),
                (_, Some(n)) if *n != d => Some("descriptor names another digest than its file"),
                _ => None,
            };
            match problem {
                Some(p) => index.malformed.push(bad(
                    link,
                    p,
                    Fix::RewriteReferrer {
                        subject: s,
                        referrer: d,
                    },
                )),
                None => r.referrers.push((s, d, link.clone())),
            }
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

pub(super) fn index(links: &[LinkFile]) -> LinkIndex {
    let mut index = LinkIndex::default();
    for l in links {
        add(&mut index, l);
    }
    index
}

/// Digests each repository's tags, manifests and referrer entries name: what
/// `--repair` must never unlink. Filled in by the reference check.
pub(super) type Referenced = HashMap<RepoName, HashSet<Digest>>;

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::SystemTime;

    fn link(repo: &str, kind: LinkKind, name: &str, content: Option<&[u8]>) -> LinkFile {
        LinkFile {
            repo: repo.into(),
            kind,
            name: name.into(),
            size: content.map_or(0, |c| c.len() as u64),
            modified: SystemTime::now(),
            content: content.map(Bytes::copy_from_slice),
        }
    }

    fn problems(links: &[LinkFile]) -> Vec<(String, String)> {
        index(links)
            .malformed
            .into_iter()
            .map(|b| (b.path, b.problem))
            .collect()
    }

    #[test]
    fn well_formed_links_are_indexed() {
        let d = Digest::of_bytes(b"m");
        let desc = format!(r#"{{"digest":"{d}"}}"#);
        let links = [
            link("a/b", LinkKind::Blob, d.hex(), None),
            link(
                "a/b",
                LinkKind::Manifest,
                d.hex(),
                Some(&b"application/x"[..]),
            ),
            link(
                "a/b",
                LinkKind::Tag,
                "v1",
                Some(format!("{d}\n").as_bytes()),
            ),
            link(
                "a/b",
                LinkKind::Referrer {
                    subject: d.hex().into(),
                },
                d.hex(),
                Some(desc.as_bytes()),
            ),
        ];
        let ix = index(&links);
        assert!(ix.malformed.is_empty(), "{:?}", ix.malformed);
        let r = &ix.repos[&RepoName::parse("a/b").unwrap()];
        assert!(r.blobs.contains(&d));
        assert_eq!(r.manifests[&d], "application/x");
        assert_eq!(r.tags["v1"], d);
        assert_eq!(r.referrers.len(), 1);
    }

    #[test]
    fn each_malformation_is_named() {
        let d = Digest::of_bytes(b"m");
        let other = Digest::of_bytes(b"o");
        let referrer = |content: &[u8]| {
            link(
                "r",
                LinkKind::Referrer {
                    subject: d.hex().into(),
                },
                d.hex(),
                Some(content),
            )
        };
        let got = problems(&[
            link("r", LinkKind::Tag, "v1", Some(&b"latest"[..])),
            link("r", LinkKind::Tag, "v2", Some(&b""[..])),
            link(
                "r",
                LinkKind::Tag,
                ".hidden",
                Some(d.to_string().as_bytes()),
            ),
            link("r", LinkKind::Manifest, d.hex(), Some(&b""[..])),
            link(
                "r",
                LinkKind::Manifest,
                &d.hex().to_uppercase(),
                Some(&b"a/b"[..]),
            ),
            link("r", LinkKind::Blob, "not-hex", None),
            link("Bad/Repo", LinkKind::Blob, d.hex(), None),
            referrer(b""),
            referrer(b"[1]"),
            referrer(format!(r#"{{"digest":"{other}"}}"#).as_bytes()),
        ]);
        let has = |path: &str, problem: &str| {
            assert!(
                got.iter()
                    .any(|(p, q)| p.ends_with(path) && q.contains(problem)),
                "{path}: {problem} not in {got:#?}"
            )
        };
        has("_tags/v1", "\"latest\" is not a digest");
        has("_tags/v2", "empty file");
        has("_tags/.hidden", "not a valid tag");
        has(&format!("_manifests/{}", d.hex()), "empty file");
        has(
            &format!("_manifests/{}", d.hex().to_uppercase()),
            "not a lowercase",
        );
        has("_blobs/not-hex", "not a lowercase");
        has(
            &format!("Bad/Repo/_blobs/{}", d.hex()),
            "not a valid repository",
        );
        has(&format!("_referrers/{}/{}", d.hex(), d.hex()), "empty file");
        assert!(got.iter().any(|(_, q)| q == "content is not a descriptor"));
        assert!(got.iter().any(|(_, q)| q.contains("another digest")));
        assert_eq!(got.len(), 10, "{got:#?}");
    }
}
