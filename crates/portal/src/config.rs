//! The `[portal]` table: which database, who reviews and withdraws, how
//! many approvals publish, and how large an upload may be.
//!
//! ```toml
//! [portal]
//! database = "sqlite"                      # or "postgres"
//! sqlite_path = "/var/lib/corral/portal.db"
//! postgres_url = "host=/run/postgresql dbname=portal user=corral"
//! approvals = 2
//! reviewers = ["rita", "rob"]
//! maintainers = ["max"]
//!
//! signup = false                          # accounts made on the site
//! archive_dir = "/var/lib/corral/portal-archives"
//! session_hours = 12
//!
//! [portal.rate_limits]
//! sign_ins = 10                            # per account and per address, per 10 minutes
//! submissions = 10                         # per account and per address, per hour
//!
//! [portal.uploads]
//! max_total = "64M"
//! max_file = "16M"
//! max_entries = 2000
//! ```

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

use crate::db::Database;
use crate::rules::{ReviewPolicy, DEFAULT_APPROVALS};
use crate::upload::Limits;

/// Where the SQLite database is unless `sqlite_path` says otherwise.
pub const DEFAULT_SQLITE_PATH: &str = "/var/lib/corral/portal.db";

/// Where submitted archives are kept unless `archive_dir` says otherwise.
pub const DEFAULT_ARCHIVE_DIR: &str = "/var/lib/corral/portal-archives";

/// The portal's settings, read from a `[portal]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct PortalConfig {
    pub database: Database,
    pub policy: ReviewPolicy,
    pub uploads: Limits,
    /// Whether visitors may make accounts on the site.
    pub signup: bool,
    /// Where submitted archives (and their help.md) are kept, by digest.
    pub archive_dir: PathBuf,
    /// How long a session lasts.
    pub session_hours: u32,
    pub rate_limits: RateLimits,
    /// The check runner's settings; without a `[portal.checks]` table no
    /// checks run and revisions stay pending.
    pub checks: Option<ChecksConfig>,
    /// Where approved revisions are pushed and the community key; without
    /// `[portal.publish]` approvals publish on the pages only.
    pub publish: Option<PublishConfig>,
}

/// Pushing published revisions to the mirror, signed with the community
/// key (`community_key` and `[portal.publish]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishConfig {
    /// `HOST:PORT` of the mirror's registry API; `corral mirror serve`
    /// fills in its own address when not set.
    pub registry: Option<String>,
    /// Talk HTTP, not HTTPS, to it (when not set: HTTP unless the mirror
    /// serves TLS).
    pub plain_http: Option<bool>,
    /// An htpasswd user of the mirror allowed to push.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The community signing key (cosign format), not the official one.
    pub key: PathBuf,
    pub key_password_file: Option<PathBuf>,
    /// Its public half, which the mirror trusts and serves at
    /// `/keys/FILE-NAME`.
    pub public_key: PathBuf,
}

impl PublishConfig {
    /// The push credentials, the password read from its file.
    pub fn credentials(&self) -> anyhow::Result<Option<(String, String)>> {
        let Some(user) = &self.username else {
            return Ok(None);
        };
        let password = match &self.password_file {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?
                .trim_end_matches('\n')
                .to_string(),
            None => String::new(),
        };
        Ok(Some((user.clone(), password)))
    }

