//! The published stream file, `REPO/streams/NAME.json` (docs/site.md,
//! "Atomic Host"): what an Atomic Host stream offers, as data. `corral
//! compose run` writes its versions, `corral disk build` records the disk
//! images it makes, and the website reads it. This crate is only the serde
//! model, with no native dependencies, so the website (linked into the
//! `corral` binary, which must not link libostree) and the OSTree side
//! (`corral-ostree`, which writes and reads the file) share one definition.
//!
//! - [`Stream`]: the file; its [`Version`]s (newest first) with the
//!   package [`Diff`] since the version below, its [`DiskImage`]s, and
//!   the [`OsImage`] `corral release` pushed to the registry.
//!
//! ```
//! let s: corral_streamfile::Stream = serde_json::from_str(
//!     r#"{"name": "atomic-43", "ref": "corral/43/x86_64/atomic",
//!         "disk_images": ["atomic-43.qcow2",
//!                         {"name": "atomic-43.aarch64.qcow2", "arch": "aarch64"}]}"#,
//! )?;
//! assert_eq!(s.ostree_ref, "corral/43/x86_64/atomic");
//! assert_eq!(s.disk_images[1].arch.as_deref(), Some("aarch64"));
//! # Ok::<(), serde_json::Error>(())
//! ```

use serde::{Deserialize, Serialize};

/// Stream files larger than this are not read.
pub const MAX_FILE: u64 = 1 << 20;

/// `streams/<name>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stream {
    pub name: String,
    /// The OSTree ref hosts follow.
    #[serde(rename = "ref")]
    pub ostree_ref: String,
    #[serde(default)]
    pub description: String,
    /// Fingerprint of the GPG key that signs the commits.
    #[serde(default)]
    pub key: Option<String>,
    /// Newest first.
    #[serde(default)]
    pub versions: Vec<Version>,
    /// The disk images made from this stream, by file name in the
    /// mirror's disk images directory; kept as they are when compose
    /// rewrites the versions.
    #[serde(default)]
    pub disk_images: Vec<DiskImage>,
    /// The stream's commit as an OCI image in the ostree container format,
    /// as `corral release` last pushed and signed it; kept as it is when
    /// compose rewrites the versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_image: Option<OsImage>,
}

impl Stream {
    /// Records `image`, replacing an entry of the same file name (a
    /// rebuilt image), keeping the list sorted by name.
    pub fn record_disk_image(&mut self, image: DiskImage) {
        self.disk_images.retain(|d| d.name != image.name);
        self.disk_images.push(image);
        self.disk_images.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// One commit of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub version: String,
    pub commit: String,
    /// RFC 3339 (UTC) of the commit's timestamp.
    pub date: String,
    /// What changed since the version below; for the first commit of a
    /// stream, every package is added.
    #[serde(default)]
    pub diff: Diff,
}

/// Packages added, removed and changed between two versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub removed: Vec<String>,
    #[serde(default)]
    pub changed: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `name.arch`, as `compose diff` prints it.
    pub name: String,
    pub from: String,
    pub to: String,
}

/// A disk image as `corral disk build` recorded it. A plain string (the
/// file name alone, as files written by hand say) reads as one too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "DiskImageForm")]
pub struct DiskImage {
    /// The file name.
    pub name: String,
    /// `qcow2`, `raw` or `raw.xz`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Hex of the file's sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The detached signature's file name, beside the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The commit the image deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The architecture it boots on (`x86_64`, `aarch64`); when missing,
    /// the stream ref's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

impl From<&str> for DiskImage {
    fn from(name: &str) -> DiskImage {
        DiskImage {
            name: name.to_string(),
            ..Default::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DiskImageForm {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        format: String,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        sha256: Option<String>,
        #[serde(default)]
        signature: Option<String>,
        #[serde(default)]
        commit: Option<String>,
        #[serde(default)]
        arch: Option<String>,
    },
}

impl From<DiskImageForm> for DiskImage {
    fn from(f: DiskImageForm) -> DiskImage {
        match f {
            DiskImageForm::Name(name) => name.as_str().into(),
            DiskImageForm::Full {
                name,
                format,
                size,
                sha256,
                signature,
                commit,
                arch,
            } => DiskImage {
                name,
                format,
                size,
                sha256,
                signature,
                commit,
                arch,
            },
        }
    }
}

/// The OS image in the registry: a commit in the ostree container
/// format, which `rpm-ostree rebase`, `bootc switch` and `corral host
/// rebase` read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsImage {
    /// `HOST[:PORT]/REPOSITORY`, without tag or digest.
    pub repository: String,
    /// The tags pushed: the commit's version, then the stream's moving tag.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `sha256:…` of the image manifest.
    pub digest: String,
    /// The commit the image carries.
    pub commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How many layers, and their compressed bytes together.
    #[serde(default)]
    pub layers: usize,
    #[serde(default)]
    pub size: u64,
    /// The signatures made on it: `cosign`, `gpg` (simple signing).
    #[serde(default)]
    pub signatures: Vec<String>,
}

impl OsImage {
    /// `REPOSITORY:TAG` of the moving tag (the last), else the first.
    pub fn reference(&self) -> String {
        match self.tags.last() {
            Some(t) => format!("{}:{t}", self.repository),
            None => format!("{}@{}", self.repository, self.digest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_images_read_as_names_or_records_and_round_trip() {
        let mut s: Stream = serde_json::from_str(
            r#"{"name":"s","ref":"r","disk_images":["old.qcow2",{"name":"s.raw.xz","format":"raw.xz","size":3,"arch":"aarch64"}]}"#,
        )
        .unwrap();
        assert_eq!(s.disk_images[0], DiskImage::from("old.qcow2"));
        assert_eq!(s.disk_images[1].size, Some(3));
        assert_eq!(s.disk_images[1].arch.as_deref(), Some("aarch64"));
        s.record_disk_image(DiskImage {
            name: "old.qcow2".into(),
            size: Some(9),
            ..Default::default()
        });
        assert_eq!(s.disk_images.len(), 2);
        assert_eq!(s.disk_images[0].size, Some(9));
        let text = serde_json::to_string(&s).unwrap();
        // absent fields stay absent: files written before `arch` read the same
        assert!(!text.contains(r#""arch":null"#), "{text}");
        let back: Stream = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn the_os_image_is_optional_and_round_trips() {
        let s: Stream = serde_json::from_str(r#"{"name":"s","ref":"r"}"#).unwrap();
        assert_eq!(s.os_image, None);
        assert!(!serde_json::to_string(&s).unwrap().contains("os_image"));
        let image = OsImage {
            repository: "127.0.0.1:5000/os/s".into(),
            tags: vec!["43.1".into(), "43".into()],
            digest: format!("sha256:{}", "a".repeat(64)),
            commit: "b".repeat(64),
            version: Some("43.1".into()),
            layers: 7,
            size: 1234,
            signatures: vec!["cosign".into(), "gpg".into()],
        };
        assert_eq!(image.reference(), "127.0.0.1:5000/os/s:43");
        let s = Stream {
            os_image: Some(image),
            ..s
        };
        let back: Stream = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
