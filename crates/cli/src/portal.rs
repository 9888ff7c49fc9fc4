//! Joins the community portal's pages to the mirror's server (the mirror
//! does not import the portal, docs/architecture.md rule 7):
//! `corral mirror serve --portal FILE` reads the `[portal]` table of FILE
//! and serves the pages under `/community`, with a link to them in the
//! site's navigation; the portal sets the site's listing rules: its
//! namespace listed apart, its withdrawn templates left out (docs/portal.md).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use corral_mirror::cli::ServeArgs;
use corral_mirror::config::Config;
use corral_portal::accounts::Htpasswd;
use corral_portal::checks::worker;
use corral_portal::config::PortalConfig;
use corral_portal::web::{self, Portal, WebOptions};
use corral_site::listings::Listings;

/// Where the pages live.
pub const PREFIX: &str = "/community";

/// Reads a portal configuration file.
pub fn load_config(path: &Path) -> anyhow::Result<PortalConfig> {
    let text = corral_configfile::read_to_string(path, corral_configfile::DEFAULT_LIMIT)
        .with_context(|| format!("reading {}", path.display()))?;
    PortalConfig::parse(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))
}

/// The portal's routes for `mirror serve`, empty without `--portal`.
pub fn routes(
    args: &ServeArgs,
    mirror: &Config,
    listings: &Arc<Listings>,
) -> anyhow::Result<axum::Router> {
    let Some(path) = &args.portal else {
        return Ok(axum::Router::new());
    };
    let mut config = load_config(path)?;
    // The mirror's htpasswd users sign in to the portal as they are.
    let htpasswd = match &mirror.auth.htpasswd {
        Some(p) => Htpasswd::load(p).with_context(|| format!("reading {}", p.display()))?,
        None => Htpasswd::default(),
    };
    let options = WebOptions {
        prefix: PREFIX.into(),
        secure_cookies: mirror.tls.is_some(),
        htpasswd,
        listings: listings.clone(),
    };
    if let Some(publish) = &mut config.publish {
        // Unless told otherwise, the portal pushes to the mirror it runs in.
        let mut own = mirror.listen;
        if own.ip().is_unspecified() {
            own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        publish.registry.get_or_insert_with(|| own.to_string());
        publish.plain_http.get_or_insert(mirror.tls.is_none());
        // Users fetch the community key from the mirror's /keys/NAME.
        let name = publish.public_key.file_name();
        anyhow::ensure!(
            mirror
                .trust
                .cosign_keys
                .iter()
                .any(|k| k.file_name() == name),
            "{}: portal.community_public_key {} is not among the mirror's trusted cosign keys \
             ([trust] cosign_keys or --trust-cosign-key), so /keys/{} would not serve it",
            path.display(),
            publish.public_key.display(),
            publish.public_key_name()
        );
        anyhow::ensure!(
            config.checks.is_some(),
            "{}: publishing pushes the image the build check made: it needs [portal.checks]",
            path.display()
        );
    }
    let checks = config.checks.clone();
    let portal = Arc::new(Portal::open(config, options).context("starting the community portal")?);
    if let Some(checks) = checks {
        std::fs::create_dir_all(&checks.log_dir)
            .with_context(|| format!("creating {}", checks.log_dir.display()))?;
        worker::start(portal.clone(), checks).context("starting the check runner")?;
    }
    corral_site::html::set_extra_nav(vec![("Community".into(), PREFIX.into())]);
    Ok(web::router(portal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_portal_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("portal.toml");
        std::fs::write(&p, "[portal]\ndatabase = \"mysql\"\n").unwrap();
        let e = load_config(&p).unwrap_err().to_string();
        assert!(e.contains("portal.toml") && e.contains("mysql"), "{e}");
    }
}
