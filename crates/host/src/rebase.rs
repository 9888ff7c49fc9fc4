//! `rebase IMAGEREF` and `upgrade` of a deployment made from an image:
//! the OS as a container image in the ostree container format, fetched
//! from a registry, verified as its transport says
//! ([`crate::image_source`]), imported into the sysroot's repository
//! ([`corral_ostree::container::import`]) and deployed like any commit
//! (`/etc` merged, kernel arguments kept, the old default the rollback).
//! Nothing is written to the repository before the image's trust is
//! established, and nothing is deployed unless the import succeeded.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use corral_ostree::commit::commit_info;
use corral_ostree::container::{derived, import};
use corral_ostree::diff::{diff_packages, PackageDiff};
use corral_registry::{Client, ImageRef};
use corral_sign::identity::SignedIdentity;
use serde::Serialize;

use crate::config::{HostConfig, ImageTrust};
use crate::deploy;
use crate::etc_merge::{self, EtcMerge};
use crate::image_fetch::{layer_digests, FetchStats, ImageFetcher, CACHE_TAG};
use crate::image_source::{ImageOrigin, ImageSource, Transport};
use crate::signature;
use crate::space;
use crate::sysroot::Host;
use crate::upgrade::CommitRef;

/// How `rebase` and an image `upgrade` reach the registry and deploy.
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    pub osname: Option<String>,
    /// Accept `ostree-unverified-registry:` for a rebase.
    pub insecure_unverified: bool,
    pub plain_http: bool,
    pub creds: Option<(String, String)>,
    pub keep: Option<usize>,
    pub no_stage: bool,
    /// `upgrade --check`: only say whether the image changed.
    pub check: bool,
    /// Stop a request after this long without progress (default: the
    /// host config's stall-timeout).
    pub stall: Option<Duration>,
}

/// A deployment made from an image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageDeployReport {
    pub image: String,
    pub manifest_digest: String,
    pub from: Option<CommitRef>,
    pub to: CommitRef,
    /// How the image was trusted.
    pub verified: String,
    pub fetch: FetchStats,
    pub objects_written: u64,
    /// A derived image: the OS commit its layers were applied onto (`to`
    /// is the commit written from the result), and those layers.
    pub base_commit: Option<String>,
    pub derived_layers: Vec<String>,
    pub packages: PackageDiff,
    pub etc: EtcMerge,
    pub rollback: Option<String>,
    pub dropped: Vec<String>,
    pub staged: bool,
}

/// What `rebase` or an image `upgrade` came to.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum ImageOutcome {
    /// The image's manifest is the deployed one.
    UpToDate {
        image: String,
        manifest_digest: String,
        commit: CommitRef,
    },
    /// `--check`: the image changed.
    Available {
        image: String,
        from: String,
        to: String,
    },
    Deployed(Box<ImageDeployReport>),
}

/// `corral host rebase IMAGEREF`.
pub fn rebase(host: &Host, source: ImageSource, opts: &ImageOptions) -> Result<ImageOutcome> {
    if source.transport == Transport::Unverified && !opts.insecure_unverified {
        bail!(
            "{source}: an unverified image could be anything; verify it with ostree-remote-registry:REMOTE:IMAGE or ostree-image-signed:docker://IMAGE, or pass --insecure-unverified"
        );
    }
    run(host, source, opts.plain_http, opts)
}

/// `corral host upgrade` of a deployment whose origin is an image.
pub fn upgrade(host: &Host, origin: ImageOrigin, opts: &ImageOptions) -> Result<ImageOutcome> {
    run(
        host,
        origin.source,
        origin.plain_http || opts.plain_http,
        opts,
    )
}

/// The image origin of the deployment an upgrade starts from, if any.
pub fn merge_origin(host: &Host, osname: Option<&str>) -> Result<Option<ImageOrigin>> {
    let osname = host.osname(osname)?;
    Ok(host
        .merge_deployment(Some(&osname))
        .as_ref()
        .and_then(ImageOrigin::of))
}

