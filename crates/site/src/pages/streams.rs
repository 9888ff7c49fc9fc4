//! `/atomic-host` and `/atomic-host/<stream>`: the Atomic Host streams as
//! published beside the OSTree repository: versions with dates, the package
//! diff between consecutive versions, the signing key, the commands to add
//! the remote and upgrade (`corral host` and plain `ostree`), the OS image
//! `corral release` pushed to the registry (the same commits in the ostree
//! container format) with the commands that rebase a host onto it, and the
//! disk images made from the stream.

use std::fmt::Write as _;

use serde::Serialize;

use super::Context;
use crate::html::{self, escape, url_encode};
use crate::model::{DiskImage, Stream};
use corral_streamfile::OsImage as StreamOsImage;

#[derive(Debug, Serialize)]
pub struct StreamPage {
    #[serde(flatten)]
    pub stream: Stream,
    pub url: String,
    pub remote_url: String,
    /// The mirror's trusted GPG keyrings (`/keys/NAME`): the commands
    /// import the first.
    pub keys: Vec<super::repository::KeyLink>,
    pub commands: StreamCommands,
    /// The published disk images this stream's file names.
    pub images: Vec<DiskImage>,
    /// The stream's OS image in the registry, with the commands to use it.
    pub os_image: Option<OsImagePage>,
}

/// The OS image as the stream file records it, and how hosts follow it.
#[derive(Debug, Serialize)]
pub struct OsImagePage {
    /// `HOST/REPOSITORY:TAG` of the moving tag.
    pub reference: String,
    #[serde(flatten)]
    pub image: StreamOsImage,
    pub commands: OsImageCommands,
}

#[derive(Debug, Serialize)]
pub struct OsImageCommands {
    /// `corral host rebase` with the two verified transports.
    pub corral: Vec<String>,
    pub rpm_ostree: Vec<String>,
    pub bootc: Vec<String>,
}

/// The commands for OS image `reference`; `remote` is the OSTree remote
/// the corral commands above add (with the stream's GPG key).
fn os_image_commands(reference: &str, remote: &str) -> OsImageCommands {
    let r = html::shell_word(reference);
    OsImageCommands {
        corral: vec![
            format!("corral host rebase ostree-image-signed:docker://{r}"),
            format!("corral host rebase ostree-remote-registry:{remote}:{r}"),
            "corral host upgrade".to_string(),
        ],
        rpm_ostree: vec![
            format!("rpm-ostree rebase ostree-image-signed:docker://{r}"),
            format!("rpm-ostree rebase ostree-remote-registry:{remote}:{r}"),
            "rpm-ostree upgrade".to_string(),
        ],
        bootc: vec![format!("bootc switch {r}"), "bootc upgrade".to_string()],
    }
}

