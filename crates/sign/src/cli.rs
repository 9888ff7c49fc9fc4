//! `corral key|sign|verify|policy`. Exit codes: 0 success, 1 "the answer
//! is no" (verification refused), 2 error (returned as `Err`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};

use crate::identity::SignedIdentity;
use crate::{cosign, cosign_key, gpg, policy};
use corral_registry::{Client, ImageRef};

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Generate a signing key: a cosign key pair (cosign.key, cosign.pub) or
    /// a GPG key whose public keyring is exported to OUT/corral-signing.gpg
    Generate {
        #[arg(long = "type", value_enum)]
        kind: KeyKind,
        /// Directory for the key files (created)
        #[arg(long)]
        out: PathBuf,
        /// GnuPG home for --type gpg (default: gpg's, i.e. $GNUPGHOME or ~/.gnupg)
        #[arg(long)]
        gpg_homedir: Option<PathBuf>,
        /// User ID of a new GPG key
        #[arg(long, default_value = "corral image signing")]
        gpg_uid: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Cosign,
    Gpg,
}

/// How to reach the registry.
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Registry credentials (push needs them)
    #[arg(
        long,
        env = "CORRAL_REGISTRY_CREDS",
        value_name = "USER:PASS",
        hide_env_values = true
    )]
    pub creds: Option<String>,
    /// Talk plain HTTP to the registry and lookaside
    #[arg(long)]
    pub plain_http: bool,
    /// Lookaside base URL for GPG signatures (default: http[s]://REGISTRY/sigstore, corral mirror's)
    #[arg(long)]
    pub lookaside: Option<String>,
}

impl RegistryArgs {
    fn client(&self) -> anyhow::Result<Client> {
        let creds = match &self.creds {
            Some(c) => {
                let (u, p) = c.split_once(':').context("--creds must be USER:PASS")?;
                Some((u.to_string(), p.to_string()))
            }
            None => None,
        };
        Ok(Client::new(self.plain_http, creds))
    }

    fn lookaside(&self, client: &Client, image: &ImageRef) -> String {
        self.lookaside
            .clone()
            .unwrap_or_else(|| gpg::default_lookaside(client, image))
    }
}

