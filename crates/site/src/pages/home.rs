//! `/`: what is offered, grouped: base images, the curated library by
//! stack, Atomic Host streams, disk images; each repository with its
//! featured tag's date and signature state, and a filter box (a name
//! prefix, answered from the repository index).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use futures_util::StreamExt;
use serde::Serialize;

use super::{featured_tag, page_size, Context};
use crate::html::{self, escape, url_encode};
use crate::model::Signature;

/// Repositories per home page unless `?n=` says otherwise.
pub const DEFAULT_REPOS: usize = 60;
pub const MAX_REPOS: usize = 200;

/// The stacks of the curated library, in the order shown, with the name
/// prefixes that place a repository in them when it has no
/// `dev.corral.stack` label.
pub const STACKS: &[(&str, &[&str])] = &[
    ("Python", &["python"]),
    ("Ruby", &["ruby"]),
    ("PHP", &["php"]),
    ("Node.js", &["nodejs", "node"]),
    ("Java", &["java", "openjdk"]),
    ("Perl", &["perl"]),
    ("Go", &["golang", "go"]),
    (
        "Services",
        &[
            "postgresql",
            "postgres",
            "mariadb",
            "mysql",
            "redis",
            "nginx",
            "httpd",
            "memcached",
            "valkey",
        ],
    ),
    // library images of no stack above
    ("Other", &[]),
];

/// A label the curated library's builds put on every image
/// (`corral dockerfiles build`): what tells a library image from a base
/// image whose name fits no stack.
pub const LIBRARY_LABEL: &str = "dev.corral.context-hash";

/// The group of bootable OS images (`corral release` publishes a
/// stream's commits as `os/NAME`): images labelled `ostree.bootable` or
/// `containers.bootc`, as the ostree container format marks them.
pub const OS_IMAGES: &str = "Atomic Host images";

/// The labels that mark an image as a bootable OS image.
const BOOTABLE_LABELS: &[&str] = &["ostree.bootable", "containers.bootc"];

/// Where a repository is listed on the home page, from its featured
/// image's labels: bootable OS images apart, the rest by [`group_of`].
pub fn group_by_labels(repo: &str, labels: Option<&BTreeMap<String, String>>) -> String {
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    if BOOTABLE_LABELS.iter().any(|k| label(k).is_some()) {
        return OS_IMAGES.to_string();
    }
    group_of(
        repo,
        label("dev.corral.stack"),
        label(LIBRARY_LABEL).is_some(),
    )
}

/// Where a repository is listed on the home page; `library` says its
/// featured image was built from the curated library. A namespace listed
/// apart ([`crate::listings::Listings`]) is placed before this is asked.
pub fn group_of(repo: &str, stack_label: Option<&str>, library: bool) -> String {
    if let Some(s) = stack_label {
        if let Some((name, _)) = STACKS.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
            return name.to_string();
        }
    }
    let last = repo.rsplit('/').next().unwrap_or(repo);
    for (name, prefixes) in STACKS {
        if prefixes.iter().any(|p| {
            last == *p
                || last.strip_prefix(p).is_some_and(|r| {
                    r.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
                })
        }) {
            return name.to_string();
        }
    }
    if library {
        return "Other".to_string();
    }
    "Base images".to_string()
}

