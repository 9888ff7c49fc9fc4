//! Package lockfiles: the exact builds a stream's compose installs, so two
//! composes of the same stream resolve the same versions even when the
//! repositories have moved on (rpm-ostree's `--ex-lockfile`).
//!
//! `corral compose lock STREAM -o FILE` writes one from a fresh build;
//! the stream's `lockfile = "FILE"` makes every compose install exactly
//! those packages (by NEVRA) and checks each installed header's SHA-256
//! against the lock, so a rebuild under the same NEVRA is refused too.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use corral_tree::{Recipe, RpmDb};
use serde::{Deserialize, Serialize};

/// The locked package set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// Package name → its locked build.
    pub packages: BTreeMap<String, LockedPackage>,
}

/// One locked build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    /// `[epoch:]version-release.arch`.
    pub evra: String,
    /// `sha256:` and the SHA-256 of the package header.
    pub digest: String,
}

impl Lockfile {
    /// Reads and parses a lockfile.
    pub fn read(path: &Path) -> Result<Lockfile> {
        // One line per package: the default limit holds tens of thousands.
        let text = corral_configfile::read_to_string(path, corral_configfile::DEFAULT_LIMIT)
            .context("reading the lockfile")?;
        let lock: Lockfile = serde_json::from_str(&text)
            .with_context(|| format!("parsing the lockfile {}", path.display()))?;
        anyhow::ensure!(
            !lock.packages.is_empty(),
            "the lockfile {} locks no packages",
            path.display()
        );
        for (name, p) in &lock.packages {
            corral_tree::values::package_spec(&format!("{name}-{}", p.evra))
                .map_err(|e| anyhow::anyhow!("{}: package {name}: {e}", path.display()))?;
            anyhow::ensure!(
                p.digest
                    .strip_prefix("sha256:")
                    .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())),
                "{}: package {name}: digest `{}` is not sha256:<64 hex digits>",
                path.display(),
                p.digest
            );
        }
        Ok(lock)
    }

    /// The packages installed in the tree at `root`.
    pub fn from_tree(root: &Path) -> Result<Lockfile> {
        let db =
            RpmDb::find(root).with_context(|| format!("{} has no rpm database", root.display()))?;
        let mut packages = BTreeMap::new();
        for (nevra, digest) in db
            .header_digests()
            .with_context(|| format!("reading the rpm database of {}", root.display()))?
        {
            let (name, evra) = split_nevra(&nevra)
                .with_context(|| format!("`{nevra}` is not name-version-release.arch"))?;
            let locked = LockedPackage {
                evra: evra.to_string(),
                digest: format!("sha256:{digest}"),
            };
            if let Some(other) = packages.insert(name.to_string(), locked) {
                anyhow::bail!(
                    "{name} is installed twice ({} and {evra}); a lockfile holds one build per name",
                    other.evra
                );
            }
        }
        Ok(Lockfile { packages })
    }

    /// Writes the lockfile (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        std::fs::write(tmp.path(), text)
            .with_context(|| format!("writing {}", tmp.path().display()))?;
        tmp.persist(path)
            .with_context(|| format!("writing the lockfile {}", path.display()))?;
        Ok(())
    }

    /// `recipe` installing exactly the locked builds: every locked NEVRA
    /// is named, so dnf resolves nothing newer.
    pub fn pin(&self, recipe: &Recipe) -> Recipe {
        let mut pinned = recipe.clone();
        pinned.packages = self
            .packages
            .iter()
            .map(|(name, p)| format!("{name}-{}", p.evra))
            .collect();
        pinned
    }

    /// Checks that the tree at `root` holds exactly the locked builds.
    pub fn verify(&self, root: &Path) -> Result<()> {
        let found = Lockfile::from_tree(root)?;
        let mut problems = Vec::new();
        for (name, want) in &self.packages {
            match found.packages.get(name) {
                None => problems.push(format!("{name}: locked {} but not installed", want.evra)),
                Some(got) if got.evra != want.evra => problems.push(format!(
                    "{name}: locked {} but {} is installed",
                    want.evra, got.evra
                )),
                Some(got) if got.digest != want.digest => problems.push(format!(
                    "{name}-{}: header {} differs from the locked {} (a rebuild)",
                    want.evra, got.digest, want.digest
                )),
                Some(_) => {}
            }
        }
        for (name, got) in &found.packages {
            if !self.packages.contains_key(name) {
                problems.push(format!("{name}-{}: installed but not locked", got.evra));
            }
        }
        anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
        Ok(())
    }
}

/// `name-[epoch:]version-release.arch` → (name, evra).
fn split_nevra(nevra: &str) -> Option<(&str, &str)> {
    // The name is everything before the second `-` from the right.
    let release_dash = nevra.rfind('-')?;
    let version_dash = nevra[..release_dash].rfind('-')?;
    let (name, evra) = (&nevra[..version_dash], &nevra[version_dash + 1..]);
    (!name.is_empty() && evra.contains('.')).then_some((name, evra))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nevras() {
        assert_eq!(
            split_nevra("corral-hello-1.0-1.noarch"),
            Some(("corral-hello", "1.0-1.noarch"))
        );
        assert_eq!(
            split_nevra("shadow-utils-2:4.15-1.fc43.x86_64"),
            Some(("shadow-utils", "2:4.15-1.fc43.x86_64"))
        );
        assert_eq!(split_nevra("nodash"), None);
    }

    #[test]
    fn pins_a_recipe_and_checks_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock.json");
        let lock = Lockfile {
            packages: BTreeMap::from([(
                "corral-hello".to_string(),
                LockedPackage {
                    evra: "1.0-1.noarch".into(),
                    digest: format!("sha256:{}", "ab".repeat(32)),
                },
            )]),
        };
        lock.write(&path).unwrap();
        assert_eq!(Lockfile::read(&path).unwrap(), lock);
        let recipe = Recipe::parse(
            "name = \"t\"\nreleasever = \"43\"\npackages = [\"corral-hello\"]\n[[repo]]\nid = \"r\"\nbaseurl = \"/r\"\ngpgcheck = false\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(lock.pin(&recipe).packages, ["corral-hello-1.0-1.noarch"]);

        std::fs::write(
            &path,
            r#"{"packages": {"a": {"evra": "1-1.noarch", "digest": "md5:00"}}}"#,
        )
        .unwrap();
        let err = format!("{:#}", Lockfile::read(&path).unwrap_err());
        assert!(err.contains("package a: digest `md5:00`"), "{err}");
        std::fs::write(&path, r#"{"packages": {}, "extra": 1}"#).unwrap();
        let err = format!("{:#}", Lockfile::read(&path).unwrap_err());
        assert!(
            err.contains("x.lock.json") && err.contains("extra"),
            "{err}"
        );
    }
}
