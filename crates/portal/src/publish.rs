//! Publishing an approved revision (docs/portal.md, "Publishing"): the
//! image its build check made is pushed from the engine to the mirror as
//! `community/NAME:REVISION` and `community/NAME:latest` (a tree recipe's
//! tree, built again as its build check built it, is packed by
//! corral-image and pushed from its OCI layout through the registry API),
//! then signed in cosign's format with the community key, which is not the
//! official one.
//! The mirror is the record of what was published: a revision whose tag
//! and signature are there is not pushed again.

use std::path::{Path, PathBuf};

use anyhow::Context;
use corral_dockerfiles::engine_build::{Credentials as EngineCredentials, DockerEngine};
use corral_registry::{Client, ImageRef};
use corral_sign::policy::{policy_json, registries_d, Trust};

use crate::config::PublishConfig;

/// The repository community templates are pushed to, under the registry.
pub const NAMESPACE: &str = "community";

/// A template's repository on the mirror, `community/NAME`.
pub fn repository_of(template: &str) -> String {
    format!("{NAMESPACE}/{template}")
}

/// Pushes and signs published revisions.
pub struct Publisher {
    config: PublishConfig,
    key: p256::SecretKey,
    engine: DockerEngine,
    client: Client,
}

impl Publisher {
    /// Loads the community key and connects to the engine the checks use.
    pub async fn new(config: PublishConfig, engine: &str) -> anyhow::Result<Publisher> {
        let password = match &config.key_password_file {
            Some(p) => std::fs::read_to_string(p)
                .with_context(|| format!("reading {}", p.display()))?
                .trim_end_matches('\n')
                .to_string(),
            None => String::new(),
        };
        let key = corral_sign::cosign_key::load_private(&config.key, password.as_bytes())
            .with_context(|| format!("loading the community key {}", config.key.display()))?;
        let creds = config.credentials()?;
        let client = Client::new(config.plain_http.unwrap_or(false), creds);
        Ok(Publisher {
            engine: DockerEngine::connect(engine).await?,
            key,
            client,
            config,
        })
    }

    fn repository(&self, template: &str) -> String {
        let registry = self.config.registry.as_deref().unwrap_or("127.0.0.1:5000");
        format!("{registry}/{}", repository_of(template))
    }

    /// Whether `community/NAME:REVISION` is on the mirror with a signature.
    pub async fn is_published(&self, template: &str, revision: u32) -> anyhow::Result<bool> {
        let image = ImageRef::parse(&format!("{}:{revision}", self.repository(template)))?;
        let Some(m) = self.client.manifest(&image, &revision.to_string()).await? else {
            return Ok(false);
        };
        let sig = corral_sign::cosign::signature_tag(&m.digest);
        Ok(self.client.manifest(&image, &sig).await?.is_some())
    }

    /// Pushes the engine's `local` image as revision `revision` of
    /// `template` (and `latest`) and signs it; returns its digest.
    pub async fn publish(
        &self,
        template: &str,
        revision: u32,
        local: &str,
    ) -> anyhow::Result<String> {
        let repo = self.repository(template);
        let creds = self
            .config
            .credentials()?
            .map(|(username, password)| EngineCredentials { username, password });
        for tag in [revision.to_string(), "latest".to_string()] {
            self.engine.tag(local, &repo, &tag).await?;
            self.engine
                .push(&repo, &tag, creds.as_ref(), |l| {
                    tracing::debug!(template, line = l, "push")
                })
                .await?;
        }
        self.sign(template, revision).await
    }

    /// Pushes the image `layout:tag` (an OCI layout, one platform) as
    /// revision `revision` of `template` (and `latest`) and signs it;
    /// returns its digest.
    pub async fn publish_layout(
        &self,
        template: &str,
        revision: u32,
        layout: &Path,
        tag: &str,
    ) -> anyhow::Result<String> {
        let repo = self.repository(template);
        let image = ImageRef::parse(&format!("{repo}:{revision}"))?;
        let (digest, media_type) = corral_oci::read::tagged_descriptor(layout, tag)?;
        let manifest = corral_oci::read::read_blob(layout, &digest)?;
        let parsed: serde_json::Value = serde_json::from_slice(&manifest)
            .with_context(|| format!("parsing the manifest of {}:{tag}", layout.display()))?;
        let blobs = std::iter::once(&parsed["config"])
            .chain(parsed["layers"].as_array().into_iter().flatten())
            .map(|d| d["digest"].as_str().unwrap_or_default().to_string());
        for digest in blobs {
            let data = corral_oci::read::read_blob(layout, &digest)?;
            self.client
                .push_blob(&image, &data)
                .await
                .with_context(|| format!("pushing {digest} to {repo}"))?;
        }
        for tag in [revision.to_string(), "latest".to_string()] {
            self.client
                .push_manifest(&image, &tag, &media_type, &manifest)
                .await
                .with_context(|| format!("pushing {repo}:{tag}"))?;
        }
        self.sign(template, revision).await
    }

    async fn sign(&self, template: &str, revision: u32) -> anyhow::Result<String> {
        let image = ImageRef::parse(&format!("{}:{revision}", self.repository(template)))?;
        let signed = corral_sign::cosign::sign(&self.client, &image, &self.key)
            .await
            .with_context(|| format!("signing {image} with the community key"))?;
        tracing::info!(template, revision, digest = %signed.digest, "published");
        Ok(signed.digest)
    }
}

/// What a user configures to pull community templates: the key's URL,
/// the `policy.json` that demands the community key for
/// `HOST/community`, and the `registries.d` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySnippet {
    pub key_url: String,
    pub key_path: PathBuf,
    pub policy_json: String,
    pub registries_d: String,
}

/// The snippet for a mirror at `host` whose community public key is
/// served at `/keys/KEY_NAME`.
pub fn policy_snippet(host: &str, scheme: &str, key_name: &str) -> PolicySnippet {
    let key_path = PathBuf::from("/etc/containers/keys").join(key_name);
    let scope = format!("{host}/{NAMESPACE}");
    let trust = Trust::Cosign(key_path.clone());
    PolicySnippet {
        key_url: format!("{scheme}://{host}/keys/{key_name}"),
        policy_json: serde_json::to_string_pretty(&policy_json(&scope, &trust)).unwrap_or_default(),
        registries_d: registries_d(host, &format!("{scheme}://{host}"), &trust),
        key_path,
    }
}
