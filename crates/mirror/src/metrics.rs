//! Prometheus metrics in the text exposition format, written by hand (a few
//! counters do not need a metrics crate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub bytes_sent: AtomicU64,
    /// Of `bytes_sent`, the blob bytes sent with `sendfile`.
    pub bytes_sendfile: AtomicU64,
    pub bytes_received: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub uploads_started: AtomicU64,
    pub uploads_completed: AtomicU64,
    pub uploads_active: AtomicI64,
    /// Signature key checks run for the catalog (its cache's misses).
    pub signature_checks: AtomicU64,
}

impl Metrics {
    pub fn record(&self, route: &'static str, status: u16) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((route, status))
            .or_default() += 1;
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("# HELP corral_mirror_requests_total HTTP requests by route and status.\n");
        s.push_str("# TYPE corral_mirror_requests_total counter\n");
        for ((route, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                s,
                "corral_mirror_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let counters: [(&str, &str, &AtomicU64); 9] = [
            (
                "corral_mirror_bytes_sent_total",
                "Response body bytes sent (blobs and manifests).",
                &self.bytes_sent,
            ),
            (
                "corral_mirror_bytes_sendfile_total",
                "Blob bytes sent from their files with sendfile (plain HTTP).",
                &self.bytes_sendfile,
            ),
            (
                "corral_mirror_bytes_received_total",
                "Upload bytes received.",
                &self.bytes_received,
            ),
            (
                "corral_mirror_cache_hits_total",
                "Mirrored content served from storage.",
                &self.cache_hits,
            ),
            (
                "corral_mirror_cache_misses_total",
                "Mirrored content fetched from an upstream.",
                &self.cache_misses,
            ),
            (
                "corral_mirror_upstream_errors_total",
                "Failed upstream requests.",
                &self.upstream_errors,
            ),
            (
                "corral_mirror_upload_sessions_started_total",
                "Upload sessions started.",
                &self.uploads_started,
            ),
            (
                "corral_mirror_upload_sessions_completed_total",
                "Upload sessions completed.",
                &self.uploads_completed,
            ),
            (
                "corral_mirror_signature_checks_total",
                "Signature key checks run for the catalog (cache misses).",
                &self.signature_checks,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP corral_mirror_upload_sessions_active Upload sessions open in this process.\n# TYPE corral_mirror_upload_sessions_active gauge\ncorral_mirror_upload_sessions_active {}",
            self.uploads_active.load(Relaxed)
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition() {
        let m = Metrics::default();
        m.record("manifest", 200);
        m.record("manifest", 200);
        m.cache_hits.fetch_add(3, Relaxed);
        let t = m.render();
        assert!(
            t.contains("corral_mirror_requests_total{route=\"manifest\",status=\"200\"} 2\n"),
            "{t}"
        );
        assert!(t.contains("corral_mirror_cache_hits_total 3\n"));
    }
}
