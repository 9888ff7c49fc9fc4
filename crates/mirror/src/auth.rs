//! Authentication and authorisation: htpasswd (bcrypt) basic auth and the
//! mirror's own bearer tokens (docker token protocol), HMAC-signed and scoped
//! per repository and action. Credentials are never logged.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::http::HeaderMap;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::{AuthConfig, MIN_TOKEN_SECRET_BYTES};
use crate::error::{ErrorCode, RegistryError};

/// What a request wants to do to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

/// One `access` entry of a token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub access: Vec<Access>,
}

/// Who made a request.
#[derive(Debug, Clone)]
pub enum Identity {
    Anonymous,
    User(String),
    Token(Claims),
    /// Credentials were presented and are wrong or expired.
    Invalid,
}

pub struct Authenticator {
    users: HashMap<String, String>,
    anonymous_pull: bool,
    secret: Vec<u8>,
    ttl: u64,
    pub service: String,
    realm: Option<String>,
    token_only: bool,
    /// Hashes of (user, password) pairs bcrypt already accepted: bcrypt is
    /// deliberately slow and clients send basic auth on every request.
    verified: Mutex<HashSet<[u8; 32]>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parses htpasswd text; only bcrypt (`$2a$`, `$2b$`, `$2y$`) entries are kept.
pub fn parse_htpasswd(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (u, h) = l.trim().split_once(':')?;
            (h.starts_with("$2")).then(|| (u.to_string(), h.to_string()))
        })
        .collect()
}

impl Authenticator {
    pub fn from_config(cfg: &AuthConfig) -> anyhow::Result<Authenticator> {
        let users = match &cfg.htpasswd {
            Some(p) => {
                let text = corral_configfile::read_to_string(p, corral_configfile::DEFAULT_LIMIT)?;
                let users = parse_htpasswd(&text);
                if users.is_empty() {
                    tracing::warn!(path = %p.display(), "htpasswd has no bcrypt entries; nobody can push");
                }
                users
            }
            None => HashMap::new(),
        };
        let secret = match &cfg.token_secret {
            Some(s) => {
                // Also checked when the config is parsed; this guards configs
                // built in code.
                anyhow::ensure!(
                    s.len() >= MIN_TOKEN_SECRET_BYTES,
                    "auth.token_secret is {} bytes; at least {MIN_TOKEN_SECRET_BYTES} are needed",
                    s.len()
                );
                s.as_bytes().to_vec()
            }
            // Only in-process uses get here: `serve` always has a secret
            // (configured, or stored by [`stored_token_secret`]).
            None => {
                let mut b = vec![0u8; 32];
                getrandom::getrandom(&mut b)
                    .map_err(|e| anyhow::anyhow!("reading the system random source: {e}"))?;
                b
            }
        };
        Ok(Authenticator {
            users,
            anonymous_pull: cfg.anonymous_pull,
            secret,
            ttl: cfg.token_ttl_secs,
            service: cfg.service.clone(),
            realm: cfg.realm.clone(),
            token_only: cfg.token_only,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Whether any credentials can exist (so clients must be challenged).
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    pub fn anonymous_pull(&self) -> bool {
        self.anonymous_pull
    }

    pub fn check_password(&self, user: &str, password: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let key: [u8; 32] = Sha256::new()
            .chain_update(user)
            .chain_update([0])
            .chain_update(password)
            .chain_update([0])
            .chain_update(hash)
            .finalize()
            .into();
        if self
            .verified
            .lock()
            .expect("auth cache lock")
            .contains(&key)
        {
            return true;
        }
        let ok = bcrypt::verify(password, hash).unwrap_or(false);
        if ok {
            self.verified.lock().expect("auth cache lock").insert(key);
        }
        ok
    }

    fn sign(&self, payload: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("hmac takes any key length");
        mac.update(payload.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    pub fn issue_token(&self, subject: &str, access: Vec<Access>) -> (String, u64) {
        let iat = now();
        let claims = Claims {
            sub: subject.to_string(),
            aud: self.service.clone(),
            exp: iat + self.ttl,
            iat,
            access,
        };
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialise"));
        let sig = self.sign(&payload);
        (format!("{payload}.{sig}"), self.ttl)
    }

    pub fn verify_token(&self, token: &str) -> Option<Claims> {
        let (payload, sig) = token.split_once('.')?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).ok()?;
        mac.update(payload.as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(sig).ok()?).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.exp > now() && claims.aud == self.service).then_some(claims)
    }

    pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
        let v = headers.get("authorization")?.to_str().ok()?;
        let b64 = v
            .strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))?;
        let raw = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
        let (u, p) = raw.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    }

