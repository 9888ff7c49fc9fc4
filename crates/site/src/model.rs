//! The facts the pages show, as plain data. A [`crate::Source`] fills them;
//! the pages render them as HTML and serialize them as their JSON twins.

use std::collections::BTreeMap;

use serde::Serialize;

/// One page of a lexically sorted listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub items: Vec<String>,
    /// More entries follow the last one.
    pub more: bool,
}

/// What the mirror's trusted keys say about a tag's signatures.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Signature {
    /// A trusted key signed this digest under this name.
    Verified {
        /// `cosign` or `gpg`.
        format: String,
        /// The key's fingerprint.
        key: String,
        /// Every format with a valid signature by a trusted key, `format`
        /// first.
        formats: Vec<String>,
    },
    /// Signatures exist, none made by a trusted key for this reference.
    NotVerified {
        reason: String,
        detail: String,
    },
    Unsigned,
}

impl Signature {
    /// A short class name for the page (`verified`, `unverified`, `unsigned`).
    pub fn class(&self) -> &'static str {
        match self {
            Signature::Verified { .. } => "verified",
            Signature::NotVerified { .. } => "unverified",
            Signature::Unsigned => "unsigned",
        }
    }

    /// The state in words.
    /// Whether a valid signature in `format` (`cosign`, `gpg`) was found.
    pub fn verified_in(&self, format: &str) -> bool {
        matches!(self, Signature::Verified { formats, .. } if formats.iter().any(|f| f == format))
    }

    /// [`Signature::text`] with a verified key's fingerprint cut to 16
    /// characters, for cards (the full text goes in a `title`).
    pub fn short_text(&self) -> String {
        match self {
            Signature::Verified { format, key, .. } if key.chars().count() > 16 => {
                let short: String = key.chars().take(16).collect();
                format!("verified ({format}, key {short}…)")
            }
            _ => self.text(),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Signature::Verified { format, key, .. } => format!("verified ({format}, key {key})"),
            Signature::NotVerified { reason, detail } => {
                format!("signed, not verified: {reason} ({detail})")
            }
            Signature::Unsigned => "unsigned".to_string(),
        }
    }
}

/// One tagged image, as read from its manifest and config.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Image {
    pub repository: String,
    pub tag: String,
    /// `sha256:<hex>` of the manifest.
    pub digest: String,
    /// Manifest, config and layers as stored (compressed).
    pub compressed_size: u64,
    /// The layers unpacked, when the mirror could tell.
    pub uncompressed_size: Option<u64>,
    /// RFC 3339, from the manifest annotation or the config.
    pub created: Option<String>,
    /// `os/arch[/variant]`.
    pub platforms: Vec<String>,
    /// The config's labels.
    pub labels: BTreeMap<String, String>,
    pub signature: Signature,
}

/// An artifact that refers to an image (OCI 1.1 `subject`), found through
/// the referrers API, with the bytes of its first layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The artifact manifest's digest.
    pub manifest: String,
    /// The digest of the blob `content` came from.
    pub blob: String,
    pub content: Vec<u8>,
}

/// The stream files published beside the OSTree repository
/// (`streams/<name>.json`, docs/site.md), under the site's names.
pub use corral_streamfile::{
    Change as PackageChange, Diff as PackageDiff, DiskImage as StreamDiskImage, Stream,
    Version as StreamVersion,
};

/// A published disk image.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DiskImage {
    pub name: String,
    /// Where it downloads from.
    pub url: String,
    pub size: u64,
    /// Seconds since the epoch.
    pub modified: u64,
    pub sha256: Option<String>,
    /// Whether the file hashes to the published checksum.
    pub checksum_matches: Option<bool>,
    /// The detached signature's URL.
    pub signature_url: Option<String>,
    pub signature: Signature,
}

/// Who may verify what: the mirror's trusted keys, for the verify
/// commands.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TrustedKeys {
    /// Cosign public key files (their names) the mirror trusts.
    pub cosign_keys: Vec<String>,
    /// GPG keyring files (their names).
    pub gpg_keyrings: Vec<String>,
}
