//! `corral dockerfiles build --all-platforms`: every image built for each
//! architecture its image.toml lists, the results joined into one image
//! index per tag and pushed with skopeo (`copy --all`).
//!
//! The Docker Engine (Debian's 20.10, classic builder) builds for another
//! platform when asked (`POST /build?platform=linux/arm64`): RUN steps run
//! through the host's qemu-user binfmt_misc handler, with no network. Its
//! image store keeps one image per name, and the classic builder takes a
//! local FROM image whatever its platform, so:
//! - images are built one at a time, platform by platform, the engine's
//!   own platform last (the local tags end up native, as without
//!   `--all-platforms`);
//! - before each platform's build, the external bases are pulled for that
//!   platform (from the multi-platform base index, through
//!   `--registry-map`) and the library bases are loaded from the layouts
//!   their own platform builds left;
//! - each platform's result is copied out of the engine into an OCI layout
//!   (skopeo `docker-daemon:`), and the layouts joined into an index.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::schedule::{self, Summary};
use super::{build_one, library_reference, BuildOptions, BuildProgress, DockerEngine};
use crate::graph::Graph;
use crate::library::Architecture;
use crate::library::Library;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The OCI platform (`linux/arm64`) of an image.toml architecture.
///
/// ```
/// use corral_dockerfiles::library::Architecture;
/// assert_eq!(corral_dockerfiles::engine_build::platforms::platform(Architecture::Aarch64), "linux/arm64");
/// ```
pub fn platform(arch: Architecture) -> &'static str {
    match arch {
        Architecture::X86_64 => "linux/amd64",
        Architecture::Aarch64 => "linux/arm64",
        Architecture::Ppc64le => "linux/ppc64le",
        Architecture::S390x => "linux/s390x",
    }
}

