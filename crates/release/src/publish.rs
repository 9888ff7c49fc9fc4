//! Putting images into the mirror and signing them there: skopeo for OCI
//! layouts, corral-sign's cosign and GPG simple signing.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use corral_sign::registry::{Client, ImageRef};

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

/// Copies the OCI layout `layout:tag` to `reference` with skopeo.
pub fn push_layout(
    config: &ReleaseConfig,
    layout: &Path,
    tag: &str,
    reference: &str,
) -> anyhow::Result<()> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--quiet", "--preserve-digests"]);
    if config.mirror.plain_http {
        cmd.arg("--dest-tls-verify=false");
    }
    if let Some((u, p)) = credentials()? {
        cmd.arg(format!("--dest-creds={u}:{p}"));
    }
    cmd.arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{reference}"));
    run(&mut cmd).with_context(|| format!("pushing {} to {reference}", layout.display()))
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
