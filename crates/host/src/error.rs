//! The failures a caller tells apart; everything else is an `anyhow`
//! chain with the path, ref or checksum that was being worked on.

use std::path::PathBuf;

/// Failures with their own handling or exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    #[error("{path} is locked by {holder}")]
    Locked { path: PathBuf, holder: String },
    #[error("no progress for {seconds} s while {what}; the transfer stalled and was stopped")]
    Stalled { what: String, seconds: u64 },
    #[error(
        "not enough space on {mount} for {what}: {need} bytes needed (with a reserve of {reserve}), {free} free"
    )]
    NoSpace {
        mount: PathBuf,
        what: String,
        need: u64,
        reserve: u64,
        free: u64,
    },
    #[error(
        "{remote}:{ostree_ref} points at {new} from {new_date}, older than the deployed {old} from {old_date}; pass --allow-downgrade to go back"
    )]
    Downgrade {
        remote: String,
        ostree_ref: String,
        new: String,
        new_date: String,
        old: String,
        old_date: String,
    },
    #[error("commit {checksum} is not signed by a key of remote {remote}: {why}")]
    BadSignature {
        checksum: String,
        remote: String,
        why: String,
    },
}
