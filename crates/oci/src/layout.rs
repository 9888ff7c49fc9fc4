//! OCI image layouts: a temporary directory next to the destination, filled
//! with blobs, `index.json` and `oci-layout`, then renamed into place so a
//! layout that looks valid is always complete.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, HistoryBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType,
    OciLayoutBuilder, Os, PlatformBuilder, RootFsBuilder, ANNOTATION_CREATED, ANNOTATION_REF_NAME,
};

use crate::canonical_json::to_canonical_json;
use crate::hashing_writer::sha256_digest;
use crate::{pack_layer, OciError, PackOptions, PackedLayer};

/// The annotation on a layer descriptor that gives the layer's unpacked
/// (tar) size in bytes. A gzip trailer holds only its last member's size,
/// and corral's parallel gzip writes many members, so without it a reader
/// would have to decompress the layer to know.
pub const ANNOTATION_UNPACKED_SIZE: &str = "dev.corral.layer.unpacked-size";

/// The image configuration a caller controls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfigSpec {
    /// GOARCH spelling, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// e.g. `linux`.
    pub os: String,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Unix seconds: the config's `created`, the history entry and the
    /// `org.opencontainers.image.created` annotation.
    pub created: i64,
    /// Added to the manifest and to its descriptor in `index.json`.
    pub annotations: BTreeMap<String, String>,
    pub history_comment: Option<String>,
}

/// An extra blob (e.g. an SPDX SBOM) stored in the layout and referenced from
/// the manifest by the annotations `<prefix>.digest` and `<prefix>.mediatype`,
/// so it is covered by the manifest digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraBlob {
    /// e.g. `application/spdx+json`.
    pub media_type: String,
    pub data: Vec<u8>,
    /// e.g. `dev.corral.sbom`.
    pub annotation_prefix: String,
}

/// What [`build_image_layout`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub layout: PathBuf,
    pub tag: String,
    /// `"sha256:<hex>"` of the manifest: the image's identity.
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer: PackedLayer,
    /// `(digest, media type)` of each [`ExtraBlob`], in the order given.
    pub extra: Vec<(String, String)>,
}

/// A layout being written in a temporary directory beside its destination.
/// Dropping it without [`OciLayoutWriter::commit`] removes everything.
#[derive(Debug)]
pub struct OciLayoutWriter {
    temp: tempfile::TempDir,
    dest: PathBuf,
}

impl OciLayoutWriter {
    /// Fails with [`OciError::DestinationExists`] if `dest` exists.
    pub fn create(dest: &Path) -> Result<Self, OciError> {
        if dest.symlink_metadata().is_ok() {
            return Err(OciError::DestinationExists {
                path: dest.to_owned(),
            });
        }
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let write_err = |source| OciError::Write {
            path: parent.clone(),
            source,
        };
        fs::create_dir_all(&parent).map_err(write_err)?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "layout".into());
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}.tmp-"))
            .tempdir_in(&parent)
            .map_err(write_err)?;
        let writer = OciLayoutWriter {
            temp,
            dest: dest.to_owned(),
        };
        let blob_dir = writer.blob_dir();
        fs::create_dir_all(&blob_dir).map_err(|source| OciError::Write {
            path: blob_dir.clone(),
            source,
        })?;
        Ok(writer)
    }

    /// `blobs/sha256` inside the temporary layout.
    pub fn blob_dir(&self) -> PathBuf {
        self.temp.path().join("blobs").join("sha256")
    }

    /// Stores `data` as a blob and returns its `"sha256:<hex>"` digest.
    pub fn write_blob(&self, data: &[u8]) -> Result<String, OciError> {
        let digest = sha256_digest(data);
        let path = self.blob_dir().join(digest.trim_start_matches("sha256:"));
        write_file_atomically(&path, data)?;
        Ok(digest)
    }

    /// Serializes `value` as canonical JSON, stores it and returns its descriptor.
    pub fn write_json_blob<T: serde::Serialize>(
        &self,
        value: &T,
        media_type: MediaType,
        what: &'static str,
    ) -> Result<Descriptor, OciError> {
        let json = to_canonical_json(value).map_err(|source| OciError::Json { what, source })?;
        let digest = self.write_blob(&json)?;
        descriptor(media_type, json.len() as u64, &digest, None)
    }

    /// Writes `index.json` and `oci-layout`, then renames the layout into place.
    pub fn commit(self, index: &oci_spec::image::ImageIndex) -> Result<PathBuf, OciError> {
        let json = to_canonical_json(index).map_err(|source| OciError::Json {
            what: "index.json",
            source,
        })?;
        write_file_atomically(&self.temp.path().join("index.json"), &json)?;
        let marker = OciLayoutBuilder::default()
            .image_layout_version("1.0.0")
            .build()
            .map_err(|source| OciError::Spec {
                what: "oci-layout",
                source,
            })?;
        let json = to_canonical_json(&marker).map_err(|source| OciError::Json {
            what: "oci-layout",
            source,
        })?;
        write_file_atomically(&self.temp.path().join("oci-layout"), &json)?;

        // rename(2) would silently replace an empty directory created meanwhile.
        if self.dest.symlink_metadata().is_ok() {
            return Err(OciError::DestinationExists { path: self.dest });
        }
        let temp_path = self.temp.path().to_owned();
        fs::rename(&temp_path, &self.dest).map_err(|source| OciError::Write {
            path: self.dest.clone(),
            source,
        })?;
        // Already moved: nothing left for TempDir to delete.
        let _ = self.temp.keep();
        if let Some(parent) = self.dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(dir) = fs::File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        Ok(self.dest)
    }
}

