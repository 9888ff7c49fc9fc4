//! cosign-format signatures: an OCI manifest tagged `sha256-<hex>.sig` next
//! to the image, one `application/vnd.dev.cosign.simplesigning.v1+json`
//! layer per signature (the payload) with the base64 DER ECDSA signature in
//! the `dev.cosignproject.cosign/signature` annotation — the layout cosign
//! writes and containers/image reads with `use-sigstore-attachments: true`.
//! The manifest also carries `subject`, so registries that speak OCI 1.1
//! list it as a referrer of the image.

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::identity::SignedIdentity;
use crate::payload::{Payload, COSIGN_TYPE};
use crate::targets::{self, Target};
use crate::{cosign_key, VerifyError};
use corral_registry::{sha256_digest, Client, ImageRef};

pub const LAYER_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The `artifactType` of a signature manifest (cosign's, in its OCI 1.1
/// referrers mode), so the referrers API can filter on it.
pub const ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// `sha256:<hex>` → `sha256-<hex>.sig`.
///
/// ```
/// assert_eq!(corral_sign::cosign::signature_tag("sha256:ab"), "sha256-ab.sig");
/// ```
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// One signature as a `.sig` manifest holds it: the simple-signing payload
/// (the layer's blob) and the base64 DER signature (its annotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    pub payload: Vec<u8>,
    pub signature: String,
}

impl SignatureLayer {
    /// Signs the cosign payload for `reference` at `digest` with `key`.
    ///
    /// ```
    /// let (private, _) = corral_sign::cosign_key::generate(b"pw").unwrap();
    /// let key = corral_sign::cosign_key::decrypt(&private, b"pw").unwrap();
    /// let layer = corral_sign::cosign::SignatureLayer::new("r.example/a", "sha256:00", &key);
    /// assert!(String::from_utf8(layer.payload).unwrap().contains("cosign container image signature"));
    /// ```
    pub fn new(reference: &str, digest: &str, key: &p256::SecretKey) -> SignatureLayer {
        let payload = Payload::new(reference, digest, COSIGN_TYPE).to_bytes();
        let signature = B64.encode(cosign_key::sign(key, &payload));
        SignatureLayer { payload, signature }
    }

    /// The layer's descriptor in a signature manifest.
    pub fn descriptor(&self) -> Value {
        json!({
            "mediaType": LAYER_TYPE,
            "size": self.payload.len(),
            "digest": sha256_digest(&self.payload),
            "annotations": { SIGNATURE_ANNOTATION: self.signature },
        })
    }
}

/// What was signed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Signed {
    pub reference: String,
    pub digest: String,
    pub signature_manifest: String,
    pub signature_tag: String,
    /// For an index: each platform manifest, signed the same way (its own
    /// `sha256-<hex>.sig`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platform_manifests: Vec<Target>,
}

/// The digest `image` names: its own, or the tag's manifest.
pub async fn resolve(client: &Client, image: &ImageRef) -> anyhow::Result<(String, String, usize)> {
    let m = client
        .manifest(image, image.reference())
        .await?
        .with_context(|| format!("image {image} not found"))?;
    Ok((m.digest, m.media_type, m.bytes.len()))
}

/// Signs the manifest `image` names and, when it is an index, every
/// platform manifest it lists.
pub async fn sign(
    client: &Client,
    image: &ImageRef,
    key: &p256::SecretKey,
) -> anyhow::Result<Signed> {
    let mut targets = targets::resolve_all(client, image).await?.into_iter();
    let top = targets
        .next()
        .expect("resolve_all names the manifest first");
    let (signature_manifest, signature_tag) = sign_target(client, image, &top, key).await?;
    let mut platform_manifests = Vec::new();
    for t in targets {
        sign_target(client, image, &t, key)
            .await
            .with_context(|| format!("signing {}", t.describe(image)))?;
        platform_manifests.push(t);
    }
    Ok(Signed {
        reference: image.repository(),
        digest: top.digest,
        signature_manifest,
        signature_tag,
        platform_manifests,
    })
}

/// Adds a signature of `target` to its `.sig` manifest. Returns the
/// manifest's digest and tag.
async fn sign_target(
    client: &Client,
    image: &ImageRef,
    target: &Target,
    key: &p256::SecretKey,
) -> anyhow::Result<(String, String)> {
    let digest = &target.digest;
    let layer = SignatureLayer::new(&image.repository(), digest, key);
    let tag = signature_tag(digest);

    // Keep signatures already there (another key, an earlier run).
    let mut layers: Vec<Value> = match client.manifest(image, &tag).await? {
        Some(m) => serde_json::from_slice::<Value>(&m.bytes)
            .ok()
            .and_then(|v| v["layers"].as_array().cloned())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    client.push_blob(image, &layer.payload).await?;
    layers.push(layer.descriptor());
    let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "", "os": "", "config": {},
        "created": "0001-01-01T00:00:00Z",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))?;
    let config_digest = client.push_blob(image, &config).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(),
            "digest": config_digest,
        },
        "layers": layers,
        "subject": { "mediaType": target.media_type, "digest": digest, "size": target.size },
    }))?;
    let manifest_digest = client
        .push_manifest(image, &tag, OCI_MANIFEST, &manifest)
        .await?;
    Ok((manifest_digest, tag))
}

