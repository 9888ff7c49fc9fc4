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
    #[serde(default = "default_storage", deserialize_with = "de_storage")]
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
    #[serde(default, rename = "upstream", deserialize_with = "de_upstreams")]
    pub upstreams: Vec<UpstreamConfig>,
    #[serde(default)]
    pub trust: TrustConfig,
    /// A FleetLock server for hosts' reboots (`/v1/pre-reboot`,
    /// `/v1/steady-state`; `fleetlock`).
    #[serde(default)]
    pub fleetlock: Option<FleetLockConfig>,
}

/// `[fleetlock]`: reboot slots per group, e.g.
/// `groups = { default = 1, canary = 2 }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetLockConfig {
    /// Group name to the number of hosts of it that may reboot at once.
    pub groups: std::collections::BTreeMap<String, u32>,
    /// Requests need the basic credentials of an htpasswd user.
    #[serde(default)]
    pub require_auth: bool,
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
    #[serde(default, deserialize_with = "de_s3_endpoint")]
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
    /// Secret for signing bearer tokens, at least 32 bytes. When unset,
    /// `serve` generates one and keeps it in the storage directory
    /// (filesystem backend; `[s3]` needs it set).
    #[serde(default, deserialize_with = "de_token_secret")]
    pub token_secret: Option<String>,
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// The `service` named in challenges and tokens.
    #[serde(default = "default_service")]
    pub service: String,
    /// The token endpoint's URL; derived from the request's Host when unset.
    #[serde(default, deserialize_with = "de_realm")]
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

/// The shortest `token_secret` accepted: an HMAC-SHA256 key shorter than
/// its output is guessable in principle, and an empty one by anybody.
pub const MIN_TOKEN_SECRET_BYTES: usize = 32;

/// The largest `mirror.toml` read: far above any real one.
pub const CONFIG_FILE_LIMIT: u64 = 1024 * 1024;

/// The largest password, token secret or S3 secret file read.
pub const SECRET_FILE_LIMIT: u64 = 64 * 1024;

// Checks shared by the TOML layer (which adds the line and column) and
// `validate` (flags and programmatic configs). Each names its key.

fn check_storage(p: &Path) -> Result<(), String> {
    if p.as_os_str().is_empty() {
        return Err("storage is empty: name the storage directory".into());
    }
    Ok(())
}

fn check_token_secret(s: &Option<String>) -> Result<(), String> {
    match s {
        Some(s) if s.len() < MIN_TOKEN_SECRET_BYTES => Err(format!(
            "auth.token_secret is {} bytes; at least {MIN_TOKEN_SECRET_BYTES} are needed \
             (or leave it unset to have one generated in the storage directory)",
            s.len()
        )),
        _ => Ok(()),
    }
}

fn check_fleetlock(f: &FleetLockConfig, c: &Config) -> Result<(), String> {
    // Replicas behind one name would each hand out their own slots.
    if c.s3.is_some() {
        return Err("[fleetlock] needs the filesystem storage: replicas sharing [s3] would each hand out the slots".into());
    }
    if f.groups.is_empty() {
        return Err("[fleetlock] groups is empty: name at least one group and its slots".into());
    }
    for (g, n) in &f.groups {
        if !crate::fleetlock::valid_group(g) {
            return Err(format!(
                "fleetlock.groups: {g:?} is not a group name (letters, digits, '.' and '-')"
            ));
        }
        if *n == 0 {
            return Err(format!(
                "fleetlock.groups.{g} is 0: a group needs at least 1 slot"
            ));
        }
    }
    if f.require_auth && c.auth.htpasswd.is_none() {
        return Err("fleetlock.require_auth needs auth.htpasswd".into());
    }
    Ok(())
}

/// An absolute `http://` or `https://` URL with a host.
fn check_http_url(key: &str, url: &str) -> Result<(), String> {
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e| format!("{key} {url:?} is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("{key} {url:?} must start with http:// or https://"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{key} {url:?} has no host"));
    }
    Ok(())
}

fn check_upstreams(upstreams: &[UpstreamConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, u) in upstreams.iter().enumerate() {
        let key = format!("upstream[{i}]");
        if RepoName::parse(&u.prefix).is_none() {
            return Err(format!(
                "{key}.prefix {:?} is not a repository name",
                u.prefix
            ));
        }
        if !seen.insert(u.prefix.as_str()) {
            return Err(format!(
                "{key}.prefix {:?} is given twice: which upstream mirrors it would be a guess",
                u.prefix
            ));
        }
        check_http_url(&format!("{key}.url"), &u.url)?;
        if u.password.is_some() && u.password_file.is_some() {
            return Err(format!(
                "{key} sets both password and password_file: keep one"
            ));
        }
    }
    Ok(())
}

