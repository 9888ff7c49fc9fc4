//! `/disk-images/<path>`: a directory of published disk images served
//! read-only (byte ranges too), and their catalog entries. To the mirror
//! these are files with a published checksum (`NAME.sha256`, `sha256sum`
//! format) and perhaps a detached GPG signature (`NAME.asc` or
//! `NAME.sig`), checked against the mirror's trusted keyrings with gpgv.
//!
//! Checking reads the whole image, so results are kept per file, size and
//! modification time, and a changed file is checked again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use corral_sign::gpg::GpgCheck;
use serde::Serialize;

use crate::app::App;
use crate::bucket_files::FileSource;

/// The sidecar files next to an image.
pub(crate) const SIDECARS: &[&str] = &[".sha256", ".asc", ".sig"];

/// One image in the catalog.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DiskImage {
    /// Its path under the directory, `/`-separated.
    pub name: String,
    pub url: String,
    pub size: u64,
    /// Seconds since the epoch.
    pub modified: u64,
    /// The checksum the `.sha256` file publishes.
    pub sha256: Option<String>,
    /// Whether the file's sha256 is the published one.
    pub checksum_matches: Option<bool>,
    pub signature: SignatureState,
}

/// What the mirror knows of an image's signature.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SignatureState {
    /// A trusted key made it (its primary key fingerprint).
    Verified {
        key: String,
        file: String,
    },
    /// Signed, but the mirror has no trusted GPG keyring to check with.
    NotChecked {
        file: String,
    },
    /// Signed by a key the trusted keyrings do not hold.
    UnknownKey {
        key: String,
        file: String,
    },
    /// The signature does not match the file (or gpgv cannot read it).
    Bad {
        file: String,
        detail: String,
    },
    Unsigned,
}

/// Size and modification time of an image, modification time of its
/// signature.
type Stamp = (u64, SystemTime, Option<SystemTime>);
/// A cached check: the stamp it is valid for, checksum match, signature.
type Checked = (Stamp, Option<bool>, SignatureState);

/// Check results by image path, valid while the image and its signature
/// keep their size and modification times.
#[derive(Default)]
pub struct DiskImageCache {
    entries: Mutex<HashMap<PathBuf, Checked>>,
}

/// `GET /disk-images/<path>`.
pub(crate) async fn serve(
    State(app): State<Arc<App>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let Some(files) = &app.files.disk_images else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    files.serve(&path, &headers).await
}

fn resolves_inside(root: &Path, path: &Path) -> bool {
    crate::ostree::resolve_inside(root, path).is_some()
}

/// The images under the configured directory, checked.
pub async fn collect(app: &Arc<App>) -> anyhow::Result<Vec<DiskImage>> {
    let root = match &app.files.disk_images {
        None => return Ok(Vec::new()),
        Some(FileSource::Bucket(b)) => {
            return Ok(b.disk_images(&app.config.trust.gpg_keyrings).await?)
        }
        Some(FileSource::Dir(root)) => root.clone(),
    };
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        list(&root, &app.config.trust.gpg_keyrings, &app.disk_images)
    })
    .await?
}

