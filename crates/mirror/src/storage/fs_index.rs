//! The listing indexes of the filesystem backend, so a `tags/list` or
//! `_catalog` page costs what the page holds rather than a walk of every
//! tag or repository.
//!
//! - **Tags**: the `_tags` directory itself is the source of truth; its
//!   sorted names are kept in memory ([`DirCache`]) and reused while the
//!   directory's inode, change time and modification time are those it was
//!   read at. Every tag write, retag and delete renames or unlinks an entry
//!   there, which moves both times, so no write path has to know about the
//!   cache and a crash cannot leave it stale: it lives in memory only.
//! - **Repositories**: one empty marker per repository in `repos/_index/`
//!   (`/` written as `+`), created durably *before* the repository's first
//!   manifest link, so the index holds every repository with a manifest
//!   (possibly more: a crash between the two, or a repository whose
//!   manifests were all deleted; listings skip those by checking
//!   `_manifests`). Its names are cached the same way. A store written
//!   before the index existed is indexed when it is opened, and
//!   `.complete` in the index records that this was done.
//!
//! A file system's time stamps advance by clock ticks, so a change in the
//! same tick as the previous one leaves the stamp as it was. A listing read
//! within [`RACY`] of the directory's last change is therefore served but
//! not kept (git's "racily clean" rule).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::durable;
use super::page::Page;
use super::Result;
use crate::name::RepoName;

/// Where the repository markers live, relative to the store root.
pub(super) const REPO_INDEX: &str = "repos/_index";
/// Written in [`REPO_INDEX`] once every repository of the store has a marker.
const COMPLETE: &str = ".complete";
/// A listing read this close to its directory's last change is not kept.
pub(super) const RACY: Duration = Duration::from_secs(2);
/// Names kept in memory across all cached directories; past it the cache
/// starts over (a 10,000-tag listing is about 0.5 MB).
const MAX_CACHED_NAMES: usize = 2_000_000;

/// What identifies one state of a directory's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirStamp {
    dev: u64,
    ino: u64,
    ctime: (i64, i64),
    mtime: (i64, i64),
}

impl DirStamp {
    fn of(m: &fs::Metadata) -> DirStamp {
        DirStamp {
            dev: m.dev(),
            ino: m.ino(),
            ctime: (m.ctime(), m.ctime_nsec()),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }

    /// The later of the two times, as a wall-clock time.
    fn changed_at(&self) -> SystemTime {
        let (s, ns) = self.ctime.max(self.mtime);
        if s < 0 {
            return UNIX_EPOCH;
        }
        UNIX_EPOCH + Duration::new(s as u64, ns.clamp(0, 999_999_999) as u32)
    }
}

struct Cached {
    stamp: DirStamp,
    names: Arc<Vec<String>>,
}

/// Sorted directory listings kept while their directory is unchanged.
#[derive(Default)]
pub(super) struct DirCache {
    dirs: Mutex<HashMap<PathBuf, Cached>>,
}

impl DirCache {
    /// The names in `dir` that `keep` maps to a listed name, sorted; empty
    /// when `dir` does not exist. Blocking.
    pub(super) fn sorted_names(
        &self,
        dir: &Path,
        keep: impl Fn(&str) -> Option<String>,
    ) -> io::Result<Arc<Vec<String>>> {
        let read_at = SystemTime::now();
        let stamp = match fs::metadata(dir) {
            Ok(m) => DirStamp::of(&m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.forget(dir);
                return Ok(Arc::default());
            }
            Err(e) => return Err(at("reading", dir, e)),
        };
        if let Some(c) = self.lock().get(dir) {
            if c.stamp == stamp {
                return Ok(c.names.clone());
            }
        }
        let mut names = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.forget(dir);
                return Ok(Arc::default());
            }
            Err(e) => return Err(at("reading", dir, e)),
        };
        for e in entries {
            let e = e.map_err(|e| at("reading", dir, e))?;
            if let Some(name) = e.file_name().to_str().and_then(&keep) {
                names.push(name);
            }
        }
        names.sort_unstable();
        let names = Arc::new(names);
        // Entries created while the directory was being read moved its
        // stamp past `stamp`, so the next reader reads again; one created in
        // the tick of the last change might not have: then nothing is kept.
        let settled = read_at
            .duration_since(stamp.changed_at())
            .is_ok_and(|age| age >= RACY);
        let mut dirs = self.lock();
        if settled {
            let cached: usize = dirs.values().map(|c| c.names.len()).sum();
            if cached + names.len() > MAX_CACHED_NAMES {
                dirs.clear();
            }
            dirs.insert(
                dir.to_path_buf(),
                Cached {
                    stamp,
                    names: names.clone(),
                },
            );
        } else {
            dirs.remove(dir);
        }
        Ok(names)
    }

    fn forget(&self, dir: &Path) {
        self.lock().remove(dir);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Cached>> {
        self.dirs.lock().expect("listing cache lock")
    }
}

