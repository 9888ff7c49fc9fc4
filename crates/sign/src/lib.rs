//! Image signing for corral.
//!
//! - [`cosign_key`]: cosign-format key pairs (ECDSA P-256; the private key is
//!   PKCS#8 encrypted with scrypt + NaCl secretbox, PEM `ENCRYPTED SIGSTORE
//!   PRIVATE KEY`), file-permission checks and password sources.
//! - [`payload`]: the "simple signing" JSON both formats sign.
//! - [`identity`]: containers-policy.json `signedIdentity` rules: which
//!   signed references count for an image, as skopeo and podman decide.
//! - [`cosign`]: signatures as `sha256-<hex>.sig` manifests (cosign's tag
//!   layout, also pushed with `subject` so it is an OCI 1.1 referrer).
//! - [`gpg`]: "atomic container signatures" made and checked with GnuPG and
//!   stored in a lookaside (corral mirror's `/sigstore/`).
//! - [`targets`]: what a signature of a tag covers: the manifest, and for
//!   a multi-platform image (an index) each platform manifest too.
//! - [`policy`]: containers/image `policy.json` and `registries.d` for clients.
//! - [`cli`]: the clap commands `corral key|sign|verify|policy` run.
//!
//! Both formats reach registries through `corral_registry::Client`.

pub mod cli;
pub mod cosign;
pub mod cosign_key;
pub mod gpg;
pub mod identity;
pub mod payload;
pub mod policy;
pub mod targets;

/// Why a verification said no. Each is its own answer so scripts and
/// tests can tell them apart.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("no signature found for {0}")]
    NoSignature(String),
    #[error("no signature of {0} was made by the given key")]
    WrongKey(String),
    #[error("signature is for digest {found}, the image is {expected}")]
    OtherDigest { expected: String, found: String },
    #[error("signature is for reference {found}, which {rule} does not accept for {expected}")]
    OtherReference {
        expected: String,
        found: String,
        /// The `signedIdentity` type that said no.
        rule: String,
    },
}
