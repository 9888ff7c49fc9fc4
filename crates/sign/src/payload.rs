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

    /// Parses and checks the type string.
    pub fn parse(bytes: &[u8], kind: &str) -> anyhow::Result<Payload> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_type_check() {
        let p = Payload::new("h/r:t", "sha256:ab", COSIGN_TYPE);
        assert_eq!(Payload::parse(&p.to_bytes(), COSIGN_TYPE).unwrap(), p);
        assert!(Payload::parse(&p.to_bytes(), ATOMIC_TYPE).is_err());
    }
}
