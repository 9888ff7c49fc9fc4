//! The resumable state: which items of which steps succeeded, on which
//! inputs. An item is recorded as soon as it succeeds (the whole file is
//! written to a temporary file and renamed over the old one), so a failure
//! later on leaves the earlier successes in place and a rerun skips them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The size limit of the state file: a few hundred bytes per item.
pub const STATE_LIMIT: u64 = corral_configfile::DEFAULT_LIMIT;

/// One succeeded item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// The hash of everything the item was made from; another value
    /// means the item is redone.
    pub input: String,
    /// Unix time it succeeded.
    pub at: i64,
    /// What it produced (a digest, a commit), for later steps and reports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

/// The state file: item key (`base/sample/base:43/build`) to record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReleaseState {
    #[serde(default)]
    pub items: BTreeMap<String, ItemRecord>,
    #[serde(skip)]
    path: PathBuf,
}

impl ReleaseState {
    /// Loads `path`, or an empty state when it does not exist yet.
    pub fn load(path: &Path) -> anyhow::Result<ReleaseState> {
        use corral_configfile::ConfigFileError;
        let mut state = match corral_configfile::read(path, STATE_LIMIT) {
            Ok(bytes) => serde_json::from_slice::<ReleaseState>(&bytes)
                .with_context(|| format!("parsing the release state {}", path.display()))?,
            Err(ConfigFileError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ReleaseState::default()
            }
            Err(e) => return Err(e.into()),
        };
        state.path = path.to_path_buf();
        Ok(state)
    }

    /// The record of `key` if it succeeded on `input`.
    pub fn done(&self, key: &str, input: &str) -> Option<&ItemRecord> {
        self.items.get(key).filter(|r| r.input == input)
    }

    pub fn get(&self, key: &str) -> Option<&ItemRecord> {
        self.items.get(key)
    }

    /// Records `key` as succeeded and writes the file at once.
    pub fn record(
        &mut self,
        key: &str,
        input: &str,
        at: i64,
        outputs: BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        self.items.insert(
            key.to_string(),
            ItemRecord {
                input: input.to_string(),
                at,
                outputs,
            },
        );
        self.save()
    }

    /// Drops the record of `key` (its item is redone) and writes the file.
    pub fn forget(&mut self, key: &str) -> anyhow::Result<()> {
        if self.items.remove(key).is_some() {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> anyhow::Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("writing {}", self.path.display()))?;
        serde_json::to_writer_pretty(&mut tmp, self)?;
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("writing {}", self.path.display()))?;
        tmp.persist(&self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

/// sha256 over the parts, each length-prefixed so boundaries count.
pub use corral_oci::sha256_parts as input_hash;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reload_and_inputs_decide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let mut s = ReleaseState::load(&path).unwrap();
        assert!(s.items.is_empty());
        let out = BTreeMap::from([("digest".to_string(), "sha256:ab".to_string())]);
        s.record("base/x/build", "sha256:1", 10, out.clone())
            .unwrap();
        let s = ReleaseState::load(&path).unwrap();
        assert_eq!(s.done("base/x/build", "sha256:1").unwrap().outputs, out);
        assert!(s.done("base/x/build", "sha256:2").is_none());
        assert!(s.done("base/y/build", "sha256:1").is_none());
        // no temporary files are left beside it
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn input_hash_sees_boundaries() {
        assert_ne!(input_hash(["ab", "c"]), input_hash(["a", "bc"]));
        assert_eq!(input_hash(["ab", "c"]), input_hash(["ab", "c"]));
    }
}
