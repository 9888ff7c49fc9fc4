//! The website (corral-site) over this mirror: [`MirrorSource`] answers the
//! site's questions from registry storage, the trust module, the OSTree
//! directory's published stream files and the disk images directory; the
//! handler serves the pages with their Content-Security-Policy under the
//! pull rule of the catalog.
//!
//! Streams come from `streams/*.json` in the OSTree directory, local or
//! in a bucket (docs/site.md).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use corral_site::{Artifact, DiskImage, Image, Listing, Signature, Stream, TrustedKeys};
use tokio::io::AsyncReadExt;

use crate::app::App;
use crate::bucket_files::{BucketDir, FileSource};
use crate::disk_images::SignatureState;
use crate::manifest::is_index;
use crate::name::{Digest, RepoName};
use crate::trust::TagSignatures;

/// Configs and stream files larger than this are not read.
const MAX_JSON: u64 = 1 << 20;

/// The site's [`corral_site::Source`] over one request's view of the
/// mirror (the host clients pull from).
pub struct MirrorSource {
    pub app: Arc<App>,
    pub host: String,
}

async fn read_blob(app: &App, d: &Digest, limit: u64) -> Option<Vec<u8>> {
    if app.store.blob_size(d).await.ok()?? > limit {
        return None;
    }
    let (_, mut r) = app.store.open_blob(d, 0).await.ok()??;
    let mut buf = Vec::new();
    r.read_to_end(&mut buf).await.ok()?;
    Some(buf)
}

fn str_at<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str()
}

fn platform(p: &serde_json::Value) -> Option<String> {
    let os = p.get("os")?.as_str()?;
    let arch = p.get("architecture")?.as_str()?;
    Some(match p.get("variant").and_then(|v| v.as_str()) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    })
}

fn signature(s: TagSignatures) -> Signature {
    match s {
        TagSignatures::Verified {
            format,
            key,
            formats,
            ..
        } => Signature::Verified {
            format: format.to_string(),
            key,
            formats: formats.into_iter().map(String::from).collect(),
        },
        TagSignatures::NotVerified { reason, detail, .. } => Signature::NotVerified {
            reason: reason.as_str().to_string(),
            detail,
        },
        TagSignatures::Unsigned => Signature::Unsigned,
    }
}

fn disk_signature(s: &SignatureState) -> Signature {
    match s {
        SignatureState::Verified { key, .. } => Signature::Verified {
            format: "gpg".into(),
            key: key.clone(),
            formats: vec!["gpg".into()],
        },
        SignatureState::NotChecked { .. } => Signature::NotVerified {
            reason: "no trusted keys".into(),
            detail: "the mirror has no trusted gpg keyring".into(),
        },
        SignatureState::UnknownKey { key, .. } => Signature::NotVerified {
            reason: "unknown key".into(),
            detail: format!("signed by {key}"),
        },
        SignatureState::Bad { detail, .. } => Signature::NotVerified {
            reason: "bad signature".into(),
            detail: detail.clone(),
        },
        SignatureState::Unsigned => Signature::Unsigned,
    }
}

fn file_names(paths: &[std::path::PathBuf]) -> Vec<String> {
    paths
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect()
}

/// An index's platforms read for sizes and labels; the rest count by
/// their manifest's size alone.
const MAX_PLATFORMS: usize = 16;

/// What one image manifest says: its size with config and layers, the
/// layers unpacked (when known) and, if asked, its config.
struct ImageFacts {
    compressed: u64,
    unpacked: Option<u64>,
    config: Option<serde_json::Value>,
}

async fn image_manifest_facts(
    app: &App,
    v: &serde_json::Value,
    manifest_size: u64,
    want_config: bool,
) -> ImageFacts {
    let mut compressed = manifest_size
        + v.pointer("/config/size")
            .and_then(|s| s.as_u64())
            .unwrap_or(0);
    let mut unpacked = Some(0u64);
    for l in v
        .get("layers")
        .and_then(|l| l.as_array())
        .into_iter()
        .flatten()
    {
        let size = l.get("size").and_then(|s| s.as_u64()).unwrap_or(0);
        compressed += size;
        unpacked = unpacked.zip(unpacked_size(l, size)).map(|(a, b)| a + b);
    }
    let mut config = None;
    if want_config {
        let cfg = v
            .pointer("/config/digest")
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse::<Digest>().ok());
        if let Some(cfg) = cfg {
            config = read_blob(app, &cfg, MAX_JSON)
                .await
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        }
    }
    ImageFacts {
        compressed,
        unpacked,
        config,
    }
}