/// `platforms` with the engine's own (`linux/<native>`) last.
pub fn native_last(mut platforms: Vec<&'static str>, native: &str) -> Vec<&'static str> {
    platforms.sort_by_key(|p| (p.split('/').nth(1) == Some(native), *p));
    platforms
}

/// `linux/arm64` → `linux-arm64`.
fn slug(platform: &str) -> String {
    platform.replace('/', "-")
}

pub(super) async fn build_all_platforms(
    engine: &DockerEngine,
    lib: &Library,
    graph: &Graph,
    opts: &BuildOptions,
    progress: &BuildProgress,
    order: &[String],
    deps: &BTreeMap<String, BTreeSet<String>>,
) -> anyhow::Result<Summary> {
    let Some(registry) = &opts.push else {
        bail!("--all-platforms joins the platforms into an index in a registry: it needs --push");
    };
    let native = engine.arch().await?;
    let work = tempfile::Builder::new()
        .prefix("corral-platforms-")
        .tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
        .context("creating a directory for the platform layouts")?;
    // (image, platform) → its layout, for the images built FROM it.
    let layouts: Mutex<BTreeMap<(String, String), PathBuf>> = Mutex::default();
    let indexes: Mutex<BTreeMap<String, String>> = Mutex::default();
    tracing::info!(images = order.len(), "building for every listed platform");
    // One at a time: the engine's store holds one platform per name.
    let mut summary = schedule::run_in_order(order, deps, 1, |name| {
        let (layouts, indexes, work) = (&layouts, &indexes, work.path());
        let native = native.as_str();
        async move {
            let result = async {
                let img = &lib.images[&name];
                let wanted = img.spec.image.architectures.iter().map(|a| platform(*a));
                let wanted = native_last(wanted.collect(), native);
                for p in wanted {
                    for e in &graph.nodes[&name].external {
                        let from = opts.registry_map.apply(e);
                        progress.line(&name, &format!("pulling {from} for {p}"));
                        engine.pull(&from, p).await?;
                    }
                    for b in &graph.nodes[&name].bases {
                        let layout = layouts
                            .lock()
                            .expect("not poisoned")
                            .get(&(b.clone(), p.to_string()))
                            .cloned()
                            .with_context(|| {
                                format!("library base {b} was not built for {p}: its image.toml does not list it")
                            })?;
                        load(engine.url(), &layout, &library_reference(lib, b))?;
                    }
                    build_one(engine, lib, graph, opts, progress, &name, Some(p)).await?;
                    let layout = work.join(&name).join(slug(p));
                    save(engine.url(), &library_reference(lib, &name), &layout)?;
                    layouts
                        .lock()
                        .expect("not poisoned")
                        .insert((name.clone(), p.to_string()), layout);
                }
                // The index lists the platforms in image.toml's order.
                let built: Vec<PathBuf> = img
                    .spec
                    .image
                    .architectures
                    .iter()
                    .map(|a| work.join(&name).join(slug(platform(*a))))
                    .collect();
                let joined = work.join(&name).join("index");
                let digest = join_index(&built, &joined, &img.spec.image.tags)?;
                let target = format!("{}/{name}", registry.trim_end_matches('/'));
                for tag in &img.spec.image.tags {
                    progress.line(&name, &format!("pushing {target}:{tag} ({digest})"));
                    push_index(&joined, tag, &format!("{target}:{tag}"), opts)?;
                }
                indexes.lock().expect("not poisoned").insert(name.clone(), digest);
                anyhow::Ok(())
            }
            .await;
            match &result {
                Ok(()) => progress.finish(&name, "built for every platform"),
                Err(e) => progress.finish(&name, &format!("failed: {e:#}")),
            }
            result
        }
    })
    .await;
    summary.indexes = indexes.into_inner().expect("not poisoned");
    Ok(summary)
}

fn skopeo(args: &[&str], what: &str) -> anyhow::Result<()> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .with_context(|| format!("{what}: running skopeo (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "{what}: skopeo failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Copies `reference` out of the engine into a new OCI layout.
fn save(engine: &str, reference: &str, layout: &Path) -> anyhow::Result<()> {
    if let Some(parent) = layout.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    skopeo(
        &[
            "copy",
            "--quiet",
            "--src-daemon-host",
            engine,
            &format!("docker-daemon:{reference}"),
            &format!("oci:{}:image", layout.display()),
        ],
        &format!("copying {reference} out of the engine"),
    )
}

/// Loads the image of `layout` into the engine as `reference`.
fn load(engine: &str, layout: &Path, reference: &str) -> anyhow::Result<()> {
    skopeo(
        &[
            "copy",
            "--quiet",
            "--dest-daemon-host",
            engine,
            &format!("oci:{}:image", layout.display()),
            &format!("docker-daemon:{reference}"),
        ],
        &format!("loading {reference} into the engine"),
    )
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

fn blob_path(layout: &Path, digest: &str) -> anyhow::Result<PathBuf> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("not a sha256 digest: {digest}"))?;
    Ok(layout.join("blobs/sha256").join(hex))
}

/// Joins one-image layouts (tag `image`) into a new layout at `dest`
/// whose `tags` all name one index of their manifests, each with the
/// platform its config says. Returns the index digest.
pub fn join_index(layouts: &[PathBuf], dest: &Path, tags: &[String]) -> anyhow::Result<String> {
    std::fs::create_dir_all(dest.join("blobs/sha256"))
        .with_context(|| format!("creating {}", dest.display()))?;
    let mut manifests = Vec::new();
    for layout in layouts {
        let index = read_json(&layout.join("index.json"))?;
        let entry = index["manifests"]
            .as_array()
            .and_then(|m| m.first())
            .with_context(|| format!("{} holds no image", layout.display()))?;
        let digest = entry["digest"]
            .as_str()
            .context("a manifest without digest")?;
        let manifest = read_json(&blob_path(layout, digest)?)?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .context("a manifest without config")?;
        let config = read_json(&blob_path(layout, config_digest)?)?;
        let mut platform = json!({"os": config["os"], "architecture": config["architecture"]});
        if let Some(v) = config["variant"].as_str() {
            platform["variant"] = v.into();
        }
        for blob in std::fs::read_dir(layout.join("blobs/sha256"))
            .with_context(|| format!("reading the blobs of {}", layout.display()))?
        {
            let blob = blob?;
            let to = dest.join("blobs/sha256").join(blob.file_name());
            if !to.exists() {
                std::fs::copy(blob.path(), &to)
                    .with_context(|| format!("copying {}", blob.path().display()))?;
            }
        }
        manifests.push(json!({
            "mediaType": entry["mediaType"],
            "digest": digest,
            "size": entry["size"],
            "platform": platform,
        }));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    }))?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&index)));
    std::fs::write(blob_path(dest, &digest)?, &index).context("writing the index")?;
    let tagged: Vec<Value> = tags
        .iter()
        .map(|t| {
            json!({"mediaType": OCI_INDEX, "digest": digest, "size": index.len(),
                   "annotations": {REF_NAME: t}})
        })
        .collect();
    std::fs::write(
        dest.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": tagged}))?,
    )
    .context("writing index.json")?;
    std::fs::write(dest.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .context("writing oci-layout")?;
    Ok(digest)
}

