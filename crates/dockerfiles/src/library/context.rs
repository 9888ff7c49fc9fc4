//! The content hash of an image's build context, honouring `.dockerignore`.
//! It is what `dev.corral.context-hash` on a built image records.

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::path::Path;

/// `.dockerignore` patterns, matched the way the Docker CLI does: Go
/// `filepath.Match` globs plus `**`, `!` re-includes, the last match wins,
/// and a pattern that matches a folder matches everything in it.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    /// (segments, is an exception)
    patterns: Vec<(Vec<String>, bool)>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Self {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (l, exception) = match l.strip_prefix('!') {
                    Some(rest) => (rest.trim(), true),
                    None => (l, false),
                };
                let segs = l
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .map(str::to_string)
                    .collect();
                (segs, exception)
            })
            .filter(|(s, _): &(Vec<String>, bool)| !s.is_empty())
            .collect();
        Self { patterns }
    }

    /// Whether a `/`-separated path relative to the context is excluded.
    pub fn excludes(&self, path: &str) -> bool {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut excluded = false;
        for (pat, exception) in &self.patterns {
            let hit = (1..=segs.len()).any(|n| match_segments(pat, &segs[..n]));
            if hit {
                excluded = !exception;
            }
        }
        excluded
    }
}

fn match_segments(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((p, rest)) => match path.split_first() {
            Some((s, prest)) => glob(p.as_bytes(), s.as_bytes()) && match_segments(rest, prest),
            None => false,
        },
    }
}

/// One path segment against `*`, `?`, `[...]` and `\` escapes.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, len)) = class(&p[pi..], s[si]) {
                        if matched {
                            pi += len;
                            si += 1;
                            continue;
                        }
                    }
                }
                b'\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                    pi += 2;
                    si += 1;
                    continue;
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// `[abc]`, `[a-z]`, `[^x]`: (matches, pattern length).
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'^' | b'!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = p[i];
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&x| x != b']') {
            let hi = p[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
    None
}

/// One entry of a build context, as sent to the engine and hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    /// `/`-separated, relative to the context folder.
    pub rel: String,
    pub kind: ContextEntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextEntryKind {
    /// A regular file and whether it is executable.
    File { executable: bool },
    /// A symbolic link and its target.
    Symlink(std::path::PathBuf),
}

/// The files and symlinks of the build context of `dir`, by sorted relative
/// path: everything not excluded by `dir/.dockerignore` (the Dockerfile
/// always counts).
pub fn context_files(dir: &Path) -> anyhow::Result<Vec<ContextEntry>> {
    let ignore_path = dir.join(".dockerignore");
    let ignore = match crate::files::read_to_string(&ignore_path, crate::files::CONFIG_LIMIT) {
        Ok(t) => DockerIgnore::parse(&t),
        Err(e) if crate::files::is_not_found(&e) => DockerIgnore::default(),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name().min_depth(1) {
        let entry = entry.map_err(|e| crate::files::walk_error(dir, e))?;
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .replace('\\', "/");
        if rel != "Dockerfile" && ignore.excludes(&rel) {
            continue;
        }
        let ft = entry.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(entry.path())
                .with_context(|| format!("reading link {}", entry.path().display()))?;
            out.push(ContextEntry {
                rel,
                kind: ContextEntryKind::Symlink(target),
            });
        } else if ft.is_file() {
            out.push(ContextEntry {
                rel,
                kind: ContextEntryKind::File {
                    executable: executable(&entry),
                },
            });
        }
    }
    Ok(out)
}

/// The sha256 of the build context of `dir` ([`context_files`]), with each
/// file's executable bit and content. Returns `sha256:<hex>`.
pub fn context_hash(dir: &Path) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    for entry in context_files(dir)? {
        let rel = &entry.rel;
        match &entry.kind {
            ContextEntryKind::Symlink(target) => {
                hasher.update(format!("L {rel} {}\n", target.display()));
            }
            ContextEntryKind::File { executable } => {
                let path = dir.join(rel);
                let content =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                hasher.update(format!("F {rel} {executable} {}\n", content.len()));
                hasher.update(&content);
            }
        }
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

#[cfg(unix)]
fn executable(entry: &walkdir::DirEntry) -> bool {
    use std::os::unix::fs::PermissionsExt;
    entry
        .metadata()
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn executable(_: &walkdir::DirEntry) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns() {
        let di = DockerIgnore::parse(
            "# c\n*.md\n!help.md\ntmp/\n**/*.pyc\n/build\nsecret?.txt\n[ab].log\n",
        );
        assert!(di.excludes("README.md"));
        assert!(!di.excludes("help.md"));
        assert!(di.excludes("tmp/x/y"));
        assert!(di.excludes("a/b/c.pyc"));
        assert!(di.excludes("c.pyc"));
        assert!(di.excludes("build/out"));
        assert!(di.excludes("secret1.txt"));
        assert!(!di.excludes("secret12.txt"));
        assert!(di.excludes("a.log") && !di.excludes("c.log"));
        assert!(!di.excludes("src/app.py"));
        // * does not cross folders
        assert!(!di.excludes("docs/x.md"));
    }

    #[test]
    fn hash_follows_content_and_ignore() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("Dockerfile"), "FROM a\n").unwrap();
        std::fs::write(t.path().join("notes.txt"), "x").unwrap();
        let h1 = context_hash(t.path()).unwrap();
        assert_eq!(h1, context_hash(t.path()).unwrap());
        std::fs::write(t.path().join("notes.txt"), "y").unwrap();
        let h2 = context_hash(t.path()).unwrap();
        assert_ne!(h1, h2);
        std::fs::write(t.path().join(".dockerignore"), "notes.txt\nDockerfile\n").unwrap();
        let h3 = context_hash(t.path()).unwrap();
        std::fs::write(t.path().join("notes.txt"), "z").unwrap();
        assert_eq!(h3, context_hash(t.path()).unwrap());
        std::fs::write(t.path().join("Dockerfile"), "FROM b\n").unwrap();
        assert_ne!(h3, context_hash(t.path()).unwrap());
    }
}
