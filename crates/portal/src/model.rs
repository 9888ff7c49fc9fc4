//! The portal's facts as plain data: accounts, templates, revisions with
//! their checks, reviews and audit entries. Times are Unix seconds (UTC).

use std::fmt;
use std::str::FromStr;

/// What a template is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    /// A folder in the library's format: `Dockerfile`, `image.toml`,
    /// `help.md`.
    DockerfileFolder,
    /// A tree recipe (docs/tree.md).
    TreeRecipe,
}

/// Where a template stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateState {
    /// Submitted, not yet approved by enough reviewers.
    UnderReview,
    /// Approved; listed and pullable. A newer revision may be under review
    /// meanwhile ([`Template::update_under_review`]).
    Published,
    /// Taken down by a maintainer: pullable by digest, never listed.
    Withdrawn,
}

/// One of the automatic checks every revision goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckKind {
    Lint,
    Build,
    Test,
}

/// The outcome of a check so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    Pending,
    Passed,
    Failed,
}

/// A reviewer's verdict on one revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Approve,
    RequestChanges,
}

macro_rules! text_enum {
    ($t:ty, $what:literal, $($v:ident = $s:literal),+) => {
        impl $t {
            /// The name stored in the database and shown in pages.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$v),)+
                    other => Err(format!(concat!("unknown ", $what, " {:?}"), other)),
                }
            }
        }
    };
}

text_enum!(
    TemplateKind,
    "template kind",
    DockerfileFolder = "dockerfile-folder",
    TreeRecipe = "tree-recipe"
);
text_enum!(
    TemplateState,
    "template state",
    UnderReview = "under-review",
    Published = "published",
    Withdrawn = "withdrawn"
);
text_enum!(
    CheckKind,
    "check",
    Lint = "lint",
    Build = "build",
    Test = "test"
);
text_enum!(
    CheckStatus,
    "check status",
    Pending = "pending",
    Passed = "passed",
    Failed = "failed"
);
text_enum!(
    Verdict,
    "verdict",
    Approve = "approve",
    RequestChanges = "request-changes"
);

impl CheckKind {
    pub const ALL: [CheckKind; 3] = [CheckKind::Lint, CheckKind::Build, CheckKind::Test];
}

/// A portal account (the mirror's htpasswd users sign in without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// A bcrypt hash.
    pub password_hash: String,
    pub created_at: i64,
}

/// A submitted template and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The image is published as `community/NAME`.
    pub name: String,
    pub kind: TemplateKind,
    pub author: String,
    pub state: TemplateState,
    /// The newest revision: the one reviews count for.
    pub current_revision: u32,
    /// The revision users pull, once one was approved.
    pub published_revision: Option<u32>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Template {
    /// Whether the template shows in listings (withdrawn ones never do).
    pub fn listed(&self) -> bool {
        self.state == TemplateState::Published
    }

    /// Whether a revision newer than the published one waits for review.
    pub fn update_under_review(&self) -> bool {
        self.state == TemplateState::Published
            && self.published_revision != Some(self.current_revision)
    }
}

/// A check's result and where its log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub status: CheckStatus,
    /// Where the log is kept (a path or URL the website links), once there
    /// is one.
    pub log: Option<String>,
}

impl Check {
    pub fn pending() -> Check {
        Check {
            status: CheckStatus::Pending,
            log: None,
        }
    }
}

/// One upload of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub template: String,
    /// 1, 2, ... per template.
    pub number: u32,
    /// `sha256:...` of the uploaded archive.
    pub archive_digest: String,
    pub lint: Check,
    pub build: Check,
    pub test: Check,
    pub created_at: i64,
}

impl Revision {
    pub fn check(&self, kind: CheckKind) -> &Check {
        match kind {
            CheckKind::Lint => &self.lint,
            CheckKind::Build => &self.build,
            CheckKind::Test => &self.test,
        }
    }
}

/// A reviewer's verdict on a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: i64,
    pub template: String,
    pub revision: u32,
    pub reviewer: String,
    pub verdict: Verdict,
    pub comment: String,
    pub created_at: i64,
}

/// One line of the append-only audit log: who changed what, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    /// `account-created`, `submitted`, `check`, `review`, `published`,
    /// `withdrawn`, `publish-failed`.
    pub action: String,
    pub template: Option<String>,
    pub revision: Option<u32>,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in [TemplateKind::DockerfileFolder, TemplateKind::TreeRecipe] {
            assert_eq!(k.as_str().parse::<TemplateKind>().unwrap(), k);
        }
        for s in [
            TemplateState::UnderReview,
            TemplateState::Published,
            TemplateState::Withdrawn,
        ] {
            assert_eq!(s.to_string().parse::<TemplateState>().unwrap(), s);
        }
        for c in [
            CheckStatus::Pending,
            CheckStatus::Passed,
            CheckStatus::Failed,
        ] {
            assert_eq!(c.as_str().parse::<CheckStatus>().unwrap(), c);
        }
        for v in [Verdict::Approve, Verdict::RequestChanges] {
            assert_eq!(v.as_str().parse::<Verdict>().unwrap(), v);
        }
        assert!("Published".parse::<TemplateState>().is_err());
    }
}