#[derive(Debug, Serialize)]
pub struct RepoSummary {
    pub name: String,
    pub group: String,
    pub url: String,
    pub description: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub created: Option<String>,
    pub platforms: Vec<String>,
    pub signature: Option<Signature>,
    pub pull: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StreamSummary {
    pub name: String,
    pub url: String,
    pub version: Option<String>,
    pub date: Option<String>,
    pub signed_by: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Home {
    /// The name prefix filtered on.
    pub filter: Option<String>,
    pub repositories: Vec<RepoSummary>,
    /// The URL of the next page of repositories.
    pub next: Option<String>,
    pub streams: Vec<StreamSummary>,
    pub disk_images: usize,
    pub newest_disk_image: Option<String>,
    pub disk_images_url: String,
}

/// A repository name just before every name that starts with `prefix`
/// (names are `[a-z0-9._/-]`, all below `~`), for a listing that starts
/// there.
fn before_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    let prev = char::from_u32(last as u32 - 1)?;
    let mut s: String = chars.into_iter().collect();
    s.push(prev);
    s.push_str("~~~~~~~~");
    Some(s)
}

/// Featured tags read at the same time.
const FEATURED_AT_ONCE: usize = 8;

pub async fn collect(ctx: &Context<'_>, query: &str) -> anyhow::Result<Home> {
    let n = page_size(query, DEFAULT_REPOS, MAX_REPOS);
    let filter = crate::query_param(query, "q")
        .map(|q| q.trim().to_ascii_lowercase())
        .filter(|q| !q.is_empty());
    let after = crate::query_param(query, "after");
    let start = match (&after, &filter) {
        (Some(a), _) => Some(a.clone()),
        (None, Some(f)) => before_prefix(f),
        (None, None) => None,
    };
    let listing = ctx.source.repositories(start.as_deref(), n).await?;
    let mut repositories = Vec::new();
    let mut more = listing.more;
    let shown: Vec<&String> = match &filter {
        Some(f) => listing
            .items
            .iter()
            .take_while(|name| name.starts_with(f.as_str()))
            .collect(),
        None => listing.items.iter().collect(),
    };
    if shown.len() < listing.items.len() {
        more = false;
    }
    // Unlisted repositories (a withdrawn community template) leave the
    // page and its search; the next page still starts after the listing's
    // last name.
    let shown: Vec<&String> = shown
        .into_iter()
        .filter(|name| ctx.listings.is_listed(name))
        .collect();
    // The featured tags are read a few at a time: each is a handful of
    // small reads the source makes off the async threads, so reading them
    // one after another would leave the cores waiting.
    let names: Vec<String> = shown.iter().map(|name| (*name).clone()).collect();
    let reads = names
        .into_iter()
        .map(|name| async move { featured_tag(ctx, &name).await });
    let featured: Vec<_> = futures_util::stream::iter(reads)
        .buffered(FEATURED_AT_ONCE)
        .collect()
        .await;
    for (name, image) in shown.into_iter().zip(featured) {
        let image = image?;
        let label = |k: &str| image.as_ref().and_then(|i| i.labels.get(k)).cloned();
        repositories.push(RepoSummary {
            group: ctx
                .listings
                .group_apart(name)
                .unwrap_or_else(|| group_by_labels(name, image.as_ref().map(|i| &i.labels))),
            url: format!("/repositories/{}", url_encode(name, true)),
            description: label("org.opencontainers.image.description")
                .or_else(|| label("summary"))
                .or_else(|| label("description"))
                .map(|d| truncate(&d, 160)),
            tag: image.as_ref().map(|i| i.tag.clone()),
            digest: image.as_ref().map(|i| i.digest.clone()),
            created: image.as_ref().and_then(|i| i.created.clone()),
            platforms: image
                .as_ref()
                .map(|i| i.platforms.clone())
                .unwrap_or_default(),
            signature: image.as_ref().map(|i| i.signature.clone()),
            pull: image
                .as_ref()
                .map(|i| format!("{}/{}:{}", ctx.host, name, i.tag)),
            name: name.clone(),
        });
    }
    let next = match (more, listing.items.last()) {
        (true, Some(last)) => {
            let mut q = format!("?n={n}&after={}", url_encode(last, false));
            if let Some(f) = &filter {
                let _ = write!(q, "&q={}", url_encode(f, false));
            }
            Some(format!("/{q}"))
        }
        _ => None,
    };
    let streams = ctx
        .source
        .streams()
        .await?
        .into_iter()
        .map(|s| StreamSummary {
            url: format!("/atomic-host/{}", url_encode(&s.name, false)),
            version: s.versions.first().map(|v| v.version.clone()),
            date: s.versions.first().map(|v| v.date.clone()),
            signed_by: s.key.clone(),
            name: s.name,
        })
        .collect();
    let images = ctx.source.disk_images().await?;
    let newest_disk_image = images
        .iter()
        .max_by_key(|i| i.modified)
        .map(|i| i.name.clone());
    Ok(Home {
        filter,
        repositories,
        next,
        streams,
        disk_images: images.len(),
        newest_disk_image,
        disk_images_url: "/downloads".to_string(),
    })
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The id of a group's section.
fn group_id(group: &str) -> String {
    group
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
        .collect::<String>()
        .to_ascii_lowercase()
        .replace(' ', "-")
}

pub fn render(home: &Home, ctx: &Context<'_>) -> String {
    let mut b = String::new();
    b.push_str("<h1>Images, Atomic Host and disk images</h1>\n");
    let _ = writeln!(
        b,
        "<form class=\"filter\" method=\"get\" action=\"/\" role=\"search\"><label for=\"q\">Find a repository (name starts with)</label> <input id=\"q\" name=\"q\" type=\"search\" value=\"{}\" autocomplete=\"off\"> <button type=\"submit\">Search</button></form>",
        escape(home.filter.as_deref().unwrap_or(""))
    );
    let apart = ctx.listings.group();
    let mut groups: Vec<&str> = vec!["Base images", OS_IMAGES];
    groups.extend(super::home::STACKS.iter().map(|(n, _)| *n));
    groups.extend(apart.as_deref());
    if home.repositories.is_empty() {
        b.push_str("<p>No repositories match.</p>\n");
    }
    for g in groups {
        let repos: Vec<&RepoSummary> = home.repositories.iter().filter(|r| r.group == g).collect();
        if repos.is_empty() {
            continue;
        }
        let heading = if g == "Base images" || g == OS_IMAGES || apart.as_deref() == Some(g) {
            g.to_string()
        } else {
            format!("Library: {g}")
        };
        let _ = write!(
            b,
            "<section aria-labelledby=\"{id}\"><h2 id=\"{id}\">{}</h2>\n<ul class=\"cards\">\n",
            escape(&heading),
            id = group_id(g)
        );
        for r in repos {
            let _ = write!(
                b,
                "<li class=\"card\"><h3><a href=\"{}\">{}</a></h3>",
                escape(&r.url),
                escape(&r.name)
            );
            if let Some(d) = &r.description {
                let _ = write!(b, "<p>{}</p>", escape(d));
            }
            match (&r.tag, &r.signature) {
                (Some(tag), Some(sig)) => {
                    let _ = write!(
                        b,
                        "<p class=\"meta\">newest <strong>{}</strong>",
                        escape(tag)
                    );
                    if let Some(c) = &r.created {
                        let _ = write!(b, ", {}", html::date(c, ctx.now));
                    }
                    if !r.platforms.is_empty() {
                        let _ = write!(b, ", {}", escape(&r.platforms.join(", ")));
                    }
                    let _ = write!(
                        b,
                        "</p><p class=\"sig {}\" title=\"{}\">{}</p>",
                        sig.class(),
                        escape(&sig.text()),
                        escape(&sig.short_text())
                    );
                }
                _ => b.push_str("<p class=\"meta\">no tags</p>"),
            }
            b.push_str("</li>\n");
        }
        b.push_str("</ul></section>\n");
    }
    if let Some(next) = &home.next {
        let _ = writeln!(
            b,
            "<p><a rel=\"next\" href=\"{}\">More repositories</a></p>",
            escape(next)
        );
    }
    b.push_str(
        "<section aria-labelledby=\"atomic-host\"><h2 id=\"atomic-host\">Atomic Host</h2>\n",
    );
    if home.streams.is_empty() {
        b.push_str("<p>No streams published.</p>\n");
    } else {
        b.push_str("<ul class=\"cards\">\n");
        for s in &home.streams {
            let _ = write!(
                b,
                "<li class=\"card\"><h3><a href=\"{}\">{}</a></h3><p class=\"meta\">",
                escape(&s.url),
                escape(&s.name)
            );
            match (&s.version, &s.date) {
                (Some(v), Some(d)) => {
                    let _ = write!(
                        b,
                        "newest <strong>{}</strong>, {}",
                        escape(v),
                        html::date(d, ctx.now)
                    );
                }
                _ => b.push_str("no versions yet"),
            }
            b.push_str("</p>");
            match &s.signed_by {
                Some(k) => {
                    let _ = write!(
                        b,
                        "<p class=\"sig verified\">commits signed by {}</p>",
                        escape(k)
                    );
                }
                None => b.push_str("<p class=\"sig unsigned\">commits unsigned</p>"),
            }
            b.push_str("</li>\n");
        }
        b.push_str("</ul>\n");
    }
    b.push_str("</section>\n<section aria-labelledby=\"disk-images\"><h2 id=\"disk-images\">Disk images</h2>\n");
    let _ = writeln!(
        b,
        "<p>{} image{} for OpenStack, CloudStack, OpenNebula and plain KVM{}. <a href=\"/downloads\">Download disk images</a></p></section>",
        home.disk_images,
        if home.disk_images == 1 { "" } else { "s" },
        home.newest_disk_image
            .as_ref()
            .map(|n| format!("; newest {}", escape(n)))
            .unwrap_or_default()
    );
    let json = match &home.next {
        _ if home.filter.is_some() => format!(
            "/?format=json&q={}",
            url_encode(home.filter.as_deref().unwrap_or(""), false)
        ),
        _ => "/?format=json".to_string(),
    };
    html::page("Images", &json, &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_label_then_name() {
        assert_eq!(group_of("library/python3.12", None, false), "Python");
        assert_eq!(group_of("library/python-311", None, false), "Python");
        assert_eq!(group_of("pythonic", None, false), "Base images");
        assert_eq!(group_of("x/postgresql", None, false), "Services");
        assert_eq!(group_of("x/anything", Some("ruby"), false), "Ruby");
        assert_eq!(group_of("fedora/base", None, false), "Base images");
        // No namespace is special to the site itself.
        assert_eq!(group_of("community/hello", None, false), "Base images");
        // built from the library, of no stack
        assert_eq!(group_of("sample/app", None, true), "Other");
        assert_eq!(group_of("sample/python3", None, true), "Python");
    }

    #[test]
    fn bootable_images_are_grouped_apart_whatever_their_name() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let os = labels(&[("ostree.bootable", "true"), ("ostree.commit", "abc")]);
        assert_eq!(group_by_labels("os/atomic-host", Some(&os)), OS_IMAGES);
        // the name of a stack does not win over the label
        assert_eq!(group_by_labels("x/python3", Some(&os)), OS_IMAGES);
        let bootc = labels(&[("containers.bootc", "1")]);
        assert_eq!(group_by_labels("fedora/bootc", Some(&bootc)), OS_IMAGES);
        // without the labels: as before
        assert_eq!(group_by_labels("os/base", None), "Base images");
        let lib = labels(&[(LIBRARY_LABEL, "h"), ("dev.corral.stack", "ruby")]);
        assert_eq!(group_by_labels("x/app", Some(&lib)), "Ruby");
    }

    #[test]
    fn prefix_start_sorts_before_every_match() {
        let b = before_prefix("lib").unwrap();
        for name in ["lib", "lib/a", "lib-x", "libz"] {
            assert!(b.as_str() < name, "{b} < {name}");
        }
        assert!(b.as_str() > "lia/zzz");
    }
}
