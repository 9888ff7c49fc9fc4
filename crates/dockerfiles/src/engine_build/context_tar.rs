//! The build context as the tar the Engine API takes: the files
//! [`context_files`] lists (so `.dockerignore` is honoured exactly as the
//! context hash honours it), with owner root and a fixed mtime so equal
//! contexts give equal archives.

use crate::library::{context_files, ContextEntryKind};
use anyhow::Context;
use std::collections::BTreeSet;
use std::path::Path;

/// The tar of the context `dir`, with `Dockerfile` replaced by `dockerfile`
/// (the registry-mapped text) and every file's mtime set to `mtime`.
pub fn context_tar(dir: &Path, dockerfile: &str, mtime: u64) -> anyhow::Result<Vec<u8>> {
    let entries = context_files(dir)?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for entry in &entries {
        // parent folders first, so the engine sees their modes
        let mut parent = String::new();
        for seg in entry
            .rel
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, p)| p)
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(seg);
            if dirs.insert(parent.clone()) {
                let mut h = header(tar::EntryType::Directory, mtime);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, format!("{parent}/"), std::io::empty())
                    .with_context(|| format!("adding {parent} to the context tar"))?;
            }
        }
        let path = dir.join(&entry.rel);
        match &entry.kind {
            ContextEntryKind::File { executable } => {
                let content: Vec<u8> = if entry.rel == "Dockerfile" {
                    dockerfile.as_bytes().to_vec()
                } else {
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
                };
                let mut h = header(tar::EntryType::Regular, mtime);
                h.set_mode(if *executable { 0o755 } else { 0o644 });
                h.set_size(content.len() as u64);
                tar.append_data(&mut h, &entry.rel, content.as_slice())
                    .with_context(|| format!("adding {} to the context tar", entry.rel))?;
            }
            ContextEntryKind::Symlink(target) => {
                let mut h = header(tar::EntryType::Symlink, mtime);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, &entry.rel, target)
                    .with_context(|| format!("adding {} to the context tar", entry.rel))?;
            }
        }
    }
    tar.into_inner().context("finishing the context tar")
}

fn header(kind: tar::EntryType, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h
}

/// `SOURCE_DATE_EPOCH`, or 0.
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
