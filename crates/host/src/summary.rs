//! The remote's summary: its refs, their newest commits and the static
//! deltas on offer. Nothing in it is used before its signature has been
//! checked against the remote's keys.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ostree::gio;
use ostree::glib;

use crate::pull::run_watched;

/// A ref as the summary lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRef {
    pub checksum: String,
    /// Seconds since the epoch, when the summary carries it.
    pub timestamp: Option<u64>,
    pub version: Option<String>,
}

/// A verified summary.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub refs: BTreeMap<String, SummaryRef>,
    /// Static delta names (`FROM-TO` or `TO` for scratch deltas), as the
    /// summary lists them.
    pub deltas: Vec<String>,
    /// Who signed it.
    pub signer: String,
}

impl Summary {
    /// Whether a published delta leads from `from` (or from nothing) to
    /// `to`. The summary names deltas `FROM-TO` or `TO`, in hex.
    pub fn has_delta(&self, from: Option<&str>, to: &str) -> bool {
        let want = match from {
            Some(f) => format!("{f}-{to}"),
            None => to.to_string(),
        };
        self.deltas.contains(&want)
    }
}

/// Fetches remote `remote`'s summary and its signatures, stopping after
/// `stall` without an answer, and checks the signature against the
/// remote's keys.
pub fn fetch(repo: &ostree::Repo, remote: &str, stall: Duration) -> Result<Summary> {
    crate::remote::require(repo, remote)?;
    let url = repo
        .remote_get_url(remote)
        .map(|u| u.to_string())
        .unwrap_or_default();
    let what = format!("fetching the summary of remote {remote} ({url})");
    let (summary, signatures) = {
        let (repo, remote, context) = (repo.clone(), remote.to_string(), what.clone());
        run_watched(stall, &what, move |cancellable, _alive| {
            repo.remote_fetch_summary_with_options(&remote, None, Some(cancellable))
                .map_err(anyhow::Error::new)
                .with_context(|| context)
        })?
    };
    if summary.is_empty() {
        bail!("remote {remote} ({url}) publishes no summary");
    }
    if signatures.is_empty() {
        bail!("the summary of remote {remote} ({url}) is not signed; corral host trusts only signed summaries");
    }
    let result = repo
        .verify_summary(remote, &summary, &signatures, gio::Cancellable::NONE)
        .with_context(|| format!("checking the summary signature of remote {remote}"))?;
    if result.count_valid() == 0 {
        let fpr = (result.count_all() > 0)
            .then(|| result.all(0).child_value(5).get::<String>())
            .flatten()
            .unwrap_or_else(|| "no key".into());
        bail!("the summary of remote {remote} ({url}) is signed by {fpr}, which is not a key of remote {remote}");
    }
    let signer = result
        .all(0)
        .child_value(5)
        .get::<String>()
        .unwrap_or_default();
    let mut parsed =
        parse(&summary).with_context(|| format!("reading the summary of remote {remote}"))?;
    parsed.signer = signer;
    Ok(parsed)
}

/// Parses a summary (`(a(s(taya{sv}))a{sv})`).
pub fn parse(bytes: &glib::Bytes) -> Result<Summary> {
    let ty = glib::VariantTy::new("(a(s(taya{sv}))a{sv})").expect("a valid type");
    let v = glib::Variant::from_bytes_with_type(bytes, ty);
    let mut out = Summary::default();
    let refs = v.child_value(0);
    for i in 0..refs.n_children() {
        let entry = refs.child_value(i);
        let name = entry
            .child_value(0)
            .get::<String>()
            .context("a ref without a name")?;
        let data = entry.child_value(1);
        let csum_bytes = data
            .child_value(1)
            .fixed_array::<u8>()
            .context("a ref without a checksum")?
            .to_vec();
        let checksum: String = csum_bytes.iter().map(|b| format!("{b:02x}")).collect();
        if checksum.len() != 64 {
            bail!("ref {name} has a malformed checksum");
        }
        let meta = glib::VariantDict::new(Some(&data.child_value(2)));
        // libostree stores the timestamp big-endian.
        let timestamp = meta
            .lookup::<u64>("ostree.commit.timestamp")
            .ok()
            .flatten()
            .map(u64::from_be);
        let version = meta
            .lookup::<String>("ostree.commit.version")
            .ok()
            .flatten();
        out.refs.insert(
            name,
            SummaryRef {
                checksum,
                timestamp,
                version,
            },
        );
    }
    let extra = glib::VariantDict::new(Some(&v.child_value(1)));
    if let Some(deltas) = extra.lookup_value("ostree.static-deltas", None) {
        for i in 0..deltas.n_children() {
            if let Some(name) = deltas.child_value(i).child_value(0).get::<String>() {
                out.deltas.push(name);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_are_found_by_their_hex_names() {
        let (x, y) = ("0".repeat(64), "f".repeat(64));
        let s = Summary {
            deltas: vec![format!("{x}-{y}"), x.clone()],
            ..Default::default()
        };
        assert!(s.has_delta(Some(&x), &y));
        assert!(s.has_delta(None, &x));
        assert!(!s.has_delta(None, &y));
        assert!(!s.has_delta(Some(&y), &x));
    }
}
