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
    /// `/manifests/<reference>` whose reference is neither a tag nor a
    /// digest; kept so the method decides the answer (see [`parse`]).
    BadReference(RepoName, String),
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
            Route::Manifest(..) | Route::BadReference(..) => "manifest",
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
            | Route::BadReference(r, _)
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

/// The registry error for a digest a client sent that does not parse.
pub fn invalid_digest(what: &str, e: crate::name::DigestError) -> RegistryError {
    RegistryError::new(ErrorCode::DigestInvalid, format!("{what}: {e}"))
}

fn digest(s: &str) -> Result<Digest> {
    Digest::parse(s).map_err(|e| invalid_digest("invalid digest in path", e))
}

/// Parses the part of the path after `/v2/`. `Ok(None)` means no such endpoint.
///
/// A manifest reference that is neither a tag nor a digest is not an error
/// here: a GET, HEAD or DELETE of it answers 404 MANIFEST_UNKNOWN (a name
/// that cannot exist is not found; distribution treats it as an unknown tag
/// and clients expect that), while a PUT answers 400 (nothing can be
/// created under it).
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
                0 => match Reference::parse(tail) {
                    Some(r) => Route::Manifest(repo, r),
                    None => Route::BadReference(repo, tail.to_string()),
                },
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
        for bad in [".bad", "sha256:ABC", "md5:d41d8cd98f00b204e9800998ecf8427e"] {
            assert_eq!(
                parse(&format!("a/manifests/{bad}")).unwrap(),
                Some(Route::BadReference(
                    RepoName::parse("a").unwrap(),
                    bad.to_string()
                )),
                "{bad}"
            );
        }
        let e = parse("a/blobs/md5:d41d8cd98f00b204e9800998ecf8427e").unwrap_err();
        assert_eq!(e.code, ErrorCode::DigestInvalid);
        assert!(
            e.message.contains("\"md5\" is not supported"),
            "{}",
            e.message
        );
    }
}
