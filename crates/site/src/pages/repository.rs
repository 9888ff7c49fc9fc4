//! `/repositories/<name>`: one repository. Description, usage and help
//! from the featured tag's labels and its help artifact (Markdown, rendered
//! safely); pull commands for podman, docker and skopeo; the verify
//! commands for corral and skopeo with a generated policy; a page of tags
//! with short digests, sizes, dates, platforms and signature state; the
//! SBOM, advisories and Dockerfile with its lint state when they were
//! published as artifacts referring to the image.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{featured_tag, is_image_tag, page_size, Context};
use crate::html::{self, escape, url_encode};
use crate::model::{Image, Signature};
use crate::source::{ADVISORIES_ARTIFACT, BUILD_ARTIFACT, HELP_ARTIFACT, SBOM_ARTIFACT};

pub const DEFAULT_TAGS: usize = 30;
pub const MAX_TAGS: usize = 200;
/// Artifacts larger than this are linked, not read.
const MAX_ARTIFACT: u64 = 8 << 20;
/// SBOM packages listed on the page (the SPDX file has them all).
const MAX_PACKAGES: usize = 2000;

/// A library image's Dockerfile and what the linter said of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuildInfo {
    pub dockerfile: String,
    #[serde(default)]
    pub findings: Vec<LintFinding>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LintFinding {
    pub rule: String,
    #[serde(default)]
    pub line: Option<u32>,
    pub message: String,
}

/// An advisory that applies to a package in the image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Advisory {
    pub id: String,
    pub package: String,
    #[serde(default)]
    pub installed: String,
    #[serde(default)]
    pub fixed: String,
    #[serde(default)]
    pub severity: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Serialize)]
pub struct Sbom {
    /// Where the SPDX JSON downloads from.
    pub url: String,
    pub artifact: String,
    pub packages: Vec<Package>,
    pub total_packages: usize,
}

#[derive(Debug, Serialize)]
pub struct Commands {
    pub podman: String,
    pub docker: String,
    pub skopeo: String,
    /// Each downloads its key first (`curl … /keys/NAME`).
    pub verify_corral: Vec<String>,
    pub verify_skopeo: Vec<String>,
    /// Set when skopeo as Debian builds it cannot check the tag: its only
    /// verified signatures are cosign (sigstore) ones.
    pub skopeo_note: Option<String>,
    /// The trusted keys, downloadable.
    pub keys: Vec<KeyLink>,
}

#[derive(Debug, Serialize)]
pub struct TagView {
    #[serde(flatten)]
    pub image: Image,
    pub pull: String,
}

