//! cosign's key files. The private key is PKCS#8 DER sealed with NaCl
//! secretbox under a key derived by scrypt (N=32768, r=8, p=1) from the
//! password, stored as JSON inside PEM `ENCRYPTED SIGSTORE PRIVATE KEY`
//! (older cosign: `ENCRYPTED COSIGN PRIVATE KEY`) — sigstore/cosign
//! `pkg/cosign/keys.go` and secure-systems-lab `encrypted.go`. The public key
//! is an SPKI `PUBLIC KEY` PEM.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

pub const PEM_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
pub const OLD_PEM_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// Where the password comes from when not prompted.
pub const PASSWORD_ENV: &str = "CORRAL_KEY_PASSWORD";

const SCRYPT_LOG_N: u8 = 15;

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn derive(password: &[u8], salt: &[u8], p: &KdfParams) -> anyhow::Result<[u8; 32]> {
    anyhow::ensure!(
        p.n.is_power_of_two() && p.n > 1,
        "scrypt N {} is not a power of two",
        p.n
    );
    let params = scrypt::Params::new(p.n.trailing_zeros() as u8, p.r, p.p, 32)
        .map_err(|e| anyhow::anyhow!("scrypt parameters: {e}"))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key)
        .map_err(|e| anyhow::anyhow!("scrypt: {e}"))?;
    Ok(key)
}

/// A new key pair: (encrypted private key PEM, public key PEM).
pub fn generate(password: &[u8]) -> anyhow::Result<(String, String)> {
    let secret = p256::SecretKey::random(&mut OsRng);
    let der = secret.to_pkcs8_der().context("encoding the private key")?;
    let private = encrypt(der.as_bytes(), password)?;
    let public = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .context("encoding the public key")?;
    Ok((private, public))
}

fn encrypt(plain: &[u8], password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let params = KdfParams {
        n: 1 << SCRYPT_LOG_N,
        r: 8,
        p: 1,
    };
    let key = derive(password, &salt, &params)?;
    let sealed = XSalsa20Poly1305::new(&key.into())
        .encrypt(&nonce.into(), plain)
        .map_err(|_| anyhow::anyhow!("sealing the private key"))?;
    let env = Envelope {
        kdf: Kdf {
            name: "scrypt".into(),
            params,
            salt: B64.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: B64.encode(nonce),
        },
        ciphertext: B64.encode(sealed),
    };
    let json = serde_json::to_vec(&env)?;
    pem::encode_string(PEM_LABEL, LineEnding::LF, &json).map_err(|e| anyhow::anyhow!("pem: {e}"))
}

/// Opens an encrypted private key PEM. A wrong password is its own message.
pub fn decrypt(pem_text: &str, password: &[u8]) -> anyhow::Result<p256::SecretKey> {
    let (label, json) =
        pem::decode_vec(pem_text.as_bytes()).map_err(|e| anyhow::anyhow!("not a PEM file: {e}"))?;
    if label != PEM_LABEL && label != OLD_PEM_LABEL {
        bail!("PEM type {label:?} is not a cosign private key ({PEM_LABEL})");
    }
    let env: Envelope = serde_json::from_slice(&json).context("parsing the encrypted key")?;
    if env.kdf.name != "scrypt" || env.cipher.name != "nacl/secretbox" {
        bail!(
            "unsupported key encryption {}/{}",
            env.kdf.name,
            env.cipher.name
        );
    }
    let salt = B64.decode(&env.kdf.salt).context("key salt")?;
    let nonce = B64.decode(&env.cipher.nonce).context("key nonce")?;
    let sealed = B64.decode(&env.ciphertext).context("key ciphertext")?;
    anyhow::ensure!(
        nonce.len() == 24,
        "key nonce has {} bytes, not 24",
        nonce.len()
    );
    let key = derive(password, &salt, &env.kdf.params)?;
    let nonce: [u8; 24] = nonce.try_into().expect("checked length");
    let plain = XSalsa20Poly1305::new(&key.into())
        .decrypt(&nonce.into(), sealed.as_slice())
        .map_err(|_| anyhow::anyhow!("wrong password for the private key (decryption failed)"))?;
    p256::SecretKey::from_pkcs8_der(&plain)
        .map_err(|e| anyhow::anyhow!("private key is not PKCS#8 P-256: {e}"))
}

/// The size limit of a key file: a cosign key PEM is well under 1 KiB.
pub const KEY_FILE_LIMIT: u64 = 64 * 1024;

