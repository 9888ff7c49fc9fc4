//! Which signatures the mirror trusts, for the catalog page: cosign public
//! keys and GPG keyrings from `[trust]` (or `--trust-cosign-key`,
//! `--trust-gpg-keyring`). A tag's signatures are gathered from storage — a
//! `sha256-<hex>.sig` manifest, referrers of the digest, lookaside files —
//! and checked against those keys; the key checks are cached by manifest
//! digest and signature digest, since they (gpgv above all) cost far more
//! than the page.
//!
//! The formats and the key checks themselves are corral-sign's; this module
//! only finds the signatures and keeps the results.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use anyhow::Context;
use corral_registry::ImageRef;
use corral_sign::cosign::{self, ARTIFACT_TYPE};
use corral_sign::gpg::GpgCheck;
use corral_sign::payload::{ATOMIC_TYPE, COSIGN_TYPE};
use corral_sign::VerifyError;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;

use crate::app::App;
use crate::config::TrustConfig;
use crate::name::{Digest, RepoName};

/// Lookaside signatures read per digest at most (as corral sign writes).
const MAX_LOOKASIDE: usize = 64;
/// A simple-signing payload is well under this.
const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;
/// Cached key checks before the cache starts over.
const MAX_CACHED: usize = 100_000;

struct CosignKey {
    fingerprint: String,
    key: p256::PublicKey,
}

/// The keys signatures are checked against.
#[derive(Default)]
pub struct TrustedKeys {
    cosign: Vec<CosignKey>,
    gpg_keyrings: Vec<PathBuf>,
}

impl TrustedKeys {
    pub fn load(cfg: &TrustConfig) -> anyhow::Result<TrustedKeys> {
        let cosign = cfg
            .cosign_keys
            .iter()
            .map(|p| {
                let key = corral_sign::cosign_key::load_public(p)
                    .with_context(|| format!("loading trusted cosign key {}", p.display()))?;
                Ok(CosignKey {
                    fingerprint: corral_sign::cosign_key::fingerprint(&key),
                    key,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for k in &cfg.gpg_keyrings {
            std::fs::metadata(k)
                .with_context(|| format!("reading trusted gpg keyring {}", k.display()))?;
        }
        Ok(TrustedKeys {
            cosign,
            gpg_keyrings: cfg.gpg_keyrings.clone(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.cosign.is_empty() && self.gpg_keyrings.is_empty()
    }
}

/// One signature as stored.
enum Found {
    /// A simple-signing layer of a cosign signature manifest; `payload` is
    /// `None` when its blob is not in storage.
    Cosign {
        payload: Option<Vec<u8>>,
        signature: Vec<u8>,
    },
    /// A lookaside file: a signed OpenPGP message.
    Gpg(Vec<u8>),
    /// A signature manifest without a readable simple-signing layer.
    Unreadable(Digest),
}

impl Found {
    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        match self {
            Found::Cosign { payload, signature } => {
                h.update(b"cosign\0");
                h.update(Sha256::digest(payload.as_deref().unwrap_or_default()));
                h.update(signature);
            }
            Found::Gpg(message) => {
                h.update(b"gpg\0");
                h.update(message);
            }
            Found::Unreadable(d) => {
                h.update(b"unreadable\0");
                h.update(d.to_string());
            }
        }
        h.finalize().into()
    }
}

/// What the trusted keys say about one signature, before its payload is
/// matched to a tag.
#[derive(Debug, Clone)]
enum KeyCheck {
    Made {
        format: &'static str,
        key: String,
        payload: Vec<u8>,
    },
    UnknownKey(String),
    BadSignature(String),
}

fn check_keys(keys: &TrustedKeys, found: &Found) -> KeyCheck {
    match found {
        Found::Unreadable(d) => KeyCheck::BadSignature(format!(
            "signature manifest {d} has no simple-signing layer"
        )),
        Found::Cosign { payload: None, .. } => {
            KeyCheck::BadSignature("its payload blob is not in the mirror".into())
        }
        Found::Cosign {
            payload: Some(payload),
            signature,
        } => {
            if p256::ecdsa::Signature::from_der(signature).is_err()
                && p256::ecdsa::Signature::from_slice(signature).is_err()
            {
                return KeyCheck::BadSignature("not an ECDSA signature".into());
            }
            match keys
                .cosign
                .iter()
                .find(|k| corral_sign::cosign_key::verify(&k.key, payload, signature))
            {
                Some(k) => KeyCheck::Made {
                    format: "cosign",
                    key: k.fingerprint.clone(),
                    payload: payload.clone(),
                },
                // ECDSA signatures do not name their key: a tampered payload
                // and another key's signature look the same.
                None => KeyCheck::UnknownKey("no trusted cosign key verifies it".into()),
            }
        }
        Found::Gpg(message) => {
            if keys.gpg_keyrings.is_empty() {
                return KeyCheck::UnknownKey("no trusted gpg keyring".into());
            }
            match corral_sign::gpg::check_signature(&keys.gpg_keyrings, message) {
                Ok(GpgCheck::Valid {
                    fingerprint,
                    payload,
                }) => KeyCheck::Made {
                    format: "gpg",
                    key: fingerprint,
                    payload,
                },
                Ok(GpgCheck::UnknownKey(id)) => {
                    KeyCheck::UnknownKey(format!("made by gpg key {id}, not a trusted one"))
                }
                Ok(GpgCheck::BadSignature) => {
                    KeyCheck::BadSignature("gpg signature does not match its data".into())
                }
                Ok(GpgCheck::Malformed) => {
                    KeyCheck::BadSignature("not an OpenPGP signed message".into())
                }
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "checking a gpg signature");
                    KeyCheck::BadSignature("gpgv failed (see the mirror's log)".into())
                }
            }
        }
    }
}

/// Key checks by (manifest digest, signature digest).
#[derive(Default)]
pub struct SignatureCache {
    checks: Mutex<HashMap<(Digest, [u8; 32]), KeyCheck>>,
}

/// Why a tag's signatures did not verify, most telling first.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// A trusted key signed another manifest digest.
    OtherDigest,
    /// A trusted key signed this digest under another repository or tag.
    OtherReference,
    BadSignature,
    UnknownKey,
    /// The mirror was given no keys.
    NoTrustedKeys,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OtherDigest => "other digest",
            Reason::OtherReference => "other reference",
            Reason::BadSignature => "bad signature",
            Reason::UnknownKey => "unknown key",
            Reason::NoTrustedKeys => "no trusted keys",
        }
    }
}

/// A tag's signatures, as the catalog shows them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum TagSignatures {
    Verified {
        format: &'static str,
        /// GPG: the primary key fingerprint; cosign: SHA-256 of the SPKI DER.
        key: String,
        signatures: usize,
        /// Every format with a valid signature by a trusted key, `format`
        /// first: which clients can check the tag (Debian's skopeo checks
        /// `gpg` but not `cosign`).
        formats: Vec<&'static str>,
    },
    NotVerified {
        reason: Reason,
        detail: String,
        signatures: usize,
    },
    Unsigned,
}

