//! A GnuPG home with one signing key.

use std::path::PathBuf;
use std::process::Command;

use crate::{require_tool, run_ok};

/// A GnuPG home with one signing key, made for a test; its agent is
/// stopped on drop.
pub struct Gpg {
    pub home: tempfile::TempDir,
    pub public_key: PathBuf,
}

impl Gpg {
    pub fn new(uid: &str) -> Gpg {
        require_tool("gpg");
        let home = tempfile::Builder::new()
            .prefix("corral-gpg-")
            .tempdir_in("/var/tmp")
            .unwrap();
        run_ok(
            Command::new("gpg")
                .env("GNUPGHOME", home.path())
                .args([
                    "--batch",
                    "--quiet",
                    "--passphrase",
                    "",
                    "--quick-gen-key",
                    uid,
                ])
                .args(["rsa2048", "sign", "never"]),
        );
        let public_key = home.path().join("public.asc");
        let out = run_ok(
            Command::new("gpg")
                .env("GNUPGHOME", home.path())
                .args(["--batch", "--armor", "--export", uid]),
        );
        std::fs::write(&public_key, out.stdout).unwrap();
        Gpg { home, public_key }
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}
