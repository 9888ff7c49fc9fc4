//! The published stream file the website reads: `REPO/streams/NAME.json`
//! (docs/site.md, "Atomic Host"). `corral compose run` rewrites its
//! versions after every commit; `corral disk build` records the images it
//! makes from the stream's ref. Both go through [`write`]: a temporary
//! file in `streams/`, synced, then renamed, so a reader (the mirror, the
//! other command) sees the old file or the new one, never a part.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The file's model (shared with the website, which must not link
/// libostree); under the names compose and disk use.
pub use corral_streamfile::{
    Change, Diff, DiskImage as PublishedDiskImage, OsImage as PublishedOsImage,
    Stream as PublishedStream, Version as PublishedVersion, MAX_FILE,
};

impl From<crate::PackageDiff> for Diff {
    fn from(d: crate::PackageDiff) -> Diff {
        Diff {
            added: d.added,
            removed: d.removed,
            changed: d
                .changed
                .into_iter()
                .map(|c| Change {
                    name: if c.arch.is_empty() {
                        c.name
                    } else {
                        format!("{}.{}", c.name, c.arch)
                    },
                    from: c.from,
                    to: c.to,
                })
                .collect(),
        }
    }
}

/// Where the stream file of stream `name` lives in repository `repo`.
pub fn path(repo: &Path, name: &str) -> PathBuf {
    repo.join("streams").join(format!("{name}.json"))
}

/// Reads the stream file at `path`; `None` when there is none, or it is
/// too big or does not parse (logged: the callers rewrite it whole).
pub fn read(path: &Path) -> Option<PublishedStream> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        tracing::warn!(path = %path.display(), "stream file is not a file or too big");
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable stream file");
            None
        }
    }
}

/// The stream file in `repo` whose ref is `ostree_ref`, with its path:
/// the stream a disk built from that ref belongs to.
pub fn find_by_ref(repo: &Path, ostree_ref: &str) -> Option<(PathBuf, PublishedStream)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo.join("streams"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| read(&p).map(|s| (p, s)))
        .find(|(_, s)| s.ostree_ref == ostree_ref)
}

/// Writes `stream` to `path` whole: a temporary file beside it, synced,
/// then renamed over it.
pub fn write(path: &Path, stream: &PublishedStream) -> Result<()> {
    write_then(path, stream, |_| Ok(()))
}

/// [`write`], calling `before_rename` with the complete temporary file
/// just before the rename: the seam where the tests inject a failure.
fn write_then(
    path: &Path,
    stream: &PublishedStream,
    before_rename: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let dir = path.parent().context("a stream file path has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".stream-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut bytes = serde_json::to_vec_pretty(stream)?;
    bytes.push(b'\n');
    tmp.write_all(&bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    // Served as a public file, like the repository's objects.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("setting the mode of {}", tmp.path().display()))?;
    before_rename(tmp.path())?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, r: &str) -> PublishedStream {
        PublishedStream {
            name: name.into(),
            ostree_ref: r.into(),
            versions: vec![PublishedVersion {
                version: "43.1".into(),
                commit: "aa".repeat(32),
                date: "2026-01-02T00:00:00Z".into(),
                diff: Diff::default(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn written_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path(), "s");
        let s = sample("s", "r");
        write(&file, &s).unwrap();
        assert_eq!(read(&file), Some(s));
        let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["s.json"], "no temporary file left");
        std::fs::write(&file, b"{not json").unwrap();
        assert_eq!(read(&file), None);
    }

    #[test]
    fn disk_images_read_as_names_or_records_and_replace_by_name() {
        let mut s: PublishedStream = serde_json::from_str(
            r#"{"name":"s","ref":"r","disk_images":["old.qcow2",{"name":"s.raw.xz","format":"raw.xz","size":3},{"name":"t.qcow2","arch":"aarch64"}]}"#,
        )
        .unwrap();
        assert_eq!(s.disk_images[0].name, "old.qcow2");
        assert_eq!(s.disk_images[1].size, Some(3));
        assert_eq!(s.disk_images[1].arch, None, "recorded before arch was");
        assert_eq!(s.disk_images[2].arch.as_deref(), Some("aarch64"));
        s.record_disk_image(PublishedDiskImage {
            name: "old.qcow2".into(),
            format: "qcow2".into(),
            size: Some(9),
            sha256: Some("ab".repeat(32)),
            signature: Some("old.qcow2.asc".into()),
            commit: None,
            arch: Some("aarch64".into()),
        });
        assert_eq!(s.disk_images.len(), 3);
        assert_eq!(s.disk_images[0].size, Some(9));
        assert!(serde_json::to_string(&s)
            .unwrap()
            .contains(r#""arch":"aarch64""#));
        let back: PublishedStream =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn found_by_ref_among_the_stream_files() {
        let dir = tempfile::tempdir().unwrap();
        write(&path(dir.path(), "a"), &sample("a", "r/a")).unwrap();
        write(&path(dir.path(), "b"), &sample("b", "r/b")).unwrap();
        std::fs::write(path(dir.path(), "broken"), b"{").unwrap();
        let (p, s) = find_by_ref(dir.path(), "r/b").unwrap();
        assert_eq!(p, path(dir.path(), "b"));
        assert_eq!(s.name, "b");
        assert!(find_by_ref(dir.path(), "r/c").is_none());
    }

    /// A write that stops between the complete temporary file and the
    /// rename leaves the previous file whole (and the stray temporary
    /// file is removed with the handle).
    #[test]
    fn a_write_stopped_before_the_rename_leaves_the_previous_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path(), "s");
        let before = sample("s", "r");
        write(&file, &before).unwrap();
        let on_disk = std::fs::read(&file).unwrap();
        let mut after = before.clone();
        after.record_disk_image(PublishedDiskImage {
            name: "s.qcow2".into(),
            ..Default::default()
        });
        let mut seen = None;
        let err = write_then(&file, &after, |tmp| {
            seen = read(tmp);
            anyhow::bail!("injected failure before the rename")
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("injected"), "{err:#}");
        // the new file was complete, and still the old one is in place
        assert_eq!(seen, Some(after.clone()));
        assert_eq!(std::fs::read(&file).unwrap(), on_disk);
        assert_eq!(read(&file), Some(before));
        let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["s.json"], "the temporary file is removed");
        write(&file, &after).unwrap();
        assert_eq!(read(&file), Some(after));
    }
}
