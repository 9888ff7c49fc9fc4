//! Image references: `[registry/]repository[:tag][@digest]`, to the
//! distribution reference grammar.

use corral_oci::grammar::{is_path_component as valid_path_component, is_tag as valid_tag};
use serde::Serialize;
use std::fmt;

/// A parsed image reference. Both tag and digest are kept when both are given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    /// Registry host (with port), present only when written.
    pub registry: Option<String>,
    /// Repository path below the registry, e.g. `corral/base`.
    pub repository: String,
    pub tag: Option<String>,
    /// `algorithm:hex`.
    pub digest: Option<String>,
}

/// Why an image reference is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageRefError {
    #[error("empty image reference")]
    Empty,
    #[error("invalid repository name {0:?} (lowercase letters, digits and . _ - separators)")]
    Repository(String),
    #[error("invalid tag {0:?}")]
    Tag(String),
    #[error("invalid digest {0:?} (expected algorithm:hex)")]
    Digest(String),
    #[error("invalid registry host {0:?}")]
    Registry(String),
}

impl ImageRef {
    /// Parses a reference.
    ///
    /// ```
    /// use corral_dockerfiles::parse::ImageRef;
    /// let r = ImageRef::parse("quay.io/corral/base:43@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").unwrap();
    /// assert_eq!(r.registry.as_deref(), Some("quay.io"));
    /// assert_eq!(r.repository, "corral/base");
    /// assert_eq!(r.tag.as_deref(), Some("43"));
    /// assert!(r.digest.is_some());
    /// ```
    pub fn parse(s: &str) -> Result<Self, ImageRefError> {
        if s.is_empty() {
            return Err(ImageRefError::Empty);
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => {
                if !valid_digest(d) {
                    return Err(ImageRefError::Digest(d.to_string()));
                }
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &name[last_slash + i + 1..];
                if !valid_tag(tag) {
                    return Err(ImageRefError::Tag(tag.to_string()));
                }
                (&name[..last_slash + i], Some(tag.to_string()))
            }
            None => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                if !valid_registry(first) {
                    return Err(ImageRefError::Registry(first.to_string()));
                }
                (Some(first.to_string()), rest)
            }
            _ => (None, name),
        };
        if repository.is_empty() || !repository.split('/').all(valid_path_component) {
            return Err(ImageRefError::Repository(repository.to_string()));
        }
        Ok(Self {
            registry,
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.repository),
            None => self.repository.clone(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn valid_digest(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    !algo.is_empty()
        && algo.bytes().all(|x| {
            x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'+' | b'.' | b'_' | b'-')
        })
        && hex.len() >= 32
        && hex.bytes().all(|x| x.is_ascii_hexdigit())
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || r.starts_with('[') => (h, Some(p)),
        _ => (r, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn forms() {
        let r = ImageRef::parse("fedora").unwrap();
        assert_eq!(
            (r.registry, r.repository.as_str(), r.tag),
            (None, "fedora", None)
        );
        let r = ImageRef::parse("registry.fedoraproject.org/fedora:43").unwrap();
        assert_eq!(r.registry.as_deref(), Some("registry.fedoraproject.org"));
        assert_eq!(r.tag.as_deref(), Some("43"));
        let r = ImageRef::parse("localhost:5000/a/b").unwrap();
        assert_eq!(r.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag, None);
        let s = format!("quay.io/x/y:1.2@{D}");
        let r = ImageRef::parse(&s).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.to_string(), s);
        let r = ImageRef::parse("library/ubuntu:22.04").unwrap();
        assert_eq!(r.registry, None);
    }

    #[test]
    fn invalid() {
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("Fedora").is_err());
        assert!(ImageRef::parse("a:b:c").is_err());
        assert!(ImageRef::parse("a@sha256:zz").is_err());
        assert!(ImageRef::parse("a:").is_err());
        assert!(ImageRef::parse("a//b").is_err());
        assert!(ImageRef::parse("quay.io:x/a").is_err());
    }
}