fn write_file_atomically(path: &Path, data: &[u8]) -> Result<(), OciError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |source| OciError::Write {
        path: path.to_owned(),
        source,
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".blob-")
        .tempfile_in(dir)
        .map_err(err)?;
    temp.write_all(data).map_err(err)?;
    temp.as_file().sync_all().map_err(err)?;
    temp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

fn descriptor(
    media_type: MediaType,
    size: u64,
    digest: &str,
    annotations: Option<HashMap<String, String>>,
) -> Result<Descriptor, OciError> {
    let digest: Digest = digest.parse().map_err(|source| OciError::Spec {
        what: "descriptor digest",
        source,
    })?;
    let mut builder = DescriptorBuilder::default()
        .media_type(media_type)
        .size(size)
        .digest(digest);
    if let Some(annotations) = annotations {
        builder = builder.annotations(annotations);
    }
    builder.build().map_err(|source| OciError::Spec {
        what: "descriptor",
        source,
    })
}

/// Unix seconds as an RFC 3339 UTC timestamp (`2026-11-25T21:30:00Z`),
/// the form of an image config's `created`; `None` outside the years
/// 1 to 9999.
pub fn rfc3339(secs: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Packs `rootfs` into a one-layer image and writes it as an OCI image layout
/// at `dest`, tagged `tag` (`org.opencontainers.image.ref.name`).
///
/// `dest` must not exist. Everything is written to a temporary directory in
/// the same parent and renamed into place at the end; on error nothing is
/// left behind. The same tree, config and options give the same manifest
/// digest on every run and machine.
pub fn build_image_layout(
    rootfs: &Path,
    dest: &Path,
    tag: &str,
    cfg: &ImageConfigSpec,
    extra: &[ExtraBlob],
    opts: &PackOptions,
) -> Result<BuiltImage, OciError> {
    if tag.is_empty() {
        return Err(OciError::InvalidParameter("the tag is empty".into()));
    }
    // checked before anything is written
    rfc3339(cfg.created).ok_or(OciError::InvalidTimestamp(cfg.created))?;
    let spec_err = |what| move |source| OciError::Spec { what, source };
    let writer = OciLayoutWriter::create(dest)?;
    let image = write_image(&writer, rootfs, cfg, extra, opts)?;

    let mut index_annotations = image.annotations;
    index_annotations.insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
    let manifest_ref = descriptor(
        MediaType::ImageManifest,
        image.manifest.size(),
        image.manifest.digest().as_ref(),
        Some(index_annotations),
    )?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_ref])
        .build()
        .map_err(spec_err("image index"))?;
    let layout = writer.commit(&index)?;

    tracing::info!(layout = %layout.display(), tag, manifest = %image.manifest.digest(), "image layout written");
    Ok(BuiltImage {
        layout,
        tag: tag.to_owned(),
        ..image.built
    })
}

