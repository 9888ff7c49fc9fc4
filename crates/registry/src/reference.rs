//! Image references: `host[:port]/repo[:tag][@sha256:…]`.

use anyhow::bail;

use crate::digest::is_sha256_digest;

/// `host[:port]/repo[:tag][@sha256:…]`, with an optional `docker://`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub host: String,
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// ```
    /// let r = corral_registry::ImageRef::parse("docker://127.0.0.1:5000/a/b:1").unwrap();
    /// assert_eq!((r.host.as_str(), r.repo.as_str(), r.tag.as_deref()), ("127.0.0.1:5000", "a/b", Some("1")));
    /// assert_eq!(r.to_string(), "127.0.0.1:5000/a/b:1");
    /// ```
    pub fn parse(s: &str) -> anyhow::Result<ImageRef> {
        let s = s.strip_prefix("docker://").unwrap_or(s);
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (s, None),
        };
        let Some((host, path)) = rest.split_once('/') else {
            bail!("image reference {s:?} has no registry host (write HOST/REPO:TAG)");
        };
        let last = path.rsplit('/').next().unwrap_or(path);
        let (repo, tag) = match last.split_once(':') {
            Some((_, t)) => (&path[..path.len() - t.len() - 1], Some(t.to_string())),
            None => (path, None),
        };
        if repo.is_empty() || (tag.is_none() && digest.is_none()) {
            bail!("image reference {s:?} needs a repository and a tag or digest");
        }
        if let Some(d) = &digest {
            if !is_sha256_digest(d) {
                bail!("image reference {s:?} has an invalid digest");
            }
        }
        Ok(ImageRef {
            host: host.to_string(),
            repo: repo.to_string(),
            tag,
            digest,
        })
    }

    /// `host/repo`, the identity cosign signs.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.host, self.repo)
    }

    /// The tag, else the digest.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .expect("parse requires one")
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_reference(
            f,
            &self.repository(),
            self.tag.as_deref(),
            self.digest.as_deref(),
        )
    }
}

/// Writes `name[:tag][@digest]`, the form every reference prints in.
pub fn write_reference(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    tag: Option<&str>,
    digest: Option<&str>,
) -> std::fmt::Result {
    f.write_str(name)?;
    if let Some(t) = tag {
        write!(f, ":{t}")?;
    }
    if let Some(d) = digest {
        write!(f, "@{d}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = ImageRef::parse("h:5/a/b@sha256:".to_string().as_str());
        assert!(r.is_err());
        let d = format!("sha256:{}", "0".repeat(64));
        let r = ImageRef::parse(&format!("h:5/a/b:t@{d}")).unwrap();
        assert_eq!(r.reference(), d);
        assert_eq!(r.repository(), "h:5/a/b");
        assert!(ImageRef::parse("nohost").is_err());
        assert!(ImageRef::parse("h/a").is_err());
    }
}
