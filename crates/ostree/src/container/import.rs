//! An image in the ostree container format back into a repository. Every
//! object is written with its expected checksum, so libostree refuses any
//! byte that differs; the commit (and its signatures, the detached
//! metadata) come out exactly as exported. A caller can check the commit
//! and its signatures before any object is written ([`Verify`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ostree::gio;
use ostree::glib;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::labels;
use super::objects::{parse_entry_path, EntryKind};

/// Checks a commit (its object and detached metadata) before anything is
/// written; an error refuses the image.
pub type Verify<'a> = &'a dyn Fn(&str, &glib::Variant, Option<&glib::Variant>) -> Result<()>;

/// An image read from a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub manifest_digest: String,
    /// The `ostree.commit` label.
    pub commit: String,
    pub version: Option<String>,
    /// The ostree layers' digests, in order (the first holds the commit).
    pub layers: Vec<String>,
    /// Layers after those of a derived image ([`super::derived`]).
    pub derived: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    pub commit: String,
    pub manifest_digest: String,
    /// Layers read (their objects were not all in the repository yet).
    pub layers_read: Vec<String>,
    /// Layers skipped because `skip` said the repository has them.
    pub layers_skipped: Vec<String>,
    /// Objects written.
    pub objects_written: u64,
}

fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("unsupported digest {digest}"))?;
    Ok(layout.join("blobs/sha256").join(hex))
}

fn read_blob(layout: &Path, digest: &str) -> Result<Vec<u8>> {
    let path = blob_path(layout, digest)?;
    let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let got = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
    ensure!(got == digest, "blob {digest} has digest {got}");
    Ok(data)
}

/// Reads the manifest tagged `tag` (or the only one, if `tag` is empty)
/// and its config labels.
pub fn read_manifest(layout: &Path, tag: &str) -> Result<ImageManifest> {
    let index_path = layout.join("index.json");
    let index: Value = serde_json::from_slice(
        &std::fs::read(&index_path).with_context(|| format!("reading {}", index_path.display()))?,
    )
    .with_context(|| format!("parsing {}", index_path.display()))?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let found: Vec<&Value> = manifests
        .iter()
        .filter(|m| tag.is_empty() || m["annotations"][labels::REF_NAME] == tag)
        .collect();
    let desc = match found.as_slice() {
        [one] => *one,
        [] => bail!("no image tagged `{tag}` in {}", layout.display()),
        _ => bail!("{} holds several images; name one by tag", layout.display()),
    };
    let manifest_digest = desc["digest"]
        .as_str()
        .context("manifest descriptor without a digest")?
        .to_string();
    let manifest: Value = serde_json::from_slice(&read_blob(layout, &manifest_digest)?)
        .context("parsing the manifest")?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("manifest without a config")?;
    let config: Value = serde_json::from_slice(&read_blob(layout, config_digest)?)
        .context("parsing the image config")?;
    let labels_of = &config["config"]["Labels"];
    let commit = labels_of[labels::COMMIT]
        .as_str()
        .with_context(|| {
            format!(
                "the image has no `{}` label: not an OSTree commit image",
                labels::COMMIT
            )
        })?
        .to_string();
    let layers = manifest["layers"]
        .as_array()
        .context("manifest without layers")?
        .iter()
        .map(|l| {
            l["digest"]
                .as_str()
                .map(str::to_string)
                .context("layer without a digest")
        })
        .collect::<Result<Vec<_>>>()?;
    ensure!(!layers.is_empty(), "the image has no layers");
    let mut layers = layers;
    let derived = layers.split_off(super::derived::ostree_layer_count(&config, layers.len()));
    Ok(ImageManifest {
        manifest_digest,
        commit,
        version: labels_of[labels::VERSION].as_str().map(str::to_string),
        layers,
        derived,
    })
}

/// A reader that checks the sha256 of everything read against `want`
/// once the end is reached.
struct Checked<R> {
    inner: R,
    hasher: Sha256,
    want: String,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            let got = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
            if got != self.want {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("layer {} has digest {got}", self.want),
                ));
            }
        }
        Ok(n)
    }
}

fn open_layer(
    layout: &Path,
    digest: &str,
) -> Result<tar::Archive<flate2::read::GzDecoder<Checked<File>>>> {
    let path = blob_path(layout, digest)?;
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    Ok(tar::Archive::new(flate2::read::GzDecoder::new(Checked {
        inner: file,
        hasher: Sha256::new(),
        want: digest.to_string(),
    })))
}

/// Reads the rest of a layer so its digest is checked.
fn drain<R: Read>(archive: tar::Archive<R>) -> Result<()> {
    let mut inner = archive.into_inner();
    io::copy(&mut inner, &mut io::sink()).context("reading the layer to its end")?;
    Ok(())
}

