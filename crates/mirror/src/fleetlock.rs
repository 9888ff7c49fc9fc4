//! A FleetLock server (the reboot-coordination protocol Zincati speaks):
//! hosts take a reboot slot of their group with `POST /v1/pre-reboot`
//! before rebooting and give it back with `POST /v1/steady-state` once
//! they are healthy again, so a group never has more than its configured
//! number of hosts rebooting at once.
//!
//! Both requests carry the header `fleet-lock-protocol: true` and the body
//! `{"client_params":{"id":"…","group":"…"}}`; a refusal is a non-200
//! status with `{"kind":"…","value":"…"}`. Both are idempotent for the same
//! id: a holder asking again keeps its slot, a host that holds nothing may
//! send steady-state any number of times. Only the holder's own
//! steady-state frees a slot.
//!
//! The holders are kept in `fleetlock.json` in the storage directory,
//! replaced whole (temp file, fsync, rename) before a request is answered,
//! so a restart of the mirror forgets no slot it handed out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::auth::{Authenticator, Identity};
use crate::config::FleetLockConfig;

/// The state file's name in the storage directory.
pub const STATE_FILE: &str = "fleetlock.json";

/// Why a FleetLock request was refused; `kind` is the protocol's error kind.
#[derive(Debug, thiserror::Error)]
pub enum FleetLockError {
    #[error("the fleet-lock-protocol: true header is missing")]
    MissingHeader,
    #[error("malformed request body: {0}")]
    BadBody(String),
    #[error("invalid client id {0:?}: 1 to 256 printable ASCII characters")]
    BadId(String),
    #[error("unknown group {group:?}; configured groups: {known}")]
    UnknownGroup { group: String, known: String },
    #[error("all {slots} reboot slot(s) of group {group:?} are held by: {holders}")]
    NoSlot {
        group: String,
        slots: u32,
        holders: String,
    },
    #[error("credentials required (basic auth of the mirror's htpasswd users)")]
    Unauthorized,
    #[error("no fleetlock is configured on this mirror ([fleetlock] groups)")]
    NotConfigured,
    #[error("saving {path}: {message}")]
    Save { path: PathBuf, message: String },
}

impl FleetLockError {
    fn kind(&self) -> &'static str {
        match self {
            FleetLockError::MissingHeader => "missing_header",
            FleetLockError::BadBody(_) => "bad_request",
            FleetLockError::BadId(_) => "bad_request",
            FleetLockError::UnknownGroup { .. } => "unknown_group",
            FleetLockError::NoSlot { .. } => "failed_lock",
            FleetLockError::Unauthorized => "unauthorized",
            FleetLockError::NotConfigured => "not_configured",
            FleetLockError::Save { .. } => "internal_error",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            FleetLockError::MissingHeader
            | FleetLockError::BadBody(_)
            | FleetLockError::BadId(_)
            | FleetLockError::UnknownGroup { .. } => StatusCode::BAD_REQUEST,
            FleetLockError::NoSlot { .. } => StatusCode::CONFLICT,
            FleetLockError::Unauthorized => StatusCode::UNAUTHORIZED,
            FleetLockError::NotConfigured => StatusCode::NOT_FOUND,
            FleetLockError::Save { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for FleetLockError {
    fn into_response(self) -> Response {
        let value = match &self {
            // the path and OS error are for the log, not for clients
            FleetLockError::Save { .. } => {
                tracing::error!(error = %self, "fleetlock state not saved");
                "the lock state could not be saved".to_string()
            }
            e => e.to_string(),
        };
        let body = serde_json::json!({ "kind": self.kind(), "value": value });
        let mut resp = (self.status(), axum::Json(body)).into_response();
        if matches!(self, FleetLockError::Unauthorized) {
            resp.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Basic realm=\"fleetlock\""),
            );
        }
        resp
    }
}

/// One held slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub id: String,
    /// Seconds since the epoch when the slot was taken.
    pub since: u64,
}

/// The holders of every group, as kept in [`STATE_FILE`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    pub groups: BTreeMap<String, Vec<Holder>>,
}

#[derive(Debug, Deserialize)]
struct Request {
    client_params: ClientParams,
}

#[derive(Debug, Deserialize)]
struct ClientParams {
    id: String,
    group: String,
}

/// What a granted or released request did, for the log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Taken,
    AlreadyHeld,
    Released,
    NotHeld,
}

/// The lock server's state: the groups' slot counts and their holders.
pub struct FleetLock {
    groups: BTreeMap<String, u32>,
    require_auth: bool,
    path: PathBuf,
    state: tokio::sync::Mutex<LockState>,
}

