//! The mirror's TOML configuration. Every key is documented in
//! `docs/mirror.md`; unknown keys are rejected and errors name the line and
//! column.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::name::RepoName;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Storage root directory (the filesystem backend).
    #[serde(default = "default_storage")]
    pub storage: PathBuf,
    /// Keep everything in an S3-compatible bucket instead of `storage`, so
    /// several replicas can share it.
    #[serde(default)]
    pub s3: Option<S3Config>,
    /// An OSTree archive repository served read-only under `/ostree/`.
    #[serde(default)]
    pub ostree_repo: Option<PathBuf>,
    /// Disk images served read-only under `/disk-images/` and listed in
    /// the catalog.
    #[serde(default, alias = "disk-images")]
    pub disk_images: DiskImagesConfig,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub gc: GcConfig,
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
    #[serde(default)]
    pub trust: TrustConfig,
}

/// `[disk_images]`: a directory of published disk images (`corral disk
/// build` output: IMAGE, IMAGE.sha256, IMAGE.asc).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskImagesConfig {
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// Keys whose signatures the catalog page reports as verified.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// cosign public keys (`PUBLIC KEY` PEM, as `corral key generate` writes).
    #[serde(default)]
    pub cosign_keys: Vec<PathBuf>,
    /// GPG public keyrings (binary, `gpg --export` output), checked with gpgv.
    #[serde(default)]
    pub gpg_keyrings: Vec<PathBuf>,
}

