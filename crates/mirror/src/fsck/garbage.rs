//! What only takes space: blobs no repository links (GC removes them once
//! past its grace period), upload sessions, and temporary files.

use std::collections::HashMap;

use super::blobs::BlobInfo;
use super::links::LinkIndex;
use super::report::{FsckReport, Orphan, SessionEntry, TempEntry};
use super::{age, session_state, Context, FsckOptions, Result};
use crate::name::Digest;
use crate::storage::Storage;

pub(super) async fn check(
    store: &dyn Storage,
    opts: &FsckOptions,
    index: &LinkIndex,
    blobs: &HashMap<Digest, BlobInfo>,
    report: &mut FsckReport,
) -> Result<()> {
    let linked = index.linked();
    let mut orphans: Vec<Orphan> = blobs
        .iter()
        .filter(|(d, _)| !linked.contains(d))
        .map(|(d, b)| Orphan {
            digest: d.to_string(),
            bytes: b.bytes,
            age_secs: age(b.modified).as_secs(),
        })
        .collect();
    orphans.sort_by(|a, b| a.digest.cmp(&b.digest));
    report.orphans = orphans;

    let sessions = store
        .list_upload_sessions()
        .await
        .about(|| "listing upload sessions".into())?;
    for s in sessions {
        let idle = age(s.last_activity);
        let state = session_state(s.repo.is_some(), idle, opts);
        report.upload_sessions.push(SessionEntry {
            id: s.id,
            repo: s.repo.map(|r| r.to_string()),
            bytes: s.bytes,
            idle_secs: idle.as_secs(),
            state: state.into(),
        });
    }

    let temps = store
        .list_temp_files()
        .await
        .about(|| "listing temporary files".into())?;
    for t in temps {
        let idle = age(t.modified);
        report.temp_files.push(TempEntry {
            path: t.path.display().to_string(),
            bytes: t.bytes,
            idle_secs: idle.as_secs(),
            state: if idle > opts.idle { "stale" } else { "recent" }.into(),
        });
    }
    Ok(())
}
