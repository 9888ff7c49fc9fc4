//! `/etc/corral/host.toml`, read from the deployment an operation starts
//! from (on a booted host that is the live `/etc`).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;

/// The file's path inside a deployment.
pub const CONFIG_PATH: &str = "etc/corral/host.toml";

/// Host settings; every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct HostConfig {
    /// Deployments kept after an upgrade (the booted and pinned ones are
    /// kept on top of this when they would fall out).
    pub keep: usize,
    /// Failed boots of a new deployment before `check` rolls back.
    pub max_failed_boots: u32,
    /// Seconds without progress before a transfer is stopped.
    pub stall_timeout: u64,
    /// Bytes kept free on the repository's and /boot's file systems.
    pub reserve_bytes: u64,
    /// `[updates]`: when `corral host auto` reboots into an update.
    pub updates: crate::strategy::UpdatesConfig,
    /// `[images]`: the container trust `ostree-image-signed:` images are
    /// verified against.
    pub images: ImageTrust,
}

/// `[images]` of host.toml: the keys whose container signatures an
/// `ostree-image-signed:` image must carry. Paths are inside the
/// deployment (on a booted host, the live `/etc`). With both keys set,
/// both signatures are required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ImageTrust {
    /// A cosign public key (`corral key generate --type cosign`).
    pub cosign_key: Option<std::path::PathBuf>,
    /// A GPG public keyring (`gpg --export`), for GPG simple signing.
    pub gpg_keyring: Option<std::path::PathBuf>,
    /// Where GPG signatures are looked up (default: the registry's
    /// `/sigstore`, corral mirror's lookaside).
    pub lookaside: Option<String>,
}

impl ImageTrust {
    pub fn is_empty(&self) -> bool {
        self.cosign_key.is_none() && self.gpg_keyring.is_none()
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            keep: 3,
            max_failed_boots: 3,
            stall_timeout: 120,
            reserve_bytes: 16 << 20,
            updates: Default::default(),
            images: ImageTrust::default(),
        }
    }
}

impl HostConfig {
    /// Reads the config of the deployment at `root`; defaults when it has
    /// none. Errors name the file, line and column.
    pub fn load(root: &Path) -> Result<HostConfig> {
        let path = root.join(CONFIG_PATH);
        let text = match corral_configfile::read_to_string(&path, 1024 * 1024) {
            Ok(t) => t,
            Err(corral_configfile::ConfigFileError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(HostConfig::default())
            }
            Err(e) => return Err(e.into()),
        };
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))
    }

    /// Parses the file's text; the error starts with `line:column: `.
    pub fn parse(text: &str) -> Result<HostConfig, String> {
        toml::from_str::<HostConfig>(text)
            .map_err(|e| {
                let (line, col) = e
                    .span()
                    .map(|s| {
                        let before = &text[..s.start.min(text.len())];
                        let line = before.matches('\n').count() + 1;
                        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                        (line, col)
                    })
                    .unwrap_or((1, 1));
                format!("{line}:{col}: {}", e.message())
            })
            .and_then(|c| {
                if c.keep < 2 {
                    Err("1:1: keep must be at least 2 (the new deployment and a rollback)".into())
                } else if c.max_failed_boots == 0 {
                    Err("1:1: max-failed-boots must be at least 1".into())
                } else {
                    c.updates
                        .validate()
                        .map(|()| c)
                        .map_err(|e| format!("1:1: {e}"))
                }
            })
    }

    pub fn stall(&self) -> Duration {
        Duration::from_secs(self.stall_timeout.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_config_is_the_defaults_and_a_huge_one_is_refused() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            HostConfig::load(root.path()).unwrap(),
            HostConfig::default()
        );
        let path = root.path().join(CONFIG_PATH);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![b'#'; 2 * 1024 * 1024]).unwrap();
        let err = format!("{:#}", HostConfig::load(root.path()).unwrap_err());
        assert!(
            err.starts_with(&format!("{}: larger than", path.display())),
            "{err}"
        );
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(HostConfig::parse("").unwrap(), HostConfig::default());
        let c = HostConfig::parse("keep = 4\nmax-failed-boots = 2\n").unwrap();
        assert_eq!((c.keep, c.max_failed_boots, c.stall_timeout), (4, 2, 120));
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = HostConfig::parse("keep = 3\nmax-failed-bots = 2\n").unwrap_err();
        assert!(err.starts_with("2:1: "), "{err}");
        assert!(err.contains("max-failed-bots"), "{err}");
        let err = HostConfig::parse("keep = 1\n").unwrap_err();
        assert!(err.contains("at least 2"), "{err}");
    }

    #[test]
    fn a_missing_file_gives_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(HostConfig::load(dir.path()).unwrap(), HostConfig::default());
        std::fs::create_dir_all(dir.path().join("etc/corral")).unwrap();
        std::fs::write(dir.path().join(CONFIG_PATH), "keep = x\n").unwrap();
        let err = HostConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("etc/corral/host.toml:1:8"), "{err}");
    }
}
