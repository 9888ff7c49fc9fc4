//! Remotes, set up the ostree way: commits and the summary are verified
//! against the remote's own keyring.

use std::path::Path;

use anyhow::{bail, Context, Result};
use ostree::gio;
use ostree::glib;
use serde::Serialize;

/// A configured remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteInfo {
    pub name: String,
    pub url: String,
    pub gpg_verify: bool,
    pub gpg_verify_summary: bool,
}

fn check_url(url: &str) -> Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("file://")) {
        bail!("remote url `{url}` is not http://, https:// or file://");
    }
    Ok(())
}

/// Adds remote `name` at `url` with GPG verification of commits and of
/// the summary, and imports the public keys in `gpg_key` (armored or
/// binary) into the remote's keyring. Returns how many keys were taken.
pub fn add(repo: &ostree::Repo, name: &str, url: &str, gpg_key: &Path) -> Result<u32> {
    if name.is_empty() || name.contains(['/', ':', ' ']) {
        bail!("remote name `{name}` may not be empty or hold '/', ':' or spaces");
    }
    check_url(url)?;
    if repo.remote_list().iter().any(|r| r.as_str() == name) {
        bail!(
            "remote `{name}` exists already; its url is {}",
            repo.remote_get_url(name)
                .map(|u| u.to_string())
                .unwrap_or_default()
        );
    }
    // An armored keyring of a few keys is KiBs; 4 MiB stops a wrong path.
    let key = corral_configfile::read(gpg_key, corral_configfile::DEFAULT_LIMIT)
        .context("reading the key file")?;
    if key.is_empty() {
        bail!("the key file {} is empty", gpg_key.display());
    }
    let options = glib::VariantDict::new(None);
    options.insert("gpg-verify", true);
    options.insert("gpg-verify-summary", true);
    repo.remote_add(
        name,
        Some(url),
        Some(&options.end()),
        gio::Cancellable::NONE,
    )
    .with_context(|| format!("adding remote {name}"))?;
    let fingerprints = fingerprints(gpg_key)?;
    let ids: Vec<&str> = fingerprints.iter().map(String::as_str).collect();
    let stream = gio::MemoryInputStream::from_bytes(&glib::Bytes::from_owned(key));
    let imported = repo.remote_gpg_import(name, Some(&stream), &ids, gio::Cancellable::NONE);
    match imported {
        Ok(0) | Err(_) => {
            // Leave no remote behind that could never verify anything.
            let _ = repo.remote_delete(name, gio::Cancellable::NONE);
            match imported {
                Err(e) => Err(anyhow::Error::new(e))
                    .with_context(|| format!("importing keys from {}", gpg_key.display())),
                _ => bail!("{} holds no public key", gpg_key.display()),
            }
        }
        Ok(n) => Ok(n),
    }
}

/// The primary key fingerprints in a key file, as gpg reads it. (The
/// binding cannot pass libostree "all keys", so they are named.)
fn fingerprints(key_file: &Path) -> Result<Vec<String>> {
    let out = std::process::Command::new("gpg")
        .args([
            "--batch",
            "--quiet",
            "--no-default-keyring",
            "--keyring",
            "/dev/null",
        ])
        .args(["--with-colons", "--import-options", "show-only", "--import"])
        .arg(key_file)
        .env("GNUPGHOME", std::env::temp_dir())
        .output()
        .context("running gpg to read the key file (is gnupg installed?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fprs = Vec::new();
    let mut after_pub = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.first() {
            Some(&"pub") => after_pub = true,
            Some(&"fpr") if after_pub => {
                if let Some(f) = fields.get(9).filter(|f| !f.is_empty()) {
                    fprs.push(f.to_string());
                }
                after_pub = false;
            }
            _ => {}
        }
    }
    if fprs.is_empty() {
        bail!(
            "{} holds no OpenPGP public key{}",
            key_file.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default()
        );
    }
    Ok(fprs)
}