#[derive(Subcommand, Debug)]
pub enum SignCommand {
    /// Sign an image in a registry: cosign format with --key, GPG simple
    /// signing (uploaded to the lookaside) with --gpg-key
    // One of the two keys, named together so that leaving both out says
    // which two there are.
    #[command(group(ArgGroup::new("signing_key").required(true).args(["key", "gpg_key"])))]
    Image {
        /// HOST[:PORT]/REPO:TAG or …@sha256:…
        image: String,
        /// cosign private key (password from CORRAL_KEY_PASSWORD or a prompt)
        #[arg(long)]
        key: Option<PathBuf>,
        /// GPG key ID or fingerprint (GPG simple signing)
        #[arg(long)]
        gpg_key: Option<String>,
        #[arg(long)]
        gpg_homedir: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum VerifyCommand {
    /// Verify an image's signature (exit 1 when it is not validly signed)
    #[command(group(ArgGroup::new("public_key").required(true).args(["key", "gpg_keyring"])))]
    Image {
        image: String,
        /// cosign public key
        #[arg(long)]
        key: Option<PathBuf>,
        /// GPG public keyring (gpg --export output)
        #[arg(long)]
        gpg_keyring: Option<PathBuf>,
        /// Apply the signedIdentity this containers policy.json gives the
        /// image (default: the one `corral policy` writes: matchRepository
        /// for cosign, matchRepoDigestOrExact for GPG)
        #[arg(long, value_name = "POLICY_JSON")]
        policy: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[arg(long)]
        json: bool,
    },
}

/// `corral policy`: write the policy.json and registries.d a client needs
/// to require signatures from a mirror.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("public_key").required(true).args(["key", "gpg_keyring"])))]
#[command(group(ArgGroup::new("destination").required(true).args(["out", "merge"])))]
pub struct PolicyArgs {
    /// The mirror, http[s]://HOST[:PORT]
    #[arg(long)]
    pub mirror: String,
    /// cosign public key (sigstoreSigned, use-sigstore-attachments)
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// GPG public keyring (signedBy GPGKeys, lookaside)
    #[arg(long)]
    pub gpg_keyring: Option<PathBuf>,
    /// Directory for a new policy.json (rejecting all but local transports
    /// and the mirror's signed images) and registries.d/
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Add the mirror's entry to this existing policy.json in place (e.g.
    /// /etc/containers/policy.json), keeping everything else; the
    /// registries.d file goes to registries.d/ beside it
    #[arg(long, value_name = "POLICY_JSON")]
    pub merge: Option<PathBuf>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn run_key(cmd: KeyCommand) -> anyhow::Result<ExitCode> {
    let KeyCommand::Generate {
        kind,
        out,
        gpg_homedir,
        gpg_uid,
    } = cmd;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    match kind {
        KeyKind::Cosign => {
            let (private_path, public_path) = (out.join("cosign.key"), out.join("cosign.pub"));
            for p in [&private_path, &public_path] {
                anyhow::ensure!(!p.exists(), "{} exists; not overwriting a key", p.display());
            }
            let password = cosign_key::password(true)?;
            let (private, public) = cosign_key::generate(&password)?;
            cosign_key::write_private_file(&private_path, private.as_bytes())?;
            std::fs::write(&public_path, public)
                .with_context(|| format!("writing {}", public_path.display()))?;
            println!(
                "private key: {}\npublic key: {}",
                private_path.display(),
                public_path.display()
            );
        }
        KeyKind::Gpg => {
            let (fpr, keyring) = gpg::generate(gpg_homedir.as_deref(), &gpg_uid, &out)?;
            println!("fingerprint: {fpr}\npublic keyring: {}", keyring.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_sign(cmd: SignCommand) -> anyhow::Result<ExitCode> {
    let SignCommand::Image {
        image,
        key,
        gpg_key,
        gpg_homedir,
        registry,
        json,
    } = cmd;
    let image = ImageRef::parse(&image)?;
    let client = registry.client()?;
    let rt = runtime()?;
    if let Some(key_path) = key {
        let password = cosign_key::password(false)?;
        let secret = cosign_key::load_private(&key_path, &password)?;
        let signed = rt
            .block_on(cosign::sign(&client, &image, &secret))
            .with_context(|| format!("signing {image}"))?;
        if json {
            print_json(&signed)?;
        } else {
            println!(
                "signed {}@{} as {}",
                signed.reference, signed.digest, signed.signature_tag
            );
            for t in &signed.platform_manifests {
                println!(
                    "signed platform {} {} as {}",
                    t.platform.as_deref().unwrap_or("?"),
                    t.digest,
                    cosign::signature_tag(&t.digest)
                );
            }
        }
    } else {
        let key_id = gpg_key.expect("clap requires --key or --gpg-key");
        let lookaside = registry.lookaside(&client, &image);
        let up = rt
            .block_on(gpg::sign(
                &client,
                &image,
                &lookaside,
                gpg_homedir.as_deref(),
                &key_id,
            ))
            .with_context(|| format!("signing {image}"))?;
        if json {
            print_json(&up)?;
        } else {
            println!(
                "signed {}@{}; signature at {}",
                up.reference, up.digest, up.url
            );
            for p in &up.platform_manifests {
                println!(
                    "signed platform {} {}; signature at {}",
                    p.target.platform.as_deref().unwrap_or("?"),
                    p.target.digest,
                    p.url
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_verify(cmd: VerifyCommand) -> anyhow::Result<ExitCode> {
    let VerifyCommand::Image {
        image,
        key,
        gpg_keyring,
        policy,
        registry,
        json,
    } = cmd;
    let image = ImageRef::parse(&image)?;
    let client = registry.client()?;
    let rt = runtime()?;
    let format = if key.is_some() { "cosign" } else { "gpg" };
    let rule = match &policy {
        Some(p) => policy::identity_from_policy(p, &image, format)?,
        None => SignedIdentity::default_for(format),
    };
    let answer = match (key, gpg_keyring) {
        (Some(key), _) => {
            let public = cosign_key::load_public(&key)?;
            rt.block_on(cosign::verify_with(&client, &image, &public, &rule))
        }
        (None, Some(keyring)) => {
            check_keyring(&keyring)?;
            let lookaside = registry.lookaside(&client, &image);
            rt.block_on(gpg::verify_with(
                &client, &image, &lookaside, &keyring, &rule,
            ))
        }
        (None, None) => unreachable!("clap requires --key or --gpg-keyring"),
    }
    .with_context(|| format!("verifying {image}"))?;
    match answer {
        Ok(v) => {
            if json {
                print_json(&serde_json::json!({"verified": true, "result": v}))?;
            } else {
                println!(
                    "verified {} ({}) signed as {} [{}, {}]",
                    v.reference, v.digest, v.signed_reference, v.format, v.signed_identity
                );
                for t in &v.platform_manifests {
                    println!(
                        "verified platform {} ({})",
                        t.platform.as_deref().unwrap_or("?"),
                        t.digest
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                let kind = match &e {
                    crate::VerifyError::NoSignature(_) => "no-signature",
                    crate::VerifyError::WrongKey(_) => "wrong-key",
                    crate::VerifyError::OtherDigest { .. } => "other-digest",
                    crate::VerifyError::OtherReference { .. } => "other-reference",
                };
                print_json(
                    &serde_json::json!({"verified": false, "error": kind, "message": e.to_string()}),
                )?;
            }
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The size limit of a GPG keyring: a few keys are a few KiB.
pub const KEYRING_LIMIT: u64 = corral_configfile::DEFAULT_LIMIT;

/// gpgv reads the keyring itself; it is checked here as the configuration
/// file it is (a regular file under the limit), so a wrong path fails by
/// name instead of inside gpgv.
fn check_keyring(p: &Path) -> anyhow::Result<()> {
    corral_configfile::read(p, KEYRING_LIMIT)?;
    Ok(())
}

pub fn run_policy(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    let trust = match (args.key, args.gpg_keyring) {
        (Some(k), _) => policy::Trust::Cosign(k),
        (None, Some(g)) => {
            check_keyring(&g)?;
            policy::Trust::Gpg(g)
        }
        (None, None) => unreachable!("clap requires --key or --gpg-keyring"),
    };
    if let policy::Trust::Cosign(k) = &trust {
        cosign_key::load_public(k)?;
    }
    match (args.out, args.merge) {
        (Some(out), _) => {
            let (policy, yaml) = policy::write(&args.mirror, trust, &out)?;
            println!("{}\n{}", policy.display(), yaml.display());
        }
        (None, Some(file)) => {
            let m = policy::merge(&args.mirror, trust, &file)?;
            let verb = if m.replaced.is_some() {
                "replaced"
            } else {
                "added"
            };
            println!(
                "{verb} transports.docker[{:?}] in {}:\n{}",
                m.scope,
                m.policy.display(),
                serde_json::to_string_pretty(&m.entry)?
            );
            if let Some(old) = &m.replaced {
                println!("it was:\n{}", serde_json::to_string_pretty(old)?);
            }
            println!("{}", m.registries_d.display());
        }
        (None, None) => unreachable!("clap requires --out or --merge"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    enum Top {
        #[command(subcommand)]
        Sign(SignCommand),
        #[command(subcommand)]
        Verify(VerifyCommand),
        Policy(PolicyArgs),
    }

    #[test]
    fn parses() {
        let t = Top::try_parse_from([
            "t",
            "sign",
            "image",
            "h/r:1",
            "--gpg-key",
            "ABC",
            "--plain-http",
        ])
        .unwrap();
        assert!(matches!(
            t,
            Top::Sign(SignCommand::Image {
                gpg_key: Some(_),
                ..
            })
        ));
        assert!(Top::try_parse_from(["t", "sign", "image", "h/r:1"]).is_err());
        assert!(Top::try_parse_from([
            "t",
            "verify",
            "image",
            "h/r:1",
            "--key",
            "a",
            "--gpg-keyring",
            "b"
        ])
        .is_err());
        assert!(Top::try_parse_from([
            "t", "policy", "--mirror", "http://h", "--key", "k", "--out", "o"
        ])
        .is_ok());
    }

    /// Leaving the key out names both kinds of key, so a GPG user learns
    /// the flag they need.
    #[test]
    fn a_missing_key_names_the_gpg_alternative() {
        let err = |args: &[&str]| Top::try_parse_from(args).unwrap_err().to_string();
        let sign = err(&["t", "sign", "image", "h/r:1"]);
        assert!(
            sign.contains("--key") && sign.contains("--gpg-key"),
            "{sign}"
        );
        let verify = err(&["t", "verify", "image", "h/r:1"]);
        assert!(
            verify.contains("--key") && verify.contains("--gpg-keyring"),
            "{verify}"
        );
        let policy = err(&["t", "policy", "--mirror", "http://h", "--out", "o"]);
        assert!(
            policy.contains("--key") && policy.contains("--gpg-keyring"),
            "{policy}"
        );
        let both = err(&[
            "t",
            "sign",
            "image",
            "h/r:1",
            "--key",
            "k",
            "--gpg-key",
            "g",
        ]);
        assert!(both.contains("cannot be used with"), "{both}");
        let nowhere = err(&["t", "policy", "--mirror", "http://h", "--key", "k"]);
        assert!(
            nowhere.contains("--out") && nowhere.contains("--merge"),
            "{nowhere}"
        );
    }

    /// A keyring is configuration too: a directory or a file past the
    /// limit is refused by name before gpgv sees it.
    #[test]
    fn keyrings_are_size_limited_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", check_keyring(dir.path()).unwrap_err());
        assert!(err.contains("is a directory"), "{err}");
        let big = dir.path().join("big.gpg");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(KEYRING_LIMIT + 1)
            .unwrap();
        let err = format!("{:#}", check_keyring(&big).unwrap_err());
        assert!(
            err.contains("big.gpg: larger than the 4 MiB limit"),
            "{err}"
        );
    }
}
