//! `/downloads`: the disk images with size, sha256, detached signature,
//! the clouds and platforms each format suits, and cloud-init notes.

use std::fmt::Write as _;

use serde::Serialize;

use super::Context;
use crate::html::{self, escape};
use crate::model::{DiskImage, Stream};

#[derive(Debug, Serialize)]
pub struct DownloadView {
    #[serde(flatten)]
    pub image: DiskImage,
    pub format: &'static str,
    pub platforms: Vec<&'static str>,
    /// The stream file that records the image, if one does.
    pub stream: Option<String>,
    /// The architecture it boots on: as the stream file records it, else
    /// the stream ref's.
    pub arch: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Downloads {
    pub images: Vec<DownloadView>,
    pub cloud_init: &'static str,
}

/// What cloud-init does on these images (docs/disk.md).
pub const CLOUD_INIT: &str = "The images run cloud-init on first boot: it reads the user, SSH keys and user-data from the platform's datasource (OpenStack and CloudStack metadata services, OpenNebula's context disk, or a NoCloud seed ISO on plain KVM). There is no default password; give a key.";

/// The format of an image by its file name, and the platforms it suits.
pub fn format_of(name: &str) -> (&'static str, Vec<&'static str>) {
    if name.ends_with(".qcow2") {
        (
            "qcow2",
            vec!["OpenStack", "CloudStack", "OpenNebula", "plain KVM"],
        )
    } else if name.ends_with(".raw.xz") {
        ("raw.xz", vec!["OpenNebula", "plain KVM", "bare metal (dd)"])
    } else if name.ends_with(".raw") {
        ("raw", vec!["OpenStack", "CloudStack", "plain KVM"])
    } else {
        ("file", vec![])
    }
}

/// The architecture component of an OSTree ref (`corral/43/aarch64/atomic`).
pub fn ref_arch(ostree_ref: &str) -> Option<&str> {
    const ARCHES: &[&str] = &["x86_64", "aarch64", "ppc64le", "s390x", "riscv64"];
    ostree_ref.split('/').find(|c| ARCHES.contains(c))
}

/// Where the stream files record `name`: the stream and the architecture.
pub fn recorded(streams: &[Stream], name: &str) -> (Option<String>, Option<String>) {
    for s in streams {
        if let Some(d) = s.disk_images.iter().find(|d| d.name == name) {
            let arch = d
                .arch
                .clone()
                .filter(|a| !a.is_empty())
                .or_else(|| ref_arch(&s.ostree_ref).map(str::to_string));
            return (Some(s.name.clone()), arch);
        }
    }
    (None, None)
}

pub async fn collect(ctx: &Context<'_>) -> anyhow::Result<Downloads> {
    let streams = ctx.source.streams().await?;
    let mut images: Vec<DownloadView> = ctx
        .source
        .disk_images()
        .await?
        .into_iter()
        .map(|image| {
            let (format, platforms) = format_of(&image.name);
            let (stream, arch) = recorded(&streams, &image.name);
            DownloadView {
                image,
                format,
                platforms,
                stream,
                arch,
            }
        })
        .collect();
    images.sort_by(|a, b| {
        b.image
            .modified
            .cmp(&a.image.modified)
            .then(a.image.name.cmp(&b.image.name))
    });
    Ok(Downloads {
        images,
        cloud_init: CLOUD_INIT,
    })
}

pub fn render(d: &Downloads, ctx: &Context<'_>) -> String {
    let _ = ctx;
    let mut b = String::from("<h1>Disk images</h1>\n");
    let _ = writeln!(b, "<p>{}</p>", escape(d.cloud_init));
    if d.images.is_empty() {
        b.push_str("<p>No disk images published.</p>\n");
    }
    b.push_str("<ul class=\"cards\">\n");
    for v in &d.images {
        let i = &v.image;
        let _ = write!(
            b,
            "<li class=\"card\"><h2><a href=\"{}\">{}</a></h2><dl><dt>format</dt><dd>{}</dd>",
            escape(&i.url),
            escape(&i.name),
            v.format,
        );
        if let Some(a) = &v.arch {
            let _ = write!(b, "<dt>architecture</dt><dd>{}</dd>", escape(a));
        }
        if let Some(s) = &v.stream {
            let _ = write!(
                b,
                "<dt>stream</dt><dd><a href=\"/atomic-host/{}\">{}</a></dd>",
                escape(&html::url_encode(s, false)),
                escape(s)
            );
        }
        let _ = write!(
            b,
            "<dt>size</dt><dd>{}</dd><dt>sha256</dt><dd>",
            html::human_size(i.size)
        );
        match (&i.sha256, i.checksum_matches) {
            (Some(s), Some(false)) => {
                let _ = write!(b, "<code class=\"hash\">{}</code> <strong class=\"sig unverified\">does not match the file</strong>", escape(s));
            }
            (Some(s), _) => {
                let _ = write!(b, "<code class=\"hash\">{}</code>", escape(s));
            }
            (None, _) => b.push_str("not published"),
        }
        let _ = write!(
            b,
            "</dd><dt>signature</dt><dd class=\"sig {}\">{}",
            i.signature.class(),
            escape(&i.signature.text())
        );
        if let Some(u) = &i.signature_url {
            let _ = write!(b, " <a href=\"{}\">detached signature</a>", escape(u));
        }
        b.push_str("</dd>");
        if !v.platforms.is_empty() {
            let _ = write!(
                b,
                "<dt>suits</dt><dd>{}</dd>",
                escape(&v.platforms.join(", "))
            );
        }
        b.push_str("</dl>");
        b.push_str(&html::command(&format!(
            "curl -fLO {}{}",
            ctx.base_url, i.url
        )));
        if i.sha256.is_some() {
            b.push_str(&html::command(&format!(
                "curl -fLO {}{}.sha256 && sha256sum -c {}.sha256",
                ctx.base_url, i.url, i.name
            )));
        }
        if let Some(u) = &i.signature_url {
            let sig = u.rsplit('/').next().unwrap_or(u);
            b.push_str(&html::command(&format!(
                "gpgv --keyring ./corral-signing.gpg {sig} {}",
                i.name
            )));
        }
        b.push_str("</li>\n");
    }
    b.push_str("</ul>\n");
    html::page("Disk images", "/downloads?format=json", &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_name_their_platforms() {
        assert_eq!(format_of("a.qcow2").0, "qcow2");
        assert!(format_of("a.qcow2").1.contains(&"OpenStack"));
        assert_eq!(format_of("a.raw.xz").0, "raw.xz");
        assert_eq!(format_of("a.iso").1.len(), 0);
    }
}