/// [`image_manifest_facts`] of `repo@digest`, an index's child.
async fn image_facts(
    app: &App,
    repo: &RepoName,
    digest: &Digest,
    want_config: bool,
) -> Option<ImageFacts> {
    let m = app.store.get_manifest(repo, digest).await.ok()??;
    let v = serde_json::from_slice::<serde_json::Value>(&m.body).ok()?;
    Some(image_manifest_facts(app, &v, m.body.len() as u64, want_config).await)
}

/// A layer's unpacked size: its size when it is an uncompressed tar, else
/// the size corral recorded at build time
/// ([`corral_oci::ANNOTATION_UNPACKED_SIZE`]). Otherwise unknown: a gzip
/// trailer holds only the last member's size (corral writes many), and
/// reading the layers is more than a page should cost.
fn unpacked_size(layer: &serde_json::Value, size: u64) -> Option<u64> {
    let media = layer
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    if media.ends_with(".tar") {
        return Some(size);
    }
    str_at(
        layer,
        &["annotations", corral_oci::ANNOTATION_UNPACKED_SIZE],
    )?
    .parse()
    .ok()
}

/// A stream file's content; `None` (logged) when it does not parse.
fn parse_stream(path: &str, bytes: &[u8]) -> Option<Stream> {
    match serde_json::from_slice::<Stream>(bytes) {
        Ok(s) => Some(s),
        Err(err) => {
            tracing::warn!(path, error = %err, "unreadable stream file");
            None
        }
    }
}