/// Whether `reference`'s registry is on the loopback, where the engine
/// (and so corral) talks plain HTTP.
fn loopback(reference: &str) -> bool {
    let host = reference.split('/').next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// Pushes `layout:tag` (an index) whole to `reference`.
fn push_index(
    layout: &Path,
    tag: &str,
    reference: &str,
    opts: &BuildOptions,
) -> anyhow::Result<()> {
    let mut args = vec![
        "copy".to_string(),
        "--quiet".into(),
        "--all".into(),
        "--preserve-digests".into(),
    ];
    if loopback(reference) {
        args.push("--dest-tls-verify=false".into());
    }
    if let Some(c) = &opts.credentials {
        args.push(format!("--dest-creds={}:{}", c.username, c.password));
    }
    args.push(format!("oci:{}:{tag}", layout.display()));
    args.push(format!("docker://{reference}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    skopeo(&args, &format!("pushing {reference}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_native_platform_is_built_last() {
        assert_eq!(
            native_last(vec!["linux/amd64", "linux/arm64"], "amd64"),
            ["linux/arm64", "linux/amd64"]
        );
        assert_eq!(
            native_last(vec!["linux/amd64", "linux/arm64"], "arm64"),
            ["linux/amd64", "linux/arm64"]
        );
    }

    #[test]
    fn loopback_registries_are_plain_http() {
        assert!(loopback("127.0.0.1:5000/a/b:1"));
        assert!(loopback("localhost/a:1"));
        assert!(!loopback("quay.io/corral/base:43"));
    }

    /// Two one-image layouts become one index naming each manifest with
    /// its config's platform, under every tag.
    #[test]
    fn layouts_are_joined_into_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut layouts = Vec::new();
        for arch in ["amd64", "arm64"] {
            let l = dir.path().join(arch);
            std::fs::create_dir_all(l.join("blobs/sha256")).unwrap();
            let put = |data: &[u8]| {
                let d = format!("sha256:{}", hex::encode(Sha256::digest(data)));
                std::fs::write(blob_path(&l, &d).unwrap(), data).unwrap();
                d
            };
            let config = json!({"os": "linux", "architecture": arch}).to_string();
            let cd = put(config.as_bytes());
            let manifest = json!({"schemaVersion": 2, "config": {"digest": cd}}).to_string();
            let md = put(manifest.as_bytes());
            std::fs::write(
                l.join("index.json"),
                json!({"manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": md, "size": manifest.len()}]})
                .to_string(),
            )
            .unwrap();
            layouts.push(l);
        }
        let dest = dir.path().join("joined");
        let tags = vec!["43".to_string(), "latest".to_string()];
        let digest = join_index(&layouts, &dest, &tags).unwrap();
        let index = read_json(&blob_path(&dest, &digest).unwrap()).unwrap();
        let arches: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(arches, ["amd64", "arm64"]);
        for m in index["manifests"].as_array().unwrap() {
            assert!(blob_path(&dest, m["digest"].as_str().unwrap())
                .unwrap()
                .is_file());
        }
        let top = read_json(&dest.join("index.json")).unwrap();
        assert_eq!(top["manifests"][1]["annotations"][REF_NAME], "latest");
        assert_eq!(top["manifests"][0]["digest"], digest.as_str());
    }
}
