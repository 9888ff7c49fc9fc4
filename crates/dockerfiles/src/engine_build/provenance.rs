//! The provenance labels every built image carries.

use std::collections::BTreeMap;
use std::path::Path;

pub use crate::plan::CONTEXT_HASH_LABEL;
/// The label with the digests of the image's bases at build time
/// ([`crate::plan::node_base_digest`]).
pub const BASE_DIGEST_LABEL: &str = "dev.corral.base-digest";
/// The label with the git commit the image folder was built from; `-dirty`
/// is appended when the folder has uncommitted changes.
pub const SOURCE_REVISION_LABEL: &str = "dev.corral.source-revision";

/// The labels passed to the engine's build.
pub fn labels(
    context_hash: &str,
    base_digest: &str,
    revision: Option<&str>,
) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(CONTEXT_HASH_LABEL.to_string(), context_hash.to_string());
    l.insert(BASE_DIGEST_LABEL.to_string(), base_digest.to_string());
    if let Some(r) = revision {
        l.insert(SOURCE_REVISION_LABEL.to_string(), r.to_string());
    }
    l
}

/// The git revision of `dir`: `HEAD`, plus `-dirty` when files under `dir`
/// differ from it. None when `dir` is not in a git work tree.
pub fn source_revision(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let o = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}