    /// The file name `/keys/NAME` serves the public key under.
    pub fn public_key_name(&self) -> String {
        self.public_key
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Publish {
    registry: Option<String>,
    plain_http: Option<bool>,
    username: Option<String>,
    password_file: Option<PathBuf>,
}

/// Where and how every revision is linted, built and tested
/// (`[portal.checks]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChecksConfig {
    /// The Docker Engine the builds and test runs go to.
    pub engine: String,
    /// The official bases a template may build FROM (present in the
    /// engine: builds never pull).
    pub bases: Vec<String>,
    /// Memory of a build step, no swap beyond it.
    pub memory: u64,
    /// CPUs of a build step.
    pub cpus: f64,
    /// How long a build may take, in seconds.
    pub timeout_secs: u64,
    /// Where the check logs are kept.
    pub log_dir: PathBuf,
    /// corral-testrun's MCS allocation directory.
    pub mcs_dir: PathBuf,
    /// Where test runs make their mount directories.
    pub scratch: PathBuf,
    /// The cgroup the engine places its containers under (its
    /// `cgroup-parent`), whose `pids.max` the runner sets before each
    /// build ([`crate::checks::pids`]); no process limit without it.
    pub pids_cgroup: Option<String>,
    /// The most processes a build's steps may run at once (a tree
    /// build's too).
    pub pids_max: u32,
    /// The memory of a tree build (its sandbox's cgroup), bytes.
    pub tree_memory: u64,
    /// The package repositories tree recipes are built from
    /// (`[[portal.checks.tree_repo]]`, a recipe's `[[repo]]` tables),
    /// instead of the recipe's own.
    pub tree_repos: Vec<toml::Table>,
}

/// Where check logs are kept unless `checks.log_dir` says otherwise.
pub const DEFAULT_LOG_DIR: &str = "/var/lib/corral/portal-logs";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Checks {
    engine: String,
    #[serde(default)]
    bases: Vec<String>,
    #[serde(default = "build_memory")]
    memory: String,
    #[serde(default = "build_cpus")]
    cpus: f64,
    #[serde(default = "build_timeout")]
    timeout: u64,
    log_dir: Option<PathBuf>,
    mcs_dir: Option<PathBuf>,
    scratch: Option<PathBuf>,
    pids_cgroup: Option<String>,
    #[serde(default = "build_pids")]
    pids_max: u32,
    #[serde(default = "tree_memory")]
    tree_memory: String,
    #[serde(default, rename = "tree_repo")]
    tree_repos: Vec<toml::Table>,
}

fn build_pids() -> u32 {
    512
}

fn tree_memory() -> String {
    "2G".into()
}

fn build_memory() -> String {
    "512M".into()
}

fn build_cpus() -> f64 {
    1.0
}

fn build_timeout() -> u64 {
    600
}

impl Checks {
    fn into_config(self) -> Result<ChecksConfig, String> {
        let memory = corral_configfile::parse_size(&self.memory)
            .map_err(|e| format!("portal.checks.memory: {e}"))?;
        // The engine takes at least 6 MB, and the build API an i32.
        if !(6 << 20..=i32::MAX as u64).contains(&memory) {
            return Err("portal.checks.memory must be between 6M and 2047M".into());
        }
        if !(self.cpus >= 0.01 && self.cpus <= 64.0) {
            return Err("portal.checks.cpus must be between 0.01 and 64".into());
        }
        if self.timeout == 0 {
            return Err("portal.checks.timeout must be at least 1 second".into());
        }
        if self.bases.is_empty() {
            return Err("portal.checks.bases must name at least one official base".into());
        }
        if let Some(c) = &self.pids_cgroup {
            let ok = c.starts_with('/')
                && c.len() > 1
                && c[1..]
                    .split('/')
                    .all(|p| !p.is_empty() && p != "." && p != "..");
            if !ok {
                return Err(format!(
                    "portal.checks.pids_cgroup must be an absolute cgroup path like /corral-portal, not {c:?}"
                ));
            }
        }
        if self.pids_max < 8 {
            return Err("portal.checks.pids_max must be at least 8".into());
        }
        let tree_memory = corral_configfile::parse_size(&self.tree_memory)
            .map_err(|e| format!("portal.checks.tree_memory: {e}"))?;
        if tree_memory < 64 << 20 {
            return Err("portal.checks.tree_memory must be at least 64M".into());
        }
        Ok(ChecksConfig {
            engine: self.engine,
            bases: self.bases,
            memory,
            cpus: self.cpus,
            timeout_secs: self.timeout,
            log_dir: self.log_dir.unwrap_or_else(|| DEFAULT_LOG_DIR.into()),
            mcs_dir: self
                .mcs_dir
                .unwrap_or_else(|| corral_testrun::mcs::DEFAULT_DIR.into()),
            scratch: self.scratch.unwrap_or_else(|| "/var/tmp".into()),
            pids_cgroup: self.pids_cgroup,
            pids_max: self.pids_max,
            tree_memory,
            tree_repos: self.tree_repos,
        })
    }
}

/// Attempts allowed per account and per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Sign-in attempts per 10 minutes.
    pub sign_ins: u32,
    /// Submissions per hour.
    pub submissions: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            sign_ins: 10,
            submissions: 10,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    portal: Section,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    #[serde(default = "sqlite")]
    database: String,
    sqlite_path: Option<PathBuf>,
    postgres_url: Option<String>,
    #[serde(default = "approvals")]
    approvals: u32,
    #[serde(default)]
    reviewers: BTreeSet<String>,
    #[serde(default)]
    maintainers: BTreeSet<String>,
    #[serde(default)]
    uploads: Uploads,
    #[serde(default)]
    signup: bool,
    archive_dir: Option<PathBuf>,
    #[serde(default = "session_hours")]
    session_hours: u32,
    #[serde(default)]
    rate_limits: RateLimits,
    checks: Option<Checks>,
    publish: Option<Publish>,
    community_key: Option<PathBuf>,
    community_key_password_file: Option<PathBuf>,
    community_public_key: Option<PathBuf>,
}