fn at(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// A repository's marker file name in [`REPO_INDEX`].
pub(super) fn marker_name(repo: &RepoName) -> String {
    repo.as_str().replace('/', "+")
}

/// The repository a marker names (`None` for anything else in the index).
pub(super) fn marker_repo(name: &str) -> Option<String> {
    RepoName::parse(&name.replace('+', "/")).map(|r| r.to_string())
}

/// Writes `repo`'s marker durably (a no-op write when it exists). Blocking.
pub(super) fn write_marker(root: &Path, tmp: &Path, repo: &RepoName) -> Result<()> {
    let dest = root.join(REPO_INDEX).join(marker_name(repo));
    if dest.exists() {
        return Ok(());
    }
    durable::replace_file(tmp, &dest, b"")
}

/// Repositories with a `_manifests` directory, found by walking `repos/`
/// (the authority the index is built from and checked against). Blocking.
pub(super) fn walk_repos(root: &Path) -> io::Result<Vec<RepoName>> {
    let base = root.join("repos");
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(prefix) = stack.pop() {
        let dir = base.join(&prefix);
        let entries = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(at("reading", &dir, e)),
        };
        for e in entries {
            let e = e.map_err(|e| at("reading", &dir, e))?;
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('_') || !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let full = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if base.join(&full).join("_manifests").is_dir() {
                if let Some(r) = RepoName::parse(&full) {
                    out.push(r);
                }
            }
            stack.push(full);
        }
    }
    out.sort();
    Ok(out)
}

/// Gives every repository of the store a marker unless the index is
/// already complete; returns how many markers were written. Writers create
/// markers regardless, so this is safe beside them. Blocking.
pub(super) fn ensure_repo_index(root: &Path, tmp: impl Fn() -> PathBuf) -> Result<usize> {
    let index = root.join(REPO_INDEX);
    if index.join(COMPLETE).exists() {
        return Ok(0);
    }
    durable::create_dirs(&index)?;
    let mut written = 0;
    for repo in walk_repos(root)? {
        if !index.join(marker_name(&repo)).exists() {
            write_marker(root, &tmp(), &repo)?;
            written += 1;
        }
    }
    durable::replace_file(&tmp(), &index.join(COMPLETE), b"")?;
    if written > 0 {
        tracing::info!(repositories = written, index = %index.display(), "repository index built");
    }
    Ok(written)
}

/// Markers missing for repositories that have manifests (what fsck
/// reports and repairs). Blocking.
pub(super) fn missing_markers(root: &Path) -> io::Result<Vec<RepoName>> {
    let index = root.join(REPO_INDEX);
    Ok(walk_repos(root)?
        .into_iter()
        .filter(|r| !index.join(marker_name(r)).exists())
        .collect())
}