/// A verified signature.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verified {
    pub format: &'static str,
    pub reference: String,
    pub digest: String,
    pub signed_reference: String,
    /// The rule the signed reference was accepted by.
    pub signed_identity: SignedIdentity,
    pub signatures: usize,
    /// For an index: the platform manifests whose signatures were checked
    /// too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platform_manifests: Vec<Target>,
}

/// Checks signatures of `image` by `key`, with the identity rule `corral
/// policy` writes for cosign. `Ok(Err(_))` is a verification that said no;
/// `Err(_)` is a failure to find out.
pub async fn verify(
    client: &Client,
    image: &ImageRef,
    key: &p256::PublicKey,
) -> anyhow::Result<Result<Verified, VerifyError>> {
    verify_with(client, image, key, &SignedIdentity::default_for("cosign")).await
}

/// [`verify`] with the identity rule `rule` (from a policy.json). For an
/// index every platform manifest must be validly signed too: the first
/// one that is not is the answer.
pub async fn verify_with(
    client: &Client,
    image: &ImageRef,
    key: &p256::PublicKey,
    rule: &SignedIdentity,
) -> anyhow::Result<Result<Verified, VerifyError>> {
    let mut targets = targets::resolve_all(client, image).await?.into_iter();
    let top = targets
        .next()
        .expect("resolve_all names the manifest first");
    let mut verified = match verify_target(client, image, &top, key, rule).await? {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    for t in targets {
        if let Err(e) = verify_target(client, image, &t, key, rule).await? {
            return Ok(Err(e));
        }
        verified.platform_manifests.push(t);
    }
    Ok(Ok(verified))
}

async fn verify_target(
    client: &Client,
    image: &ImageRef,
    target: &Target,
    key: &p256::PublicKey,
    rule: &SignedIdentity,
) -> anyhow::Result<Result<Verified, VerifyError>> {
    let digest = &target.digest;
    let manifests = match client.manifest(image, &signature_tag(digest)).await? {
        Some(m) => vec![m],
        // No tag: a registry that speaks OCI 1.1 may still list the
        // signature as a referrer (cosign's referrers mode pushes no tag).
        None => referrer_manifests(client, image, digest).await?,
    };
    let mut payloads = Vec::new();
    let mut signatures = 0;
    for sig_manifest in &manifests {
        let manifest: Value = serde_json::from_slice(&sig_manifest.bytes)
            .with_context(|| format!("parsing signature manifest {}", sig_manifest.digest))?;
        for (layer_digest, sig) in signature_layers(&manifest) {
            signatures += 1;
            let payload = client.blob(image, &layer_digest).await?;
            debug_assert_eq!(sha256_digest(&payload), layer_digest);
            if cosign_key::verify(key, &payload, &sig) {
                payloads.push(payload);
            }
        }
    }
    // A `.sig` manifest without signature layers (all removed, or never
    // written) signs nothing: no key was wrong.
    if signatures == 0 {
        return Ok(Err(VerifyError::NoSignature(target.describe(image))));
    }
    Ok(check_target_payloads(
        image,
        target,
        &payloads,
        COSIGN_TYPE,
        "cosign",
        rule,
    ))
}

/// [`check_payloads_with`] for one target: a refusal of a platform
/// manifest names the platform.
pub fn check_target_payloads(
    image: &ImageRef,
    target: &Target,
    payloads: &[Vec<u8>],
    kind: &str,
    format: &'static str,
    rule: &SignedIdentity,
) -> Result<Verified, VerifyError> {
    check_payloads_with(image, &target.digest, payloads, kind, format, rule).map_err(|e| {
        match (e, &target.platform) {
            (VerifyError::WrongKey(_), Some(_)) => VerifyError::WrongKey(target.describe(image)),
            (e, _) => e,
        }
    })
}

/// The signature manifests the referrers API lists for `digest`.
pub async fn referrer_manifests(
    client: &Client,
    image: &ImageRef,
    digest: &str,
) -> anyhow::Result<Vec<corral_registry::Manifest>> {
    let Some(index) = client.referrers(image, digest, ARTIFACT_TYPE).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for desc in index["manifests"].as_array().into_iter().flatten() {
        // The filter is optional for registries; apply it here too.
        if desc["artifactType"] != ARTIFACT_TYPE {
            continue;
        }
        let Some(d) = desc["digest"].as_str() else {
            continue;
        };
        if let Some(m) = client.manifest(image, d).await? {
            out.push(m);
        }
    }
    Ok(out)
}

/// The (payload digest, decoded signature) pairs of a signature manifest's
/// simple-signing layers; malformed ones are skipped.
pub fn signature_layers(manifest: &Value) -> Vec<(String, Vec<u8>)> {
    manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["mediaType"] == LAYER_TYPE)
        .filter_map(|l| {
            let d = l["digest"].as_str()?;
            let sig = B64
                .decode(l["annotations"][SIGNATURE_ANNOTATION].as_str()?)
                .ok()?;
            Some((d.to_string(), sig))
        })
        .collect()
}