fn variant(bytes: Vec<u8>, type_: &str) -> glib::Variant {
    glib::Variant::from_bytes_with_type(
        &glib::Bytes::from_owned(bytes),
        glib::VariantTy::new(type_).expect("a valid type string"),
    )
}

const COMMIT_TYPE: &str = "(a{sv}aya(say)sstayay)";
const DIRTREE_TYPE: &str = "(a(say)a(sayay))";
const DIRMETA_TYPE: &str = "(uuua(ayay))";
const XATTRS_TYPE: &str = "a(ayay)";
const DETACHED_TYPE: &str = "a{sv}";

/// Finds the commit object and its detached metadata in the commit layer
/// (the first).
fn read_commit_objects(
    layout: &Path,
    digest: &str,
    commit: &str,
) -> Result<(glib::Variant, Option<glib::Variant>)> {
    let mut archive = open_layer(layout, digest)?;
    let (mut object, mut detached) = (None, None);
    for entry in archive.entries().context("reading the commit layer")? {
        let mut entry = entry.context("reading the commit layer")?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let Some((checksum, EntryKind::Object(kind))) = parse_entry_path(&path) else {
            continue;
        };
        let mut data = Vec::new();
        match kind {
            ostree::ObjectType::Commit => {
                ensure!(
                    checksum == commit,
                    "the commit layer holds commit {checksum}, the label says {commit}"
                );
                entry.read_to_end(&mut data)?;
                object = Some(variant(data, COMMIT_TYPE));
            }
            ostree::ObjectType::CommitMeta if checksum == commit => {
                entry.read_to_end(&mut data)?;
                detached = Some(variant(data, DETACHED_TYPE));
            }
            _ => {}
        }
    }
    drain(archive)?;
    let object = object.with_context(|| format!("the commit layer has no commit {commit}"))?;
    // The object must be what its name says before anyone trusts it.
    let got = hex::encode(Sha256::digest(&*object.data_as_bytes()));
    ensure!(got == commit, "commit object {commit} has checksum {got}");
    Ok((object, detached))
}

/// Imports the image tagged `tag` of the layout at `layout` into `repo`.
/// `verify` sees the commit before anything is written; `skip` names
/// layers already imported (an upgrade reads only the others). No ref is
/// set: the caller decides.
pub fn import_layout_with(
    repo: &ostree::Repo,
    layout: &Path,
    tag: &str,
    verify: Option<Verify<'_>>,
    skip: &BTreeSet<String>,
) -> Result<Imported> {
    let manifest = read_manifest(layout, tag)?;
    let commit_layer = manifest.layers.first().expect("checked non-empty");
    let (commit_object, detached) = read_commit_objects(layout, commit_layer, &manifest.commit)?;
    if let Some(verify) = verify {
        verify(&manifest.commit, &commit_object, detached.as_ref())?;
    }

    repo.prepare_transaction(gio::Cancellable::NONE)
        .context("starting a repository transaction")?;
    let result = (|| {
        let mut imported = Imported {
            commit: manifest.commit.clone(),
            manifest_digest: manifest.manifest_digest.clone(),
            layers_read: Vec::new(),
            layers_skipped: Vec::new(),
            objects_written: 0,
        };
        for digest in &manifest.layers {
            if digest != commit_layer && skip.contains(digest) {
                imported.layers_skipped.push(digest.clone());
                continue;
            }
            imported.objects_written += import_layer(repo, layout, digest)
                .with_context(|| format!("importing layer {digest}"))?;
            imported.layers_read.push(digest.clone());
        }
        ensure!(
            repo.has_object(
                ostree::ObjectType::Commit,
                &manifest.commit,
                gio::Cancellable::NONE
            )?,
            "the image did not hold commit {}",
            manifest.commit
        );
        repo.write_commit_detached_metadata(
            &manifest.commit,
            detached.as_ref(),
            gio::Cancellable::NONE,
        )
        .context("writing the commit's detached metadata")?;
        Ok(imported)
    })();
    match result {
        Ok(imported) => {
            repo.commit_transaction(gio::Cancellable::NONE)
                .context("committing the repository transaction")?;
            Ok(imported)
        }
        Err(e) => {
            let _ = repo.abort_transaction(gio::Cancellable::NONE);
            Err(e)
        }
    }
}

/// [`import_layout_with`] without checks or skipped layers.
pub fn import_layout(repo: &ostree::Repo, layout: &Path, tag: &str) -> Result<Imported> {
    import_layout_with(repo, layout, tag, None, &BTreeSet::new())
}

