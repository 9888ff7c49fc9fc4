//! Web sessions, kept in the portal's database so that mirror replicas
//! sharing one PostgreSQL share them too.
//!
//! A session id is 32 random bytes, sent to the browser as hex in a cookie
//! and stored only as its SHA-256: someone who reads the database cannot
//! act as anyone. Each session has its own CSRF token, which every form
//! carries. A visitor who is not signed in gets a session without an
//! account (the sign-in form needs a token too); signing in replaces it
//! with a new one, so an id planted before sign-in is worth nothing after.

use sha2::{Digest as _, Sha256};

use crate::db::{DbError, Value};
use crate::store::{Store, StoreError};

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The signed-in account, `None` before sign-in.
    pub account: Option<String>,
    /// The token every form of this session carries.
    pub csrf: String,
    pub expires_at: i64,
}

/// What a new session gives the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The cookie's value (never stored).
    pub id: String,
    pub session: Session,
}

/// 32 bytes from the operating system's generator, as hex.
pub fn random_token() -> Result<String, StoreError> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b)
        .map_err(|e| DbError::Decode(format!("no random bytes from the system: {e}")))?;
    Ok(hex::encode(b))
}

fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Compares two tokens in time that does not depend on where they differ.
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Store {
    /// Starts a session for `account` (or for a visitor, `None`) that ends
    /// `ttl_secs` after `now`. Expired sessions are removed on the way.
    pub fn create_session(
        &mut self,
        account: Option<&str>,
        now: i64,
        ttl_secs: i64,
    ) -> Result<NewSession, StoreError> {
        let id = random_token()?;
        let csrf = random_token()?;
        let expires_at = now + ttl_secs;
        let conn = self.connection();
        conn.execute("DELETE FROM sessions WHERE expires_at <= $1", &[now.into()])?;
        conn.execute(
            "INSERT INTO sessions (id_hash, account, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                hash_id(&id).into(),
                account.into(),
                csrf.as_str().into(),
                now.into(),
                expires_at.into(),
            ],
        )?;
        Ok(NewSession {
            id,
            session: Session {
                account: account.map(str::to_string),
                csrf,
                expires_at,
            },
        })
    }

    /// The live session a cookie names; `None` when unknown or expired.
    pub fn session(&mut self, id: &str, now: i64) -> Result<Option<Session>, StoreError> {
        let rows = self.connection().query(
            "SELECT account, csrf, expires_at FROM sessions WHERE id_hash = $1 AND expires_at > $2",
            &[hash_id(id).into(), now.into()],
        )?;
        Ok(rows
            .first()
            .map(|r| -> Result<Session, DbError> {
                Ok(Session {
                    account: r.opt_text(0)?,
                    csrf: r.text(1)?,
                    expires_at: r.int(2)?,
                })
            })
            .transpose()?)
    }

    /// Ends a session (sign-out, or the visitor's session at sign-in).
    pub fn end_session(&mut self, id: &str) -> Result<(), StoreError> {
        self.connection().execute(
            "DELETE FROM sessions WHERE id_hash = $1",
            &[Value::from(hash_id(id))],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_compared_whole() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(tokens_match(&a, &a.clone()));
        assert!(!tokens_match(&a, &b));
        assert!(!tokens_match(&a, &a[..63]));
        assert!(!tokens_match(&a, ""));
    }
}
