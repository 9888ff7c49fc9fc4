//! Putting images into the mirror and signing them there: skopeo for OCI
//! layouts, corral-sign's cosign and GPG simple signing (of a
//! multi-platform tag: the index and each platform manifest). An image
//! whose manifest names an SBOM (`dev.corral.sbom.digest`) gets it pushed
//! too, as an OCI 1.1 artifact that refers to the image (for an index: one
//! per platform manifest), so the mirror's referrers API (and the website)
//! finds it.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use corral_registry::{Client, ImageRef};

use crate::config::ReleaseConfig;
use crate::report::Signature;

/// `CORRAL_REGISTRY_CREDS` (`USER:PASS`), the mirror's push credentials.
pub const CREDS_ENV: &str = "CORRAL_REGISTRY_CREDS";

pub fn credentials() -> anyhow::Result<Option<(String, String)>> {
    match std::env::var(CREDS_ENV) {
        Ok(c) => {
            let (u, p) = c
                .split_once(':')
                .with_context(|| format!("{CREDS_ENV} must be USER:PASS"))?;
            Ok(Some((u.to_string(), p.to_string())))
        }
        Err(_) => Ok(None),
    }
}

/// Copies the OCI layout `layout:tag` to `reference` with skopeo. A tag
/// that names an image index (a multi-platform image) is pushed whole:
/// the index and every platform's manifest.
pub fn push_layout(
    config: &ReleaseConfig,
    layout: &Path,
    tag: &str,
    reference: &str,
) -> anyhow::Result<()> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--quiet", "--preserve-digests"]);
    // Without --all skopeo copies only the host's platform out of an index.
    if corral_oci::read::tagged_descriptor(layout, tag)?.1 == OCI_INDEX {
        cmd.arg("--all");
    }
    if config.mirror.plain_http {
        cmd.arg("--dest-tls-verify=false");
    }
    if let Some((u, p)) = credentials()? {
        cmd.arg(format!("--dest-creds={u}:{p}"));
    }
    cmd.arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{reference}"));
    run(&mut cmd).with_context(|| format!("pushing {} to {reference}", layout.display()))?;
    let client = Client::new(config.mirror.plain_http, credentials()?);
    crate::steps::runtime()?
        .block_on(push_sbom(&client, layout, tag, reference))
        .with_context(|| format!("pushing the SBOM of {reference}"))?;
    Ok(())
}

/// The annotation of an image manifest that names its SBOM blob.
pub const SBOM_DIGEST_ANNOTATION: &str = "dev.corral.sbom.digest";
/// The artifact type of an SPDX SBOM artifact.
pub const SBOM_ARTIFACT_TYPE: &str = "application/spdx+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// The image an artifact refers to: its manifest's descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub digest: String,
    pub media_type: String,
    pub size: usize,
}

impl Subject {
    /// The descriptor of manifest `bytes` (its `mediaType`, else OCI's).
    pub fn of_manifest(digest: &str, bytes: &[u8]) -> anyhow::Result<Subject> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).context("parsing the image manifest")?;
        Ok(Subject {
            digest: digest.to_string(),
            media_type: v["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string(),
            size: bytes.len(),
        })
    }
}

/// An OCI 1.1 artifact manifest: `subject` is the image manifest, the one
/// layer is the content blob (of media type `artifact_type`), the config
/// is the OCI empty descriptor. `created` goes into the
/// `org.opencontainers.image.created` annotation, which tells the newest
/// of several artifacts of a type apart (the website shows that one).
pub fn artifact_manifest(
    subject: &Subject,
    artifact_type: &str,
    blob_digest: &str,
    blob_size: usize,
    created: Option<&str>,
) -> anyhow::Result<Vec<u8>> {
    let mut annotations = serde_json::Map::new();
    if let Some(created) = created {
        annotations.insert(
            "org.opencontainers.image.created".into(),
            created.to_string().into(),
        );
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": corral_registry::sha256_digest(b"{}"), "size": 2, "data": "e30="},
        "layers": [{"mediaType": artifact_type, "digest": blob_digest, "size": blob_size}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": annotations,
    });
    Ok(serde_json::to_vec(&manifest)?)
}