fn run(
    host: &Host,
    source: ImageSource,
    plain_http: bool,
    opts: &ImageOptions,
) -> Result<ImageOutcome> {
    let osname = host.osname(opts.osname.as_deref())?;
    let merge = host.merge_deployment(Some(&osname));
    let mut config = match &merge {
        Some(m) => HostConfig::load(&host.deployment_dir(m))?,
        None => HostConfig::default(),
    };
    if let Some(k) = opts.keep {
        if k < 2 {
            bail!("--keep must be at least 2 (the new deployment and a rollback)");
        }
        config.keep = k;
    }
    let repo = host.repo();
    if let Transport::RemoteRegistry { remote } = &source.transport {
        crate::remote::require(&repo, remote)?;
    }
    let fetcher = ImageFetcher::new(
        host.path(),
        Client::new(plain_http, opts.creds.clone()),
        opts.stall.unwrap_or_else(|| config.stall()),
    )?;
    let image = &source.image;

    // The manifest, pinned by digest: for a signed image, the digest the
    // signature covers.
    let (verified, digest) = match &source.transport {
        Transport::ImageSigned => {
            let root = merge.as_ref().map(|m| host.deployment_dir(m));
            let trust = &config.images;
            if trust.is_empty() {
                bail!(
                    "{source}: no container trust is configured: set cosign-key or gpg-keyring under [images] in /etc/corral/host.toml"
                );
            }
            verify_image_signature(&fetcher, image, trust, root.as_deref())
                .with_context(|| format!("verifying the signature of {image}"))?
        }
        Transport::Unverified => {
            let m = fetcher.manifest(image, image.reference())?;
            ("unverified".to_string(), m.manifest.digest)
        }
        Transport::RemoteRegistry { remote } => {
            let m = fetcher.manifest(image, image.reference())?;
            (
                format!("commit verified with remote {remote}'s keys"),
                m.manifest.digest,
            )
        }
    };
    let remote_image = fetcher.manifest(image, &digest)?;

    let deployed = host.deployments();
    if let Some(d) = deployed.first() {
        if let Some(o) = ImageOrigin::of(d) {
            if o.manifest_digest == digest && o.source == source {
                let info = commit_info(&repo, &d.csum())?;
                return Ok(ImageOutcome::UpToDate {
                    image: source.to_string(),
                    manifest_digest: digest,
                    commit: CommitRef::of(&info),
                });
            }
        }
    }
    if opts.check {
        let from = merge
            .as_ref()
            .and_then(ImageOrigin::of)
            .map(|o| o.manifest_digest)
            .unwrap_or_default();
        return Ok(ImageOutcome::Available {
            image: source.to_string(),
            from,
            to: digest,
        });
    }

    // Layers of deployed images: their objects are in the repository.
    let mut have = BTreeSet::new();
    let mut keep = BTreeSet::new();
    for d in &deployed {
        if let Some(o) = ImageOrigin::of(d) {
            if let Some(m) = fetcher.cached_manifest(&o.manifest_digest) {
                have.extend(layer_digests(&m));
                keep.insert(o.manifest_digest.clone());
                if let Some(c) = m["config"]["digest"].as_str() {
                    keep.insert(c.to_string());
                }
            }
        }
    }
    space::require(
        &host.path().join("ostree/repo"),
        &format!("the layers of {image}"),
        remote_image
            .layers
            .iter()
            .filter(|(d, _)| !have.contains(d))
            .map(|(_, s)| s)
            .sum(),
        config.reserve_bytes,
    )?;
    // The commit layer (the first) and a derived image's own layers are
    // always read.
    let image_config: serde_json::Value = serde_json::from_slice(&remote_image.config)
        .with_context(|| format!("parsing the config of {image}"))?;
    let ostree_layers = derived::ostree_layer_count(&image_config, remote_image.layers.len());
    let derived_layers: Vec<String> = remote_image.layers[ostree_layers..]
        .iter()
        .map(|(d, _)| d.clone())
        .collect();
    if !derived_layers.is_empty() {
        if let Transport::RemoteRegistry { remote } = &source.transport {
            bail!(
                "{image} is a derived image: its {} layer(s) on top of the OS commit are not covered by the commit's signature for remote {remote}; sign the image and use ostree-image-signed:docker://{image}",
                derived_layers.len()
            );
        }
    }
    let skip: BTreeSet<String> = remote_image.layers[..ostree_layers]
        .iter()
        .skip(1)
        .filter(|(d, _)| have.contains(d))
        .map(|(d, _)| d.clone())
        .collect();
    let stats = fetcher.fetch(image, &remote_image, &skip)?;

    let check_commit = |checksum: &str,
                        commit: &ostree::glib::Variant,
                        detached: Option<&ostree::glib::Variant>|
     -> Result<()> {
        let Transport::RemoteRegistry { remote } = &source.transport else {
            return Ok(());
        };
        let state = signature::check_data(&repo, remote, commit, detached)?;
        if !state.is_valid() {
            bail!(
                "{image}: commit {checksum} is not validly signed for remote {remote}: {}",
                state.describe()
            );
        }
        Ok(())
    };
    let imported = import::import_layout_with(
        &repo,
        fetcher.cache(),
        CACHE_TAG,
        Some(&check_commit),
        &have,
    )
    .with_context(|| format!("importing {image} ({digest})"))?;
    let verified = match &source.transport {
        Transport::RemoteRegistry { remote } => {
            match signature::check(&repo, &imported.commit, remote)? {
                s if s.is_valid() => format!("commit {}", s.describe()),
                s => bail!("{image}: commit {}: {}", imported.commit, s.describe()),
            }
        }
        _ => verified,
    };
    // A derived image: its layers applied onto the commit, a new commit.
    let (deploy_checksum, base_commit) = if derived_layers.is_empty() {
        (imported.commit.clone(), None)
    } else {
        let d = derived::apply(
            &repo,
            fetcher.cache(),
            &imported.commit,
            &derived_layers,
            &host.path().join("ostree/corral/derived-tmp"),
        )
        .with_context(|| format!("applying the derived layers of {image}"))?;
        (d.commit, Some(imported.commit.clone()))
    };
    let new = commit_info(&repo, &deploy_checksum)?;
    let current = match &merge {
        Some(m) => Some(commit_info(&repo, &m.csum())?),
        None => None,
    };
    let origin = ImageOrigin {
        source: source.clone(),
        manifest_digest: digest.clone(),
        plain_http,
        base_commit: base_commit.clone(),
    };
    let (deployment, dropped) = deploy::deploy_commit(
        host,
        &osname,
        &new.checksum,
        &origin.keyfile(),
        merge.as_ref(),
        deploy::DeployOptions {
            keep: config.keep,
            stage: !opts.no_stage,
            max_failed_boots: config.max_failed_boots,
        },
    )?;
    let etc = match &merge {
        Some(m) => etc_merge::inspect(&host.deployment_dir(m), &host.deployment_dir(&deployment))?,
        None => EtcMerge::default(),
    };
    // The cache keeps the manifests and configs of the deployments left.
    keep.insert(digest.clone());
    keep.insert(remote_image.config_digest.clone());
    fetcher.prune(&keep)?;
    let rollback = host
        .deployments()
        .get(1)
        .map(|d| format!("{}.{}", d.csum(), d.deployserial()));
    Ok(ImageOutcome::Deployed(Box::new(ImageDeployReport {
        image: source.to_string(),
        manifest_digest: digest,
        packages: diff_packages(
            current
                .as_ref()
                .map(|c| c.packages.as_slice())
                .unwrap_or_default(),
            &new.packages,
        ),
        from: current.as_ref().map(CommitRef::of),
        to: CommitRef::of(&new),
        verified,
        fetch: stats,
        objects_written: imported.objects_written,
        base_commit,
        derived_layers,
        etc,
        rollback,
        dropped,
        staged: deployment.is_staged(),
    })))
}

