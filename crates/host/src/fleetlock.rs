//! The FleetLock client: `POST /v1/pre-reboot` takes a reboot slot,
//! `POST /v1/steady-state` gives it back (the protocol Zincati speaks;
//! `corral mirror serve` with `[fleetlock]` is a server).

use std::time::Duration;

use serde::Deserialize;

/// Why a FleetLock request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum FleetLockClientError {
    /// The server answered and said no (`kind` and `value` from its body).
    #[error("{url} refused ({status}): {kind}: {value}")]
    Refused {
        url: String,
        status: u16,
        kind: String,
        value: String,
    },
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
}

impl FleetLockClientError {
    /// Whether the answer was "all slots are taken" (try again later).
    pub fn is_lock_held(&self) -> bool {
        matches!(self, FleetLockClientError::Refused { kind, .. } if kind == "failed_lock")
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    kind: String,
    value: String,
}

/// A host's identity towards one FleetLock server.
pub struct FleetLockClient {
    base_url: String,
    pub id: String,
    pub group: String,
    http: reqwest::blocking::Client,
}

impl FleetLockClient {
    pub fn new(base_url: &str, id: &str, group: &str) -> Result<Self, FleetLockClientError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| FleetLockClientError::Transport {
                url: base_url.to_string(),
                message: e.to_string(),
            })?;
        Ok(FleetLockClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            id: id.to_string(),
            group: group.to_string(),
            http,
        })
    }

    /// RecursiveLock: Ok when this host holds a slot of its group now.
    pub fn pre_reboot(&self) -> Result<(), FleetLockClientError> {
        self.post("pre-reboot")
    }

    /// UnlockIfHeld: Ok when this host holds no slot any more.
    pub fn steady_state(&self) -> Result<(), FleetLockClientError> {
        self.post("steady-state")
    }

    fn post(&self, op: &str) -> Result<(), FleetLockClientError> {
        let url = format!("{}/v1/{op}", self.base_url);
        let shown = strip_credentials(&url);
        let body = serde_json::json!({
            "client_params": { "id": self.id, "group": self.group }
        });
        let resp = self
            .http
            .post(&url)
            .header("fleet-lock-protocol", "true")
            .json(&body)
            .send()
            .map_err(|e| FleetLockClientError::Transport {
                url: shown.clone(),
                message: error_chain(&e),
            })?;
        let status = resp.status();
        if status.is_success() {
            tracing::info!(
                url = shown,
                id = self.id,
                group = self.group,
                "fleetlock {op} granted"
            );
            return Ok(());
        }
        let text = resp.text().unwrap_or_default();
        let (kind, value) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => (b.kind, b.value),
            Err(_) => (
                "unknown".to_string(),
                text.chars().take(200).collect::<String>(),
            ),
        };
        Err(FleetLockClientError::Refused {
            url: shown,
            status: status.as_u16(),
            kind,
            value,
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The URL without `user:password@`, for messages and logs.
pub fn strip_credentials(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s && !url[s + 3..at].contains('/') => {
            format!("{}{}", &url[..s + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_out_of_messages() {
        assert_eq!(
            strip_credentials("http://alice:secret@mirror:5000/v1/pre-reboot"),
            "http://mirror:5000/v1/pre-reboot"
        );
        assert_eq!(
            strip_credentials("http://mirror:5000/v1/a@b"),
            "http://mirror:5000/v1/a@b"
        );
    }

    #[test]
    fn nothing_listening_is_a_transport_error_naming_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = FleetLockClient::new(&format!("http://127.0.0.1:{port}/"), "x", "default").unwrap();
        let e = c.pre_reboot().unwrap_err();
        assert!(!e.is_lock_held());
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("http://127.0.0.1:{port}/v1/pre-reboot: ")),
            "{text}"
        );
    }
}
