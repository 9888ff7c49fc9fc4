//! The "simple signing" payload (containers/image `signature/simple.go`,
//! cosign `payload.SimpleContainerImage`): what a signature vouches for.

use serde::{Deserialize, Serialize};

/// containers/image's type string for GPG simple signing.
pub const ATOMIC_TYPE: &str = "atomic container signature";
/// cosign's type string.
pub const COSIGN_TYPE: &str = "cosign container image signature";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Payload {
    pub critical: Critical,
    pub optional: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Critical {
    pub identity: Identity,
    pub image: Image,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Image {
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl Payload {
    /// A payload for `reference` at `digest` of the given `kind`.
    ///
    /// ```
    /// let p = corral_sign::payload::Payload::new("r.example/a:1", "sha256:00", corral_sign::payload::ATOMIC_TYPE);
    /// assert!(String::from_utf8(p.to_bytes()).unwrap().contains("\"docker-reference\":\"r.example/a:1\""));
    /// ```
    pub fn new(reference: &str, digest: &str, kind: &str) -> Payload {
        Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: reference.to_string(),
                },
                image: Image {
                    docker_manifest_digest: digest.to_string(),
                },
                kind: kind.to_string(),
            },
            optional: Some(serde_json::json!({"creator": "corral"})),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("payload serialises")
    }

    /// Parses and checks the type string. A GPG ("atomic") payload is
    /// held to containers/image's strict reading (`signature/simple.go`):
    /// exactly the fields above, `optional` an object. Anything else is no
    /// signature to skopeo or podman, so it is none to corral either.
    /// cosign writes `"optional": null`, which is accepted for its type.
    pub fn parse(bytes: &[u8], kind: &str) -> anyhow::Result<Payload> {
        if kind == ATOMIC_TYPE {
            let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
                anyhow::anyhow!("signature payload is not simple-signing JSON: {e}")
            })?;
            check_exact_fields(&v, "", &["critical", "optional"])?;
            check_exact_fields(&v["critical"], "critical", &["identity", "image", "type"])?;
            check_exact_fields(
                &v["critical"]["identity"],
                "critical.identity",
                &["docker-reference"],
            )?;
            check_exact_fields(
                &v["critical"]["image"],
                "critical.image",
                &["docker-manifest-digest"],
            )?;
            anyhow::ensure!(
                v["optional"].is_object(),
                "signature payload's \"optional\" is not an object"
            );
        }
        let p: Payload = serde_json::from_slice(bytes)
            .map_err(|e| anyhow::anyhow!("signature payload is not simple-signing JSON: {e}"))?;
        anyhow::ensure!(
            p.critical.kind == kind,
            "signature payload has type {:?}, expected {kind:?}",
            p.critical.kind
        );
        Ok(p)
    }
}

/// `v` is an object with exactly the fields `want`.
fn check_exact_fields(v: &serde_json::Value, at: &str, want: &[&str]) -> anyhow::Result<()> {
    let at = if at.is_empty() { "the top level" } else { at };
    let Some(obj) = v.as_object() else {
        anyhow::bail!("signature payload: {at} is not an object");
    };
    let mut have: Vec<&str> = obj.keys().map(String::as_str).collect();
    have.sort_unstable();
    anyhow::ensure!(
        have == want,
        "signature payload: {at} has fields {have:?}, containers/image wants exactly {want:?}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_type_check() {
        let p = Payload::new("h/r:t", "sha256:ab", COSIGN_TYPE);
        assert_eq!(Payload::parse(&p.to_bytes(), COSIGN_TYPE).unwrap(), p);
        assert!(Payload::parse(&p.to_bytes(), ATOMIC_TYPE).is_err());
    }

    /// What containers/image refuses as a GPG payload, corral refuses too;
    /// cosign's `"optional": null` stays readable.
    #[test]
    fn atomic_payloads_are_read_strictly() {
        let good = Payload::new("h/r:t", "sha256:ab", ATOMIC_TYPE);
        assert!(Payload::parse(&good.to_bytes(), ATOMIC_TYPE).is_ok());
        let mut v = serde_json::to_value(&good).unwrap();
        v["optional"] = serde_json::Value::Null;
        let null_optional = serde_json::to_vec(&v).unwrap();
        let err = Payload::parse(&null_optional, ATOMIC_TYPE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"optional\" is not an object"), "{err}");
        let mut extra = serde_json::to_value(&good).unwrap();
        extra["critical"]["identity"]["extra"] = "x".into();
        let err = Payload::parse(&serde_json::to_vec(&extra).unwrap(), ATOMIC_TYPE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("critical.identity has fields"), "{err}");
        let mut cosign =
            serde_json::to_value(Payload::new("h/r", "sha256:ab", COSIGN_TYPE)).unwrap();
        cosign["optional"] = serde_json::Value::Null;
        assert!(Payload::parse(&serde_json::to_vec(&cosign).unwrap(), COSIGN_TYPE).is_ok());
    }
}
