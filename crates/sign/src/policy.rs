//! Client configuration for containers/image (podman, skopeo, CRI-O):
//! `policy.json` requiring signatures from the mirror and a `registries.d`
//! file saying where they are.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use crate::identity::SignedIdentity;
use corral_registry::ImageRef;

/// Which signatures the policy demands.
#[derive(Debug, Clone)]
pub enum Trust {
    /// cosign format, checked against this public key.
    Cosign(PathBuf),
    /// GPG simple signing, checked against this keyring.
    Gpg(PathBuf),
}

/// `policy.json`: reject by default, require signatures for the mirror's
/// host, accept anything for local transports (copy destinations). The
/// `signedIdentity` is the one `corral verify` applies to the same format.
pub fn policy_json(host: &str, trust: &Trust) -> serde_json::Value {
    let requirement = match trust {
        Trust::Cosign(key) => json!({
            "type": "sigstoreSigned",
            "keyPath": key,
            "signedIdentity": SignedIdentity::default_for("cosign"),
        }),
        Trust::Gpg(keyring) => json!({
            "type": "signedBy",
            "keyType": "GPGKeys",
            "keyPath": keyring,
            "signedIdentity": SignedIdentity::default_for("gpg"),
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

/// The size limit of a policy.json corral reads: real ones are a few KiB.
pub const POLICY_FILE_LIMIT: u64 = 1024 * 1024;

/// `host[:port]` and the base URL of `mirror_url` (`http[s]://host[:port]`,
/// HTTPS when no scheme is given).
fn mirror_host(mirror_url: &str) -> anyhow::Result<(String, String)> {
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
    Ok((host.to_string(), base))
}

/// Key paths are made absolute, since clients resolve them from anywhere.
fn absolute_trust(trust: Trust) -> anyhow::Result<Trust> {
    Ok(match trust {
        Trust::Cosign(p) => Trust::Cosign(
            std::path::absolute(&p).with_context(|| format!("resolving {}", p.display()))?,
        ),
        Trust::Gpg(p) => Trust::Gpg(
            std::path::absolute(&p).with_context(|| format!("resolving {}", p.display()))?,
        ),
    })
}

/// The registries.d file for `host`: one per mirror, so that configuring a
/// second mirror does not replace the first one's.
pub fn registries_d_file(dir: &Path, host: &str) -> PathBuf {
    dir.join(format!("corral-{}.yaml", host.replace([':', '/'], "-")))
}

/// Writes `data` to `path` through a temporary file in the same directory
/// and a rename, so a reader sees the old file or the new one, never half
/// of one. A file already there keeps its permissions.
pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions(),
        // New files are world-readable: clients running as any user read
        // policy.json and registries.d.
        Err(_) => std::os::unix::fs::PermissionsExt::from_mode(0o644),
    };
    std::fs::set_permissions(tmp.path(), mode)
        .with_context(|| format!("chmod {}", tmp.path().display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Writes `out/policy.json` and `out/registries.d/corral-HOST.yaml` for the
/// mirror at `mirror_url` (`http[s]://host[:port]`).
pub fn write(mirror_url: &str, trust: Trust, out: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (host, base) = mirror_host(mirror_url)?;
    let trust = absolute_trust(trust)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let policy = out.join("policy.json");
    write_atomic(
        &policy,
        (serde_json::to_string_pretty(&policy_json(&host, &trust))? + "\n").as_bytes(),
    )?;
    let yaml = write_registries_d(&out.join("registries.d"), &host, &base, &trust)?;
    Ok((policy, yaml))
}

fn write_registries_d(
    dir: &Path,
    host: &str,
    base: &str,
    trust: &Trust,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let yaml = registries_d_file(dir, host);
    write_atomic(&yaml, registries_d(host, base, trust).as_bytes())?;
    Ok(yaml)
}

/// What [`merge`] did.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The policy file written (the target of a symlink).
    pub policy: PathBuf,
    /// The registries.d file written next to it.
    pub registries_d: PathBuf,
    /// The docker scope set.
    pub scope: String,
    /// The requirements that scope had before, if any.
    pub replaced: Option<serde_json::Value>,
    /// The requirements it has now.
    pub entry: serde_json::Value,
}

/// Adds the mirror's requirement to an existing policy.json (e.g.
/// `/etc/containers/policy.json`): sets `transports.docker.HOST` and keeps
/// everything else — the default, other registries, other transports — so
/// other registries keep working. Writes the file atomically, and the
/// registries.d entry to `registries.d/` next to it.
pub fn merge(mirror_url: &str, trust: Trust, policy_path: &Path) -> anyhow::Result<Merged> {
    let (host, base) = mirror_host(mirror_url)?;
    let trust = absolute_trust(trust)?;
    // Write through a symlink to its target rather than replacing it.
    let policy_path = std::fs::canonicalize(policy_path)
        .with_context(|| format!("resolving {}", policy_path.display()))?;
    let text = corral_configfile::read_to_string(&policy_path, POLICY_FILE_LIMIT)?;
    let mut policy: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", policy_path.display()))?;
    anyhow::ensure!(
        policy
            .get("default")
            .is_some_and(serde_json::Value::is_array),
        "{} has no \"default\" list of requirements; is it a containers policy.json?",
        policy_path.display()
    );
    let ours = policy_json(&host, &trust);
    let entry = ours["transports"]["docker"][&host].clone();
    let root = policy
        .as_object_mut()
        .with_context(|| format!("{} is not a JSON object", policy_path.display()))?;
    let transports = root.entry("transports").or_insert_with(|| json!({}));
    let docker = transports
        .as_object_mut()
        .with_context(|| format!("{}: \"transports\" is not an object", policy_path.display()))?
        .entry("docker")
        .or_insert_with(|| json!({}));
    let replaced = docker
        .as_object_mut()
        .with_context(|| {
            format!(
                "{}: \"transports.docker\" is not an object",
                policy_path.display()
            )
        })?
        .insert(host.clone(), entry.clone());
    write_atomic(
        &policy_path,
        (serde_json::to_string_pretty(&policy)? + "\n").as_bytes(),
    )?;
    let dir = policy_path
        .parent()
        .map_or_else(|| PathBuf::from("registries.d"), |d| d.join("registries.d"));
    let registries_d = write_registries_d(&dir, &host, &base, &trust)?;
    Ok(Merged {
        policy: policy_path,
        registries_d,
        scope: host,
        replaced,
        entry,
    })
}

/// The docker-transport scopes that can hold requirements for `image`,
/// most specific first (containers/image `docker/policyconfiguration.go`):
/// the reference itself, its repository, each parent namespace, the host,
/// then `*.domain` wildcards.
pub fn scopes(image: &ImageRef) -> Vec<String> {
    let mut out = Vec::new();
    let repo = image.repository();
    match (&image.tag, &image.digest) {
        (_, Some(d)) => out.push(format!("{repo}@{d}")),
        (Some(t), None) => out.push(format!("{repo}:{t}")),
        (None, None) => {}
    }
    let mut name = repo.as_str();
    out.push(name.to_string());
    while let Some((parent, _)) = name.rsplit_once('/') {
        out.push(parent.to_string());
        name = parent;
    }
    let host = image.host.split(':').next().unwrap_or(&image.host);
    let mut rest = host;
    while let Some((_, parent)) = rest.split_once('.') {
        out.push(format!("*.{parent}"));
        rest = parent;
    }
    out
}

/// The `signedIdentity` a policy.json applies to `image`'s signatures of
/// `format` (`"gpg"`: a `signedBy` requirement, `"cosign"`:
/// `sigstoreSigned`), from the most specific scope that matches, as
/// containers/image picks it. An error when that scope demands no
/// signature of the format, since the policy would then not be checking
/// what `corral verify` checks.
pub fn identity_from_policy(
    path: &Path,
    image: &ImageRef,
    format: &str,
) -> anyhow::Result<SignedIdentity> {
    let text = corral_configfile::read_to_string(path, POLICY_FILE_LIMIT)?;
    let policy: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let docker = &policy["transports"]["docker"];
    let (scope, requirements) = scopes(image)
        .into_iter()
        .find_map(|s| docker.get(&s).map(|r| (format!("scope {s:?}"), r)))
        .or_else(|| {
            docker
                .get("")
                .map(|r| ("the docker default".to_string(), r))
        })
        .or_else(|| {
            policy
                .get("default")
                .map(|r| ("the default".to_string(), r))
        })
        .with_context(|| format!("{} has no requirements for {image}", path.display()))?;
    let wanted = if format == "cosign" {
        "sigstoreSigned"
    } else {
        "signedBy"
    };
    let requirement = requirements
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["type"] == wanted)
        .with_context(|| {
            format!(
                "{}: {scope} demands no {wanted} signature for {image}, so it checks no {format} signature",
                path.display()
            )
        })?;
    match requirement.get("signedIdentity") {
        None => Ok(SignedIdentity::MatchRepoDigestOrExact),
        Some(v) => serde_json::from_value(v.clone()).with_context(|| {
            format!(
                "{}: the signedIdentity of {scope} is not one containers-policy.json(5) defines",
                path.display()
            )
        }),
    }
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

    /// A system policy that accepts everything by default and has entries
    /// of its own: merging keeps all of it and adds only the mirror's scope.
    #[test]
    fn merge_keeps_everything_else_and_replaces_only_the_mirror() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        let path = etc.join("policy.json");
        let system = json!({
            "default": [{"type": "insecureAcceptAnything"}],
            "transports": {
                "docker": {"quay.io/os": [{"type": "reject"}]},
                "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]},
            },
        });
        std::fs::write(&path, serde_json::to_string(&system).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .unwrap();
        // Through a symlink, as distributions sometimes ship it.
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();

        let m = merge("http://m:5000", Trust::Gpg("/k.gpg".into()), &link).unwrap();
        assert_eq!(m.policy, std::fs::canonicalize(&path).unwrap());
        assert!(m.replaced.is_none());
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let got: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut want = system.clone();
        want["transports"]["docker"]["m:5000"] = json!([{
            "type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg",
            "signedIdentity": {"type": "matchRepoDigestOrExact"},
        }]);
        assert_eq!(got, want);
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o640
        );
        assert_eq!(m.registries_d, etc.join("registries.d/corral-m-5000.yaml"));
        assert!(std::fs::read_to_string(&m.registries_d)
            .unwrap()
            .contains("lookaside: http://m:5000/sigstore"));

        // Again with the cosign key: the entry is replaced, not doubled.
        let again = merge("http://m:5000", Trust::Cosign("/c.pub".into()), &path).unwrap();
        assert_eq!(
            again.replaced,
            Some(want["transports"]["docker"]["m:5000"].clone())
        );
        let got: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(got["transports"]["docker"].as_object().unwrap().len(), 2);
        assert_eq!(
            got["transports"]["docker"]["m:5000"][0]["type"],
            "sigstoreSigned"
        );
        assert_eq!(got["default"], system["default"]);
        // No temporary files left beside it.
        let names: Vec<_> = std::fs::read_dir(&etc)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn merge_refuses_what_is_no_policy_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let t = || Trust::Gpg("/k.gpg".into());
        let p = dir.path().join("policy.json");
        std::fs::write(&p, "{not json").unwrap();
        let err = format!("{:#}", merge("http://m", t(), &p).unwrap_err());
        assert!(err.contains("policy.json is not valid JSON"), "{err}");
        std::fs::write(&p, r#"{"transports": {}}"#).unwrap();
        let err = format!("{:#}", merge("http://m", t(), &p).unwrap_err());
        assert!(err.contains("no \"default\""), "{err}");
        std::fs::write(&p, vec![b' '; POLICY_FILE_LIMIT as usize + 1]).unwrap();
        let err = format!("{:#}", merge("http://m", t(), &p).unwrap_err());
        assert!(
            err.contains("policy.json: larger than the 1 MiB limit"),
            "{err}"
        );
        // Left as it was.
        assert_eq!(std::fs::metadata(&p).unwrap().len(), POLICY_FILE_LIMIT + 1);
        let err = format!(
            "{:#}",
            merge("http://m", t(), &dir.path().join("nope")).unwrap_err()
        );
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn scopes_most_specific_first() {
        let i = ImageRef::parse("reg.example.org:5000/os/base:43").unwrap();
        assert_eq!(
            scopes(&i),
            [
                "reg.example.org:5000/os/base:43",
                "reg.example.org:5000/os/base",
                "reg.example.org:5000/os",
                "reg.example.org:5000",
                "*.example.org",
                "*.org",
            ]
        );
    }

    #[test]
    fn identity_from_the_most_specific_scope() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("policy.json");
        std::fs::write(
            &p,
            json!({
                "default": [{"type": "reject"}],
                "transports": {"docker": {
                    "m:5/os": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k",
                                "signedIdentity": {"type": "matchRepository"}}],
                    "m:5": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k"},
                            {"type": "sigstoreSigned", "keyPath": "/c",
                             "signedIdentity": {"type": "exactRepository", "dockerRepository": "q.example/os/x"}}],
                }},
            })
            .to_string(),
        )
        .unwrap();
        let get = |r: &str, f: &str| identity_from_policy(&p, &ImageRef::parse(r).unwrap(), f);
        assert_eq!(
            get("m:5/os/base:1", "gpg").unwrap(),
            SignedIdentity::MatchRepository
        );
        // No signedIdentity: the default.
        assert_eq!(
            get("m:5/app:1", "gpg").unwrap(),
            SignedIdentity::MatchRepoDigestOrExact
        );
        assert_eq!(
            get("m:5/app:1", "cosign").unwrap(),
            SignedIdentity::ExactRepository {
                docker_repository: "q.example/os/x".into()
            }
        );
        // The more specific scope has no sigstoreSigned: that is the answer,
        // not the host's.
        let err = format!("{:#}", get("m:5/os/base:1", "cosign").unwrap_err());
        assert!(
            err.contains("scope \"m:5/os\" demands no sigstoreSigned"),
            "{err}"
        );
        let err = format!("{:#}", get("other:5/a:1", "gpg").unwrap_err());
        assert!(err.contains("the default demands no signedBy"), "{err}");
    }
}