    pub fn identify(&self, headers: &HeaderMap) -> Identity {
        let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return Identity::Anonymous;
        };
        if let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return self
                .verify_token(t.trim())
                .map(Identity::Token)
                .unwrap_or(Identity::Invalid);
        }
        match Self::basic_credentials(headers) {
            Some((u, p)) if self.check_password(&u, &p) => Identity::User(u),
            _ => Identity::Invalid,
        }
    }

    /// Who made a registry request (`/v2/`, `/sigstore/`): as [`identify`],
    /// except that with `token_only` basic credentials count for nothing
    /// there, so the client is challenged and fetches a token.
    ///
    /// [`identify`]: Authenticator::identify
    pub fn identify_registry(&self, headers: &HeaderMap) -> Identity {
        if self.token_only && Self::basic_credentials(headers).is_some() {
            return Identity::Anonymous;
        }
        self.identify(headers)
    }

    /// Whether `who` may do `action` on `repo`.
    pub fn allowed(&self, who: &Identity, repo: &str, action: Action) -> bool {
        match who {
            Identity::User(_) => true,
            Identity::Anonymous => action == Action::Pull && self.anonymous_pull,
            Identity::Invalid => false,
            Identity::Token(c) => c.access.iter().any(|a| {
                a.kind == "repository"
                    && a.name == repo
                    && a.actions.iter().any(|x| x == action.as_str() || x == "*")
            }),
        }
    }

    /// The actions granted to `who` out of `wanted` (for the token endpoint).
    pub fn grant(&self, who: &Identity, wanted: &[String]) -> Vec<String> {
        wanted
            .iter()
            .filter(|a| match who {
                Identity::User(_) => matches!(a.as_str(), "pull" | "push" | "delete" | "*"),
                Identity::Anonymous => a.as_str() == "pull" && self.anonymous_pull,
                _ => false,
            })
            .cloned()
            .collect()
    }

    /// The 401 answered to a request lacking access, with its challenge.
    /// Several scopes go into one space-separated `scope` parameter, as
    /// distribution writes them (a mount needs pull on its source too).
    pub fn challenge(&self, host_url: &str, scopes: &[(&str, &[Action])]) -> RegistryError {
        let realm = self
            .realm
            .clone()
            .unwrap_or_else(|| format!("{host_url}/token"));
        let mut value = format!("Bearer realm=\"{realm}\",service=\"{}\"", self.service);
        if !scopes.is_empty() {
            let scopes: Vec<String> = scopes
                .iter()
                .map(|(repo, actions)| {
                    let actions: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
                    format!("repository:{repo}:{}", actions.join(","))
                })
                .collect();
            value.push_str(&format!(",scope=\"{}\"", scopes.join(" ")));
        }
        RegistryError::new(ErrorCode::Unauthorized, "authentication required")
            .with_header("www-authenticate", value)
    }
}

/// The file in a filesystem storage root holding the generated token secret.
pub const TOKEN_SECRET_FILE: &str = "token-secret";

/// The token secret kept in `root`, generated (32 random bytes, hex) on
/// first use and stored mode 0600, so restarts and several processes on one
/// storage sign alike. Processes starting together agree: the file appears
/// whole (written aside, then hard-linked into place, which fails if
/// another process got there first) and the one that lost reads the winner's.
pub fn stored_token_secret(root: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Write;
    let path = root.join(TOKEN_SECRET_FILE);
    let read = |path: &std::path::Path| -> anyhow::Result<String> {
        let s = corral_configfile::read_to_string(path, crate::config::SECRET_FILE_LIMIT)?
            .trim()
            .to_string();
        anyhow::ensure!(
            s.len() >= MIN_TOKEN_SECRET_BYTES,
            "{} holds {} bytes; a token secret needs at least {MIN_TOKEN_SECRET_BYTES} (delete it to have one generated)",
            path.display(),
            s.len()
        );
        Ok(s)
    };
    if path.exists() {
        return read(&path);
    }
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw)
        .map_err(|e| anyhow::anyhow!("reading the system random source: {e}"))?;
    let mut nonce = [0u8; 8];
    getrandom::getrandom(&mut nonce)
        .map_err(|e| anyhow::anyhow!("reading the system random source: {e}"))?;
    let tmp = root.join(format!(".{TOKEN_SECRET_FILE}.{}", hex::encode(nonce)));
    let write = || -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(format!("{}\n", hex::encode(raw)).as_bytes())?;
        f.sync_all()?;
        match std::fs::hard_link(&tmp, &path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    };
    let written = write();
    let _ = std::fs::remove_file(&tmp);
    written.with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "token secret generated");
    read(&path)
}