fn import_layer(repo: &ostree::Repo, layout: &Path, digest: &str) -> Result<u64> {
    let mut archive = open_layer(layout, digest)?;
    let mut xattrs: BTreeMap<String, glib::Variant> = BTreeMap::new();
    let mut xattrs_of: BTreeMap<String, String> = BTreeMap::new();
    let mut written = 0;
    let none = gio::Cancellable::NONE;
    for entry in archive.entries().context("reading the layer")? {
        let mut entry = entry.context("reading the layer")?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let Some((checksum, kind)) = parse_entry_path(&path) else {
            continue;
        };
        match kind {
            EntryKind::Xattrs => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                let got = hex::encode(Sha256::digest(&data));
                ensure!(got == checksum, "xattrs {path} have digest {got}");
                xattrs.insert(checksum, variant(data, XATTRS_TYPE));
            }
            EntryKind::XattrsLink => {
                let target = entry
                    .link_name()?
                    .with_context(|| format!("{path} links nowhere"))?
                    .to_string_lossy()
                    .into_owned();
                let (digest, _) = parse_entry_path(&target)
                    .filter(|(_, k)| *k == EntryKind::Xattrs)
                    .with_context(|| format!("{path} links to {target}, not to xattrs"))?;
                xattrs_of.insert(checksum, digest);
            }
            EntryKind::Object(ostree::ObjectType::CommitMeta) => {}
            EntryKind::Object(ostree::ObjectType::File) => {
                if repo.has_object(ostree::ObjectType::File, &checksum, none)? {
                    continue;
                }
                let attrs = match xattrs_of.get(&checksum) {
                    Some(d) => Some(
                        xattrs
                            .get(d)
                            .with_context(|| format!("file {checksum}: xattrs {d} not seen"))?,
                    ),
                    None => None,
                };
                write_file(repo, &checksum, &mut entry, attrs)?;
                written += 1;
            }
            EntryKind::Object(kind) => {
                if repo.has_object(kind, &checksum, none)? {
                    continue;
                }
                let type_ = match kind {
                    ostree::ObjectType::Commit => COMMIT_TYPE,
                    ostree::ObjectType::DirTree => DIRTREE_TYPE,
                    ostree::ObjectType::DirMeta => DIRMETA_TYPE,
                    other => bail!("{path}: unexpected object type {other:?}"),
                };
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                repo.write_metadata(kind, Some(&checksum), &variant(data, type_), none)
                    .with_context(|| format!("writing {kind:?} {checksum}"))?;
                written += 1;
            }
        }
    }
    drain(archive)?;
    Ok(written)
}

fn write_file<R: Read>(
    repo: &ostree::Repo,
    checksum: &str,
    entry: &mut tar::Entry<'_, R>,
    xattrs: Option<&glib::Variant>,
) -> Result<()> {
    let header = entry.header();
    let info = gio::FileInfo::new();
    info.set_attribute_uint32("unix::uid", header.uid()? as u32);
    info.set_attribute_uint32("unix::gid", header.gid()? as u32);
    let perms = header.mode()? & 0o7777;
    let mut data = Vec::new();
    match header.entry_type() {
        tar::EntryType::Regular => {
            info.set_file_type(gio::FileType::Regular);
            info.set_attribute_uint32("unix::mode", perms | libc_s_ifreg());
            entry.read_to_end(&mut data)?;
            info.set_size(data.len() as i64);
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .with_context(|| format!("symlink {checksum} without a target"))?;
            let target = String::from_utf8(target.into_owned())
                .with_context(|| format!("symlink {checksum}: target is not UTF-8"))?;
            info.set_file_type(gio::FileType::SymbolicLink);
            info.set_attribute_uint32("unix::mode", perms | libc_s_iflnk());
            info.set_symlink_target(&target);
            info.set_size(0);
        }
        other => bail!("file object {checksum} is a {other:?} entry"),
    }
    let input = gio::MemoryInputStream::from_bytes(&glib::Bytes::from_owned(data));
    let empty = glib::Variant::array_from_iter_with_type(
        glib::VariantTy::new("(ayay)").expect("valid"),
        std::iter::empty::<glib::Variant>(),
    );
    let (stream, len) = ostree::raw_file_to_content_stream(
        &input,
        &info,
        Some(xattrs.unwrap_or(&empty)),
        gio::Cancellable::NONE,
    )
    .with_context(|| format!("file object {checksum}"))?;
    repo.write_content(Some(checksum), &stream, len, gio::Cancellable::NONE)
        .with_context(|| format!("writing file object {checksum}"))?;
    Ok(())
}

const fn libc_s_ifreg() -> u32 {
    0o100000
}

const fn libc_s_iflnk() -> u32 {
    0o120000
}