/// The stream files `streams/*.json` under an OSTree directory.
pub fn read_streams(root: &Path) -> Vec<Stream> {
    let Ok(dir) = std::fs::read_dir(root.join("streams")) else {
        return Vec::new();
    };
    let mut out: Vec<Stream> = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter(|e| {
            e.metadata()
                .is_ok_and(|m| m.is_file() && m.len() <= MAX_JSON)
        })
        .filter_map(|e| {
            let bytes = std::fs::read(e.path()).ok()?;
            parse_stream(&e.path().display().to_string(), &bytes)
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The stream files `streams/*.json` of an OSTree directory in a bucket
/// (`[s3] ostree_prefix`): one listing of `streams/`, then each file. A
/// bucket that does not answer shows no streams (and is logged), like a
/// file that does not parse.
pub async fn read_bucket_streams(bucket: &BucketDir) -> Vec<Stream> {
    let listed = match bucket.list_dir("streams").await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "listing the stream files in the bucket");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (rel, meta) in listed {
        if !rel.ends_with(".json") || meta.size > MAX_JSON {
            continue;
        }
        match bucket.read(&rel).await {
            Ok(Some(bytes)) => out.extend(parse_stream(&rel, &bytes)),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(path = %rel, error = %e, "reading a stream file in the bucket")
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[async_trait]
impl corral_site::Source for MirrorSource {
    async fn repositories(&self, after: Option<&str>, n: usize) -> anyhow::Result<Listing> {
        let p = self.app.store.repos_page(after, Some(n)).await?;
        Ok(Listing {
            items: p.items.iter().map(|r| r.to_string()).collect(),
            more: p.more,
        })
    }

    async fn tags(&self, repo: &str, after: Option<&str>, n: usize) -> anyhow::Result<Listing> {
        let Some(repo) = RepoName::parse(repo) else {
            return Ok(Listing::default());
        };
        let p = self.app.store.tags_page(&repo, after, Some(n)).await?;
        Ok(Listing {
            items: p.items,
            more: p.more,
        })
    }

    async fn image(&self, repo_name: &str, tag: &str) -> anyhow::Result<Option<Image>> {
        let app = &self.app;
        let Some(repo) = RepoName::parse(repo_name) else {
            return Ok(None);
        };
        let Some((d, _)) = app.store.get_tag(&repo, tag).await? else {
            return Ok(None);
        };
        let Some(m) = app.store.get_manifest(&repo, &d).await? else {
            return Ok(None);
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.body) else {
            return Ok(None);
        };
        let mut created =
            str_at(&v, &["annotations", "org.opencontainers.image.created"]).map(str::to_string);
        let mut platforms = Vec::new();
        let mut labels = BTreeMap::new();
        let (compressed, uncompressed, config) = if is_index(&m.media_type) {
            // Sizes of every platform together (what the tag holds); labels
            // and dates from the first platform's image.
            let mut compressed = m.body.len() as u64;
            let mut unpacked = Some(0u64);
            let mut config = None;
            let children = v.get("manifests").and_then(|m| m.as_array());
            for (i, e) in children.into_iter().flatten().enumerate() {
                let p = e.get("platform").and_then(platform);
                // attestation manifests (buildx) say unknown/unknown
                if p.as_deref().is_some_and(|p| p.starts_with("unknown")) {
                    continue;
                }
                platforms.extend(p);
                let child = e
                    .get("digest")
                    .and_then(|d| d.as_str())
                    .and_then(|d| d.parse::<Digest>().ok());
                let facts = match child {
                    Some(c) if i < MAX_PLATFORMS => {
                        image_facts(app, &repo, &c, config.is_none()).await
                    }
                    _ => None,
                };
                match facts {
                    Some(f) => {
                        compressed += f.compressed;
                        unpacked = unpacked.zip(f.unpacked).map(|(a, b)| a + b);
                        config = config.or(f.config);
                    }
                    None => {
                        compressed += e.get("size").and_then(|s| s.as_u64()).unwrap_or(0);
                        unpacked = None;
                    }
                }
            }
            (compressed, unpacked, config)
        } else {
            let f = image_manifest_facts(app, &v, m.body.len() as u64, true).await;
            if let Some(c) = &f.config {
                platforms.extend(platform(c));
            }
            (f.compressed, f.unpacked, f.config)
        };
        if let Some(c) = config {
            if created.is_none() {
                created = c
                    .get("created")
                    .and_then(|c| c.as_str())
                    .map(str::to_string);
            }
            if let Some(l) = c.pointer("/config/Labels").and_then(|l| l.as_object()) {
                for (k, v) in l {
                    if let Some(v) = v.as_str() {
                        labels.insert(k.clone(), v.to_string());
                    }
                }
            }
        }
        let uncompressed = uncompressed.filter(|u| *u > 0);
        let sig = crate::trust::tag_signatures(app, &self.host, &repo, tag, &d).await;
        Ok(Some(Image {
            repository: repo_name.to_string(),
            tag: tag.to_string(),
            digest: d.to_string(),
            compressed_size: compressed,
            uncompressed_size: uncompressed,
            created,
            platforms,
            labels,
            signature: signature(sig),
        }))
    }

    async fn artifact(
        &self,
        repo: &str,
        digest: &str,
        artifact_type: &str,
        limit: u64,
    ) -> anyhow::Result<Option<Artifact>> {
        let (Some(repo), Ok(subject)) = (RepoName::parse(repo), digest.parse::<Digest>()) else {
            return Ok(None);
        };
        let app = &self.app;
        let list = app.store.list_referrers(&repo, &subject).await?;
        // The newest by its created annotation (RFC 3339 sorts as text).
        let Some(desc) = list
            .iter()
            .filter(|d| d.get("artifactType").and_then(|a| a.as_str()) == Some(artifact_type))
            .max_by_key(|d| {
                str_at(d, &["annotations", "org.opencontainers.image.created"]).unwrap_or("")
            })
        else {
            return Ok(None);
        };
        let Some(manifest) = desc
            .get("digest")
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            return Ok(None);
        };
        let Some(m) = app.store.get_manifest(&repo, &manifest).await? else {
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_slice(&m.body)?;
        let Some(blob) = v
            .pointer("/layers/0/digest")
            .or_else(|| v.pointer("/blobs/0/digest"))
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse::<Digest>().ok())
        else {
            return Ok(None);
        };
        Ok(read_blob(app, &blob, limit).await.map(|content| Artifact {
            manifest: manifest.to_string(),
            blob: blob.to_string(),
            content,
        }))
    }

    async fn streams(&self) -> anyhow::Result<Vec<Stream>> {
        match &self.app.files.ostree {
            Some(FileSource::Dir(root)) => {
                let root = root.clone();
                Ok(tokio::task::spawn_blocking(move || read_streams(&root)).await?)
            }
            Some(FileSource::Bucket(bucket)) => Ok(read_bucket_streams(bucket).await),
            None => Ok(Vec::new()),
        }
    }

    async fn disk_images(&self) -> anyhow::Result<Vec<DiskImage>> {
        Ok(crate::disk_images::collect(&self.app)
            .await?
            .into_iter()
            .map(|i| {
                let signature_url = match &i.signature {
                    SignatureState::Verified { file, .. }
                    | SignatureState::NotChecked { file }
                    | SignatureState::UnknownKey { file, .. }
                    | SignatureState::Bad { file, .. } => {
                        let ext = if file.ends_with(".sig") {
                            ".sig"
                        } else {
                            ".asc"
                        };
                        Some(format!("{}{ext}", i.url))
                    }
                    SignatureState::Unsigned => None,
                };
                DiskImage {
                    signature: disk_signature(&i.signature),
                    name: i.name,
                    url: i.url,
                    size: i.size,
                    modified: i.modified,
                    sha256: i.sha256,
                    checksum_matches: i.checksum_matches,
                    signature_url,
                }
            })
            .collect())
    }

    fn trusted_keys(&self) -> TrustedKeys {
        TrustedKeys {
            cosign_keys: file_names(&self.app.config.trust.cosign_keys),
            gpg_keyrings: file_names(&self.app.config.trust.gpg_keyrings),
        }
    }
}

/// `GET /`, `/repositories/…`, `/atomic-host[/…]`, `/downloads`, `/site/…`.
pub(crate) async fn page(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = crate::catalog_page::refuse(&app, &headers) {
        return r;
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| app.config.listen.to_string());
    let source = MirrorSource {
        app: app.clone(),
        host: host.clone(),
    };
    let ctx = corral_site::Context {
        source: &source,
        base_url: app.base_url(&headers),
        host,
        now: time::OffsetDateTime::now_utc(),
        listings: &app.listings,
    };
    let path = corral_site::decode_path(uri.path());
    match corral_site::respond(&ctx, &path, query.as_deref().unwrap_or("")).await {
        Ok(Some(page)) => {
            let mut r = (
                StatusCode::from_u16(page.status).unwrap_or(StatusCode::OK),
                [("content-type", page.content_type)],
                page.body,
            )
                .into_response();
            let h = r.headers_mut();
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
            if page.html {
                h.insert(
                    "content-security-policy",
                    HeaderValue::from_static(corral_site::CONTENT_SECURITY_POLICY),
                );
            }
            r
        }
        Ok(None) => (StatusCode::NOT_FOUND, "Not Found").into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), path, "rendering a site page");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

/// A trusted key file by its file name: `(path, content type)`. Cosign
/// keys are PEM public keys; GPG keyrings are served as they are
/// (armored or binary). Of two keys with one file name, the cosign key,
/// then the first listed, wins.
pub fn trusted_key_file(app: &App, name: &str) -> Option<(std::path::PathBuf, &'static str)> {
    let named = |p: &&std::path::PathBuf| p.file_name().is_some_and(|n| n == name);
    let trust = &app.config.trust;
    if let Some(p) = trust.cosign_keys.iter().find(named) {
        return Some((p.clone(), "application/x-pem-file"));
    }
    trust
        .gpg_keyrings
        .iter()
        .find(named)
        .map(|p| (p.clone(), "application/pgp-keys"))
}

/// `GET /keys/NAME`: a key the mirror trusts, so that the verify commands
/// the pages show can download it. Under the pull rule, like the pages.
pub(crate) async fn key(
    State(app): State<Arc<App>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = crate::catalog_page::refuse(&app, &headers) {
        return r;
    }
    let Some((path, content_type)) = trusted_key_file(&app, &name) else {
        return (StatusCode::NOT_FOUND, "no such key\n").into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [
                ("content-type", content_type),
                ("x-content-type-options", "nosniff"),
                ("cache-control", "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "reading a trusted key");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::path::Path as Key;
    use object_store::{ObjectStore, PutPayload};

    async fn put(store: &InMemory, key: &str, data: &'static [u8]) {
        store
            .put(&Key::from(key), PutPayload::from_static(data))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn streams_are_read_from_a_bucket_backed_ostree_directory() {
        let store = Arc::new(InMemory::new());
        put(
            &store,
            "ostree/streams/b-43.json",
            br#"{"name":"b-43","ref":"corral/43/x86_64/b","versions":[{"version":"43.20260102.0","commit":"aa","date":"2026-01-02T00:00:00Z"}]}"#,
        )
        .await;
        put(
            &store,
            "ostree/streams/a-42.json",
            br#"{"name":"a-42","ref":"corral/42/x86_64/a"}"#,
        )
        .await;
        put(&store, "ostree/streams/broken.json", b"{").await;
        put(&store, "ostree/streams/notes.txt", b"not a stream").await;
        // deeper and elsewhere: not stream files
        put(
            &store,
            "ostree/streams/old/c.json",
            br#"{"name":"c","ref":"c"}"#,
        )
        .await;
        put(
            &store,
            "ostree/objects/ab/cd.json",
            br#"{"name":"d","ref":"d"}"#,
        )
        .await;
        let scratch = tempfile::tempdir().unwrap();
        let bucket = BucketDir::new(store, "ostree", scratch.path());
        let streams = read_bucket_streams(&bucket).await;
        let names: Vec<&str> = streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a-42", "b-43"]);
        assert_eq!(streams[1].versions[0].commit, "aa");
        // an empty bucket: no streams, no error
        let empty = BucketDir::new(Arc::new(InMemory::new()), "ostree", scratch.path());
        assert!(read_bucket_streams(&empty).await.is_empty());
    }
}
