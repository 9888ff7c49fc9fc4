//! GPG "simple signing": the payload signed as an OpenPGP message (`gpg
//! --sign`, not detached — containers/image `signature/mechanism_gpgme.go`
//! expects the payload inside), stored in a lookaside at
//! `<lookaside>/<repo>@sha256=<hex>/signature-<n>` (n from 1, the first
//! missing one ends the list; containers/image `docker/docker_image_src.go`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::cosign::{check_target_payloads, Verified};
use crate::identity::SignedIdentity;
use crate::payload::{Payload, ATOMIC_TYPE};
use crate::targets::{self, Target};
use crate::VerifyError;
use corral_registry::{Client, ImageRef};

/// Signatures looked at per image at most.
const MAX_SIGNATURES: usize = 64;

fn gpg(homedir: Option<&Path>) -> Command {
    let mut c = Command::new("gpg");
    if let Some(h) = homedir {
        c.arg("--homedir").arg(h);
    }
    c.args(["--batch", "--no-tty"]);
    c
}

fn run(mut cmd: Command, input: Option<&[u8]>, what: &str) -> anyhow::Result<std::process::Output> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("{what}: running {cmd:?} (is gnupg installed?)"))?;
    if let Some(data) = input {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(data)
            .with_context(|| format!("{what}: writing to gpg"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("{what}: waiting for gpg"))?;
    if !out.status.success() {
        bail!(
            "{what}: gpg failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Makes a passphrase-less Ed25519 signing key in `homedir` and exports its
/// public key to `out/corral-signing.gpg`. Returns (fingerprint, keyring path).
pub fn generate(
    homedir: Option<&Path>,
    uid: &str,
    out: &Path,
) -> anyhow::Result<(String, PathBuf)> {
    if let Some(h) = homedir {
        std::fs::create_dir_all(h).with_context(|| format!("creating {}", h.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(h, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod {}", h.display()))?;
    }
    let mut c = gpg(homedir);
    c.args([
        "--passphrase",
        "",
        "--quick-generate-key",
        uid,
        "ed25519",
        "sign",
        "never",
    ]);
    run(c, None, "generating the gpg key")?;
    let mut c = gpg(homedir);
    c.args(["--with-colons", "--list-secret-keys", uid]);
    let listing = run(c, None, "listing the gpg key")?;
    let fpr = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .context("gpg listed no fingerprint for the new key")?;
    let mut c = gpg(homedir);
    c.args(["--export", &fpr]);
    let public = run(c, None, "exporting the gpg public key")?;
    let keyring = out.join("corral-signing.gpg");
    std::fs::write(&keyring, &public.stdout)
        .with_context(|| format!("writing {}", keyring.display()))?;
    Ok((fpr, keyring))
}

/// `gpg --sign` of `payload` with `key_id`.
pub fn sign_payload(
    homedir: Option<&Path>,
    key_id: &str,
    payload: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let mut c = gpg(homedir);
    c.args(["--local-user", key_id, "--sign", "--output", "-"]);
    Ok(run(c, Some(payload), &format!("signing with gpg key {key_id}"))?.stdout)
}

/// What gpgv says about one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpgCheck {
    /// Made by a key in the keyrings: its primary key's fingerprint and the
    /// signed payload.
    Valid {
        fingerprint: String,
        payload: Vec<u8>,
    },
    /// Made by a key the keyrings do not hold (its long key ID).
    UnknownKey(String),
    /// A key the keyrings hold, but the signature does not match the data.
    BadSignature,
    /// Not an OpenPGP signed message gpgv can read.
    Malformed,
}

/// Checks `signature` (a signed OpenPGP message) against `keyrings` with
/// gpgv, which reads binary keyrings as `gpg --export` writes them.
pub fn check_signature(keyrings: &[PathBuf], signature: &[u8]) -> anyhow::Result<GpgCheck> {
    let dir = tempfile::tempdir().context("temporary directory for gpgv")?;
    let sig = dir.path().join("signature");
    let out = dir.path().join("payload");
    std::fs::write(&sig, signature).context("writing the signature for gpgv")?;
    let mut cmd = gpgv(dir.path(), keyrings)?;
    let result = cmd
        .args(["--status-fd", "2", "--output"])
        .arg(&out)
        .arg(&sig)
        .stdin(Stdio::null())
        .output()
        .context("running gpgv (is gpgv installed?)")?;
    interpret(&result, || {
        std::fs::read(&out).context("reading gpgv's output")
    })
}

/// Checks a detached `signature` of the file `data` against `keyrings`
/// (a published disk image and its `.asc`). A valid check's payload is
/// empty: the data is the file.
pub fn check_detached_signature(
    keyrings: &[PathBuf],
    signature: &Path,
    data: &Path,
) -> anyhow::Result<GpgCheck> {
    let dir = tempfile::tempdir().context("temporary directory for gpgv")?;
    let mut cmd = gpgv(dir.path(), keyrings)?;
    let result = cmd
        .args(["--status-fd", "2"])
        .arg(signature)
        .arg(data)
        .stdin(Stdio::null())
        .output()
        .context("running gpgv (is gpgv installed?)")?;
    interpret(&result, || Ok(Vec::new()))
}

fn gpgv(home: &Path, keyrings: &[PathBuf]) -> anyhow::Result<Command> {
    let mut cmd = Command::new("gpgv");
    cmd.arg("--homedir").arg(home);
    for k in keyrings {
        let k = std::path::absolute(k).with_context(|| format!("resolving {}", k.display()))?;
        if !k.exists() {
            bail!("keyring {} does not exist", k.display());
        }
        cmd.arg("--keyring").arg(k);
    }
    Ok(cmd)
}

/// gpgv's verdict from its status lines.
fn interpret(
    result: &std::process::Output,
    payload: impl FnOnce() -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<GpgCheck> {
    let status = String::from_utf8_lossy(&result.stderr);
    let line = |kw: &str| {
        status.lines().find_map(|l| {
            l.strip_prefix("[GNUPG:] ")
                .and_then(|l| l.strip_prefix(kw))
                .filter(|rest| rest.is_empty() || rest.starts_with(' '))
                .map(|rest| {
                    rest.split_whitespace()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
        })
    };
    if let (true, Some(fields)) = (result.status.success(), line("VALIDSIG")) {
        // VALIDSIG <fpr> <date> <ts> <expire> <ver> <rsv> <pk> <hash> <class> <primary-fpr>
        let fingerprint = fields
            .get(9)
            .or(fields.first())
            .cloned()
            .unwrap_or_default();
        return Ok(GpgCheck::Valid {
            fingerprint,
            payload: payload()?,
        });
    }
    if line("BADSIG").is_some() {
        return Ok(GpgCheck::BadSignature);
    }
    if let Some(fields) = line("NO_PUBKEY") {
        return Ok(GpgCheck::UnknownKey(
            fields.first().cloned().unwrap_or_default(),
        ));
    }
    // ERRSIG <keyid> <pkalgo> <hashalgo> <class> <time> <rc>: rc 9 is a
    // missing key, anything else a signature gpgv cannot check.
    if let Some(fields) = line("ERRSIG") {
        return Ok(if fields.get(5).map(String::as_str) == Some("9") {
            GpgCheck::UnknownKey(fields.first().cloned().unwrap_or_default())
        } else {
            GpgCheck::BadSignature
        });
    }
    Ok(GpgCheck::Malformed)
}

/// The payload of `signature` if a key in `keyring` made it.
pub fn open_signature(keyring: &Path, signature: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(
        match check_signature(&[keyring.to_path_buf()], signature)? {
            GpgCheck::Valid { payload, .. } => Some(payload),
            _ => None,
        },
    )
}

/// `<lookaside>/<repo>@sha256=<hex>/signature-<n>`.
pub fn signature_url(lookaside: &str, image: &ImageRef, digest: &str, n: usize) -> String {
    format!(
        "{}/{}@{}/signature-{n}",
        lookaside.trim_end_matches('/'),
        image.repo,
        digest.replace(':', "=")
    )
}

/// The lookaside of corral's mirror serving `image`.
pub fn default_lookaside(client: &Client, image: &ImageRef) -> String {
    format!(
        "{}://{}/sigstore",
        if client.plain_http { "http" } else { "https" },
        image.host
    )
}

/// What was uploaded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Uploaded {
    pub reference: String,
    pub digest: String,
    pub url: String,
    /// For an index: each platform manifest, signed with the same
    /// reference (a client pulling the tag checks each platform it takes
    /// against it), and where its signature went.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platform_manifests: Vec<UploadedPlatform>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UploadedPlatform {
    #[serde(flatten)]
    pub target: Target,
    pub url: String,
}

/// Signs the manifest `image` names and, when it is an index, every
/// platform manifest it lists.
pub async fn sign(
    client: &Client,
    image: &ImageRef,
    lookaside: &str,
    homedir: Option<&Path>,
    key_id: &str,
) -> anyhow::Result<Uploaded> {
    let mut targets = targets::resolve_all(client, image).await?.into_iter();
    let top = targets
        .next()
        .expect("resolve_all names the manifest first");
    // The identity names what the image is pulled as: containers/image's
    // default (matchRepoDigestOrExact) wants the exact `REPO:TAG` for a tag
    // pull and the repository for a digest pull, and accepts no bare
    // repository for either, so a digest reference signs `REPO@DIGEST`.
    // A platform manifest is checked against the reference the client
    // pulled (the index's), so it is signed with the same one.
    let reference = match &image.tag {
        Some(t) => format!("{}:{t}", image.repository()),
        None => format!("{}@{}", image.repository(), top.digest),
    };
    let url = sign_digest(
        client,
        image,
        lookaside,
        homedir,
        key_id,
        &reference,
        &top.digest,
    )
    .await?;
    let mut platform_manifests = Vec::new();
    for t in targets {
        let url = sign_digest(
            client, image, lookaside, homedir, key_id, &reference, &t.digest,
        )
        .await
        .with_context(|| format!("signing {}", t.describe(image)))?;
        platform_manifests.push(UploadedPlatform { target: t, url });
    }
    Ok(Uploaded {
        reference,
        digest: top.digest,
        url,
        platform_manifests,
    })
}

/// Uploads a signature of `reference` at `digest` as the next free
/// `signature-<n>`. Returns its URL.
async fn sign_digest(
    client: &Client,
    image: &ImageRef,
    lookaside: &str,
    homedir: Option<&Path>,
    key_id: &str,
    reference: &str,
    digest: &str,
) -> anyhow::Result<String> {
    let payload = Payload::new(reference, digest, ATOMIC_TYPE).to_bytes();
    let signature = sign_payload(homedir, key_id, &payload)?;
    for n in 1..=MAX_SIGNATURES {
        let url = signature_url(lookaside, image, digest, n);
        if client.get_optional(image, &url).await?.is_none() {
            client.put(image, &url, signature).await?;
            return Ok(url);
        }
    }
    bail!("{image} ({digest}) already has {MAX_SIGNATURES} signatures")
}

/// Checks the lookaside signatures of `image` against `keyring`, with the
/// identity rule `corral policy` writes for GPG.
pub async fn verify(
    client: &Client,
    image: &ImageRef,
    lookaside: &str,
    keyring: &Path,
) -> anyhow::Result<Result<Verified, VerifyError>> {
    let rule = SignedIdentity::default_for("gpg");
    verify_with(client, image, lookaside, keyring, &rule).await
}

/// [`verify`] with the identity rule `rule` (from a policy.json). For an
/// index every platform manifest must be validly signed too: the first
/// one that is not is the answer.
pub async fn verify_with(
    client: &Client,
    image: &ImageRef,
    lookaside: &str,
    keyring: &Path,
    rule: &SignedIdentity,
) -> anyhow::Result<Result<Verified, VerifyError>> {
    let mut targets = targets::resolve_all(client, image).await?.into_iter();
    let top = targets
        .next()
        .expect("resolve_all names the manifest first");
    let mut verified = match verify_target(client, image, lookaside, keyring, rule, &top).await? {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    for t in targets {
        if let Err(e) = verify_target(client, image, lookaside, keyring, rule, &t).await? {
            return Ok(Err(e));
        }
        verified.platform_manifests.push(t);
    }
    Ok(Ok(verified))
}

async fn verify_target(
    client: &Client,
    image: &ImageRef,
    lookaside: &str,
    keyring: &Path,
    rule: &SignedIdentity,
    target: &Target,
) -> anyhow::Result<Result<Verified, VerifyError>> {
    let mut found = 0;
    let mut payloads = Vec::new();
    for n in 1..=MAX_SIGNATURES {
        let url = signature_url(lookaside, image, &target.digest, n);
        let Some(sig) = client.get_optional(image, &url).await? else {
            break;
        };
        found += 1;
        if let Some(p) = open_signature(keyring, &sig)? {
            payloads.push(p);
        }
    }
    if found == 0 {
        return Ok(Err(VerifyError::NoSignature(target.describe(image))));
    }
    Ok(check_target_payloads(
        image,
        target,
        &payloads,
        ATOMIC_TYPE,
        "gpg",
        rule,
    ))
}