/// The SBOM artifact manifest for an image: the one layer is the SBOM
/// blob (the same blob the image's annotation names). Its created
/// annotation is the image's, so the same image always gives the same
/// artifact.
pub fn sbom_artifact_manifest(
    image_digest: &str,
    image_manifest: &[u8],
    sbom_digest: &str,
    sbom_size: usize,
) -> anyhow::Result<Vec<u8>> {
    let subject = Subject::of_manifest(image_digest, image_manifest)?;
    let image: serde_json::Value = serde_json::from_slice(image_manifest)?;
    let created = image["annotations"]["org.opencontainers.image.created"].as_str();
    artifact_manifest(
        &subject,
        SBOM_ARTIFACT_TYPE,
        sbom_digest,
        sbom_size,
        created,
    )
}

/// Pushes `content` and an artifact manifest of `artifact_type` referring
/// to `subject` into `image`'s repository. Returns the artifact
/// manifest's digest.
pub async fn push_artifact(
    client: &Client,
    image: &ImageRef,
    subject: &Subject,
    artifact_type: &str,
    content: &[u8],
    created: Option<&str>,
) -> anyhow::Result<String> {
    let blob = client.push_blob(image, content).await?;
    client.push_blob(image, b"{}").await?;
    let artifact = artifact_manifest(subject, artifact_type, &blob, content.len(), created)?;
    let digest = corral_registry::sha256_digest(&artifact);
    client
        .push_manifest(image, &digest, OCI_MANIFEST, &artifact)
        .await
        .with_context(|| format!("pushing the {artifact_type} artifact of {}", subject.digest))?;
    Ok(digest)
}

/// The manifest descriptor of `reference` as the mirror serves it.
pub async fn mirror_subject(client: &Client, reference: &str) -> anyhow::Result<Subject> {
    let image = ImageRef::parse(reference)?;
    let m = client
        .manifest(&image, image.reference())
        .await?
        .with_context(|| format!("the mirror has no {reference}"))?;
    Subject::of_manifest(&m.digest, &m.bytes)
}

/// Pushes the SBOM blob the manifest of `layout:tag` names, and an
/// artifact manifest referring to the image; nothing when it names none.
/// For a multi-platform image (the tag names an index) each platform
/// manifest gets its own SBOM artifact, referring to that manifest: a
/// client that pulled one platform asks the referrers API of the digest it
/// has. Returns the artifact manifests' digests, in the index's order.
pub async fn push_sbom(
    client: &Client,
    layout: &Path,
    tag: &str,
    reference: &str,
) -> anyhow::Result<Vec<String>> {
    let (digest, media_type) = corral_oci::read::tagged_descriptor(layout, tag)?;
    let image = ImageRef::parse(reference)?;
    let manifests = if media_type == OCI_INDEX {
        let index: serde_json::Value =
            serde_json::from_slice(&corral_oci::read::read_blob(layout, &digest)?)
                .with_context(|| format!("parsing index {digest}"))?;
        index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["digest"].as_str().map(str::to_string))
            .collect()
    } else {
        vec![digest]
    };
    let mut pushed = Vec::new();
    for digest in manifests {
        if let Some(a) = push_manifest_sbom(client, layout, &image, &digest).await? {
            pushed.push(a);
        }
    }
    Ok(pushed)
}

/// The SBOM artifact of the one image manifest `image_digest` in `layout`.
async fn push_manifest_sbom(
    client: &Client,
    layout: &Path,
    image: &ImageRef,
    image_digest: &str,
) -> anyhow::Result<Option<String>> {
    let manifest = corral_oci::read::read_blob(layout, image_digest)?;
    let v: serde_json::Value = serde_json::from_slice(&manifest)
        .with_context(|| format!("parsing manifest {image_digest}"))?;
    let Some(sbom_digest) = v["annotations"][SBOM_DIGEST_ANNOTATION].as_str() else {
        return Ok(None);
    };
    let sbom = corral_oci::read::read_blob(layout, sbom_digest)?;
    let subject = Subject::of_manifest(image_digest, &manifest)?;
    let created = v["annotations"]["org.opencontainers.image.created"].as_str();
    push_artifact(client, image, &subject, SBOM_ARTIFACT_TYPE, &sbom, created)
        .await
        .map(Some)
}

