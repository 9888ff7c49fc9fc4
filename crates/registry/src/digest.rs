//! `sha256:` content digests, the only algorithm corral writes.

use sha2::{Digest as _, Sha256};

/// Whether `d` is `sha256:` and 64 hex digits.
///
/// ```
/// use corral_registry::{is_sha256_digest, sha256_digest};
/// assert!(is_sha256_digest(&sha256_digest(b"{}")));
/// assert!(!is_sha256_digest("sha256:abc"));
/// ```
pub fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `sha256:…` digest of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}
