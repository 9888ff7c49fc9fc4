//! Runs one job per image, bases before the images built FROM them, up to
//! `jobs` at a time. A failed image stops only its dependents.

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

/// How a build run ended, image by image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// In the order they finished.
    pub built: Vec<String>,
    /// Image → the error, with its causes.
    pub failed: BTreeMap<String, String>,
    /// Image → the failed (or skipped) base that stopped it.
    pub skipped: BTreeMap<String, String>,
    /// Image → the digest of the index its tags were pushed as
    /// (`--all-platforms`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub indexes: BTreeMap<String, String>,
}

impl Summary {
    pub fn success(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }

    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let list = |v: Vec<String>| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        s.push_str(&format!("built: {}\n", list(self.built.clone())));
        s.push_str(&format!(
            "failed: {}\n",
            list(self.failed.keys().cloned().collect())
        ));
        s.push_str(&format!(
            "skipped: {}\n",
            list(
                self.skipped
                    .iter()
                    .map(|(n, b)| format!("{n} (base {b} failed)"))
                    .collect()
            )
        ));
        for (n, e) in &self.failed {
            s.push_str(&format!("{n}: {e}\n"));
        }
        s
    }
}

/// Runs `job` for every image of `order` (bases first), starting an image
/// once the bases it has in `deps` succeeded, with at most `jobs` running.
pub async fn run_in_order<F, Fut>(
    order: &[String],
    deps: &BTreeMap<String, BTreeSet<String>>,
    jobs: usize,
    mut job: F,
) -> Summary
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let jobs = jobs.max(1);
    let mut summary = Summary::default();
    let mut pending: Vec<String> = order.to_vec();
    let mut running = FuturesUnordered::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut stopped: BTreeMap<String, String> = BTreeMap::new();
    loop {
        // images whose base failed or was skipped are skipped, in order
        let mut i = 0;
        while i < pending.len() {
            let n = &pending[i];
            let blocker = deps
                .get(n)
                .into_iter()
                .flatten()
                .find_map(|b| stopped.get(b).cloned());
            if let Some(root) = blocker {
                let n = pending.remove(i);
                stopped.insert(n.clone(), root.clone());
                summary.skipped.insert(n, root);
            } else {
                i += 1;
            }
        }
        // start what is ready
        let mut i = 0;
        while i < pending.len() && running.len() < jobs {
            let ready = deps
                .get(&pending[i])
                .into_iter()
                .flatten()
                .all(|b| done.contains(b) || !order.contains(b));
            if ready {
                let n = pending.remove(i);
                let fut = job(n.clone());
                running.push(async move { (n, fut.await) });
            } else {
                i += 1;
            }
        }
        let Some((name, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(()) => {
                done.insert(name.clone());
                summary.built.push(name);
            }
            Err(e) => {
                stopped.insert(name.clone(), name.clone());
                summary.failed.insert(name, format!("{e:#}"));
            }
        }
    }
    summary
}