impl FleetLock {
    /// Opens the state kept in `dir` (none yet is an empty state). When a
    /// group now has fewer slots than holders, the holders keep theirs and
    /// no new slot is handed out until enough of them release.
    pub fn open(cfg: &FleetLockConfig, dir: &Path) -> anyhow::Result<FleetLock> {
        use anyhow::Context;
        let path = dir.join(STATE_FILE);
        let state = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice::<LockState>(&b)
                .with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LockState::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        for (group, holders) in &state.groups {
            let slots = cfg.groups.get(group).copied().unwrap_or(0);
            if holders.len() as u64 > slots as u64 {
                tracing::warn!(
                    group,
                    slots,
                    holders = holders.len(),
                    "more fleetlock holders than slots (the config shrank); no new slot until they release"
                );
            }
        }
        Ok(FleetLock {
            groups: cfg.groups.clone(),
            require_auth: cfg.require_auth,
            path,
            state: tokio::sync::Mutex::new(state),
        })
    }

    /// The holders now.
    pub async fn state(&self) -> LockState {
        self.state.lock().await.clone()
    }

    /// RecursiveLock: takes a slot of `group` for `id`, or confirms it holds one.
    pub async fn lock(&self, id: &str, group: &str) -> Result<Outcome, FleetLockError> {
        let slots = self.slots(group)?;
        let mut state = self.state.lock().await;
        let holders = state.groups.entry(group.to_string()).or_default();
        if holders.iter().any(|h| h.id == id) {
            return Ok(Outcome::AlreadyHeld);
        }
        if holders.len() as u64 >= slots as u64 {
            return Err(FleetLockError::NoSlot {
                group: group.to_string(),
                slots,
                holders: holders
                    .iter()
                    .map(|h| h.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut next = state.clone();
        next.groups
            .entry(group.to_string())
            .or_default()
            .push(Holder {
                id: id.to_string(),
                since: now(),
            });
        self.save(&next).await?;
        *state = next;
        Ok(Outcome::Taken)
    }

    /// UnlockIfHeld: frees `id`'s slot of `group` if it holds one.
    pub async fn unlock(&self, id: &str, group: &str) -> Result<Outcome, FleetLockError> {
        self.slots(group)?;
        let mut state = self.state.lock().await;
        let held = state
            .groups
            .get(group)
            .is_some_and(|h| h.iter().any(|h| h.id == id));
        if !held {
            return Ok(Outcome::NotHeld);
        }
        let mut next = state.clone();
        if let Some(h) = next.groups.get_mut(group) {
            h.retain(|h| h.id != id);
            if h.is_empty() {
                next.groups.remove(group);
            }
        }
        self.save(&next).await?;
        *state = next;
        Ok(Outcome::Released)
    }

    fn slots(&self, group: &str) -> Result<u32, FleetLockError> {
        self.groups
            .get(group)
            .copied()
            .ok_or_else(|| FleetLockError::UnknownGroup {
                group: group.to_string(),
                known: self.groups.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// Written before the answer: a slot handed out survives a restart.
    async fn save(&self, state: &LockState) -> Result<(), FleetLockError> {
        let mut data = serde_json::to_vec_pretty(state).expect("lock state serializes");
        data.push(b'\n');
        let path = self.path.clone();
        let mut nonce = [0u8; 8];
        let _ = getrandom::getrandom(&mut nonce);
        let tmp = path.with_file_name(format!(".{STATE_FILE}.{}", hex::encode(nonce)));
        let fail = |message: String| FleetLockError::Save {
            path: path.clone(),
            message,
        };
        tokio::task::spawn_blocking({
            let path = path.clone();
            move || crate::storage::durable::replace_file(&tmp, &path, &data)
        })
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| fail(e.to_string()))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks the header, credentials and body of a request.
fn parse(
    fl: &FleetLock,
    auth: &Authenticator,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ClientParams, FleetLockError> {
    let protocol = headers
        .get("fleet-lock-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if protocol != Some("true") {
        return Err(FleetLockError::MissingHeader);
    }
    if fl.require_auth && !matches!(auth.identify(headers), Identity::User(_)) {
        return Err(FleetLockError::Unauthorized);
    }
    let req: Request =
        serde_json::from_slice(body).map_err(|e| FleetLockError::BadBody(e.to_string()))?;
    let p = req.client_params;
    if p.id.is_empty() || p.id.len() > 256 || !p.id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FleetLockError::BadId(p.id));
    }
    Ok(p)
}

/// `POST /v1/pre-reboot`.
pub async fn pre_reboot(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(fl) = &app.fleetlock else {
        return FleetLockError::NotConfigured.into_response();
    };
    let result = match parse(fl, &app.auth, &headers, &body) {
        Ok(p) => fl
            .lock(&p.id, &p.group)
            .await
            .inspect(|o| tracing::info!(id = p.id, group = p.group, outcome = ?o, "fleetlock pre-reboot"))
            .inspect_err(|e| tracing::info!(id = p.id, group = p.group, error = %e, "fleetlock pre-reboot refused")),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/steady-state`.
pub async fn steady_state(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(fl) = &app.fleetlock else {
        return FleetLockError::NotConfigured.into_response();
    };
    let result = match parse(fl, &app.auth, &headers, &body) {
        Ok(p) => fl.unlock(&p.id, &p.group).await.inspect(
            |o| tracing::info!(id = p.id, group = p.group, outcome = ?o, "fleetlock steady-state"),
        ),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Group names as Zincati allows them.
pub fn valid_group(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}