/// Deserializes a value and runs `check` on it, so the TOML error carries
/// the value's line and column.
fn checked<'de, D, T>(d: D, check: impl FnOnce(&T) -> Result<(), String>) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let v = T::deserialize(d)?;
    check(&v).map_err(serde::de::Error::custom)?;
    Ok(v)
}

fn de_storage<'de, D: serde::Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    checked(d, |p: &PathBuf| check_storage(p))
}

fn de_token_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(d, check_token_secret)
}

fn de_realm<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(d, |r: &Option<String>| match r {
        Some(r) => check_http_url("auth.realm", r),
        None => Ok(()),
    })
}

fn de_s3_endpoint<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked(d, |e: &Option<String>| match e {
        Some(e) => check_http_url("s3.endpoint", e),
        None => Ok(()),
    })
}

fn de_upstreams<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<UpstreamConfig>, D::Error> {
    checked(d, |u: &Vec<UpstreamConfig>| check_upstreams(u))
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

    /// Reads and validates `path` (at most [`CONFIG_FILE_LIMIT`] bytes).
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = corral_configfile::read_to_string(path, CONFIG_FILE_LIMIT)?;
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

    /// Checks what the TOML layer checks, for configs built or changed in
    /// code (command-line flags); touches no files.
    pub fn validate(&self) -> anyhow::Result<()> {
        let fail = |e: String| anyhow::anyhow!(e);
        check_storage(&self.storage).map_err(fail)?;
        if let Some(s3) = &self.s3 {
            anyhow::ensure!(!s3.bucket.is_empty(), "s3.bucket is empty");
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
                check_http_url("s3.endpoint", e).map_err(fail)?;
            }
        }
        check_token_secret(&self.auth.token_secret).map_err(fail)?;
        if let Some(f) = &self.fleetlock {
            check_fleetlock(f, self).map_err(fail)?;
        }
        if let Some(r) = &self.auth.realm {
            check_http_url("auth.realm", r).map_err(fail)?;
        }
        check_upstreams(&self.upstreams).map_err(fail)
    }

    /// Checks the directories the config names exist and are what their
    /// key says: `ostree_repo` an OSTree repository (a `config` file and an
    /// `objects/` directory), `disk_images.dir` a directory. Serving a typo
    /// would answer 404 to every request instead of failing at start.
    pub fn check_paths(&self) -> anyhow::Result<()> {
        if let Some(repo) = &self.ostree_repo {
            let shown = repo.display();
            anyhow::ensure!(
                repo.is_dir(),
                "ostree_repo {shown} does not exist or is not a directory"
            );
            anyhow::ensure!(
                repo.join("config").is_file() && repo.join("objects").is_dir(),
                "ostree_repo {shown} is not an OSTree repository (no config file and objects/ directory)"
            );
        }
        if let Some(dir) = &self.disk_images.dir {
            anyhow::ensure!(
                dir.is_dir(),
                "disk_images.dir {} does not exist or is not a directory",
                dir.display()
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
    fn load_refuses_devices_and_oversized_files() {
        let e = Config::load(Path::new("/dev/zero")).unwrap_err();
        assert!(
            format!("{e:#}").contains("/dev/zero: is a character device"),
            "{e:#}"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("mirror.toml");
        std::fs::write(&big, "#".repeat(CONFIG_FILE_LIMIT as usize + 1)).unwrap();
        let e = Config::load(&big).unwrap_err();
        assert!(
            format!("{e:#}").contains("larger than the 1 MiB limit"),
            "{e:#}"
        );
        let c = Config::parse("[auth]\nhtpasswd = \"/dev/zero\"\n").unwrap();
        let Err(e) = crate::auth::Authenticator::from_config(&c.auth) else {
            panic!("an htpasswd of /dev/zero was accepted");
        };
        assert!(
            format!("{e:#}").contains("/dev/zero: is a character device"),
            "{e:#}"
        );
        let secret = dir.path().join(crate::auth::TOKEN_SECRET_FILE);
        std::fs::write(&secret, "x".repeat(SECRET_FILE_LIMIT as usize + 1)).unwrap();
        let e = crate::auth::stored_token_secret(dir.path()).unwrap_err();
        assert!(
            format!("{e:#}").contains("larger than the 64 KiB limit"),
            "{e:#}"
        );
    }

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
token_secret = "0123456789abcdef0123456789abcdef"
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

    /// The error of `text`, which must name `key` and, where a line is
    /// given, the line.
    fn error_of(text: &str) -> String {
        format!("{:#}", Config::parse(text).unwrap_err())
    }

    #[test]
    fn operator_typos_are_errors_that_name_the_key_and_line() {
        let cases: &[(&str, &str, &str)] = &[
            ("storage = \"\"\n", "storage is empty", "line 1"),
            (
                "[auth]\ntoken_secret = \"\"\n",
                "auth.token_secret is 0 bytes; at least 32",
                "line 2",
            ),
            (
                "[auth]\ntoken_secret = \"change me\"\n",
                "auth.token_secret is 9 bytes",
                "line 2",
            ),
            (
                "[auth]\nrealm = \"mirror.example/token\"\n",
                "auth.realm \"mirror.example/token\"",
                "line 2",
            ),
            (
                "[auth]\nrealm = \"https://mirror example/token\"\n",
                "auth.realm",
                "line 2",
            ),
            (
                "[[upstream]]\nprefix = \"a\"\nurl = \"https://quay.io/some path\"\n",
                "upstream[0].url \"https://quay.io/some path\" is not a URL",
                "line 1",
            ),
            (
                "[[upstream]]\nprefix = \"a\"\nurl = \"ftp://quay.io\"\n",
                "upstream[0].url \"ftp://quay.io\" must start with http:// or https://",
                "line 1",
            ),
            (
                "[[upstream]]\nprefix = \"a\"\nurl = \"https://x.example\"\n[[upstream]]\nprefix = \"a\"\nurl = \"https://y.example\"\n",
                "upstream[1].prefix \"a\" is given twice",
                "line 1",
            ),
            (
                "[[upstream]]\nprefix = \"a\"\nurl = \"https://x.example\"\npassword = \"p\"\npassword_file = \"/etc/p\"\n",
                "upstream[0] sets both password and password_file",
                "line 1",
            ),
            (
                "[s3]\nbucket = \"b\"\nendpoint = \"http://\"\n",
                "s3.endpoint",
                "line 3",
            ),
        ];
        for (text, message, line) in cases {
            let e = error_of(text);
            assert!(e.contains(message), "{text:?}: {e}");
            assert!(e.contains(line), "{text:?}: {e}");
        }
        // A secret of 32 bytes and URLs that parse are fine.
        Config::parse(
            "[auth]\ntoken_secret = \"0123456789abcdef0123456789abcdef\"\nrealm = \"https://mirror.example:5000/token\"\n",
        )
        .unwrap();
    }

    #[test]
    fn validate_checks_what_flags_set() {
        let mut c = Config {
            storage: PathBuf::new(),
            ..Config::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("storage is empty"));
        c.storage = PathBuf::from("/srv/mirror");
        c.auth.token_secret = Some(String::new());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("auth.token_secret"));
        c.auth.token_secret = None;
        let e = c
            .add_upstream_flag("a=http://bad host")
            .unwrap_err()
            .to_string();
        assert!(e.contains("upstream[0].url"), "{e}");
    }

    #[test]
    fn paths_must_exist_and_be_what_their_key_says() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config {
            ostree_repo: Some(dir.path().join("missing")),
            ..Config::default()
        };
        let e = c.check_paths().unwrap_err().to_string();
        assert!(
            e.starts_with("ostree_repo ") && e.contains("does not exist"),
            "{e}"
        );
        c.ostree_repo = Some(dir.path().to_path_buf());
        let e = c.check_paths().unwrap_err().to_string();
        assert!(e.contains("is not an OSTree repository"), "{e}");
        std::fs::create_dir(dir.path().join("objects")).unwrap();
        std::fs::write(dir.path().join("config"), "[core]\nmode=archive-z2\n").unwrap();
        c.check_paths().unwrap();
        c.disk_images.dir = Some(dir.path().join("config"));
        let e = c.check_paths().unwrap_err().to_string();
        assert!(
            e.starts_with("disk_images.dir ") && e.contains("not a directory"),
            "{e}"
        );
        c.disk_images.dir = Some(dir.path().join("objects"));
        c.check_paths().unwrap();
    }

    #[test]
    fn upstream_flag() {
        let mut c = Config::default();
        c.add_upstream_flag("library=http://127.0.0.1:9").unwrap();
        assert!(c.add_upstream_flag("nope").is_err());
        assert!(c.add_upstream_flag("Bad=http://x").is_err());
    }
}