/// The configured remotes, sorted by name.
pub fn list(repo: &ostree::Repo) -> Result<Vec<RemoteInfo>> {
    let mut out = Vec::new();
    for name in repo.remote_list() {
        let name = name.to_string();
        out.push(RemoteInfo {
            url: repo
                .remote_get_url(&name)
                .with_context(|| format!("reading the url of remote {name}"))?
                .to_string(),
            gpg_verify: repo.remote_get_gpg_verify(&name).unwrap_or(false),
            gpg_verify_summary: repo.remote_get_gpg_verify_summary(&name).unwrap_or(false),
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Fails unless `name` exists; the error says how to add it.
pub fn require(repo: &ostree::Repo, name: &str) -> Result<()> {
    if repo.remote_list().iter().any(|r| r.as_str() == name) {
        Ok(())
    } else {
        bail!("no remote `{name}`; add it with `corral host remote add {name} URL --gpg-key FILE`")
    }
}

/// Deployments (as `INDEX (CHECKSUM.SERIAL)`) whose origin is `name`, or
/// an `ostree-remote-registry:` image whose commits `name`'s keys verify.
pub fn users(host: &crate::Host, name: &str) -> Vec<String> {
    host.deployments()
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            crate::Host::origin(d).is_some_and(|o| o.remote == name)
                || crate::image_source::ImageOrigin::of(d).is_some_and(|o| {
                    o.source.transport
                        == crate::image_source::Transport::RemoteRegistry {
                            remote: name.to_string(),
                        }
                })
        })
        .map(|(i, d)| format!("{i} ({}.{})", d.csum(), d.deployserial()))
        .collect()
}

/// Deletes remote `name`, its keyring and the refs fetched from it (the
/// deployments keep their commits through their own refs; the rest is
/// left to `cleanup` to prune). A remote that a deployment updates from is
/// refused unless `force`, naming the deployments: their next upgrade
/// would fail. Returns those deployments.
pub fn delete(host: &crate::Host, name: &str, force: bool) -> Result<Vec<String>> {
    let repo = host.repo();
    require(&repo, name)?;
    let users = users(host, name);
    if !users.is_empty() && !force {
        bail!(
            "remote `{name}` is the origin of deployment {}; their upgrades would fail without it (--force deletes it anyway, `corral host deploy --origin REMOTE:REF` moves to another)",
            users.join(", ")
        );
    }
    let prefix = format!("{name}:");
    let refs = repo
        .list_refs(None, gio::Cancellable::NONE)
        .with_context(|| format!("listing the refs of {}", repo_path(&repo)))?;
    for refspec in refs.keys() {
        if let Some(r) = refspec.strip_prefix(&prefix) {
            repo.set_ref_immediate(Some(name), r, None, gio::Cancellable::NONE)
                .with_context(|| format!("deleting ref {refspec}"))?;
        }
    }
    repo.remote_change(
        None::<&gio::File>,
        ostree::RepoRemoteChange::Delete,
        name,
        None,
        None,
        gio::Cancellable::NONE,
    )
    .with_context(|| format!("deleting remote {name}"))?;
    Ok(users)
}

/// The group of remote `name` in a repository config.
fn group(name: &str) -> String {
    format!("remote \"{name}\"")
}

/// Points remote `name` at `url`, keeping its keyring and every other
/// option (GPG verification among them): only the `url` key of the
/// remote's group in the repository config changes. Returns the old url.
pub fn set_url(repo: &ostree::Repo, name: &str, url: &str) -> Result<String> {
    check_url(url)?;
    require(repo, name)?;
    let old = repo
        .remote_get_url(name)
        .with_context(|| format!("reading the url of remote {name}"))?
        .to_string();
    let config = repo.copy_config();
    if !config.has_group(&group(name)) {
        bail!(
            "remote `{name}` is not defined in the repository config (a remotes.d file?); change its url there"
        );
    }
    config.set_string(&group(name), "url", url);
    // libostree writes the config to a temp file and renames it.
    repo.write_config(&config).with_context(|| {
        format!(
            "writing the config of {} for remote {name}",
            repo_path(repo)
        )
    })?;
    repo.reload_config(gio::Cancellable::NONE)
        .with_context(|| format!("reloading the config of {}", repo_path(repo)))?;
    Ok(old)
}

fn repo_path(repo: &ostree::Repo) -> String {
    gio::prelude::FileExt::path(&repo.path())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the repository".into())
}