/// Checks the container signature(s) of `image` against `trust`; every
/// configured key must have signed. Returns how it was verified and the
/// manifest digest the signatures cover.
fn verify_image_signature(
    fetcher: &ImageFetcher,
    image: &ImageRef,
    trust: &ImageTrust,
    root: Option<&std::path::Path>,
) -> Result<(String, String)> {
    let in_root = |p: &std::path::Path| match root {
        Some(r) => r.join(p.strip_prefix("/").unwrap_or(p)),
        None => p.to_path_buf(),
    };
    let client = fetcher.client();
    let mut said = Vec::new();
    let mut digest: Option<String> = None;
    let mut agree = |d: String| -> Result<()> {
        match &digest {
            Some(prev) if *prev != d => {
                bail!("{image} changed while its signatures were checked ({prev}, then {d})")
            }
            _ => digest = Some(d),
        }
        Ok(())
    };
    if let Some(key) = &trust.cosign_key {
        let path = in_root(key);
        let public = corral_sign::cosign_key::load_public(&path)
            .with_context(|| format!("reading the cosign key {}", path.display()))?;
        let answer = fetcher.block_on(
            "checking cosign signatures",
            corral_sign::cosign::verify_with(
                client,
                image,
                &public,
                &SignedIdentity::default_for("cosign"),
            ),
        )?;
        match answer {
            Ok(v) => {
                agree(v.digest.clone())?;
                said.push(format!("cosign signature by {}", path.display()));
            }
            Err(e) => bail!("{image}: refused by the cosign key {}: {e}", path.display()),
        }
    }
    if let Some(keyring) = &trust.gpg_keyring {
        let path = in_root(keyring);
        corral_configfile::read(&path, corral_configfile::DEFAULT_LIMIT)
            .with_context(|| format!("reading the GPG keyring {}", path.display()))?;
        let lookaside = trust
            .lookaside
            .clone()
            .unwrap_or_else(|| corral_sign::gpg::default_lookaside(client, image));
        let answer = fetcher.block_on(
            "checking GPG signatures",
            corral_sign::gpg::verify_with(
                client,
                image,
                &lookaside,
                &path,
                &SignedIdentity::default_for("gpg"),
            ),
        )?;
        match answer {
            Ok(v) => {
                agree(v.digest.clone())?;
                said.push(format!("GPG signature by {}", path.display()));
            }
            Err(e) => bail!(
                "{image}: refused by the GPG keyring {}: {e}",
                path.display()
            ),
        }
    }
    let digest = digest.context("no key verified the image")?;
    Ok((said.join(", "), digest))
}
