//! Which signed identities a signature may claim for an image: the
//! `signedIdentity` of a containers-policy.json(5) `signedBy` or
//! `sigstoreSigned` requirement, applied as containers/image applies it
//! (`signature/policy_reference_match.go`), so that `corral verify` says
//! yes exactly when skopeo, podman or CRI-O with the same policy would.
//!
//! References are compared in their fully expanded form (`docker.io/library/
//! busybox:latest`, never `busybox`), as containers/image does.

use serde::{Deserialize, Serialize};

use corral_registry::ImageRef;

/// A `signedIdentity` object of policy.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum SignedIdentity {
    /// The signed reference equals the image's; neither may be a bare
    /// repository.
    MatchExact,
    /// A tagged image needs exactly its reference signed; an image named by
    /// digest only needs its repository (any tag or digest) signed. The
    /// default when a requirement has no `signedIdentity`.
    MatchRepoDigestOrExact,
    /// The signed reference names the image's repository (any tag, or
    /// none: cosign signs the repository only).
    MatchRepository,
    /// The signed reference equals this one, whatever the image is called.
    #[serde(rename_all = "camelCase")]
    ExactReference { docker_reference: String },
    /// The signed reference is in this repository, whatever the image is
    /// called.
    #[serde(rename_all = "camelCase")]
    ExactRepository { docker_repository: String },
    /// An image whose reference starts with `prefix` is matched as if it
    /// started with `signed_prefix`, by `matchRepoDigestOrExact`.
    #[serde(rename_all = "camelCase")]
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

impl SignedIdentity {
    /// The rule `corral policy` writes, and `corral verify` applies without
    /// `--policy`, for a signature format (`"gpg"` or `"cosign"`): GPG
    /// signatures name `HOST/REPO:TAG`, so containers/image's default;
    /// cosign signatures name the repository only, which only
    /// `matchRepository` accepts (containers-policy.json(5), sigstoreSigned).
    ///
    /// ```
    /// use corral_sign::identity::SignedIdentity;
    /// assert_eq!(SignedIdentity::default_for("gpg"), SignedIdentity::MatchRepoDigestOrExact);
    /// assert_eq!(SignedIdentity::default_for("cosign"), SignedIdentity::MatchRepository);
    /// ```
    pub fn default_for(format: &str) -> SignedIdentity {
        if format == "cosign" {
            SignedIdentity::MatchRepository
        } else {
            SignedIdentity::MatchRepoDigestOrExact
        }
    }

    /// Whether a signature claiming `signed` (its `docker-reference`) is
    /// accepted for `image`. A reference that does not parse matches
    /// nothing.
    ///
    /// ```
    /// use corral_sign::identity::SignedIdentity;
    /// use corral_registry::ImageRef;
    /// let image = ImageRef::parse("r.example/app:v1").unwrap();
    /// let rule = SignedIdentity::MatchRepoDigestOrExact;
    /// assert!(rule.matches(&image, "r.example/app:v1"));
    /// // A signature for the repository does not vouch for a tag.
    /// assert!(!rule.matches(&image, "r.example/app"));
    /// assert!(SignedIdentity::MatchRepository.matches(&image, "r.example/app"));
    /// ```
    pub fn matches(&self, image: &ImageRef, signed: &str) -> bool {
        let (Some(intended), Some(signature)) = (
            DockerRef::parse(&image.to_string()),
            DockerRef::parse(signed),
        ) else {
            return false;
        };
        match self {
            SignedIdentity::MatchExact => {
                !intended.is_name_only()
                    && !signature.is_name_only()
                    && signature.to_string() == intended.to_string()
            }
            SignedIdentity::MatchRepoDigestOrExact => repo_digest_or_exact(&intended, &signature),
            SignedIdentity::MatchRepository => signature.name == intended.name,
            SignedIdentity::ExactReference { docker_reference } => {
                DockerRef::parse(docker_reference).is_some_and(|want| {
                    !want.is_name_only()
                        && !signature.is_name_only()
                        && signature.to_string() == want.to_string()
                })
            }
            SignedIdentity::ExactRepository { docker_repository } => {
                DockerRef::parse(docker_repository).is_some_and(|want| signature.name == want.name)
            }
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => {
                let full = intended.to_string();
                let intended = if ref_matches_prefix(&full, prefix) {
                    match DockerRef::parse(&format!("{signed_prefix}{}", &full[prefix.len()..])) {
                        Some(r) => r,
                        None => return false,
                    }
                } else {
                    intended
                };
                repo_digest_or_exact(&intended, &signature)
            }
        }
    }
}