fn session_hours() -> u32 {
    12
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Uploads {
    max_total: Option<String>,
    max_file: Option<String>,
    max_entries: Option<usize>,
}

fn sqlite() -> String {
    "sqlite".into()
}

fn approvals() -> u32 {
    DEFAULT_APPROVALS
}

impl PortalConfig {
    /// Parses TOML text with a `[portal]` table. Errors name the key.
    pub fn parse(text: &str) -> Result<PortalConfig, String> {
        let f: File = toml::from_str(text).map_err(|e| {
            let (line, col) = corral_configfile::line_col(text, e.span().map_or(0, |s| s.start));
            format!("{line}:{col}: {}", e.message())
        })?;
        let s = f.portal;
        let database = match s.database.as_str() {
            "sqlite" => {
                if s.postgres_url.is_some() {
                    return Err("portal.postgres_url is set but portal.database is sqlite".into());
                }
                Database::Sqlite(s.sqlite_path.unwrap_or_else(|| DEFAULT_SQLITE_PATH.into()))
            }
            "postgres" => {
                if s.sqlite_path.is_some() {
                    return Err("portal.sqlite_path is set but portal.database is postgres".into());
                }
                Database::Postgres(
                    s.postgres_url
                        .ok_or("portal.database = \"postgres\" needs portal.postgres_url")?,
                )
            }
            other => {
                return Err(format!(
                    "portal.database is {other:?}; it must be \"sqlite\" or \"postgres\""
                ))
            }
        };
        if s.approvals == 0 {
            return Err("portal.approvals must be at least 1".into());
        }
        if s.approvals as usize > s.reviewers.len() {
            return Err(format!(
                "portal.approvals is {} but portal.reviewers names {}: nothing could be published",
                s.approvals,
                s.reviewers.len()
            ));
        }
        for name in s.reviewers.iter().chain(&s.maintainers) {
            crate::validate::account_name(name).map_err(|e| e.to_string())?;
        }
        let defaults = Limits::default();
        let size = |key: &str, v: Option<String>, default: u64| -> Result<u64, String> {
            v.map_or(Ok(default), |t| {
                corral_configfile::parse_size(&t).map_err(|e| format!("portal.uploads.{key}: {e}"))
            })
        };
        let uploads = Limits {
            max_total: size("max_total", s.uploads.max_total, defaults.max_total)?,
            max_file: size("max_file", s.uploads.max_file, defaults.max_file)?,
            max_entries: s.uploads.max_entries.unwrap_or(defaults.max_entries),
        };
        if s.session_hours == 0 {
            return Err("portal.session_hours must be at least 1".into());
        }
        if s.rate_limits.sign_ins == 0 || s.rate_limits.submissions == 0 {
            return Err("portal.rate_limits values must be at least 1".into());
        }
        Ok(PortalConfig {
            signup: s.signup,
            archive_dir: s.archive_dir.unwrap_or_else(|| DEFAULT_ARCHIVE_DIR.into()),
            session_hours: s.session_hours,
            rate_limits: s.rate_limits,
            checks: s.checks.map(Checks::into_config).transpose()?,
            publish: match (s.publish, s.community_key, s.community_public_key) {
                (None, None, None) => None,
                (Some(p), Some(key), Some(public_key)) => Some(PublishConfig {
                    registry: p.registry,
                    plain_http: p.plain_http,
                    username: p.username,
                    password_file: p.password_file,
                    key,
                    key_password_file: s.community_key_password_file,
                    public_key,
                }),
                _ => {
                    return Err(
                        "publishing needs [portal.publish], portal.community_key and \
                                portal.community_public_key together"
                            .into(),
                    )
                }
            },
            database,
            policy: ReviewPolicy {
                reviewers: s.reviewers,
                maintainers: s.maintainers,
                approvals_needed: s.approvals,
            },
            uploads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sqlite_two_approvals_and_the_upload_limits() {
        let c = PortalConfig::parse("[portal]\nreviewers = [\"a\", \"b\"]\n").unwrap();
        assert_eq!(c.database, Database::Sqlite(DEFAULT_SQLITE_PATH.into()));
        assert_eq!(c.policy.approvals_needed, 2);
        assert_eq!(c.uploads, Limits::default());
        assert!(!c.signup);
        assert_eq!(c.archive_dir, PathBuf::from(DEFAULT_ARCHIVE_DIR));
        assert_eq!(c.session_hours, 12);
        assert_eq!(c.rate_limits, RateLimits::default());
    }

    #[test]
    fn web_keys() {
        let c = PortalConfig::parse(
            "[portal]\nreviewers = [\"a\"]\napprovals = 1\nsignup = true\n\
             archive_dir = \"/srv/a\"\nsession_hours = 2\n\
             [portal.rate_limits]\nsign_ins = 3\n",
        )
        .unwrap();
        assert!(c.signup);
        assert_eq!(c.archive_dir, PathBuf::from("/srv/a"));
        assert_eq!(c.session_hours, 2);
        assert_eq!(
            c.rate_limits,
            RateLimits {
                sign_ins: 3,
                submissions: 10
            }
        );
        assert!(
            PortalConfig::parse("[portal]\nreviewers = [\"a\", \"b\"]\nsession_hours = 0\n")
                .unwrap_err()
                .contains("session_hours")
        );
        assert!(
            PortalConfig::parse("[portal]\n[portal.rate_limits]\nsign_in = 3\n")
                .unwrap_err()
                .contains("sign_in")
        );
    }

    #[test]
    fn every_key() {
        let c = PortalConfig::parse(
            "[portal]\ndatabase = \"postgres\"\npostgres_url = \"host=/run/postgresql dbname=portal\"\n\
             approvals = 3\nreviewers = [\"a\", \"b\", \"c\"]\nmaintainers = [\"m\"]\n\
             [portal.uploads]\nmax_total = \"8M\"\nmax_file = \"1M\"\nmax_entries = 50\n",
        )
        .unwrap();
        assert_eq!(
            c.database,
            Database::Postgres("host=/run/postgresql dbname=portal".into())
        );
        assert_eq!(c.policy.approvals_needed, 3);
        assert!(c.policy.maintainers.contains("m"));
        assert_eq!(
            c.uploads,
            Limits {
                max_total: 8 << 20,
                max_file: 1 << 20,
                max_entries: 50
            }
        );
    }

    #[test]
    fn mistakes_are_named() {
        let err = |t: &str| PortalConfig::parse(t).unwrap_err();
        assert!(err("[portal]\ndatabase = \"mysql\"\n").contains("mysql"));
        assert!(err("[portal]\ndatabase = \"postgres\"\n").contains("postgres_url"));
        assert!(err("[portal]\napprovals = 0\n").contains("at least 1"));
        assert!(err("[portal]\napprovals = 2\nreviewers = [\"a\"]\n")
            .contains("nothing could be published"));
        assert!(err("[portal]\nreviewers = [\"a:b\"]\napprovals = 1\n").contains("a:b"));
        let e = err("[portal]\nreviewer = []\n");
        assert!(e.starts_with("2:1:") && e.contains("reviewer"), "{e}");
        assert!(
            err("[portal]\nreviewers=[\"a\",\"b\"]\n[portal.uploads]\nmax_file = \"lots\"\n")
                .contains("portal.uploads.max_file")
        );
        let checks = |extra: &str| {
            format!(
                "[portal]\nreviewers = [\"a\", \"b\"]\n[portal.checks]\nengine = \"unix:///d.sock\"\nbases = [\"b\"]\n{extra}"
            )
        };
        for bad in ["corral", "/", "/a/../b", "//a"] {
            let e = err(&checks(&format!("pids_cgroup = {bad:?}\n")));
            assert!(e.contains("pids_cgroup"), "{bad}: {e}");
        }
        assert!(err(&checks("pids_max = 2\n")).contains("pids_max"));
        assert!(err(&checks("tree_memory = \"1M\"\n")).contains("tree_memory"));
        let c = PortalConfig::parse(&checks("tree_memory = \"3G\"\n"))
            .unwrap()
            .checks
            .unwrap();
        assert_eq!(c.tree_memory, 3 << 30);
        let c = PortalConfig::parse(&checks("")).unwrap().checks.unwrap();
        assert_eq!((c.tree_memory, c.pids_max), (2 << 30, 512));
        let c = PortalConfig::parse(&checks("pids_cgroup = \"/corral-portal\"\n"))
            .unwrap()
            .checks
            .unwrap();
        assert_eq!(
            (c.pids_cgroup.as_deref(), c.pids_max),
            (Some("/corral-portal"), 512)
        );
    }
}
