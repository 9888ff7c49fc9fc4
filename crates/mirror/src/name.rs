//! Validation of repository names, tags and digests against the
//! distribution-spec grammar, done before any of them touches the filesystem.

use corral_oci::grammar::is_path_component as valid_component;
pub use corral_oci::grammar::is_tag as valid_tag;
use std::fmt;
use std::str::FromStr;

/// The longest repository name accepted (the spec's recommended 255 for
/// hostname + name).
const MAX_NAME_LEN: usize = 255;

/// A validated repository name: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
///
/// ```
/// use corral_mirror::name::RepoName;
/// assert!(RepoName::parse("library/alpine").is_some());
/// assert!(RepoName::parse("../etc").is_none());
/// assert!(RepoName::parse("Upper/case").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub fn parse(s: &str) -> Option<RepoName> {
        if s.is_empty() || s.len() > MAX_NAME_LEN {
            return None;
        }
        if s.split('/').all(valid_component) {
            Some(RepoName(s.to_string()))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for RepoName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a digest the registry can address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    #[error("digest is empty")]
    Empty,
    /// Not `algorithm ":" encoded` as the OCI image-spec writes it.
    #[error("digest {0:?} is not algorithm:encoded")]
    Malformed(String),
    /// Grammatical, but an algorithm this registry does not store.
    #[error("digest algorithm {0:?} is not supported (only sha256)")]
    UnsupportedAlgorithm(String),
    /// A registered algorithm whose encoded part has the wrong form.
    #[error("digest {digest:?}: {algorithm} needs {len} lowercase hex characters")]
    BadEncoding {
        digest: String,
        algorithm: &'static str,
        len: usize,
    },
}

/// A content digest, parsed by the OCI image-spec grammar
/// (`algorithm ":" encoded`, algorithm components `[a-z0-9]+` joined by
/// `[+._-]`, encoded `[a-zA-Z0-9=_-]+`) and then by the registered
/// algorithm's own rule.
///
/// Only `sha256` (64 lowercase hex characters) is accepted: the storage
/// addresses blobs as `blobs/sha256/<hex>`. `sha512` is registered and
/// grammatical, but refused as unsupported rather than stored under a name
/// no reader would look for.
///
/// ```
/// use corral_mirror::name::{Digest, DigestError};
/// let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// assert!(Digest::parse(&format!("sha256:{hex}")).is_ok());
/// assert!(matches!(Digest::parse("md5:d41d8cd98f00b204e9800998ecf8427e"),
///     Err(DigestError::UnsupportedAlgorithm(_))));
/// assert!(Digest::parse(&format!("sha256:{}", hex.to_uppercase())).is_err());
/// assert!(Digest::parse("sha256:../../../etc/passwd").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// `[a-z0-9]+` components joined by single `+`, `.`, `_` or `-`.
fn is_algorithm(s: &str) -> bool {
    !s.is_empty()
        && s.split(['+', '.', '_', '-']).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn is_encoded(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; every digest a client sends goes
    /// through here.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        if s.is_empty() {
            return Err(DigestError::Empty);
        }
        let malformed = || DigestError::Malformed(s.to_string());
        let (algorithm, encoded) = s.split_once(':').ok_or_else(malformed)?;
        if !is_algorithm(algorithm) || !is_encoded(encoded) {
            return Err(malformed());
        }
        match algorithm {
            "sha256" if is_lower_hex(encoded, 64) => Ok(Digest {
                hex: encoded.to_string(),
            }),
            "sha256" => Err(DigestError::BadEncoding {
                digest: s.to_string(),
                algorithm: "sha256",
                len: 64,
            }),
            "sha512" if !is_lower_hex(encoded, 128) => Err(DigestError::BadEncoding {
                digest: s.to_string(),
                algorithm: "sha512",
                len: 128,
            }),
            other => Err(DigestError::UnsupportedAlgorithm(other.to_string())),
        }
    }

    pub fn from_hex(hex: &str) -> Option<Digest> {
        is_lower_hex(hex, 64).then(|| Digest {
            hex: hex.to_string(),
        })
    }

    pub fn of_bytes(data: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest {
            hex: hex::encode(sha2::Sha256::digest(data)),
        }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, DigestError> {
        Digest::parse(s)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    /// A tag, or a digest when it has a `:` (tags cannot).
    pub fn parse(s: &str) -> Option<Reference> {
        if s.contains(':') {
            Digest::parse(s).ok().map(Reference::Digest)
        } else if valid_tag(s) {
            Some(Reference::Tag(s.to_string()))
        } else {
            None
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "library/alpine",
            "a.b_c__d---e/f0",
            "x/y/z",
            "fedora-coreos",
        ] {
            assert!(RepoName::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "A", "a//b", "/a", "a/", "a..b", "a___b", "-a", "a-", "../etc", "a/_tags", "a b",
            "a/..",
        ] {
            assert!(RepoName::parse(bad).is_none(), "{bad}");
        }
        assert!(RepoName::parse(&"a".repeat(256)).is_none());
    }

    #[test]
    fn tags_and_digests() {
        assert!(valid_tag("v1.0_rc-1"));
        assert!(!valid_tag(".hidden"));
        assert!(!valid_tag(&"a".repeat(129)));
        let d = Digest::of_bytes(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!("sha256:ABC".parse::<Digest>().is_err());
        assert!("sha256:../../etc/passwd".parse::<Digest>().is_err());
        assert_eq!(
            Reference::parse("latest"),
            Some(Reference::Tag("latest".into()))
        );
        assert!(matches!(
            Reference::parse(&d.to_string()),
            Some(Reference::Digest(_))
        ));
        assert_eq!(Reference::parse("md5:abc"), None);
    }

    #[test]
    fn digest_grammar() {
        let hex = Digest::of_bytes(b"x").hex().to_string();
        assert_eq!(Digest::parse(""), Err(DigestError::Empty));
        for malformed in [
            "sha256",
            ":abc",
            "sha256:",
            "SHA256:abc",
            "sha256::abc",
            "sha256:../../../etc/passwd",
            "sha256:a/b",
            "sha+:abc",
            "sha256:abc def",
        ] {
            assert!(
                matches!(Digest::parse(malformed), Err(DigestError::Malformed(_))),
                "{malformed}: {:?}",
                Digest::parse(malformed)
            );
        }
        for bad in [
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha256:{}", &hex[..63]),
            format!("sha256:{hex}0"),
            "sha256:xyz".to_string(),
            format!("sha512:{hex}"),
        ] {
            assert!(
                matches!(Digest::parse(&bad), Err(DigestError::BadEncoding { .. })),
                "{bad}: {:?}",
                Digest::parse(&bad)
            );
        }
        for unsupported in [
            "md5:d41d8cd98f00b204e9800998ecf8427e".to_string(),
            format!("sha512:{}", "ab".repeat(64)),
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8".to_string(),
        ] {
            assert!(
                matches!(
                    Digest::parse(&unsupported),
                    Err(DigestError::UnsupportedAlgorithm(_))
                ),
                "{unsupported}"
            );
        }
        let d = Digest::parse(&format!("sha256:{hex}")).unwrap();
        assert_eq!(d.hex(), hex);
        assert!(Digest::parse("sha256:../../../etc/passwd")
            .unwrap_err()
            .to_string()
            .contains("etc/passwd"));
    }
}