impl std::fmt::Display for SignedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let json = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        write!(f, "{}", json["type"].as_str().unwrap_or("?"))
    }
}

fn repo_digest_or_exact(intended: &DockerRef, signature: &DockerRef) -> bool {
    if signature.is_name_only() {
        return false;
    }
    if intended.tag.is_some() {
        // Tagged, with or without a digest: the exact reference.
        signature.to_string() == intended.to_string()
    } else if intended.digest.is_some() {
        // The digest itself is checked against the signed payload's.
        signature.name == intended.name
    } else {
        false
    }
}

/// containers/image `refMatchesPrefix`: `prefix` is the whole reference,
/// or ends where a host, path component, tag or digest ends.
fn ref_matches_prefix(reference: &str, prefix: &str) -> bool {
    match reference.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => matches!(rest.as_bytes()[0], b':' | b'/' | b'@'),
        None => false,
    }
}

/// A docker reference in its fully expanded form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRef {
    /// `domain/path`, e.g. `docker.io/library/busybox`.
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl DockerRef {
    /// Parses and normalises a reference as docker's
    /// `ParseNormalizedNamed` does; `None` for one it would reject.
    ///
    /// ```
    /// use corral_sign::identity::DockerRef;
    /// assert_eq!(DockerRef::parse("busybox").unwrap().to_string(), "docker.io/library/busybox");
    /// assert_eq!(DockerRef::parse("localhost:5000/a/b:1").unwrap().tag.as_deref(), Some("1"));
    /// assert!(DockerRef::parse("Host:5000/UPPER").is_none());
    /// ```
    pub fn parse(s: &str) -> Option<DockerRef> {
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest {
            let (alg, hex) = d.split_once(':')?;
            let alg_ok = !alg.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
            let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
            if !alg_ok || !hex_ok {
                return None;
            }
        }
        // A tag follows the last ':' after the last '/' (a ':' before it is
        // a port).
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && !t.starts_with(['.', '-'])
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return None;
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((d, p)) if d.contains(['.', ':']) || d == "localhost" => (d, p.to_string()),
            _ => ("docker.io", name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            "docker.io"
        } else {
            domain
        };
        let path = if domain == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        };
        let domain_ok = !domain.is_empty()
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        if !domain_ok || !path.split('/').all(component_ok) {
            return None;
        }
        Some(DockerRef {
            name: format!("{domain}/{path}"),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// Neither a tag nor a digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }
}

impl std::fmt::Display for DockerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        corral_registry::reference::write_reference(
            f,
            &self.name,
            self.tag.as_deref(),
            self.digest.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn image(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    /// Each rule on the same cases: (image, signed identity, expected).
    /// The expectations follow containers-policy.json(5) and
    /// containers/image's policy_reference_match_test.go.
    #[test]
    fn each_rule_on_the_same_cases() {
        let by_tag = image("h:5/sig/app:v1");
        let by_digest = image(&format!("h:5/sig/app@{D1}"));
        let signed = [
            "h:5/sig/app:v1",             // 0 the tag
            "h:5/sig/app",                // 1 the repository, no tag
            "h:5/sig/app:v2",             // 2 another tag
            "h:5/sig/other:v1",           // 3 another repository
            "other:5/sig/app:v1",         // 4 another host
            &format!("h:5/sig/app@{D1}"), // 5 by digest
            "not a reference",            // 6 garbage
        ];
        let table: [(SignedIdentity, [bool; 7], [bool; 7]); 4] = [
            (
                SignedIdentity::MatchExact,
                [true, false, false, false, false, false, false],
                [false, false, false, false, false, true, false],
            ),
            (
                SignedIdentity::MatchRepoDigestOrExact,
                [true, false, false, false, false, false, false],
                [true, false, true, false, false, true, false],
            ),
            (
                SignedIdentity::MatchRepository,
                [true, true, true, false, false, true, false],
                [true, true, true, false, false, true, false],
            ),
            (
                SignedIdentity::ExactReference {
                    docker_reference: "other:5/sig/app:v1".into(),
                },
                [false, false, false, false, true, false, false],
                [false, false, false, false, true, false, false],
            ),
        ];
        for (rule, want_tag, want_digest) in table {
            for (i, s) in signed.iter().enumerate() {
                assert_eq!(rule.matches(&by_tag, s), want_tag[i], "{rule:?} tag vs {s}");
                assert_eq!(
                    rule.matches(&by_digest, s),
                    want_digest[i],
                    "{rule:?} digest vs {s}"
                );
            }
        }
    }

    #[test]
    fn exact_repository_and_remapping() {
        let i = image("mirror:5/os/base:43");
        let repo = SignedIdentity::ExactRepository {
            docker_repository: "quay.io/os/base".into(),
        };
        assert!(repo.matches(&i, "quay.io/os/base:1"));
        assert!(repo.matches(&i, "quay.io/os/base"));
        assert!(!repo.matches(&i, "mirror:5/os/base:43"));

        let remap = SignedIdentity::RemapIdentity {
            prefix: "mirror:5/os".into(),
            signed_prefix: "quay.io/os".into(),
        };
        assert!(remap.matches(&i, "quay.io/os/base:43"));
        assert!(!remap.matches(&i, "quay.io/os/base:44"));
        assert!(!remap.matches(&i, "quay.io/os/base"));
        assert!(!remap.matches(&i, "mirror:5/os/base:43"));
        // The prefix ends at a component boundary: "mirror:5/o" is no
        // prefix of "mirror:5/os/…", so nothing is remapped.
        let partial = SignedIdentity::RemapIdentity {
            prefix: "mirror:5/o".into(),
            signed_prefix: "quay.io/o".into(),
        };
        assert!(!partial.matches(&i, "quay.io/os/base:43"));
        assert!(partial.matches(&i, "mirror:5/os/base:43"));
    }

    #[test]
    fn references_are_compared_expanded() {
        let i = image("docker.io/library/busybox:latest");
        assert!(SignedIdentity::MatchExact.matches(&i, "busybox:latest"));
        assert!(SignedIdentity::MatchExact.matches(&i, "index.docker.io/busybox:latest"));
        assert!(!SignedIdentity::MatchExact.matches(&i, "busybox"));
        assert_eq!(DockerRef::parse("localhost/a").unwrap().name, "localhost/a");
        assert!(DockerRef::parse("h:5/a:").is_none());
        assert!(DockerRef::parse("h:5/a@sha256:zz").is_none());
    }

    #[test]
    fn policy_json_spelling() {
        let parse = |s: &str| serde_json::from_str::<SignedIdentity>(s);
        assert_eq!(
            parse(r#"{"type":"matchRepoDigestOrExact"}"#).unwrap(),
            SignedIdentity::MatchRepoDigestOrExact
        );
        assert_eq!(
            parse(r#"{"type":"remapIdentity","prefix":"a.example","signedPrefix":"b.example"}"#)
                .unwrap(),
            SignedIdentity::RemapIdentity {
                prefix: "a.example".into(),
                signed_prefix: "b.example".into()
            }
        );
        assert_eq!(
            serde_json::to_string(&SignedIdentity::ExactRepository {
                docker_repository: "q.example/r".into()
            })
            .unwrap(),
            r#"{"type":"exactRepository","dockerRepository":"q.example/r"}"#
        );
        // Unknown types, and unknown fields of the rules that have fields,
        // are refused as containers/image refuses them. (serde ignores
        // extra fields beside a unit variant's tag; skopeo would refuse
        // such a policy whole.)
        assert!(parse(r#"{"type":"matchEverything"}"#).is_err());
        assert!(
            parse(r#"{"type":"exactReference","dockerReference":"a.example/b:1","x":1}"#).is_err()
        );
        assert!(parse(r#"{"type":"exactReference"}"#).is_err());
        assert_eq!(
            SignedIdentity::MatchRepository.to_string(),
            "matchRepository"
        );
    }
}
