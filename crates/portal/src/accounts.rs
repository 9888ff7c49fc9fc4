//! Passwords: bcrypt hashes for portal accounts, and the mirror's htpasswd
//! file, whose bcrypt entries sign in as they are (a mirror user needs no
//! second account).

use std::collections::HashMap;
use std::path::Path;

/// bcrypt's cost for new portal accounts (2^12 rounds).
pub const DEFAULT_BCRYPT_COST: u32 = 12;
/// The shortest password a new account may have.
pub const MIN_PASSWORD: usize = 10;
/// bcrypt reads 72 bytes, a terminating zero among them; a longer password
/// is refused rather than cut.
pub const MAX_PASSWORD: usize = 71;

/// A password refused at sign-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is shorter than {MIN_PASSWORD} characters")]
    TooShort,
    #[error("the password is longer than {MAX_PASSWORD} bytes (bcrypt's limit)")]
    TooLong,
    #[error("hashing the password: {0}")]
    Hash(String),
}

/// Hashes a new account's password with bcrypt.
pub fn hash_password(password: &str, cost: u32) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD {
        return Err(PasswordError::TooLong);
    }
    bcrypt::non_truncating_hash(password, cost).map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches a bcrypt `hash` (a malformed hash matches
/// nothing).
pub fn verify_password(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}

/// The mirror's htpasswd accounts (docs/mirror.md, `auth.htpasswd`). Only
/// bcrypt entries (`$2a$`, `$2b$`, `$2y$`) are kept: the other formats
/// htpasswd writes (MD5, SHA-1, crypt) are too weak to sign in with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Htpasswd {
    users: HashMap<String, String>,
}

impl Htpasswd {
    /// Parses htpasswd text (`name:hash` lines).
    pub fn parse(text: &str) -> Htpasswd {
        let users = text
            .lines()
            .filter_map(|l| {
                let (name, hash) = l.trim().split_once(':')?;
                let bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
                bcrypt.then(|| (name.to_string(), hash.to_string()))
            })
            .collect();
        Htpasswd { users }
    }

    /// Reads and parses an htpasswd file (size-limited, like every
    /// configuration file).
    pub fn load(path: &Path) -> Result<Htpasswd, corral_configfile::ConfigFileError> {
        let text = corral_configfile::read_to_string(path, corral_configfile::DEFAULT_LIMIT)?;
        Ok(Htpasswd::parse(&text))
    }

    /// Whether the file names this user (with a bcrypt hash).
    pub fn contains(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    /// Whether `name` and `password` match a bcrypt entry. An unknown name
    /// costs a bcrypt check too, so the time of an answer does not tell
    /// which names exist.
    pub fn check(&self, name: &str, password: &str) -> bool {
        match self.users.get(name) {
            Some(hash) => verify_password(password, hash),
            None => {
                verify_password(password, UNKNOWN_NAME_HASH);
                false
            }
        }
    }
}

/// What a sign-in with an unknown name is checked against: the bcrypt hash,
/// at [`DEFAULT_BCRYPT_COST`], of a random password nobody kept.
pub(crate) const UNKNOWN_NAME_HASH: &str =
    "$2y$12$hbbdxeQVklqnY6zTHwcPF.U8loKw0FwIQUhKqlLqXBs3rr117Htpa";

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn an_unknown_name_takes_a_bcrypt_check_too() {
        let known = bcrypt::hash("the right one!", DEFAULT_BCRYPT_COST).unwrap();
        let h = Htpasswd::parse(&format!("alice:{known}\n"));
        let t = Instant::now();
        assert!(!h.check("alice", "a wrong one!!"));
        let wrong_password = t.elapsed();
        let t = Instant::now();
        assert!(!h.check("mallory", "a wrong one!!"));
        let unknown_name = t.elapsed();
        // The same cost: without the dummy check an unknown name answers
        // in microseconds against bcrypt's hundreds of milliseconds.
        assert!(
            unknown_name * 4 >= wrong_password,
            "unknown name {unknown_name:?}, wrong password {wrong_password:?}"
        );
    }

    #[test]
    fn htpasswd_bcrypt_entries_sign_in() {
        let alice = bcrypt::hash("alice's secret", 4).unwrap();
        // What `htpasswd -B` writes is `$2y$`; bcrypt's own prefix is `$2b$`.
        let bob = bcrypt::hash("hunter2hunter2", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        let text =
            format!("alice:{alice}\n  bob:{bob}  \nmd5:$apr1$x$y\nsha:{{SHA}}abc=\n\nbroken\n");
        let h = Htpasswd::parse(&text);
        assert!(h.check("alice", "alice's secret"));
        assert!(h.check("bob", "hunter2hunter2"));
        assert!(!h.check("alice", "alice's secreT"));
        assert!(
            !h.check("alice", "hunter2hunter2"),
            "another user's password"
        );
        assert!(!h.check("carol", "anything"));
        assert!(
            !h.contains("md5") && !h.contains("sha"),
            "weak hashes are ignored"
        );
        assert!(!h.check("md5", ""));
    }

    #[test]
    fn htpasswd_files_are_read_with_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("htpasswd");
        std::fs::write(
            &p,
            format!("ann:{}\n", bcrypt::hash("pw-of-ann!", 4).unwrap()),
        )
        .unwrap();
        assert!(Htpasswd::load(&p).unwrap().check("ann", "pw-of-ann!"));
        assert!(Htpasswd::load(Path::new("/dev/zero")).is_err());
    }

    #[test]
    fn passwords_are_bcrypt_hashed_and_never_truncated() {
        let h = hash_password("correct horse", 4).unwrap();
        assert!(h.starts_with("$2b$04$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_eq!(hash_password("short", 4), Err(PasswordError::TooShort));
        assert_eq!(
            hash_password(&"x".repeat(72), 4),
            Err(PasswordError::TooLong)
        );
        let longest = "x".repeat(71);
        let h = hash_password(&longest, 4).unwrap();
        assert!(verify_password(&longest, &h));
        // Cut to bcrypt's length, a 72-byte password would match this hash.
        assert!(!bcrypt::non_truncating_verify("x".repeat(72), &h).unwrap_or(false));
    }
}