/// Lists and checks the images under `root` (hidden files, such as the
/// temp files of a build in progress, and sidecars left out).
pub fn list(
    root: &Path,
    keyrings: &[PathBuf],
    cache: &DiskImageCache,
) -> anyhow::Result<Vec<DiskImage>> {
    use anyhow::Context;
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let e = e.with_context(|| format!("listing {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if SIDECARS.iter().any(|s| name.ends_with(s)) {
                continue;
            } else if ft.is_file() || (ft.is_symlink() && resolves_inside(root, &e.path())) {
                // Symlinks to files inside (a `latest` alias) are listed;
                // those leading out, or to directories, are not.
                files.push(e.path());
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let meta =
            std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let sha256 = published_sha256(&path);
        let sig = signature_file(&path);
        let stamp: Stamp = (
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            sig.as_ref()
                .and_then(|s| std::fs::metadata(s).and_then(|m| m.modified()).ok()),
        );
        let cached = cache
            .entries
            .lock()
            .ok()
            .and_then(|c| c.get(&path).filter(|(s, _, _)| *s == stamp).cloned());
        let (matches, signature) = match cached {
            Some((_, m, s)) => (m, s),
            None => {
                let m = match &sha256 {
                    Some(want) => Some(file_sha256(&path)? == *want),
                    None => None,
                };
                let s = check(&path, sig.as_deref(), keyrings)?;
                if let Ok(mut c) = cache.entries.lock() {
                    c.insert(path.clone(), (stamp, m, s.clone()));
                }
                (m, s)
            }
        };
        out.push(DiskImage {
            url: format!("/disk-images/{rel}"),
            name: rel,
            size: meta.len(),
            modified: stamp
                .1
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            sha256,
            checksum_matches: matches,
            signature,
        });
    }
    Ok(out)
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The first word of `NAME.sha256`, if it is a sha256.
fn published_sha256(path: &Path) -> Option<String> {
    parse_sha256(&std::fs::read_to_string(sidecar(path, ".sha256")).ok()?)
}

/// The first word of a `sha256sum` line, if it is a sha256.
pub(crate) fn parse_sha256(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?.to_lowercase();
    (word.len() == 64 && word.chars().all(|c| c.is_ascii_hexdigit())).then_some(word)
}

fn signature_file(path: &Path) -> Option<PathBuf> {
    [".asc", ".sig"]
        .iter()
        .map(|s| sidecar(path, s))
        .find(|p| p.is_file())
}

fn file_sha256(path: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    corral_oci::sha256_file(path).with_context(|| format!("reading {}", path.display()))
}

pub(crate) fn check(
    path: &Path,
    sig: Option<&Path>,
    keyrings: &[PathBuf],
) -> anyhow::Result<SignatureState> {
    let Some(sig) = sig else {
        return Ok(SignatureState::Unsigned);
    };
    let file = sig
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if keyrings.is_empty() {
        return Ok(SignatureState::NotChecked { file });
    }
    Ok(
        match corral_sign::gpg::check_detached_signature(keyrings, sig, path)? {
            GpgCheck::Valid { fingerprint, .. } => SignatureState::Verified {
                key: fingerprint,
                file,
            },
            GpgCheck::UnknownKey(key) => SignatureState::UnknownKey { key, file },
            GpgCheck::BadSignature => SignatureState::Bad {
                file,
                detail: "the signature does not match the file".into(),
            },
            GpgCheck::Malformed => SignatureState::Bad {
                file,
                detail: "not an OpenPGP signature gpgv can read".into(),
            },
        },
    )
}

/// The catalog page's cell for a signature: a class and the text.
pub fn signature_cell(s: &SignatureState) -> (&'static str, String) {
    match s {
        SignatureState::Verified { key, .. } => ("verified", format!("verified (gpg, key {key})")),
        SignatureState::NotChecked { file } => (
            "unverified",
            format!("signed ({file}), no trusted gpg keyring to check it"),
        ),
        SignatureState::UnknownKey { key, .. } => {
            ("unverified", format!("signed by an untrusted key {key}"))
        }
        SignatureState::Bad { detail, .. } => ("unverified", format!("bad signature: {detail}")),
        SignatureState::Unsigned => ("unsigned", "unsigned".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_and_hidden_files_are_not_images() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a.qcow2");
        std::fs::write(&img, b"image").unwrap();
        let sum = file_sha256(&img).unwrap();
        std::fs::write(sidecar(&img, ".sha256"), format!("{sum}  a.qcow2\n")).unwrap();
        std::fs::write(dir.path().join(".b.raw.corral-tmp-1"), b"partial").unwrap();
        std::fs::create_dir(dir.path().join("43")).unwrap();
        std::fs::write(dir.path().join("43/c.raw.xz"), b"xz").unwrap();
        std::fs::write(dir.path().join("43/c.raw.xz.sha256"), b"not a checksum\n").unwrap();
        let cache = DiskImageCache::default();
        let list = list(dir.path(), &[], &cache).unwrap();
        let names: Vec<_> = list.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["43/c.raw.xz", "a.qcow2"]);
        assert_eq!(list[1].sha256.as_deref(), Some(sum.as_str()));
        assert_eq!(list[1].checksum_matches, Some(true));
        assert_eq!(list[1].signature, SignatureState::Unsigned);
        assert_eq!(list[0].sha256, None);
        assert_eq!(list[0].url, "/disk-images/43/c.raw.xz");

        // a changed file is checked again
        std::fs::write(&img, b"other image").unwrap();
        let list = super::list(dir.path(), &[], &cache).unwrap();
        assert_eq!(list[1].checksum_matches, Some(false));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_leading_out_are_neither_listed_nor_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("images");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.qcow2"), b"image").unwrap();
        std::fs::write(dir.path().join("outside.qcow2"), b"secret").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("passwd.qcow2")).unwrap();
        std::os::unix::fs::symlink("../outside.qcow2", root.join("up.qcow2")).unwrap();
        std::os::unix::fs::symlink("a.qcow2", root.join("latest.qcow2")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let list = list(&root, &[], &DiskImageCache::default()).unwrap();
        let names: Vec<_> = list.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a.qcow2", "latest.qcow2"]);
        assert!(resolves_inside(&root, &root.join("latest.qcow2")));
        assert!(!resolves_inside(&root, &root.join("passwd.qcow2")));
        assert!(!resolves_inside(&root, &root.join("up.qcow2")));
        assert!(!resolves_inside(&root, &root.join("etc/passwd")));
        assert!(!resolves_inside(&root, &root.join("missing.qcow2")));
    }
}
