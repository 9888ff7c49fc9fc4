//! The catalog's signature column against trusted cosign keys, in process:
//! signatures made with corral-sign's own key code, pushed as `.sig` tags or
//! as bare referrers, and each way one can fail to verify.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine;
use common::{Registry, OCI_MANIFEST};
use corral_mirror::name::Digest;
use corral_sign::cosign::{ARTIFACT_TYPE, LAYER_TYPE, SIGNATURE_ANNOTATION};
use corral_sign::cosign_key;
use corral_sign::payload::{Payload, COSIGN_TYPE};
use std::sync::atomic::Ordering::Relaxed;

const HOST: &str = "registry.test:5000";

struct Key {
    secret: p256::SecretKey,
    public_path: std::path::PathBuf,
    fingerprint: String,
}

fn key(dir: &std::path::Path, name: &str) -> Key {
    let (private, public) = cosign_key::generate(b"pw").unwrap();
    let public_path = dir.join(format!("{name}.pub"));
    std::fs::write(&public_path, &public).unwrap();
    let secret = cosign_key::decrypt(&private, b"pw").unwrap();
    let fingerprint = cosign_key::fingerprint(&secret.public_key());
    Key {
        secret,
        public_path,
        fingerprint,
    }
}

/// What a signature says and where it goes.
struct Sig<'a> {
    repo: &'a str,
    /// The image the signature manifest is attached to.
    subject: &'a Digest,
    /// The digest the payload vouches for.
    signed_digest: &'a Digest,
    signed_reference: String,
    /// Tag it `sha256-<hex>.sig`, else push it by digest (a referrer only).
    tag: bool,
    /// Replace the signature with this annotation value.
    raw_signature: Option<&'a str>,
}