/// Checks verified payloads against the image with the identity rule
/// `corral policy` writes for `format`
/// ([`SignedIdentity::default_for`]); see [`check_payloads_with`].
pub fn check_payloads(
    image: &ImageRef,
    digest: &str,
    payloads: &[Vec<u8>],
    kind: &str,
    format: &'static str,
) -> Result<Verified, VerifyError> {
    let rule = SignedIdentity::default_for(format);
    check_payloads_with(image, digest, payloads, kind, format, &rule)
}

/// Checks verified payloads against the image: the signed digest is the
/// image's and `rule` accepts the signed reference for it. The first good
/// one wins, else the first complaint is the answer.
pub fn check_payloads_with(
    image: &ImageRef,
    digest: &str,
    payloads: &[Vec<u8>],
    kind: &str,
    format: &'static str,
    rule: &SignedIdentity,
) -> Result<Verified, VerifyError> {
    let mut first_error = None;
    for bytes in payloads {
        let Ok(p) = Payload::parse(bytes, kind) else {
            continue;
        };
        let err = if p.critical.image.docker_manifest_digest != digest {
            Some(VerifyError::OtherDigest {
                expected: digest.to_string(),
                found: p.critical.image.docker_manifest_digest.clone(),
            })
        } else if !rule.matches(image, &p.critical.identity.docker_reference) {
            Some(VerifyError::OtherReference {
                expected: image.to_string(),
                found: p.critical.identity.docker_reference.clone(),
                rule: rule.to_string(),
            })
        } else {
            None
        };
        match err {
            None => {
                return Ok(Verified {
                    format,
                    reference: image.to_string(),
                    digest: digest.to_string(),
                    signed_reference: p.critical.identity.docker_reference,
                    signed_identity: rule.clone(),
                    signatures: payloads.len(),
                    platform_manifests: Vec::new(),
                })
            }
            Some(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| VerifyError::WrongKey(image.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_checks_are_distinct() {
        let i = ImageRef::parse("h:1/a/b:t").unwrap();
        let good = Payload::new("h:1/a/b", "sha256:aa", COSIGN_TYPE).to_bytes();
        let other_digest = Payload::new("h:1/a/b", "sha256:bb", COSIGN_TYPE).to_bytes();
        let other_ref = Payload::new("h:1/x", "sha256:aa", COSIGN_TYPE).to_bytes();
        assert!(check_payloads(&i, "sha256:aa", &[good], COSIGN_TYPE, "cosign").is_ok());
        assert!(matches!(
            check_payloads(&i, "sha256:aa", &[other_digest], COSIGN_TYPE, "cosign"),
            Err(VerifyError::OtherDigest { .. })
        ));
        assert!(matches!(
            check_payloads(&i, "sha256:aa", &[other_ref], COSIGN_TYPE, "cosign"),
            Err(VerifyError::OtherReference { .. })
        ));
        assert!(matches!(
            check_payloads(&i, "sha256:aa", &[], COSIGN_TYPE, "cosign"),
            Err(VerifyError::WrongKey(_))
        ));
    }

    /// Each format gets the rule `corral policy` writes for it: a GPG
    /// signature of the bare repository does not vouch for a tag (skopeo
    /// refuses it), a cosign one does (cosign signs repositories only).
    #[test]
    fn each_format_applies_its_policy_rule() {
        use crate::payload::ATOMIC_TYPE;
        let i = ImageRef::parse("h:1/sig/app:v1").unwrap();
        let bare = |kind| vec![Payload::new("h:1/sig/app", "sha256:aa", kind).to_bytes()];
        let other_tag = |kind| vec![Payload::new("h:1/sig/app:v2", "sha256:aa", kind).to_bytes()];
        assert!(matches!(
            check_payloads(&i, "sha256:aa", &bare(ATOMIC_TYPE), ATOMIC_TYPE, "gpg"),
            Err(VerifyError::OtherReference { rule, .. }) if rule == "matchRepoDigestOrExact"
        ));
        assert!(matches!(
            check_payloads(&i, "sha256:aa", &other_tag(ATOMIC_TYPE), ATOMIC_TYPE, "gpg"),
            Err(VerifyError::OtherReference { .. })
        ));
        let ok =
            check_payloads(&i, "sha256:aa", &bare(COSIGN_TYPE), COSIGN_TYPE, "cosign").unwrap();
        assert_eq!(ok.signed_identity, SignedIdentity::MatchRepository);
        assert!(check_payloads(
            &i,
            "sha256:aa",
            &other_tag(COSIGN_TYPE),
            COSIGN_TYPE,
            "cosign"
        )
        .is_ok());
        // A rule from a given policy replaces the default.
        assert!(matches!(
            check_payloads_with(
                &i,
                "sha256:aa",
                &bare(COSIGN_TYPE),
                COSIGN_TYPE,
                "cosign",
                &SignedIdentity::MatchExact
            ),
            Err(VerifyError::OtherReference { .. })
        ));
    }
}