/// Parses `repository:NAME:a,b` scopes.
pub fn parse_scope(s: &str) -> Option<(String, Vec<String>)> {
    let rest = s.strip_prefix("repository:")?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((
        name.to_string(),
        actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        let mut a = Authenticator::from_config(&AuthConfig::default()).unwrap();
        a.users
            .insert("alice".into(), bcrypt::hash("secret", 4).unwrap());
        a
    }

    #[test]
    fn basic_and_tokens() {
        let a = auth();
        assert!(a.check_password("alice", "secret"));
        assert!(a.check_password("alice", "secret"));
        assert!(!a.check_password("alice", "wrong"));
        assert!(!a.check_password("bob", "secret"));
        let (t, _) = a.issue_token(
            "alice",
            vec![Access {
                kind: "repository".into(),
                name: "x/y".into(),
                actions: vec!["pull".into()],
            }],
        );
        let c = Identity::Token(a.verify_token(&t).unwrap());
        assert!(a.allowed(&c, "x/y", Action::Pull));
        assert!(!a.allowed(&c, "x/y", Action::Push));
        assert!(!a.allowed(&c, "x/z", Action::Pull));
        let mut forged = t.clone();
        forged.push('A');
        assert!(a.verify_token(&forged).is_none());
        // a token from another secret is rejected
        let other = Authenticator::from_config(&AuthConfig::default()).unwrap();
        assert!(other.verify_token(&t).is_none());
    }

    #[test]
    fn token_only_ignores_basic_on_the_registry() {
        let mut a = auth();
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            format!("Basic {}", STANDARD.encode("alice:secret"))
                .parse()
                .unwrap(),
        );
        assert!(matches!(a.identify_registry(&h), Identity::User(_)));
        a.token_only = true;
        assert!(matches!(a.identify_registry(&h), Identity::Anonymous));
        // The token endpoint still takes them.
        assert!(matches!(a.identify(&h), Identity::User(_)));
        let (t, _) = a.issue_token("alice", vec![]);
        h.insert("authorization", format!("Bearer {t}").parse().unwrap());
        assert!(matches!(a.identify_registry(&h), Identity::Token(_)));
    }

    #[test]
    fn short_secrets_are_refused() {
        for short in ["", "change me"] {
            let cfg = AuthConfig {
                token_secret: Some(short.into()),
                ..AuthConfig::default()
            };
            let e = Authenticator::from_config(&cfg).err().unwrap().to_string();
            assert!(e.contains("auth.token_secret"), "{e}");
        }
    }

    #[test]
    fn stored_secret_is_generated_once_private_and_shared() {
        let dir = tempfile::tempdir().unwrap();
        let a = stored_token_secret(dir.path()).unwrap();
        assert_eq!(a.len(), 64);
        let path = dir.path().join(TOKEN_SECRET_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            stored_token_secret(dir.path()).unwrap(),
            a,
            "a restart agrees"
        );
        // Processes starting together agree as well.
        let other = tempfile::tempdir().unwrap();
        let root = other.path().to_path_buf();
        let all: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| stored_token_secret(&root).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(all.iter().all(|s| *s == all[0]), "{all:?}");
        assert_ne!(all[0], a);
        let leftovers = std::fs::read_dir(&root).unwrap().count();
        assert_eq!(leftovers, 1, "only the secret file is left");
        // A truncated file is an error naming it, not an empty key.
        std::fs::write(&path, "short\n").unwrap();
        let e = stored_token_secret(dir.path()).unwrap_err().to_string();
        assert!(e.contains(TOKEN_SECRET_FILE), "{e}");
    }

    #[test]
    fn htpasswd_and_scope() {
        let m = parse_htpasswd("alice:$2y$05$abc\nbob:{SHA}xyz\n\n");
        assert_eq!(m.len(), 1);
        assert_eq!(
            parse_scope("repository:a/b:pull,push"),
            Some((
                "a/b".to_string(),
                vec!["pull".to_string(), "push".to_string()]
            ))
        );
        assert_eq!(parse_scope("registry:catalog:*"), None);
    }
}