/// One platform's image of a multi-platform layout: its tree, its config
/// (whose `architecture` and `os` name the platform) and its extra blobs.
#[derive(Debug, Clone, Copy)]
pub struct PlatformImage<'a> {
    pub rootfs: &'a Path,
    pub config: &'a ImageConfigSpec,
    pub extra: &'a [ExtraBlob],
}

/// What [`build_index_layout`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltIndex {
    pub layout: PathBuf,
    pub tag: String,
    /// `"sha256:<hex>"` of the image index the tag names.
    pub index_digest: String,
    /// Each platform's image, in the order given (`layout` and `tag` as
    /// above, `manifest_digest` the platform's manifest).
    pub images: Vec<BuiltImage>,
}

/// Packs one tree per platform and writes them as an OCI image layout at
/// `dest` whose tag names an image index: one manifest per platform, each
/// entry with its `platform`, as registries serve a multi-arch tag and as
/// `skopeo copy --all` and `docker pull --platform` read it.
///
/// Like [`build_image_layout`]: `dest` must not exist, nothing is left
/// behind on error, and the same inputs give the same digests.
pub fn build_index_layout(
    dest: &Path,
    tag: &str,
    images: &[PlatformImage<'_>],
    opts: &PackOptions,
) -> Result<BuiltIndex, OciError> {
    if tag.is_empty() {
        return Err(OciError::InvalidParameter("the tag is empty".into()));
    }
    let Some(first) = images.first() else {
        return Err(OciError::InvalidParameter("no platform to build".into()));
    };
    let mut seen = std::collections::BTreeSet::new();
    for image in images {
        let platform = (&image.config.os, &image.config.architecture);
        if !seen.insert(platform) {
            return Err(OciError::InvalidParameter(format!(
                "the platform {}/{} is given twice",
                platform.0, platform.1
            )));
        }
    }
    let spec_err = |what| move |source| OciError::Spec { what, source };
    for image in images {
        rfc3339(image.config.created).ok_or(OciError::InvalidTimestamp(image.config.created))?;
    }
    let writer = OciLayoutWriter::create(dest)?;
    let mut entries = Vec::with_capacity(images.len());
    let mut built = Vec::with_capacity(images.len());
    for image in images {
        let written = write_image(&writer, image.rootfs, image.config, image.extra, opts)?;
        let platform = PlatformBuilder::default()
            .architecture(Arch::from(image.config.architecture.as_str()))
            .os(Os::from(image.config.os.as_str()))
            .build()
            .map_err(spec_err("platform"))?;
        let mut entry = descriptor(
            MediaType::ImageManifest,
            written.manifest.size(),
            written.manifest.digest().as_ref(),
            None,
        )?;
        entry.set_platform(Some(platform));
        entries.push(entry);
        built.push(BuiltImage {
            layout: dest.to_owned(),
            tag: tag.to_owned(),
            ..written.built
        });
    }

    // The index carries the image's annotations (title, version, created)
    // as each manifest does; they are the same recipe's on every platform.
    let created =
        rfc3339(first.config.created).ok_or(OciError::InvalidTimestamp(first.config.created))?;
    let mut annotations: HashMap<String, String> =
        first.config.annotations.clone().into_iter().collect();
    annotations.insert(ANNOTATION_CREATED.to_owned(), created);
    let platform_index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(entries)
        .annotations(annotations.clone())
        .build()
        .map_err(spec_err("platform index"))?;
    let index_desc =
        writer.write_json_blob(&platform_index, MediaType::ImageIndex, "platform index")?;

    annotations.insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
    let index_ref = descriptor(
        MediaType::ImageIndex,
        index_desc.size(),
        index_desc.digest().as_ref(),
        Some(annotations),
    )?;
    let top = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![index_ref])
        .build()
        .map_err(spec_err("image index"))?;
    let layout = writer.commit(&top)?;
    tracing::info!(layout = %layout.display(), tag, index = %index_desc.digest(), platforms = built.len(), "multi-platform layout written");
    Ok(BuiltIndex {
        layout,
        tag: tag.to_owned(),
        index_digest: index_desc.digest().to_string(),
        images: built,
    })
}