/// Reads a private key file, refusing one that others can read.
pub fn load_private(path: &Path, password: &[u8]) -> anyhow::Result<p256::SecretKey> {
    check_private_permissions(path)?;
    let text = corral_configfile::read_to_string(path, KEY_FILE_LIMIT)?;
    decrypt(&text, password).with_context(|| format!("opening {}", path.display()))
}

pub fn check_private_permissions(path: &Path) -> anyhow::Result<()> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "private key {} is accessible by group or others (mode {:o}); run chmod 600 on it",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

pub fn load_public(path: &Path) -> anyhow::Result<p256::PublicKey> {
    let text = corral_configfile::read_to_string(path, KEY_FILE_LIMIT)?;
    p256::PublicKey::from_public_key_pem(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a P-256 PUBLIC KEY PEM: {e}", path.display()))
}

/// A public key's fingerprint: SHA-256 of its SPKI DER, in hex (sigstore's
/// key ID for key-based signing).
pub fn fingerprint(key: &p256::PublicKey) -> String {
    use sha2::{Digest as _, Sha256};
    let der = key
        .to_public_key_der()
        .expect("a P-256 point encodes as SPKI");
    hex::encode(Sha256::digest(der.as_bytes()))
}

/// Writes a file readable by its owner only, never over an existing one.
pub fn write_private_file(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))?;
    // The umask cannot widen 0600, but an inherited ACL default could.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod {}", path.display()))
}

/// ECDSA-P256/SHA-256 over `payload`, DER-encoded (what cosign stores, base64).
pub fn sign(key: &p256::SecretKey, payload: &[u8]) -> Vec<u8> {
    let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(key).sign(payload);
    sig.to_der().as_bytes().to_vec()
}

/// Checks a DER (or raw r||s) signature.
pub fn verify(key: &p256::PublicKey, payload: &[u8], sig: &[u8]) -> bool {
    let sig =
        p256::ecdsa::Signature::from_der(sig).or_else(|_| p256::ecdsa::Signature::from_slice(sig));
    match sig {
        Ok(s) => p256::ecdsa::VerifyingKey::from(key)
            .verify(payload, &s)
            .is_ok(),
        Err(_) => false,
    }
}

/// The password: `$CORRAL_KEY_PASSWORD`, else a prompt on the terminal
/// (twice when `confirm`).
pub fn password(confirm: bool) -> anyhow::Result<Vec<u8>> {
    if let Some(p) = std::env::var_os(PASSWORD_ENV) {
        use std::os::unix::ffi::OsStringExt;
        return Ok(p.into_vec());
    }
    let p = rpassword::prompt_password("key password: ")
        .context("reading the password (or set CORRAL_KEY_PASSWORD)")?;
    if confirm {
        let again = rpassword::prompt_password("again: ").context("reading the password")?;
        if again != p {
            bail!("passwords do not match");
        }
    }
    Ok(p.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sign_verify_and_wrong_password() {
        let (private, public) = generate(b"pw").unwrap();
        assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        let key = decrypt(&private, b"pw").unwrap();
        let public = p256::PublicKey::from_public_key_pem(&public).unwrap();
        let sig = sign(&key, b"payload");
        assert!(verify(&public, b"payload", &sig));
        assert!(!verify(&public, b"other", &sig));
        let err = decrypt(&private, b"nope").unwrap_err().to_string();
        assert!(err.contains("wrong password"), "{err}");
        // The older label reads the same.
        let old = private.replace(PEM_LABEL, OLD_PEM_LABEL);
        assert!(decrypt(&old, b"pw").is_ok());
    }

    #[test]
    fn group_readable_private_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_private_file(&p, b"x").unwrap();
        check_private_permissions(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = check_private_permissions(&p).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    /// Key files are configuration: a huge file or a device is refused by
    /// name before it is read whole.
    #[test]
    fn key_files_have_a_size_limit_and_must_be_files() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pub");
        std::fs::write(&big, vec![b'A'; KEY_FILE_LIMIT as usize + 1]).unwrap();
        let err = format!("{:#}", load_public(&big).unwrap_err());
        assert!(
            err.contains("big.pub") && err.contains("larger than the 64 KiB limit"),
            "{err}"
        );
        let private = dir.path().join("big.key");
        write_private_file(&private, &vec![b'A'; KEY_FILE_LIMIT as usize + 1]).unwrap();
        let err = format!("{:#}", load_private(&private, b"pw").unwrap_err());
        assert!(err.contains("big.key") && err.contains("limit"), "{err}");
        let err = format!("{:#}", load_public(dir.path()).unwrap_err());
        assert!(err.contains("is a directory"), "{err}");
    }
}
