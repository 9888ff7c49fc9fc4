//! Client configuration for containers/image (podman, skopeo, CRI-O):
//! `policy.json` requiring signatures from the mirror and a `registries.d`
//! file saying where they are.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

/// Which signatures the policy demands.
#[derive(Debug, Clone)]
pub enum Trust {
    /// cosign format, checked against this public key.
    Cosign(PathBuf),
    /// GPG simple signing, checked against this keyring.
    Gpg(PathBuf),
}

/// `policy.json`: reject by default, require signatures for the mirror's
/// host, accept anything for local transports (copy destinations).
pub fn policy_json(host: &str, trust: &Trust) -> serde_json::Value {
    let requirement = match trust {
        Trust::Cosign(key) => json!({
            "type": "sigstoreSigned",
            "keyPath": key,
            "signedIdentity": { "type": "matchRepoDigestOrExact" },
        }),
        Trust::Gpg(keyring) => json!({
            "type": "signedBy",
            "keyType": "GPGKeys",
            "keyPath": keyring,
            "signedIdentity": { "type": "matchRepoDigestOrExact" },
        }),
    };
    let any = json!([{ "type": "insecureAcceptAnything" }]);
    json!({
        "default": [{ "type": "reject" }],
        "transports": {
            "docker": { host: [requirement] },
            "oci": { "": any },
            "dir": { "": any },
            "containers-storage": { "": any },
        },
    })
}

/// The registries.d YAML for `host`.
pub fn registries_d(host: &str, base_url: &str, trust: &Trust) -> String {
    match trust {
        Trust::Gpg(_) => format!(
            "# written by corral policy\ndocker:\n  {host}:\n    lookaside: {}/sigstore\n",
            base_url.trim_end_matches('/')
        ),
        Trust::Cosign(_) => {
            format!("# written by corral policy\ndocker:\n  {host}:\n    use-sigstore-attachments: true\n")
        }
    }
}

/// Writes `out/policy.json` and `out/registries.d/corral.yaml` for the
/// mirror at `mirror_url` (`http[s]://host[:port]`). Key paths are made
/// absolute, since clients resolve them from anywhere.
pub fn write(mirror_url: &str, trust: Trust, out: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let host = mirror_url
        .split_once("://")
        .map(|(_, h)| h)
        .unwrap_or(mirror_url)
        .trim_end_matches('/');
    anyhow::ensure!(
        !host.is_empty() && !host.contains('/'),
        "mirror URL {mirror_url:?} is not http[s]://HOST[:PORT]"
    );
    let base = if mirror_url.contains("://") {
        mirror_url.to_string()
    } else {
        format!("https://{host}")
    };
    let trust = match trust {
        Trust::Cosign(p) => Trust::Cosign(
            std::path::absolute(&p).with_context(|| format!("resolving {}", p.display()))?,
        ),
        Trust::Gpg(p) => Trust::Gpg(
            std::path::absolute(&p).with_context(|| format!("resolving {}", p.display()))?,
        ),
    };
    let dir = out.join("registries.d");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let policy = out.join("policy.json");
    std::fs::write(
        &policy,
        serde_json::to_string_pretty(&policy_json(host, &trust))? + "\n",
    )
    .with_context(|| format!("writing {}", policy.display()))?;
    let yaml = dir.join("corral.yaml");
    std::fs::write(&yaml, registries_d(host, &base, &trust))
        .with_context(|| format!("writing {}", yaml.display()))?;
    Ok((policy, yaml))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_gpg_config() {
        let t = Trust::Gpg("/k.gpg".into());
        let p = policy_json("m:5000", &t);
        assert_eq!(p["transports"]["docker"]["m:5000"][0]["keyType"], "GPGKeys");
        assert_eq!(p["default"][0]["type"], "reject");
        assert_eq!(
            registries_d("m:5000", "http://m:5000/", &t),
            "# written by corral policy\ndocker:\n  m:5000:\n    lookaside: http://m:5000/sigstore\n"
        );
        let c = Trust::Cosign("/c.pub".into());
        assert_eq!(
            policy_json("m", &c)["transports"]["docker"]["m"][0]["type"],
            "sigstoreSigned"
        );
        assert!(registries_d("m", "https://m", &c).contains("use-sigstore-attachments: true"));
    }
}