/// One image written into a layout: its manifest's descriptor, the
/// manifest's annotations, and what the caller reports.
struct WrittenImage {
    manifest: Descriptor,
    annotations: HashMap<String, String>,
    built: BuiltImage,
}

/// Packs `rootfs` as the one layer of an image and writes its config,
/// extra blobs and manifest into `writer`.
fn write_image(
    writer: &OciLayoutWriter,
    rootfs: &Path,
    cfg: &ImageConfigSpec,
    extra: &[ExtraBlob],
    opts: &PackOptions,
) -> Result<WrittenImage, OciError> {
    let created = rfc3339(cfg.created).ok_or(OciError::InvalidTimestamp(cfg.created))?;
    let layer = pack_layer(rootfs, &writer.blob_dir(), opts)?;
    let spec_err = |what| move |source| OciError::Spec { what, source };

    let mut config = ConfigBuilder::default().env(cfg.env.clone());
    if let Some(cmd) = &cfg.cmd {
        config = config.cmd(cmd.clone());
    }
    if let Some(entrypoint) = &cfg.entrypoint {
        config = config.entrypoint(entrypoint.clone());
    }
    if let Some(dir) = &cfg.working_dir {
        config = config.working_dir(dir.clone());
    }
    if let Some(user) = &cfg.user {
        config = config.user(user.clone());
    }
    if !cfg.labels.is_empty() {
        config = config.labels(cfg.labels.clone().into_iter().collect::<HashMap<_, _>>());
    }
    let config = config.build().map_err(spec_err("image config"))?;
    let rootfs_section = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![layer.diff_id.clone()])
        .build()
        .map_err(spec_err("image rootfs"))?;
    let mut history = HistoryBuilder::default()
        .created(created.clone())
        .created_by("corral image build");
    if let Some(comment) = &cfg.history_comment {
        history = history.comment(comment.clone());
    }
    let history = history.build().map_err(spec_err("image history"))?;
    let image_config = ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(cfg.architecture.as_str())
        .os(cfg.os.as_str())
        .config(config)
        .rootfs(rootfs_section)
        .history(vec![history])
        .build()
        .map_err(spec_err("image configuration"))?;
    let config_desc =
        writer.write_json_blob(&image_config, MediaType::ImageConfig, "image configuration")?;

    let mut annotations: HashMap<String, String> = cfg.annotations.clone().into_iter().collect();
    annotations.insert(ANNOTATION_CREATED.to_owned(), created.clone());
    let mut extra_digests = Vec::with_capacity(extra.len());
    for blob in extra {
        let digest_key = format!("{}.digest", blob.annotation_prefix);
        if blob.annotation_prefix.is_empty() || annotations.contains_key(&digest_key) {
            return Err(OciError::InvalidParameter(format!(
                "extra blob annotation prefix {:?} is empty or used twice",
                blob.annotation_prefix
            )));
        }
        let digest = writer.write_blob(&blob.data)?;
        annotations.insert(digest_key, digest.clone());
        annotations.insert(
            format!("{}.mediatype", blob.annotation_prefix),
            blob.media_type.clone(),
        );
        extra_digests.push((digest, blob.media_type.clone()));
    }

    let layer_desc = descriptor(
        layer.media_type.clone(),
        layer.size,
        &layer.digest,
        Some(HashMap::from([(
            ANNOTATION_UNPACKED_SIZE.to_owned(),
            layer.uncompressed_size.to_string(),
        )])),
    )?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_desc.clone())
        .layers(vec![layer_desc])
        .annotations(annotations.clone())
        .build()
        .map_err(spec_err("image manifest"))?;
    let manifest_desc =
        writer.write_json_blob(&manifest, MediaType::ImageManifest, "image manifest")?;

    Ok(WrittenImage {
        built: BuiltImage {
            layout: PathBuf::new(),
            tag: String::new(),
            manifest_digest: manifest_desc.digest().to_string(),
            config_digest: config_desc.digest().to_string(),
            layer,
            extra: extra_digests,
        },
        manifest: manifest_desc,
        annotations,
    })
}
