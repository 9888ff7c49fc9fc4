//! Parsing `/v2/...` paths. Repository names contain slashes, so the path is
//! split on the endpoint keyword nearest the end rather than by a router
//! pattern.

use crate::error::{ErrorCode, RegistryError, Result};
use crate::name::{Digest, Reference, RepoName};

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Ping,
    Catalog,
    Tags(RepoName),
    Manifest(RepoName, Reference),
    Blob(RepoName, Digest),
    /// `/blobs/uploads/` (start) or `/blobs/uploads/<id>`.
    Upload(RepoName, Option<String>),
    Referrers(RepoName, Digest),
}

impl Route {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Ping => "ping",
            Route::Catalog => "catalog",
            Route::Tags(_) => "tags",
            Route::Manifest(..) => "manifest",
            Route::Blob(..) => "blob",
            Route::Upload(..) => "upload",
            Route::Referrers(..) => "referrers",
        }
    }

    pub fn repo(&self) -> Option<&RepoName> {
        match self {
            Route::Ping | Route::Catalog => None,
            Route::Tags(r)
            | Route::Manifest(r, _)
            | Route::Blob(r, _)
            | Route::Upload(r, _)
            | Route::Referrers(r, _) => Some(r),
        }
    }
}

fn name(s: &str) -> Result<RepoName> {
    RepoName::parse(s)
        .ok_or_else(|| RegistryError::new(ErrorCode::NameInvalid, "invalid repository name"))
}

fn digest(s: &str) -> Result<Digest> {
    s.parse()
        .map_err(|_| RegistryError::new(ErrorCode::DigestInvalid, "invalid digest"))
}

/// Parses the part of the path after `/v2/`. `Ok(None)` means no such endpoint.
pub fn parse(rest: &str) -> Result<Option<Route>> {
    if rest.is_empty() {
        return Ok(Some(Route::Ping));
    }
    if rest == "_catalog" {
        return Ok(Some(Route::Catalog));
    }
    if let Some(n) = rest.strip_suffix("/tags/list") {
        return Ok(Some(Route::Tags(name(n)?)));
    }
    if let Some(i) = rest.rfind("/blobs/uploads") {
        let tail = &rest[i + "/blobs/uploads".len()..];
        let id = match tail {
            "" | "/" => Some(None),
            t if t.starts_with('/') && !t[1..].contains('/') => Some(Some(t[1..].to_string())),
            _ => None,
        };
        if let Some(id) = id {
            return Ok(Some(Route::Upload(name(&rest[..i])?, id)));
        }
    }
    for (kw, kind) in [("/manifests/", 0), ("/blobs/", 1), ("/referrers/", 2)] {
        if let Some(i) = rest.rfind(kw) {
            let tail = &rest[i + kw.len()..];
            if tail.contains('/') || tail.is_empty() {
                continue;
            }
            let repo = name(&rest[..i])?;
            return Ok(Some(match kind {
                0 => Route::Manifest(
                    repo,
                    Reference::parse(tail).ok_or_else(|| {
                        RegistryError::new(ErrorCode::ManifestInvalid, "invalid reference")
                    })?,
                ),
                1 => Route::Blob(repo, digest(tail)?),
                _ => Route::Referrers(repo, digest(tail)?),
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let d = Digest::of_bytes(b"x");
        assert_eq!(parse("").unwrap(), Some(Route::Ping));
        assert_eq!(
            parse("a/b/tags/list").unwrap(),
            Some(Route::Tags(RepoName::parse("a/b").unwrap()))
        );
        assert!(
            matches!(parse("a/manifests/b/manifests/latest").unwrap(), Some(Route::Manifest(r, Reference::Tag(t))) if r.as_str() == "a/manifests/b" && t == "latest")
        );
        assert!(
            matches!(parse(&format!("a/blobs/{d}")).unwrap(), Some(Route::Blob(_, x)) if x == d)
        );
        assert!(matches!(
            parse("a/blobs/uploads/").unwrap(),
            Some(Route::Upload(_, None))
        ));
        assert!(
            matches!(parse("a/blobs/uploads/abc").unwrap(), Some(Route::Upload(_, Some(id))) if id == "abc")
        );
        assert!(matches!(
            parse(&format!("x/referrers/{d}")).unwrap(),
            Some(Route::Referrers(..))
        ));
        assert_eq!(
            parse("A/tags/list").unwrap_err().code,
            ErrorCode::NameInvalid
        );
        assert_eq!(
            parse("a/blobs/sha256:zz").unwrap_err().code,
            ErrorCode::DigestInvalid
        );
        assert_eq!(parse("a/b").unwrap(), None);
    }
}
