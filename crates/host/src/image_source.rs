//! Image references for hosts that take the OS as a container image,
//! written the way rpm-ostree and bootc users write them: a transport that
//! says how the image is trusted, then the image.
//!
//! - `ostree-unverified-registry:HOST/REPO:TAG`: nothing is verified
//!   (refused unless the caller says `--insecure-unverified`).
//! - `ostree-remote-registry:REMOTE:HOST/REPO:TAG`: the OSTree commit
//!   inside the image is verified with remote `REMOTE`'s GPG keys, as an
//!   OSTree pull would; its signature travels in the image.
//! - `ostree-image-signed:docker://HOST/REPO:TAG`: the image's container
//!   signature (cosign or GPG simple signing) is verified against the
//!   host's container trust (`[images]` in `/etc/corral/host.toml`).
//!
//! A deployment made from an image records the reference in its origin
//! file as `container-image-reference=` in `[origin]` (rpm-ostree's key),
//! and corral's own details (the manifest digest, plain HTTP) in
//! `[corral-image]`.

use std::fmt;

use anyhow::{bail, Context, Result};
use corral_registry::ImageRef;
use ostree::glib;

/// How an image is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Unverified,
    /// The commit inside, with this remote's GPG keys.
    RemoteRegistry {
        remote: String,
    },
    /// The container signature, with the host's container trust.
    ImageSigned,
}

/// A transport and an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSource {
    pub transport: Transport,
    pub image: ImageRef,
}

const UNVERIFIED: &str = "ostree-unverified-registry:";
const REMOTE: &str = "ostree-remote-registry:";
const SIGNED: &str = "ostree-image-signed:";

/// The origin file's group and key for the reference (rpm-ostree's).
pub const ORIGIN_GROUP: &str = "origin";
pub const ORIGIN_KEY: &str = "container-image-reference";
/// corral's own keys beside it.
pub const CORRAL_GROUP: &str = "corral-image";

impl ImageSource {
    /// Parses one of the three forms in the module doc.
    pub fn parse(s: &str) -> Result<ImageSource> {
        let image = |rest: &str| {
            ImageRef::parse(rest).with_context(|| format!("`{s}`: not an image reference"))
        };
        if let Some(rest) = s.strip_prefix(UNVERIFIED) {
            return Ok(ImageSource {
                transport: Transport::Unverified,
                image: image(rest.strip_prefix("docker://").unwrap_or(rest))?,
            });
        }
        if let Some(rest) = s.strip_prefix(REMOTE) {
            let Some((remote, rest)) = rest.split_once(':') else {
                bail!("`{s}`: write {REMOTE}REMOTE:HOST/REPO:TAG");
            };
            if remote.is_empty() || remote.contains('/') {
                bail!("`{s}`: `{remote}` is not a remote name");
            }
            return Ok(ImageSource {
                transport: Transport::RemoteRegistry {
                    remote: remote.to_string(),
                },
                image: image(rest.strip_prefix("docker://").unwrap_or(rest))?,
            });
        }
        if let Some(rest) = s.strip_prefix(SIGNED) {
            let Some(rest) = rest.strip_prefix("docker://") else {
                bail!("`{s}`: write {SIGNED}docker://HOST/REPO:TAG");
            };
            return Ok(ImageSource {
                transport: Transport::ImageSigned,
                image: image(rest)?,
            });
        }
        bail!(
            "`{s}` names no transport: write {UNVERIFIED}IMAGE, {REMOTE}REMOTE:IMAGE or {SIGNED}docker://IMAGE"
        )
    }

    /// The reference recorded in a deployment's origin file, if it has one.
    pub fn of_origin(kf: &glib::KeyFile) -> Option<ImageSource> {
        let s = kf.string(ORIGIN_GROUP, ORIGIN_KEY).ok()?;
        ImageSource::parse(&s).ok()
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.transport {
            Transport::Unverified => write!(f, "{UNVERIFIED}{}", self.image),
            Transport::RemoteRegistry { remote } => write!(f, "{REMOTE}{remote}:{}", self.image),
            Transport::ImageSigned => write!(f, "{SIGNED}docker://{}", self.image),
        }
    }
}

/// What a deployment from an image records in its origin file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOrigin {
    pub source: ImageSource,
    pub manifest_digest: String,
    pub plain_http: bool,
    /// For a derived image: the base commit it was layered on.
    pub base_commit: Option<String>,
}

impl ImageOrigin {
    pub fn keyfile(&self) -> glib::KeyFile {
        let kf = glib::KeyFile::new();
        kf.set_string(ORIGIN_GROUP, ORIGIN_KEY, &self.source.to_string());
        kf.set_string(CORRAL_GROUP, "manifest-digest", &self.manifest_digest);
        kf.set_boolean(CORRAL_GROUP, "plain-http", self.plain_http);
        if let Some(b) = &self.base_commit {
            kf.set_string(CORRAL_GROUP, "base-commit", b);
        }
        kf
    }

    /// Reads a deployment's origin file; `None` when it is not an image's.
    pub fn of(d: &ostree::Deployment) -> Option<ImageOrigin> {
        let kf = d.origin()?;
        let source = ImageSource::of_origin(&kf)?;
        Some(ImageOrigin {
            source,
            manifest_digest: kf
                .string(CORRAL_GROUP, "manifest-digest")
                .map(|s| s.to_string())
                .unwrap_or_default(),
            plain_http: kf.boolean(CORRAL_GROUP, "plain-http").unwrap_or(false),
            base_commit: kf
                .string(CORRAL_GROUP, "base-commit")
                .ok()
                .map(|s| s.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_transports_parse_and_print_back() {
        for s in [
            "ostree-unverified-registry:127.0.0.1:5000/corral/os:43",
            "ostree-remote-registry:corral:127.0.0.1:5000/corral/os:43",
            "ostree-image-signed:docker://127.0.0.1:5000/corral/os:43",
        ] {
            let src = ImageSource::parse(s).unwrap();
            assert_eq!(src.to_string(), s);
            assert_eq!(src.image.host, "127.0.0.1:5000");
            assert_eq!(src.image.repo, "corral/os");
        }
        let r = ImageSource::parse("ostree-remote-registry:fedora:quay.io/a/b:1").unwrap();
        assert_eq!(
            r.transport,
            Transport::RemoteRegistry {
                remote: "fedora".into()
            }
        );
    }

    #[test]
    fn malformed_references_say_what_to_write() {
        for (bad, says) in [
            ("127.0.0.1:5000/os:43", "names no transport"),
            (
                "ostree-remote-registry:127.0.0.1/os:43",
                "not a remote name",
            ),
            ("ostree-image-signed:127.0.0.1/os:43", "docker://"),
            ("ostree-unverified-registry:os", "not an image reference"),
        ] {
            let err = format!("{:#}", ImageSource::parse(bad).unwrap_err());
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn the_origin_file_holds_the_reference_and_the_digest() {
        let o = ImageOrigin {
            source: ImageSource::parse("ostree-unverified-registry:h:1/r:t").unwrap(),
            manifest_digest: format!("sha256:{}", "a".repeat(64)),
            plain_http: true,
            base_commit: None,
        };
        let kf = o.keyfile();
        assert_eq!(
            kf.string("origin", "container-image-reference").unwrap(),
            "ostree-unverified-registry:h:1/r:t"
        );
        assert_eq!(ImageSource::of_origin(&kf).unwrap(), o.source);
    }
}