async fn read_small_blob(app: &App, d: &Digest) -> Option<Vec<u8>> {
    if app.store.blob_size(d).await.ok()?? > MAX_PAYLOAD_BYTES {
        return None;
    }
    let (_, mut r) = app.store.open_blob(d, 0).await.ok()??;
    let mut buf = Vec::new();
    r.read_to_end(&mut buf).await.ok()?;
    Some(buf)
}

/// Every signature of `repo@digest` in storage.
async fn gather(app: &App, repo: &RepoName, digest: &Digest) -> Vec<Found> {
    // (manifest, whether it claims to be a signature)
    let mut manifests: Vec<(Digest, bool)> = Vec::new();
    let sig_tag = cosign::signature_tag(&digest.to_string());
    // Looked up, not searched for in the tag list: a catalog page costs
    // what it shows.
    if let Ok(Some((d, _))) = app.store.get_tag(repo, &sig_tag).await {
        manifests.push((d, true));
    }
    for r in app
        .store
        .list_referrers(repo, digest)
        .await
        .unwrap_or_default()
    {
        let cosign_sig = r.get("artifactType").and_then(|a| a.as_str()) == Some(ARTIFACT_TYPE);
        // Older signature manifests have no artifactType; their layers tell.
        let untyped = r.get("artifactType").and_then(|a| a.as_str())
            == Some("application/vnd.oci.image.config.v1+json");
        if let Some(d) = r
            .get("digest")
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse::<Digest>().ok())
        {
            if (cosign_sig || untyped) && !manifests.iter().any(|(m, _)| *m == d) {
                manifests.push((d, cosign_sig));
            }
        }
    }
    let mut found = Vec::new();
    for (m, claims_signature) in manifests {
        let Ok(Some(stored)) = app.store.get_manifest(repo, &m).await else {
            continue;
        };
        let layers = serde_json::from_slice::<serde_json::Value>(&stored.body)
            .map(|v| cosign::signature_layers(&v))
            .unwrap_or_default();
        if layers.is_empty() {
            if claims_signature {
                found.push(Found::Unreadable(m));
            }
            continue;
        }
        for (payload_digest, signature) in layers {
            let payload = match payload_digest.parse::<Digest>() {
                Ok(d) => read_small_blob(app, &d).await,
                Err(_) => None,
            };
            found.push(Found::Cosign { payload, signature });
        }
    }
    for n in 1..=MAX_LOOKASIDE as u32 {
        match app.store.get_signature(repo, digest.hex(), n).await {
            Ok(Some(message)) => found.push(Found::Gpg(message.to_vec())),
            _ => break,
        }
    }
    found
}