/// One `_catalog` page from the index: markers after `last` whose
/// repository has a `_manifests` directory. Blocking.
pub(super) fn repos_page(
    cache: &DirCache,
    root: &Path,
    last: Option<&str>,
    n: Option<usize>,
) -> Result<Page<RepoName>> {
    let index = root.join(REPO_INDEX);
    if !index.join(COMPLETE).exists() {
        // Only a store whose index is being built (or was removed by
        // hand) gets here: the walk is the authority.
        let all = walk_repos(root)?;
        return Ok(Page::of_sorted(&all, last, n));
    }
    let names = cache.sorted_names(&index, marker_repo)?;
    let start = match last {
        Some(l) => names.partition_point(|t| t.as_str() <= l),
        None => 0,
    };
    let want = n.unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut more = false;
    for name in &names[start..] {
        if !root.join("repos").join(name).join("_manifests").is_dir() {
            continue;
        }
        if items.len() == want {
            more = true;
            break;
        }
        if let Some(r) = RepoName::parse(name) {
            items.push(r);
        }
    }
    Ok(Page { items, more })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{FsStorage, Storage};
    use bytes::Bytes;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_cached_listing_follows_every_change_of_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let tags = dir.path().join("_tags");
        fs::create_dir(&tags).unwrap();
        for t in ["b", "a", "c"] {
            fs::write(tags.join(t), t).unwrap();
        }
        let cache = DirCache::default();
        let all = |c: &DirCache| c.sorted_names(&tags, |n| Some(n.to_string())).unwrap();
        // Read within RACY of the last change: served, not kept.
        assert_eq!(*all(&cache), names(&["a", "b", "c"]));
        assert!(cache.lock().is_empty());
        std::thread::sleep(RACY + Duration::from_millis(100));
        assert_eq!(*all(&cache), names(&["a", "b", "c"]));
        assert_eq!(cache.lock().len(), 1, "kept once settled");
        // A new entry, a rename over an existing one and a removal each
        // move the stamp: the next listing reads again.
        fs::write(dir.path().join("tmp"), "x").unwrap();
        fs::rename(dir.path().join("tmp"), tags.join("d")).unwrap();
        assert_eq!(*all(&cache), names(&["a", "b", "c", "d"]));
        fs::remove_file(tags.join("a")).unwrap();
        assert_eq!(*all(&cache), names(&["b", "c", "d"]));
        fs::remove_dir_all(&tags).unwrap();
        assert!(all(&cache).is_empty());
        // Recreated (a new inode): read again.
        fs::create_dir(&tags).unwrap();
        fs::write(tags.join("e"), "e").unwrap();
        assert_eq!(*all(&cache), names(&["e"]));
    }

    #[test]
    fn markers_round_trip_names() {
        let r = RepoName::parse("a/b-c/d").unwrap();
        assert_eq!(marker_name(&r), "a+b-c+d");
        assert_eq!(marker_repo("a+b-c+d").as_deref(), Some("a/b-c/d"));
        assert_eq!(marker_repo(COMPLETE), None);
        assert_eq!(marker_repo("Upper"), None);
    }

    async fn push(st: &FsStorage, repo: &str) {
        let repo = RepoName::parse(repo).unwrap();
        let d = st
            .put_manifest(&repo, "application/x-test", Bytes::from(repo.to_string()))
            .await
            .unwrap();
        st.set_tag(&repo, "v1", &d).await.unwrap();
    }

    async fn page(st: &FsStorage, last: Option<&str>, n: Option<usize>) -> (Vec<String>, bool) {
        let p = st.repos_page(last, n).await.unwrap();
        (p.items.iter().map(|r| r.to_string()).collect(), p.more)
    }

    #[tokio::test]
    async fn the_repository_index_lists_what_the_walk_finds() {
        let dir = tempfile::tempdir().unwrap();
        let st = FsStorage::open(dir.path()).unwrap();
        for r in ["z", "a/b", "a-c", "a"] {
            push(&st, r).await;
        }
        let all = names(&["a", "a-c", "a/b", "z"]);
        assert_eq!(page(&st, None, None).await, (all.clone(), false));
        let walked: Vec<String> = st
            .list_repos()
            .await
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(walked, all);
        assert_eq!(page(&st, None, Some(2)).await, (names(&["a", "a-c"]), true));
        assert_eq!(
            page(&st, Some("a-c"), Some(2)).await,
            (names(&["a/b", "z"]), false)
        );

        // A marker whose repository never got its manifest (a crash between
        // the two writes) is skipped, and does not count for `more`.
        fs::write(dir.path().join(REPO_INDEX).join("zz"), "").unwrap();
        fs::write(dir.path().join(REPO_INDEX).join("b"), "").unwrap();
        assert_eq!(
            page(&st, Some("a/b"), Some(1)).await,
            (names(&["z"]), false)
        );
        assert_eq!(page(&st, None, None).await, (all.clone(), false));
    }

    #[tokio::test]
    async fn a_store_without_an_index_is_indexed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        {
            let st = FsStorage::open(dir.path()).unwrap();
            for r in ["one", "two/deep"] {
                push(&st, r).await;
            }
        }
        // As a store written before the index existed.
        fs::remove_dir_all(dir.path().join(REPO_INDEX)).unwrap();
        let st = FsStorage::open(dir.path()).unwrap();
        assert_eq!(
            page(&st, None, None).await,
            (names(&["one", "two/deep"]), false)
        );
        assert!(dir.path().join(REPO_INDEX).join(COMPLETE).exists());
        let report = crate::fsck::check(&st).await.unwrap();
        assert!(report.unindexed_repos.is_empty(), "{report:?}");
    }

    #[tokio::test]
    async fn fsck_finds_and_repairs_a_repository_missing_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let st = FsStorage::open(dir.path()).unwrap();
        for r in ["kept", "lost"] {
            push(&st, r).await;
        }
        fs::remove_file(dir.path().join(REPO_INDEX).join("lost")).unwrap();
        let st = FsStorage::open(dir.path()).unwrap();
        assert_eq!(page(&st, None, None).await.0, names(&["kept"]));
        let report = crate::fsck::check(&st).await.unwrap();
        assert_eq!(report.unindexed_repos, ["lost"]);
        assert!(report.damaged());
        assert!(
            report.render().contains("not in _catalog"),
            "{}",
            report.render()
        );
        let repaired = crate::fsck::check_and_repair(&st, &Default::default())
            .await
            .unwrap();
        let done = repaired.repair.unwrap();
        assert!(
            done.recovered.iter().any(|a| a.target == "repository lost"),
            "{done:?}"
        );
        assert_eq!(page(&st, None, None).await.0, names(&["kept", "lost"]));
        // (The test's manifests are not images: only the index is checked.)
        let again = crate::fsck::check(&st).await.unwrap();
        assert!(again.unindexed_repos.is_empty(), "{again:?}");
    }
}