/// The S3 backend: bucket, endpoint and credentials.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint URL, e.g. `http://127.0.0.1:3900`; AWS when unset.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Several endpoints of one cluster (instead of `endpoint`), preferred
    /// first; requests move on when one is down (`storage::s3::failover`).
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Key prefix (from the bucket root) of an OSTree archive repository
    /// served under `/ostree/` instead of `ostree_repo`.
    #[serde(default)]
    pub ostree_prefix: Option<String>,
    /// Key prefix (from the bucket root) of disk images served under
    /// `/disk-images/` instead of `[disk_images] dir`.
    #[serde(default)]
    pub disk_images_prefix: Option<String>,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Key prefix inside the bucket, so several mirrors can share one.
    #[serde(default)]
    pub prefix: String,
    /// Access key id; `AWS_ACCESS_KEY_ID` when unset.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret key; prefer `secret_access_key_file`, else
    /// `AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// Virtual-hosted-style requests (`BUCKET.endpoint`) instead of path style.
    #[serde(default)]
    pub virtual_hosted_style: bool,
    /// Local directory for upstream downloads while they are verified
    /// (nothing another replica needs); `$TMPDIR/corral-mirror-scratch`
    /// when unset.
    #[serde(default)]
    pub scratch: Option<PathBuf>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("endpoints", &self.endpoints)
            .field("ostree_prefix", &self.ostree_prefix)
            .field("disk_images_prefix", &self.disk_images_prefix)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "..."),
            )
            .field("secret_access_key_file", &self.secret_access_key_file)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("scratch", &self.scratch)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_max_manifest")]
    pub max_manifest_bytes: u64,
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
    /// Timeout for one upstream request (connect plus headers).
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout_secs: u64,
    /// Free space the storage filesystem keeps in reserve: below it, blob
    /// uploads are refused with 507 so that manifests and tags of pushes
    /// under way can still be written, and reads keep working. Unset means
    /// 256 MiB or 1% of the filesystem, whichever is smaller; 0 turns the
    /// floor off (a full disk still answers 507). Not checked for `[s3]`.
    #[serde(default)]
    pub min_free_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest_bytes: default_max_manifest(),
            max_upload_bytes: default_max_upload(),
            upstream_timeout_secs: default_upstream_timeout(),
            min_free_bytes: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// An htpasswd file with bcrypt hashes (`htpasswd -B`). Without it nobody
    /// can push or delete.
    #[serde(default)]
    pub htpasswd: Option<PathBuf>,
    /// Whether pulls need no credentials.
    #[serde(default = "yes")]
    pub anonymous_pull: bool,
    /// Secret for signing bearer tokens; random per process when unset.
    #[serde(default)]
    pub token_secret: Option<String>,
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// The `service` named in challenges and tokens.
    #[serde(default = "default_service")]
    pub service: String,
    /// The token endpoint's URL; derived from the request's Host when unset.
    #[serde(default)]
    pub realm: Option<String>,
    /// `/v2/` and `/sigstore/` take bearer tokens only (basic credentials
    /// are ignored there and buy tokens at `/token`), as Docker Hub does.
    #[serde(default)]
    pub token_only: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            htpasswd: None,
            anonymous_pull: true,
            token_secret: None,
            token_ttl_secs: default_token_ttl(),
            service: default_service(),
            realm: None,
            token_only: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcConfig {
    /// Unreferenced blobs younger than this are kept (a push in progress).
    #[serde(default = "default_grace")]
    pub grace_period_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            grace_period_secs: default_grace(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Repositories named `PREFIX/...` are mirrored from this upstream.
    pub prefix: String,
    /// Base URL of the upstream registry, e.g. `https://quay.io`.
    pub url: String,
    /// Drop `PREFIX/` from the name asked upstream.
    #[serde(default)]
    pub strip_prefix: bool,
    /// How long a mirrored tag is served before it is revalidated.
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (preferred over `password`).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

fn yes() -> bool {
    true
}
fn default_listen() -> SocketAddr {
    "127.0.0.1:5000".parse().expect("valid address")
}
fn default_storage() -> PathBuf {
    PathBuf::from("/var/lib/corral/mirror")
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_max_manifest() -> u64 {
    4 << 20
}
fn default_max_upload() -> u64 {
    20 << 30
}
fn default_upstream_timeout() -> u64 {
    30
}
fn default_token_ttl() -> u64 {
    300
}
fn default_service() -> String {
    "corral".into()
}
fn default_grace() -> u64 {
    3600
}
fn default_ttl() -> u64 {
    300
}

impl Default for Config {
    fn default() -> Self {
        toml::from_str("").expect("empty config is valid")
    }
}

impl Config {
    /// Parses a config; errors carry line and column.
    ///
    /// ```
    /// let c = corral_mirror::config::Config::parse(
    ///     "listen = \"127.0.0.1:5001\"\n[[upstream]]\nprefix = \"library\"\nurl = \"https://registry.example\"\n",
    /// )
    /// .unwrap();
    /// assert_eq!(c.upstreams[0].ttl_secs, 300);
    /// let err = corral_mirror::config::Config::parse("lisen = 1\n").unwrap_err().to_string();
    /// assert!(err.contains("line 1"));
    /// ```
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let c: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        c.validate()?;
        Ok(c)
    }

    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Adds an upstream from a `PREFIX=URL` flag.
    pub fn add_upstream_flag(&mut self, flag: &str) -> anyhow::Result<()> {
        let (prefix, url) = flag
            .split_once('=')
            .with_context(|| format!("upstream {flag:?} is not PREFIX=URL"))?;
        self.upstreams.retain(|u| u.prefix != prefix);
        self.upstreams.push(UpstreamConfig {
            prefix: prefix.to_string(),
            url: url.to_string(),
            strip_prefix: false,
            ttl_secs: default_ttl(),
            username: None,
            password: None,
            password_file: None,
        });
        self.validate()
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(s3) = &self.s3 {
            anyhow::ensure!(!s3.bucket.is_empty(), "s3 bucket is empty");
            anyhow::ensure!(
                s3.endpoint.is_none() || s3.endpoints.is_empty(),
                "[s3] sets both `endpoint` and `endpoints`; use one"
            );
            anyhow::ensure!(
                self.ostree_repo.is_none() || s3.ostree_prefix.is_none(),
                "both `ostree_repo` and `[s3] ostree_prefix` are set; use one"
            );
            anyhow::ensure!(
                self.disk_images.dir.is_none() || s3.disk_images_prefix.is_none(),
                "both `[disk_images] dir` and `[s3] disk_images_prefix` are set; use one"
            );
            for e in s3.endpoint.iter().chain(&s3.endpoints) {
                anyhow::ensure!(
                    e.starts_with("http://") || e.starts_with("https://"),
                    "s3 endpoint {e:?} must start with http:// or https://"
                );
            }
        }
        for u in &self.upstreams {
            anyhow::ensure!(
                RepoName::parse(&u.prefix).is_some(),
                "upstream prefix {:?} is not a repository name",
                u.prefix
            );
            anyhow::ensure!(
                u.url.starts_with("http://") || u.url.starts_with("https://"),
                "upstream url {:?} must start with http:// or https://",
                u.url
            );
        }
        Ok(())
    }

    /// The upstream mirroring `repo`, the longest matching prefix first.
    pub fn upstream_for(&self, repo: &RepoName) -> Option<&UpstreamConfig> {
        self.upstreams
            .iter()
            .filter(|u| {
                repo.as_str()
                    .strip_prefix(u.prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|u| u.prefix.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_images_dir() {
        let c = Config::parse("[disk_images]\ndir = \"/srv/disk-images\"\n").unwrap();
        assert_eq!(c.disk_images.dir, Some(PathBuf::from("/srv/disk-images")));
        let c = Config::parse("[disk-images]\ndir = \"/srv/d\"\n").unwrap();
        assert_eq!(c.disk_images.dir, Some(PathBuf::from("/srv/d")));
        assert_eq!(Config::parse("").unwrap().disk_images.dir, None);
        assert!(Config::parse("[disk_images]\npath = \"/x\"\n").is_err());
    }

    #[test]
    fn full_config() {
        let c = Config::parse(
            r#"
listen = "127.0.0.1:5001"
storage = "/tmp/x"
ostree_repo = "/srv/repo"
[tls]
cert = "c.pem"
key = "k.pem"
[limits]
max_manifest_bytes = 1000
[auth]
htpasswd = "/etc/corral/htpasswd"
anonymous_pull = false
token_secret = "s"
[gc]
grace_period_secs = 10
[trust]
cosign_keys = ["/etc/corral/cosign.pub"]
gpg_keyrings = ["/etc/corral/a.gpg", "/etc/corral/b.gpg"]
[[upstream]]
prefix = "library"
url = "https://registry.example"
ttl_secs = 60
username = "u"
password_file = "/etc/p"
[[upstream]]
prefix = "library/special"
url = "http://127.0.0.1:1"
"#,
        )
        .unwrap();
        assert_eq!(c.limits.max_manifest_bytes, 1000);
        assert!(!c.auth.anonymous_pull);
        assert_eq!(c.trust.cosign_keys.len(), 1);
        assert_eq!(c.trust.gpg_keyrings.len(), 2);
        let r = RepoName::parse("library/special/x").unwrap();
        assert_eq!(c.upstream_for(&r).unwrap().url, "http://127.0.0.1:1");
        assert!(c
            .upstream_for(&RepoName::parse("libraryx/a").unwrap())
            .is_none());
        assert!(c
            .upstream_for(&RepoName::parse("library").unwrap())
            .is_none());
    }

    #[test]
    fn s3_config() {
        let c = Config::parse(
            "[s3]\nendpoint = \"http://127.0.0.1:3900\"\nbucket = \"corral\"\nregion = \"garage\"\nsecret_access_key = \"hidden\"\n",
        )
        .unwrap();
        let s3 = c.s3.as_ref().unwrap();
        assert_eq!(
            (s3.bucket.as_str(), s3.region.as_str()),
            ("corral", "garage")
        );
        assert!(
            !format!("{c:?}").contains("hidden"),
            "secrets stay out of logs"
        );
        assert!(
            Config::default().s3.is_none(),
            "the filesystem is the default"
        );
        assert!(Config::parse("[s3]\nbucket = \"b\"\nendpoint = \"ftp://x\"\n").is_err());
        assert!(
            Config::parse("[s3]\nendpoint = \"http://x\"\n").is_err(),
            "bucket is required"
        );
    }

    #[test]
    fn s3_endpoints_and_bucket_trees() {
        let c = Config::parse(
            "[s3]\nendpoints = [\"http://a:3900\", \"https://b:3900\"]\nbucket = \"b\"\nostree_prefix = \"ostree\"\n",
        )
        .unwrap();
        let s3 = c.s3.unwrap();
        assert_eq!(s3.endpoints, ["http://a:3900", "https://b:3900"]);
        assert_eq!(s3.ostree_prefix.as_deref(), Some("ostree"));
        let both =
            "[s3]\nendpoint = \"http://a:3900\"\nendpoints = [\"http://b:3900\"]\nbucket = \"b\"\n";
        let e = Config::parse(both).unwrap_err().to_string();
        assert!(e.contains("`endpoint`") && e.contains("`endpoints`"), "{e}");
        let e = Config::parse("[s3]\nendpoints = [\"http://a\", \"ftp://b\"]\nbucket = \"b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ftp://b"), "{e}");
        let e = Config::parse(
            "ostree_repo = \"/srv/repo\"\n[s3]\nbucket = \"b\"\nostree_prefix = \"ostree\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ostree_repo") && e.contains("ostree_prefix"),
            "{e}"
        );
        let e = Config::parse(
            "[disk_images]\ndir = \"/srv/d\"\n[s3]\nbucket = \"b\"\ndisk_images_prefix = \"d\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("disk_images_prefix"), "{e}");
    }

    #[test]
    fn replicas_guide_config_parses() {
        let doc = include_str!("../../../docs/mirror-replicas.md");
        let start = doc.find("```toml\n").expect("a toml block") + 8;
        let end = start + doc[start..].find("```").unwrap();
        let c = Config::parse(&doc[start..end]).unwrap();
        let s3 = c.s3.unwrap();
        assert_eq!(s3.bucket, "corral-mirror");
        assert_eq!(s3.endpoints.len(), 2);
        assert_eq!(s3.ostree_prefix.as_deref(), Some("ostree"));
    }

    #[test]
    fn unknown_key_has_position() {
        let e = Config::parse("listen = \"127.0.0.1:1\"\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn upstream_flag() {
        let mut c = Config::default();
        c.add_upstream_flag("library=http://127.0.0.1:9").unwrap();
        assert!(c.add_upstream_flag("nope").is_err());
        assert!(c.add_upstream_flag("Bad=http://x").is_err());
    }
}
