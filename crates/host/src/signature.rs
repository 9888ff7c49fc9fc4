//! A commit's signature, judged against a remote's keyring.

use anyhow::{Context, Result};
use ostree::gio;
use ostree::glib;
use serde::Serialize;

/// How a commit's signature stands against a remote's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum SignatureState {
    /// A good signature by a key of the remote.
    Valid { fingerprint: String, signer: String },
    /// No signature at all.
    Unsigned,
    /// Signed, but by no key of the remote.
    UnknownKey { fingerprint: String },
    /// Signed by a key of the remote, but the signature does not hold
    /// (tampered, expired or revoked).
    Invalid { fingerprint: String },
    /// The deployment has no remote to judge it by.
    NoRemote,
}

impl SignatureState {
    pub fn is_valid(&self) -> bool {
        matches!(self, SignatureState::Valid { .. })
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            SignatureState::Valid {
                fingerprint,
                signer,
            } => {
                format!("signed by {signer} ({fingerprint})")
            }
            SignatureState::Unsigned => "unsigned".into(),
            SignatureState::UnknownKey { fingerprint } => {
                format!("signed by {fingerprint}, a key the remote does not trust")
            }
            SignatureState::Invalid { fingerprint } => {
                format!("bad signature by {fingerprint}")
            }
            SignatureState::NoRemote => "no remote to check it against".into(),
        }
    }
}

/// Judges commit `checksum` (already in `repo`) against `remote`'s keys.
pub fn check(repo: &ostree::Repo, checksum: &str, remote: &str) -> Result<SignatureState> {
    let result = match repo.verify_commit_for_remote(checksum, remote, gio::Cancellable::NONE) {
        Ok(r) => r,
        Err(e) => {
            let msg = e.message().to_lowercase();
            if msg.contains("no signatures") || msg.contains("not signed") {
                return Ok(SignatureState::Unsigned);
            }
            return Err(anyhow::Error::new(e).context(format!(
                "checking the signature of {checksum} against remote {remote}"
            )));
        }
    };
    Ok(state_of(&result))
}

/// Judges a commit that is not in a repository yet (inside an image):
/// its object's bytes against the `ostree.gpgsigs` of its detached
/// metadata, with `remote`'s keys.
pub fn check_data(
    repo: &ostree::Repo,
    remote: &str,
    commit: &glib::Variant,
    detached: Option<&glib::Variant>,
) -> Result<SignatureState> {
    let mut sigs = Vec::new();
    if let Some(d) = detached {
        let dict = glib::VariantDict::new(Some(d));
        if let Some(list) = dict.lookup_value(
            "ostree.gpgsigs",
            Some(glib::VariantTy::new("aay").expect("valid")),
        ) {
            for i in 0..list.n_children() {
                sigs.extend_from_slice(&list.child_value(i).data_as_bytes());
            }
        }
    }
    if sigs.is_empty() {
        return Ok(SignatureState::Unsigned);
    }
    let result = repo
        .gpg_verify_data(
            Some(remote),
            &commit.data_as_bytes(),
            &glib::Bytes::from_owned(sigs),
            None::<&gio::File>,
            None::<&gio::File>,
            gio::Cancellable::NONE,
        )
        .with_context(|| format!("checking the commit's signature against remote {remote}"))?;
    Ok(state_of(&result))
}

fn state_of(result: &ostree::GpgVerifyResult) -> SignatureState {
    if result.count_all() == 0 {
        return SignatureState::Unsigned;
    }
    let mut first_bad = None;
    for i in 0..result.count_all() {
        // ostree_gpg_verify_result_get_all: (b valid, b sig-expired,
        // b key-expired, b key-revoked, b key-missing, s fingerprint, ...,
        // s user-name at 10, s user-email at 11)
        let all = result.all(i);
        let valid = all.child_value(0).get::<bool>().unwrap_or(false);
        let missing = all.child_value(4).get::<bool>().unwrap_or(false);
        let fingerprint = all.child_value(5).get::<String>().unwrap_or_default();
        if valid {
            let name = all.child_value(10).get::<String>().unwrap_or_default();
            let email = all.child_value(11).get::<String>().unwrap_or_default();
            let signer = match (name.is_empty(), email.is_empty()) {
                (false, false) => format!("{name} <{email}>"),
                (false, true) => name,
                (true, false) => format!("<{email}>"),
                (true, true) => fingerprint.clone(),
            };
            return SignatureState::Valid {
                fingerprint,
                signer,
            };
        }
        if first_bad.is_none() {
            first_bad = Some(if missing {
                SignatureState::UnknownKey { fingerprint }
            } else {
                SignatureState::Invalid { fingerprint }
            });
        }
    }
    first_bad.unwrap_or(SignatureState::Unsigned)
}
