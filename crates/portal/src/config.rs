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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    }
}