async fn push_signature(reg: &Registry, key: &Key, s: Sig<'_>) {
    let payload = Payload::new(
        &s.signed_reference,
        &s.signed_digest.to_string(),
        COSIGN_TYPE,
    )
    .to_bytes();
    let signature = match s.raw_signature {
        Some(raw) => raw.to_string(),
        None => base64::engine::general_purpose::STANDARD
            .encode(cosign_key::sign(&key.secret, &payload)),
    };
    let pd = reg.push_blob(s.repo, &payload).await;
    let config =
        br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = reg.push_blob(s.repo, config).await;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": LAYER_TYPE, "digest": pd.to_string(), "size": payload.len(),
            "annotations": {SIGNATURE_ANNOTATION: signature}}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": s.subject.to_string(), "size": 1},
    }))
    .unwrap();
    let reference = if s.tag {
        format!("sha256-{}.sig", s.subject.hex())
    } else {
        Digest::of_bytes(&manifest).to_string()
    };
    let r = reg
        .put_manifest(s.repo, &reference, OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// `repository -> tag 1's "signatures"` from `/catalog.json`.
async fn statuses(reg: &Registry) -> serde_json::Map<String, serde_json::Value> {
    let r = reg
        .send_raw(Method::GET, "/catalog.json", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|repo| {
            let tags = repo["tags"].as_array().unwrap();
            assert!(tags
                .iter()
                .all(|t| !t["tag"].as_str().unwrap().ends_with(".sig")));
            let one = tags.iter().find(|t| t["tag"] == "1").unwrap();
            (
                repo["name"].as_str().unwrap().to_string(),
                one["signatures"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn catalog_tells_verified_from_merely_signed() {
    let keys = tempfile::tempdir().unwrap();
    let trusted = key(keys.path(), "trusted");
    let stranger = key(keys.path(), "stranger");
    let public = trusted.public_path.clone();
    let reg = Registry::with(|c| c.trust.cosign_keys = vec![public]);

    let mut digests = std::collections::BTreeMap::new();
    for (i, repo) in [
        "sample/base",
        "sample/referrer-only",
        "sample/stranger",
        "sample/other-digest",
        "sample/other-reference",
        "sample/garbled",
        "sample/unsigned",
    ]
    .into_iter()
    .enumerate()
    {
        let (_, d) = reg.push_image(repo, "1", &format!("seed {i}")).await;
        digests.insert(repo, d);
    }
    let d = |repo: &str| digests[repo].clone();
    let named = |repo: &str| format!("{HOST}/{repo}");
    for (repo, signer, tag) in [
        ("sample/base", &trusted, true),
        ("sample/referrer-only", &trusted, false),
        ("sample/stranger", &stranger, true),
    ] {
        push_signature(
            &reg,
            signer,
            Sig {
                repo,
                subject: &d(repo),
                signed_digest: &d(repo),
                signed_reference: named(repo),
                tag,
                raw_signature: None,
            },
        )
        .await;
    }
    // A trusted signature of base's digest, filed under another image.
    push_signature(
        &reg,
        &trusted,
        Sig {
            repo: "sample/other-digest",
            subject: &d("sample/other-digest"),
            signed_digest: &d("sample/base"),
            signed_reference: named("sample/other-digest"),
            tag: true,
            raw_signature: None,
        },
    )
    .await;
    // The right digest, but signed as another repository.
    push_signature(
        &reg,
        &trusted,
        Sig {
            repo: "sample/other-reference",
            subject: &d("sample/other-reference"),
            signed_digest: &d("sample/other-reference"),
            signed_reference: named("sample/base"),
            tag: true,
            raw_signature: None,
        },
    )
    .await;
    push_signature(
        &reg,
        &trusted,
        Sig {
            repo: "sample/garbled",
            subject: &d("sample/garbled"),
            signed_digest: &d("sample/garbled"),
            signed_reference: named("sample/garbled"),
            tag: true,
            raw_signature: Some("bm90IGEgc2lnbmF0dXJl"),
        },
    )
    .await;

    let got = statuses(&reg).await;
    let status = |repo: &str| got[repo]["status"].as_str().unwrap().to_string();
    let reason = |repo: &str| got[repo]["reason"].as_str().unwrap_or("").to_string();
    for repo in ["sample/base", "sample/referrer-only"] {
        assert_eq!(status(repo), "verified", "{repo}: {:?}", got[repo]);
        assert_eq!(got[repo]["format"], "cosign");
        assert_eq!(got[repo]["key"], trusted.fingerprint.as_str());
    }
    for (repo, want) in [
        ("sample/stranger", "unknown-key"),
        ("sample/other-digest", "other-digest"),
        ("sample/other-reference", "other-reference"),
        ("sample/garbled", "bad-signature"),
    ] {
        assert_eq!(status(repo), "not-verified", "{repo}: {:?}", got[repo]);
        assert_eq!(reason(repo), want, "{repo}: {:?}", got[repo]);
    }
    assert_eq!(status("sample/unsigned"), "unsigned");

    // Key checks are cached by manifest and signature digest: a second
    // look runs none.
    let runs = reg.app.metrics.signature_checks.load(Relaxed);
    assert_eq!(runs, 6, "one check per signature");
    assert_eq!(statuses(&reg).await, got);
    assert_eq!(reg.app.metrics.signature_checks.load(Relaxed), runs);
    let metrics = reg
        .send_raw(Method::GET, "/metrics", &[], Body::empty())
        .await;
    assert!(String::from_utf8_lossy(&metrics.body)
        .contains(&format!("corral_mirror_signature_checks_total {runs}\n")));

    // The page says the same, with the key.
    let page = reg
        .send_raw(Method::GET, "/catalog", &[], Body::empty())
        .await;
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        html.contains(&format!(
            "<td class=\"verified\">verified (cosign, key {})</td>",
            trusted.fingerprint
        )),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"unverified\">signed, not verified: unknown key"),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"unsigned\">unsigned</td>"),
        "{html}"
    );
}

#[tokio::test]
async fn without_trusted_keys_signatures_are_only_attached() {
    let keys = tempfile::tempdir().unwrap();
    let k = key(keys.path(), "k");
    let reg = Registry::new();
    let (_, d) = reg.push_image("sample/base", "1", "x").await;
    push_signature(
        &reg,
        &k,
        Sig {
            repo: "sample/base",
            subject: &d,
            signed_digest: &d,
            signed_reference: format!("{HOST}/sample/base"),
            tag: true,
            raw_signature: None,
        },
    )
    .await;
    let got = statuses(&reg).await;
    assert_eq!(got["sample/base"]["status"], "not-verified");
    assert_eq!(got["sample/base"]["reason"], "no-trusted-keys");
    assert_eq!(got["sample/base"]["signatures"], 1);
}

#[test]
fn a_missing_trusted_key_stops_the_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = corral_mirror::config::Config {
        storage: dir.path().join("s"),
        ..Default::default()
    };
    config.trust.cosign_keys = vec![dir.path().join("missing.pub")];
    let store = corral_mirror::storage::FsStorage::open(&config.storage).unwrap();
    let err = corral_mirror::api::App::new(config, std::sync::Arc::new(store))
        .err()
        .expect("a missing key is an error");
    assert!(format!("{err:#}").contains("missing.pub"), "{err:#}");
}