/// The signature status of `repo:tag` at `digest`, as reached at `host`
/// (signatures name `HOST/REPO[:TAG]`).
pub async fn tag_signatures(
    app: &App,
    host: &str,
    repo: &RepoName,
    tag: &str,
    digest: &Digest,
) -> TagSignatures {
    let found = gather(app, repo, digest).await;
    if found.is_empty() {
        return TagSignatures::Unsigned;
    }
    let signatures = found.len();
    if app.trust.is_empty() {
        return TagSignatures::NotVerified {
            reason: Reason::NoTrustedKeys,
            detail: "the mirror was given no keys to trust".into(),
            signatures,
        };
    }
    let image = ImageRef {
        host: host.to_string(),
        repo: repo.to_string(),
        tag: Some(tag.to_string()),
        digest: None,
    };
    let mut worst: Option<(Reason, String)> = None;
    let mut note = |reason: Reason, detail: String| {
        if worst.as_ref().is_none_or(|(r, _)| reason < *r) {
            worst = Some((reason, detail));
        }
    };
    let mut verified: Option<(&'static str, String)> = None;
    let mut formats: Vec<&'static str> = Vec::new();
    for f in found {
        // One valid signature per format is enough to know the format.
        let known = match &f {
            Found::Cosign { .. } => formats.contains(&"cosign"),
            Found::Gpg(_) => formats.contains(&"gpg"),
            Found::Unreadable(_) => false,
        };
        if known {
            continue;
        }
        let check = checked(app, digest, f).await;
        let (format, key, payload) = match check {
            KeyCheck::Made {
                format,
                key,
                payload,
            } => (format, key, payload),
            KeyCheck::UnknownKey(d) => {
                note(Reason::UnknownKey, d);
                continue;
            }
            KeyCheck::BadSignature(d) => {
                note(Reason::BadSignature, d);
                continue;
            }
        };
        let kind = if format == "gpg" {
            ATOMIC_TYPE
        } else {
            COSIGN_TYPE
        };
        match cosign::check_payloads(&image, &digest.to_string(), &[payload], kind, format) {
            Ok(_) => {
                if !formats.contains(&format) {
                    formats.push(format);
                }
                verified.get_or_insert((format, key));
            }
            Err(e @ VerifyError::OtherDigest { .. }) => note(Reason::OtherDigest, e.to_string()),
            Err(e @ VerifyError::OtherReference { .. }) => {
                note(Reason::OtherReference, e.to_string())
            }
            Err(_) => note(
                Reason::BadSignature,
                "the signed payload is not simple-signing JSON of its format".into(),
            ),
        }
    }
    if let Some((format, key)) = verified {
        return TagSignatures::Verified {
            format,
            key,
            signatures,
            formats,
        };
    }
    let (reason, detail) = worst.expect("at least one signature was looked at");
    TagSignatures::NotVerified {
        reason,
        detail,
        signatures,
    }
}

/// The key check of `found`, from the cache or run off the async threads.
async fn checked(app: &App, digest: &Digest, found: Found) -> KeyCheck {
    let key = (digest.clone(), found.digest());
    if let Some(c) = app
        .signature_cache
        .checks
        .lock()
        .expect("cache lock")
        .get(&key)
    {
        return c.clone();
    }
    let trust = app.trust.clone();
    let check = tokio::task::spawn_blocking(move || check_keys(&trust, &found))
        .await
        .unwrap_or_else(|e| KeyCheck::BadSignature(format!("signature check panicked: {e}")));
    app.metrics.signature_checks.fetch_add(1, Relaxed);
    let mut checks = app.signature_cache.checks.lock().expect("cache lock");
    if checks.len() >= MAX_CACHED {
        checks.clear();
    }
    checks.insert(key, check.clone());
    check
}
