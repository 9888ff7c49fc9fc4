//! Signing keys: a name resolved to the fingerprint libostree signs with.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A secret key found in a GnuPG home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub fingerprint: String,
    pub homedir: Option<PathBuf>,
}

impl SigningKey {
    /// Finds the secret key `name` (fingerprint, key id or user id) with
    /// `gpg`, so a missing key fails before anything is built.
    pub fn find(name: &str, homedir: Option<&Path>) -> Result<SigningKey> {
        let mut cmd = Command::new("gpg");
        cmd.args(["--batch", "--with-colons", "--list-secret-keys", "--"])
            .arg(name);
        if let Some(home) = homedir {
            cmd.arg("--homedir").arg(home);
            cmd.env("GNUPGHOME", home);
        }
        let out = cmd.output().context("running gpg")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let fprs: Vec<&str> = fingerprints(&text);
        match fprs.as_slice() {
            [one] => Ok(SigningKey {
                fingerprint: one.to_string(),
                homedir: homedir.map(Path::to_path_buf),
            }),
            [] => bail!(
                "no secret key `{name}` in {} ({})",
                homedir.map_or_else(
                    || std::env::var("GNUPGHOME").unwrap_or_else(|_| "~/.gnupg".into()),
                    |h| h.display().to_string()
                ),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            many => bail!(
                "`{name}` names {} secret keys ({}); give a fingerprint",
                many.len(),
                many.join(", ")
            ),
        }
    }

    pub fn homedir_str(&self) -> Option<&str> {
        self.homedir.as_deref().and_then(Path::to_str)
    }
}

/// Primary-key fingerprints in `gpg --with-colons` output.
fn fingerprints(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut after_sec = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.first() {
            Some(&"sec") => after_sec = true,
            Some(&"fpr") if after_sec => {
                if let Some(f) = fields.get(9) {
                    out.push(*f);
                }
                after_sec = false;
            }
            Some(&"ssb") | Some(&"sub") => after_sec = false,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_primary_fingerprints() {
        let text = "sec:u:2048:1:AAAA:1:::u:::scESC:::+:::23::0:\nfpr:::::::::0123ABCD:\ngrp:::::::::X:\nuid:u::::1::H::a <a@b>::::::::::0:\nssb:u:2048:1:BBBB:1::::::e:::+:::23:\nfpr:::::::::FFFF:\n";
        assert_eq!(super::fingerprints(text), ["0123ABCD"]);
    }
}