#[derive(Debug, Serialize)]
pub struct Repository {
    pub name: String,
    pub url: String,
    pub description: Option<String>,
    pub usage: Option<String>,
    /// Help (Markdown) from the help artifact or the `help` label.
    pub help: Option<String>,
    pub featured: Option<TagView>,
    pub commands: Option<Commands>,
    pub tags: Vec<TagView>,
    pub next: Option<String>,
    pub sbom: Option<Sbom>,
    pub advisories: Option<Vec<Advisory>>,
    pub build: Option<BuildInfo>,
    /// Why the repository is left out of the listings (`withdrawn`);
    /// its tags and digests still pull.
    pub unlisted: Option<String>,
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn text(a: &crate::model::Artifact) -> Option<String> {
    String::from_utf8(a.content.clone()).ok()
}

/// The packages of an SPDX 2 JSON document.
pub fn spdx_packages(doc: &[u8]) -> Option<Vec<Package>> {
    let v: serde_json::Value = serde_json::from_slice(doc).ok()?;
    let mut out: Vec<Package> = v
        .get("packages")?
        .as_array()?
        .iter()
        .filter_map(|p| {
            Some(Package {
                name: p.get("name")?.as_str()?.to_string(),
                version: p
                    .get("versionInfo")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Some(out)
}

/// A trusted key file and where the mirror serves it.
#[derive(Debug, Serialize)]
pub struct KeyLink {
    pub name: String,
    /// `cosign` (a PEM public key) or `gpg` (a keyring).
    pub format: &'static str,
    pub url: String,
}

/// What the page says of skopeo for a tag verified only in the cosign
/// format.
pub const SKOPEO_SIGSTORE_NOTE: &str = "This tag's signatures that the mirror verified are cosign (sigstore) signatures only. skopeo checks those only when built with sigstore support; the skopeo Debian and Ubuntu ship is built without it and refuses the image under this policy (\"sigstore disabled\") whatever its signature. There, verify with corral verify image (above).";

fn commands(ctx: &Context<'_>, reference: &str, local: &str, signature: &Signature) -> Commands {
    let plain = ctx.plain_http();
    let trusted = ctx.source.trusted_keys();
    let keys: Vec<KeyLink> = trusted
        .cosign_keys
        .iter()
        .map(|k| (k, "cosign"))
        .chain(trusted.gpg_keyrings.iter().map(|k| (k, "gpg")))
        .map(|(k, format)| KeyLink {
            name: k.clone(),
            format,
            url: ctx.key_url(k),
        })
        .collect();
    let verified = matches!(signature, Signature::Verified { .. });
    // A verified tag gets the commands for the formats it is signed in:
    // a command with a key of another format would fail on it.
    let usable = |format: &str| !verified || signature.verified_in(format);
    let flag = if plain { " --plain-http" } else { "" };
    // Each verify command starts by downloading the key it names, so it
    // runs as shown in an empty directory.
    let mut verify_corral = Vec::new();
    for k in keys.iter().filter(|k| usable(k.format)) {
        let option = match k.format {
            "cosign" => "--key",
            _ => "--gpg-keyring",
        };
        verify_corral.push(format!(
            "{} && corral verify image {reference}{flag} {option} {}",
            ctx.key_download(&k.name),
            html::shell_word(&k.name)
        ));
    }
    if verify_corral.is_empty() {
        verify_corral.push(format!(
            "corral verify image {reference}{flag} --key cosign.pub"
        ));
    }
    // skopeo under a policy: a GPG keyring where the tag has a GPG
    // signature (every skopeo checks those), else a cosign key.
    let gpg = keys.iter().find(|k| k.format == "gpg" && usable("gpg"));
    let cosign = keys
        .iter()
        .find(|k| k.format == "cosign" && usable("cosign"));
    let policy_key = match gpg.or(cosign) {
        Some(k) if k.format == "gpg" => format!(
            "{} && corral policy --mirror {} --gpg-keyring {}",
            ctx.key_download(&k.name),
            ctx.base_url,
            html::shell_word(&k.name)
        ),
        Some(k) => format!(
            "{} && corral policy --mirror {} --key {}",
            ctx.key_download(&k.name),
            ctx.base_url,
            html::shell_word(&k.name)
        ),
        None => format!(
            "corral policy --mirror {} --gpg-keyring release-key.gpg",
            ctx.base_url
        ),
    };
    let skopeo_note = (signature.verified_in("cosign") && !signature.verified_in("gpg"))
        .then(|| SKOPEO_SIGSTORE_NOTE.to_string());
    let tls = if plain { " --src-tls-verify=false" } else { "" };
    Commands {
        podman: format!(
            "podman pull{} {reference}",
            if plain { " --tls-verify=false" } else { "" }
        ),
        docker: format!("docker pull {reference}"),
        skopeo: format!("skopeo copy{tls} docker://{reference} oci:{local}"),
        verify_corral,
        verify_skopeo: vec![
            format!("{policy_key} --out client"),
            format!(
                "skopeo --policy client/policy.json --registries.d client/registries.d copy{tls} docker://{reference} oci:{local}"
            ),
        ],
        skopeo_note,
        keys,
    }
}

pub async fn collect(
    ctx: &Context<'_>,
    name: &str,
    query: &str,
) -> anyhow::Result<Option<Repository>> {
    let n = page_size(query, DEFAULT_TAGS, MAX_TAGS);
    let after = crate::query_param(query, "after");
    let listing = ctx.source.tags(name, after.as_deref(), n).await?;
    if after.is_none() && listing.items.is_empty() {
        // No tags: a repository only if the listing of repositories says so.
        let repos = ctx.source.repositories(before(name).as_deref(), 1).await?;
        if repos.items.first().map(String::as_str) != Some(name) {
            return Ok(None);
        }
    }
    let url = format!("/repositories/{}", url_encode(name, true));
    let view = |image: Image| TagView {
        pull: format!("{}/{}:{}", ctx.host, name, image.tag),
        image,
    };
    let mut tags = Vec::new();
    for t in listing.items.iter().filter(|t| is_image_tag(t)) {
        if let Some(i) = ctx.source.image(name, t).await? {
            tags.push(view(i));
        }
    }
    let next = match (listing.more, listing.items.last()) {
        (true, Some(last)) => Some(format!("{url}?n={n}&after={}", url_encode(last, false))),
        _ => None,
    };
    let featured = featured_tag(ctx, name).await?.map(view);
    let mut repo = Repository {
        name: name.to_string(),
        url,
        description: None,
        usage: None,
        help: None,
        commands: None,
        tags,
        next,
        sbom: None,
        advisories: None,
        build: None,
        featured: None,
        unlisted: ctx.listings.unlisted(name),
    };
    if let Some(f) = &featured {
        let labels = &f.image.labels;
        let local = format!(
            "/tmp/{}:{}",
            name.rsplit('/').next().unwrap_or(name),
            f.image.tag
        );
        repo.commands = Some(commands(ctx, &f.pull, &local, &f.image.signature));
        repo.description = labels
            .get("org.opencontainers.image.description")
            .or_else(|| labels.get("description"))
            .or_else(|| labels.get("summary"))
            .cloned();
        repo.usage = labels.get("usage").cloned();
        let d = &f.image.digest;
        repo.help = match ctx
            .source
            .artifact(name, d, HELP_ARTIFACT, MAX_ARTIFACT)
            .await?
        {
            Some(a) => text(&a),
            None => labels.get("help").cloned(),
        };
        if let Some(a) = ctx
            .source
            .artifact(name, d, SBOM_ARTIFACT, MAX_ARTIFACT)
            .await?
        {
            let mut packages = spdx_packages(&a.content).unwrap_or_default();
            let total_packages = packages.len();
            packages.truncate(MAX_PACKAGES);
            repo.sbom = Some(Sbom {
                url: format!("/v2/{name}/blobs/{}", a.blob),
                artifact: a.manifest,
                packages,
                total_packages,
            });
        }
        if let Some(a) = ctx
            .source
            .artifact(name, d, ADVISORIES_ARTIFACT, MAX_ARTIFACT)
            .await?
        {
            repo.advisories = serde_json::from_slice(&a.content).ok();
        }
        if let Some(a) = ctx
            .source
            .artifact(name, d, BUILD_ARTIFACT, MAX_ARTIFACT)
            .await?
        {
            repo.build = serde_json::from_slice(&a.content).ok();
        }
    }
    repo.featured = featured;
    Ok(Some(repo))
}

/// A name just before `name` in lexical order, so a listing after it
/// starts at `name`.
fn before(name: &str) -> Option<String> {
    let mut s = name.to_string();
    let last = s.pop()?;
    s.push(char::from_u32(last as u32 - 1)?);
    s.push('~');
    Some(s)
}

fn tag_card(b: &mut String, t: &TagView, ctx: &Context<'_>) {
    let i = &t.image;
    let _ = write!(
        b,
        "<li class=\"card tag\" id=\"tag-{}\"><h3>{}</h3><dl>",
        escape(&url_encode(&i.tag, false)),
        escape(&i.tag)
    );
    let _ = write!(b, "<dt>digest</dt><dd>{}</dd>", html::digest(&i.digest));
    let _ = write!(
        b,
        "<dt>size</dt><dd>{} compressed{}</dd>",
        html::human_size(i.compressed_size),
        i.uncompressed_size
            .map(|u| format!(", {} unpacked", html::human_size(u)))
            .unwrap_or_default()
    );
    if let Some(c) = &i.created {
        let _ = write!(b, "<dt>created</dt><dd>{}</dd>", html::date(c, ctx.now));
    }
    if !i.platforms.is_empty() {
        let _ = write!(
            b,
            "<dt>platforms</dt><dd>{}</dd>",
            escape(&i.platforms.join(", "))
        );
    }
    let _ = writeln!(
        b,
        "<dt>signature</dt><dd class=\"sig {}\">{}</dd></dl>{}</li>",
        i.signature.class(),
        escape(&i.signature.text()),
        html::command(&format!("podman pull {}", t.pull))
    );
}

pub fn render(r: &Repository, ctx: &Context<'_>) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "<h1>{}</h1>", escape(&r.name));
    if let Some(why) = &r.unlisted {
        let _ = writeln!(
            b,
            "<p class=\"unlisted unsigned\"><strong>{}.</strong> This repository is left out of \
             the listings; what was pulled from it still pulls by digest.</p>",
            escape(&capitalized(why))
        );
    }
    if let Some(d) = &r.description {
        let _ = writeln!(b, "<p class=\"lead\">{}</p>", escape(d));
    }
    if let (Some(f), Some(c)) = (&r.featured, &r.commands) {
        let _ = write!(
            b,
            "<section aria-labelledby=\"pull\"><h2 id=\"pull\">Pull {}</h2>\n<p class=\"sig {}\">Signature: {}</p>\n",
            escape(&f.image.tag),
            f.image.signature.class(),
            escape(&f.image.signature.text())
        );
        for cmd in [&c.podman, &c.docker, &c.skopeo] {
            b.push_str(&html::command(cmd));
        }
        b.push_str("<h3>Verify the signature</h3>");
        if !c.keys.is_empty() {
            b.push_str("<p>Trusted keys:</p><ul class=\"plain\">");
            for k in &c.keys {
                let _ = write!(
                    b,
                    "<li><a href=\"{}\">{}</a> ({})</li>",
                    escape(&k.url),
                    escape(&k.name),
                    k.format
                );
            }
            b.push_str("</ul>");
        }
        b.push_str("<p>With corral:</p>");
        for cmd in &c.verify_corral {
            b.push_str(&html::command(cmd));
        }
        b.push_str("<p>With skopeo and a policy that requires the signature:</p>");
        if let Some(note) = &c.skopeo_note {
            let _ = write!(b, "<p class=\"note unsigned\">{}</p>", escape(note));
        }
        for cmd in &c.verify_skopeo {
            b.push_str(&html::command(cmd));
        }
        b.push_str("</section>\n");
    }
    if r.usage.is_some() || r.help.is_some() {
        b.push_str("<section aria-labelledby=\"usage\"><h2 id=\"usage\">Usage</h2>\n");
        if let Some(u) = &r.usage {
            b.push_str(&html::command(u));
        }
        if let Some(h) = &r.help {
            let _ = writeln!(
                b,
                "<div class=\"help\">{}</div>",
                crate::markdown::render(h)
            );
        }
        b.push_str("</section>\n");
    }
    b.push_str(
        "<section aria-labelledby=\"tags\"><h2 id=\"tags\">Tags</h2>\n<ul class=\"cards\">\n",
    );
    for t in &r.tags {
        tag_card(&mut b, t, ctx);
    }
    b.push_str("</ul>\n");
    if let Some(n) = &r.next {
        let _ = writeln!(
            b,
            "<p><a rel=\"next\" href=\"{}\">More tags</a></p>",
            escape(n)
        );
    }
    b.push_str("</section>\n");
    if let Some(a) = &r.advisories {
        b.push_str("<section aria-labelledby=\"advisories\"><h2 id=\"advisories\">Security advisories</h2>\n");
        if a.is_empty() {
            b.push_str("<p>None outstanding.</p>\n");
        } else {
            b.push_str("<ul class=\"plain\">\n");
            for x in a {
                let _ = writeln!(
                    b,
                    "<li><strong>{}</strong> {}: {} {} (fixed in {})</li>",
                    escape(&x.id),
                    escape(&x.severity),
                    escape(&x.package),
                    escape(&x.installed),
                    escape(&x.fixed)
                );
            }
            b.push_str("</ul>\n");
        }
        b.push_str("</section>\n");
    }
    if let Some(s) = &r.sbom {
        let _ = write!(
            b,
            "<section aria-labelledby=\"sbom\"><h2 id=\"sbom\">Software bill of materials</h2>\n<p>{} packages. <a href=\"{}\" download>Download the SPDX JSON</a> (artifact {})</p>\n<details><summary>Package list</summary><ul class=\"packages\">",
            s.total_packages,
            escape(&s.url),
            html::digest(&s.artifact)
        );
        for p in &s.packages {
            let _ = write!(
                b,
                "<li>{} <span class=\"meta\">{}</span></li>",
                escape(&p.name),
                escape(&p.version)
            );
        }
        b.push_str("</ul></details></section>\n");
    }
    if let Some(build) = &r.build {
        let state = if build.findings.is_empty() {
            "<p class=\"sig verified\">Lint: clean</p>".to_string()
        } else {
            format!(
                "<p class=\"sig unverified\">Lint: {} finding(s)</p>",
                build.findings.len()
            )
        };
        let _ = write!(
            b,
            "<section aria-labelledby=\"dockerfile\"><h2 id=\"dockerfile\">Dockerfile</h2>\n{state}"
        );
        if !build.findings.is_empty() {
            b.push_str("<ul class=\"plain\">");
            for f in &build.findings {
                let _ = write!(
                    b,
                    "<li><code>{}</code>{}: {}</li>",
                    escape(&f.rule),
                    f.line.map(|l| format!(" line {l}")).unwrap_or_default(),
                    escape(&f.message)
                );
            }
            b.push_str("</ul>");
        }
        let _ = writeln!(
            b,
            "<pre><code>{}</code></pre></section>",
            escape(&build.dockerfile)
        );
    }
    html::page(&r.name, &format!("{}?format=json", r.url), &b)
}