/// Copies the OCI layout `layout:tag` into the Docker Engine at `engine`
/// as `name`.
pub fn load_into_engine(engine: &str, layout: &Path, tag: &str, name: &str) -> anyhow::Result<()> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--quiet", "--dest-daemon-host", engine])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker-daemon:{name}"));
    run(&mut cmd).with_context(|| format!("loading {} into the engine as {name}", layout.display()))
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("running {:?} (is it installed?)", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Signs an image in the mirror, named by one or more tag `references`
/// of the same manifest, with every configured key: one cosign signature
/// (it names the repository and digest), and a GPG simple signature per
/// tag (clients match it against the tag they pull). Returns what was
/// made: the signed digest, the key and how to verify it.
pub async fn sign(config: &ReleaseConfig, references: &[String]) -> anyhow::Result<Vec<Signature>> {
    let client = Client::new(config.mirror.plain_http, credentials()?);
    let mut made = Vec::new();
    let Some(first) = references.first() else {
        return Ok(made);
    };
    let plain = if config.mirror.plain_http {
        " --plain-http"
    } else {
        ""
    };
    if let Some(key) = &config.sign.cosign_key {
        let image = ImageRef::parse(first)?;
        let reference = first;
        let password = corral_sign::cosign_key::password(false)?;
        let secret = corral_sign::cosign_key::load_private(key, &password)
            .with_context(|| format!("loading the cosign key {}", key.display()))?;
        let key_id = corral_sign::cosign_key::fingerprint(&secret.public_key());
        let signed = corral_sign::cosign::sign(&client, &image, &secret)
            .await
            .with_context(|| format!("signing {reference} (cosign)"))?;
        made.push(Signature {
            kind: "cosign".into(),
            reference: reference.clone(),
            digest: signed.digest.clone(),
            key: format!("SHA256:{key_id}"),
            location: signed.signature_tag.clone(),
            verify: format!(
                "corral verify image {reference}{plain} --key {}",
                key.with_extension("pub").display()
            ),
        });
    }
    if let Some(key) = config.sign.gpg_key.as_deref() {
        let key_id = gpg_fingerprint(config.sign.gpg_homedir.as_deref(), key);
        for reference in references {
            let image = ImageRef::parse(reference)?;
            let lookaside = corral_sign::gpg::default_lookaside(&client, &image);
            let up = corral_sign::gpg::sign(
                &client,
                &image,
                &lookaside,
                config.sign.gpg_homedir.as_deref(),
                key,
            )
            .await
            .with_context(|| format!("signing {reference} (GPG)"))?;
            made.push(Signature {
                kind: "gpg".into(),
                reference: reference.clone(),
                digest: up.digest.clone(),
                key: key_id.clone(),
                location: up.url.clone(),
                verify: format!(
                    "gpg --export {key_id} > release-key.gpg && \
                     corral verify image {reference}{plain} --gpg-keyring release-key.gpg"
                ),
            });
        }
    }
    Ok(made)
}

/// The fingerprint of GPG key `key` (a user ID or key ID), or `key` itself
/// when gpg cannot say: the report names the key either way.
fn gpg_fingerprint(homedir: Option<&Path>, key: &str) -> String {
    let mut cmd = Command::new("gpg");
    if let Some(h) = homedir {
        cmd.arg("--homedir").arg(h);
    }
    cmd.args(["--batch", "--with-colons", "--list-keys", "--", key]);
    let Ok(out) = cmd.output() else {
        return key.to_string();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|rest| rest.split(':').find(|f| !f.is_empty()))
        .map(str::to_string)
        .unwrap_or_else(|| key.to_string())
}

/// The digest `reference` has in the mirror.
pub async fn mirror_digest(config: &ReleaseConfig, reference: &str) -> anyhow::Result<String> {
    let client = Client::new(config.mirror.plain_http, credentials()?);
    let image = ImageRef::parse(reference)?;
    let (digest, _, _) = corral_sign::cosign::resolve(&client, &image).await?;
    Ok(digest)
}

/// Whether the mirror still serves `reference` as `digest`: a record of
/// an earlier push is trusted only then (a mirror's storage can be lost
/// or garbage-collected between runs).
pub async fn in_mirror(config: &ReleaseConfig, reference: &str, digest: &str) -> bool {
    matches!(mirror_digest(config, reference).await, Ok(d) if d == digest)
}