#[derive(Debug, Serialize)]
pub struct StreamCommands {
    pub corral: Vec<String>,
    pub ostree: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct StreamList {
    pub streams: Vec<StreamPage>,
}

fn page_of(ctx: &Context<'_>, s: Stream, images: &[DiskImage]) -> StreamPage {
    let remote_url = format!("{}/ostree", ctx.base_url);
    let remote = "corral";
    let keys: Vec<super::repository::KeyLink> = ctx
        .source
        .trusted_keys()
        .gpg_keyrings
        .into_iter()
        .map(|k| super::repository::KeyLink {
            url: ctx.key_url(&k),
            format: "gpg",
            name: k,
        })
        .collect();
    // With a trusted keyring the commands download it first; without one
    // they name the file the user must get from the publisher.
    let (key, download) = match keys.first() {
        Some(k) => (html::shell_word(&k.name), Some(ctx.key_download(&k.name))),
        None => ("corral-signing.gpg".to_string(), None),
    };
    let commands = StreamCommands {
        corral: download
            .iter()
            .cloned()
            .chain([
                format!("corral host remote add {remote} {remote_url} --gpg-key {key}"),
                format!("corral host deploy --origin {remote}:{}", s.ostree_ref),
                "corral host upgrade".to_string(),
            ])
            .collect(),
        ostree: download
            .iter()
            .cloned()
            .chain([
                format!(
                    "ostree remote add --set=gpg-verify=true {remote} {remote_url} {}",
                    s.ostree_ref
                ),
                format!("ostree remote gpg-import {remote} -k {key}"),
                format!("ostree pull {remote}:{}", s.ostree_ref),
                "ostree admin upgrade".to_string(),
            ])
            .collect(),
    };
    let images = images
        .iter()
        .filter(|i| s.disk_images.iter().any(|d| d.name == i.name))
        .cloned()
        .collect();
    // Taken out of the stream: the page's own `os_image` (the record,
    // the reference and the commands) replaces it in the JSON twin.
    let mut s = s;
    let os_image = s.os_image.take().map(|image| {
        let reference = image.reference();
        OsImagePage {
            commands: os_image_commands(&reference, remote),
            reference,
            image,
        }
    });
    StreamPage {
        url: format!("/atomic-host/{}", url_encode(&s.name, false)),
        remote_url,
        keys,
        commands,
        images,
        os_image,
        stream: s,
    }
}

pub async fn collect_one(ctx: &Context<'_>, name: &str) -> anyhow::Result<Option<StreamPage>> {
    let Some(s) = ctx
        .source
        .streams()
        .await?
        .into_iter()
        .find(|s| s.name == name)
    else {
        return Ok(None);
    };
    let images = ctx.source.disk_images().await?;
    Ok(Some(page_of(ctx, s, &images)))
}

pub async fn collect_all(ctx: &Context<'_>) -> anyhow::Result<StreamList> {
    let images = ctx.source.disk_images().await?;
    Ok(StreamList {
        streams: ctx
            .source
            .streams()
            .await?
            .into_iter()
            .map(|s| page_of(ctx, s, &images))
            .collect(),
    })
}

fn diff(b: &mut String, d: &crate::model::PackageDiff) {
    if d.added.is_empty() && d.removed.is_empty() && d.changed.is_empty() {
        b.push_str("<p class=\"meta\">no package changes</p>");
        return;
    }
    b.push_str("<ul class=\"diff\">");
    for c in &d.changed {
        let _ = write!(
            b,
            "<li><span class=\"chg\">~</span> {} {} → {}</li>",
            escape(&c.name),
            escape(&c.from),
            escape(&c.to)
        );
    }
    for a in &d.added {
        let _ = write!(b, "<li><span class=\"add\">+</span> {}</li>", escape(a));
    }
    for r in &d.removed {
        let _ = write!(b, "<li><span class=\"del\">−</span> {}</li>", escape(r));
    }
    b.push_str("</ul>");
}

fn render_stream(b: &mut String, p: &StreamPage, ctx: &Context<'_>, level: u8) {
    let s = &p.stream;
    if !s.description.is_empty() {
        let _ = writeln!(b, "<p class=\"lead\">{}</p>", escape(&s.description));
    }
    let _ = writeln!(
        b,
        "<p>OSTree ref <code>{}</code> at <code>{}</code></p>",
        escape(&s.ostree_ref),
        escape(&p.remote_url)
    );
    match &s.key {
        Some(k) => {
            let _ = writeln!(
                b,
                "<p class=\"sig verified\">Commits signed by GPG key {}</p>",
                escape(k)
            );
        }
        None => b.push_str("<p class=\"sig unsigned\">Commits are not signed</p>\n"),
    }
    if !p.keys.is_empty() {
        b.push_str("<p>Trusted keys:</p><ul class=\"plain\">");
        for k in &p.keys {
            let _ = write!(
                b,
                "<li><a href=\"{}\">{}</a> (gpg)</li>",
                escape(&k.url),
                escape(&k.name)
            );
        }
        b.push_str("</ul>\n");
    }
    let h = level + 1;
    let _ = write!(b, "<h{h}>Install and upgrade</h{h}><p>With corral:</p>");
    for c in &p.commands.corral {
        b.push_str(&html::command(c));
    }
    b.push_str("<p>With plain ostree:</p>");
    for c in &p.commands.ostree {
        b.push_str(&html::command(c));
    }
    if let Some(i) = &p.os_image {
        render_os_image(b, i, h);
    }
    let _ = write!(b, "\n<h{h}>Versions</h{h}>\n<ul class=\"cards\">\n");
    for v in &s.versions {
        let _ = write!(
            b,
            "<li class=\"card\"><h{h2}>{}</h{h2}><p class=\"meta\">{}, commit {}</p>",
            escape(&v.version),
            html::date(&v.date, ctx.now),
            html::digest(&v.commit),
            h2 = h + 1
        );
        diff(b, &v.diff);
        b.push_str("</li>\n");
    }
    b.push_str("</ul>\n");
    if !p.images.is_empty() {
        let _ = write!(b, "<h{h}>Disk images</h{h}><ul class=\"plain\">");
        for i in &p.images {
            let arch = super::disk_images::recorded(std::slice::from_ref(&p.stream), &i.name)
                .1
                .map(|a| format!("{}, ", escape(&a)))
                .unwrap_or_default();
            let _ = write!(
                b,
                "<li><a href=\"{}\">{}</a> ({arch}{})",
                escape(&i.url),
                escape(&i.name),
                html::human_size(i.size)
            );
            // what disk build recorded: the file served should hash to it
            if let Some(sha) = p
                .stream
                .disk_images
                .iter()
                .find(|d| d.name == i.name)
                .and_then(|d| d.sha256.as_ref())
            {
                let _ = write!(b, " sha256 {}", html::digest(sha));
                if i.sha256.as_ref().is_some_and(|published| published != sha) {
                    b.push_str(" <span class=\"sig unverified\">differs from the published checksum</span>");
                }
            }
            b.push_str("</li>");
        }
        b.push_str("</ul>\n");
    }
}

fn render_os_image(b: &mut String, i: &OsImagePage, h: u8) {
    let img = &i.image;
    let _ = write!(
        b,
        "<h{h}>OS image</h{h}><p>The same commits as an OCI image in the ostree container format, \
         in the registry beside the container images: <code>{}</code>, digest {}",
        escape(&i.reference),
        html::digest(&img.digest)
    );
    if let Some(v) = &img.version {
        let _ = write!(b, ", version {}", escape(v));
    }
    let _ = writeln!(
        b,
        ", commit {}, {} layers, {}.</p>",
        html::digest(&img.commit),
        img.layers,
        html::human_size(img.size)
    );
    if img.signatures.is_empty() {
        b.push_str("<p class=\"sig unsigned\">The image is not signed</p>\n");
    } else {
        let kinds: Vec<&str> = img
            .signatures
            .iter()
            .map(|k| match k.as_str() {
                "gpg" => "GPG simple signing",
                "cosign" => "cosign",
                other => other,
            })
            .collect();
        let _ = writeln!(
            b,
            "<p class=\"sig verified\">Image signed ({})</p>",
            escape(&kinds.join(", "))
        );
    }
    b.push_str(
        "<p>Choose the OS image when hosts already pull containers from this registry: \
         one mirror, one signature policy, updates fetched as changed layers. Choose OSTree \
         over HTTP (above) for the fewest bytes per update: only changed files, or one static \
         delta.</p>",
    );
    b.push_str("<p>With corral:</p>");
    for c in &i.commands.corral {
        b.push_str(&html::command(c));
    }
    b.push_str("<p>With rpm-ostree:</p>");
    for c in &i.commands.rpm_ostree {
        b.push_str(&html::command(c));
    }
    b.push_str("<p>With bootc:</p>");
    for c in &i.commands.bootc {
        b.push_str(&html::command(c));
    }
}

pub fn render_one(p: &StreamPage, ctx: &Context<'_>) -> String {
    let mut b = format!("<h1>Atomic Host: {}</h1>\n", escape(&p.stream.name));
    render_stream(&mut b, p, ctx, 1);
    html::page(
        &format!("Atomic Host {}", p.stream.name),
        &format!("{}?format=json", p.url),
        &b,
    )
}

pub fn render_all(l: &StreamList, ctx: &Context<'_>) -> String {
    let mut b = String::from("<h1>Atomic Host</h1>\n");
    if l.streams.is_empty() {
        b.push_str("<p>No streams published.</p>\n");
    }
    for p in &l.streams {
        let _ = writeln!(
            b,
            "<section><h2><a href=\"{}\">{}</a></h2>",
            escape(&p.url),
            escape(&p.stream.name)
        );
        render_stream(&mut b, p, ctx, 2);
        b.push_str("</section>\n");
    }
    html::page("Atomic Host", "/atomic-host?format=json", &b)
}
