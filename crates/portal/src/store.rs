//! The portal's state in its database: every change is one transaction
//! that loads what the rules need, asks [`crate::rules`], writes the change
//! and its [`AuditEntry`] together, or writes nothing.

use crate::accounts::{self, Htpasswd, PasswordError, DEFAULT_BCRYPT_COST};
use crate::db::{self, AsConflict, Connection, Database, DbError, Row, Value};
use crate::model::{
    Account, AuditEntry, Check, CheckKind, CheckStatus, Review, Revision, Template, TemplateKind,
    TemplateState, Verdict,
};
use crate::rules::{self, ReviewPolicy, RuleError};
use crate::validate::{self, Invalid};

/// Why a change or a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// A review rule refused the change.
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("no {what} {name}")]
    NotFound { what: &'static str, name: String },
    #[error("the account name {0} is taken")]
    AccountExists(String),
    #[error("{template} is a {kind}; a revision cannot change that")]
    KindChanged {
        template: String,
        kind: TemplateKind,
    },
}

impl AsConflict for StoreError {
    fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Db(e) if e.is_conflict())
    }
}

/// Where a signed-in name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountSource {
    /// An account made on the portal.
    Portal,
    /// A user of the mirror's htpasswd file.
    Htpasswd,
}

/// What a review did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewOutcome {
    pub review: Review,
    /// The revision this review published, if it brought the approvals to
    /// the number the policy asks for.
    pub published: Option<u32>,
}

/// The portal's state: accounts, templates, revisions, reviews and the
/// audit log, on SQLite or PostgreSQL.
pub struct Store {
    conn: Box<dyn Connection>,
    policy: ReviewPolicy,
    bcrypt_cost: u32,
}

// Column lists as macros, so every statement is one `concat!`ed constant.
macro_rules! template_columns {
    () => {
        "name, kind, author, state, current_revision, published_revision, created_at, updated_at"
    };
}
macro_rules! revision_columns {
    () => {
        "template, number, archive_digest, lint_status, lint_log, \
         build_status, build_log, test_status, test_log, created_at"
    };
}

fn u32_of(v: i64) -> Result<u32, DbError> {
    u32::try_from(v).map_err(|_| DbError::Decode(format!("{v} is not a revision number")))
}

fn parse<T: std::str::FromStr<Err = String>>(s: String) -> Result<T, DbError> {
    s.parse().map_err(DbError::Decode)
}

fn template_of(r: &Row) -> Result<Template, DbError> {
    Ok(Template {
        name: r.text(0)?,
        kind: parse(r.text(1)?)?,
        author: r.text(2)?,
        state: parse(r.text(3)?)?,
        current_revision: u32_of(r.int(4)?)?,
        published_revision: r.opt_int(5)?.map(u32_of).transpose()?,
        created_at: r.int(6)?,
        updated_at: r.int(7)?,
    })
}

fn revision_of(r: &Row) -> Result<Revision, DbError> {
    let check = |i: usize| -> Result<Check, DbError> {
        Ok(Check {
            status: parse(r.text(i)?)?,
            log: r.opt_text(i + 1)?,
        })
    };
    Ok(Revision {
        template: r.text(0)?,
        number: u32_of(r.int(1)?)?,
        archive_digest: r.text(2)?,
        lint: check(3)?,
        build: check(5)?,
        test: check(7)?,
        created_at: r.int(9)?,
    })
}

fn review_of(r: &Row) -> Result<Review, DbError> {
    Ok(Review {
        id: r.int(0)?,
        template: r.text(1)?,
        revision: u32_of(r.int(2)?)?,
        reviewer: r.text(3)?,
        verdict: parse(r.text(4)?)?,
        comment: r.text(5)?,
        created_at: r.int(6)?,
    })
}

fn audit_of(r: &Row) -> Result<AuditEntry, DbError> {
    Ok(AuditEntry {
        id: r.int(0)?,
        at: r.int(1)?,
        actor: r.text(2)?,
        action: r.text(3)?,
        template: r.opt_text(4)?,
        revision: r.opt_int(5)?.map(u32_of).transpose()?,
        detail: r.text(6)?,
    })
}

fn load_template(conn: &mut dyn Connection, name: &str) -> Result<Option<Template>, DbError> {
    let sql = concat!(
        "SELECT ",
        template_columns!(),
        " FROM templates WHERE name = $1"
    );
    conn.query(sql, &[name.into()])?
        .first()
        .map(template_of)
        .transpose()
}

fn load_revision(
    conn: &mut dyn Connection,
    template: &str,
    number: u32,
) -> Result<Option<Revision>, DbError> {
    let sql = concat!(
        "SELECT ",
        revision_columns!(),
        " FROM revisions WHERE template = $1 AND number = $2"
    );
    conn.query(sql, &[template.into(), number.into()])?
        .first()
        .map(revision_of)
        .transpose()
}

fn load_reviews(conn: &mut dyn Connection, template: &str) -> Result<Vec<Review>, DbError> {
    conn.query(
        "SELECT id, template, revision, reviewer, verdict, comment, created_at \
         FROM reviews WHERE template = $1 ORDER BY id",
        &[template.into()],
    )?
    .iter()
    .map(review_of)
    .collect()
}

fn must<T>(v: Option<T>, what: &'static str, name: impl Into<String>) -> Result<T, StoreError> {
    v.ok_or_else(|| StoreError::NotFound {
        what,
        name: name.into(),
    })
}

/// Appends one line to the audit log (in the caller's transaction).
fn audit(
    conn: &mut dyn Connection,
    at: i64,
    actor: &str,
    action: &str,
    template: Option<&str>,
    revision: Option<u32>,
    detail: &str,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, template, revision, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            at.into(),
            actor.into(),
            action.into(),
            template.into(),
            revision.into(),
            detail.into(),
        ],
    )?;
    Ok(())
}

impl Store {
    /// Opens the database (creating an SQLite file when missing) and
    /// applies the migrations it lacks.
    pub fn open(db: &Database, policy: ReviewPolicy) -> Result<Store, StoreError> {
        Ok(Store {
            conn: db::open(db)?,
            policy,
            bcrypt_cost: DEFAULT_BCRYPT_COST,
        })
    }

    /// Sets bcrypt's cost for new accounts (tests use the minimum, 4).
    pub fn with_bcrypt_cost(mut self, cost: u32) -> Store {
        self.bcrypt_cost = cost;
        self
    }

    pub fn policy(&self) -> &ReviewPolicy {
        &self.policy
    }

    /// The connection, for what the store does not cover (tests, `psql`-like
    /// inspection).
    pub fn connection(&mut self) -> &mut dyn Connection {
        self.conn.as_mut()
    }

    /// Makes a portal account. Names of the mirror's htpasswd users are
    /// taken: they sign in with their htpasswd password.
    pub fn create_account(
        &mut self,
        name: &str,
        password: &str,
        htpasswd: &Htpasswd,
        now: i64,
    ) -> Result<Account, StoreError> {
        validate::account_name(name)?;
        if htpasswd.contains(name) {
            return Err(StoreError::AccountExists(name.to_string()));
        }
        let hash = accounts::hash_password(password, self.bcrypt_cost)?;
        db::transaction(self.conn.as_mut(), |conn| {
            let taken = conn.query("SELECT 1 FROM accounts WHERE name = $1", &[name.into()])?;
            if !taken.is_empty() {
                return Err(StoreError::AccountExists(name.to_string()));
            }
            conn.execute(
                "INSERT INTO accounts (name, password_hash, created_at) VALUES ($1, $2, $3)",
                &[name.into(), hash.as_str().into(), now.into()],
            )?;
            audit(conn, now, name, "account-created", None, None, "")?;
            Ok(Account {
                name: name.to_string(),
                password_hash: hash.clone(),
                created_at: now,
            })
        })
    }

    pub fn account(&mut self, name: &str) -> Result<Option<Account>, StoreError> {
        let rows = self.conn.query(
            "SELECT name, password_hash, created_at FROM accounts WHERE name = $1",
            &[name.into()],
        )?;
        Ok(rows
            .first()
            .map(|r| -> Result<Account, DbError> {
                Ok(Account {
                    name: r.text(0)?,
                    password_hash: r.text(1)?,
                    created_at: r.int(2)?,
                })
            })
            .transpose()?)
    }

    /// Checks a name and password: a portal account's, else an htpasswd
    /// user's. `None` when neither matches.
    pub fn sign_in(
        &mut self,
        name: &str,
        password: &str,
        htpasswd: &Htpasswd,
    ) -> Result<Option<AccountSource>, StoreError> {
        if let Some(a) = self.account(name)? {
            return Ok(accounts::verify_password(password, &a.password_hash)
                .then_some(AccountSource::Portal));
        }
        Ok(htpasswd
            .check(name, password)
            .then_some(AccountSource::Htpasswd))
    }

    /// Records an upload: a new template under review with revision 1, or
    /// the author's next revision of it (its checks pending, its approvals
    /// starting from none; earlier revisions stay).
    pub fn submit(
        &mut self,
        author: &str,
        name: &str,
        kind: TemplateKind,
        archive_digest: &str,
        now: i64,
    ) -> Result<Revision, StoreError> {
        validate::account_name(author)?;
        validate::template_name(name)?;
        validate::digest(archive_digest)?;
        db::transaction(self.conn.as_mut(), |conn| {
            let existing = load_template(conn, name)?;
            let number = rules::next_revision(existing.as_ref(), author)?;
            match &existing {
                None => {
                    conn.execute(
                        "INSERT INTO templates (name, kind, author, state, current_revision, \
                         published_revision, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                        &[
                            name.into(),
                            kind.as_str().into(),
                            author.into(),
                            TemplateState::UnderReview.as_str().into(),
                            number.into(),
                            Value::NullInt,
                            now.into(),
                        ],
                    )?;
                }
                Some(t) if t.kind != kind => {
                    return Err(StoreError::KindChanged {
                        template: name.to_string(),
                        kind: t.kind,
                    })
                }
                Some(_) => {
                    conn.execute(
                        "UPDATE templates SET current_revision = $2, updated_at = $3 WHERE name = $1",
                        &[name.into(), number.into(), now.into()],
                    )?;
                }
            }
            let pending = CheckStatus::Pending.as_str();
            conn.execute(
                "INSERT INTO revisions (template, number, archive_digest, lint_status, \
                 build_status, test_status, created_at) VALUES ($1, $2, $3, $4, $4, $4, $5)",
                &[
                    name.into(),
                    number.into(),
                    archive_digest.into(),
                    pending.into(),
                    now.into(),
                ],
            )?;
            audit(
                conn,
                now,
                author,
                "submitted",
                Some(name),
                Some(number),
                archive_digest,
            )?;
            Ok(Revision {
                template: name.to_string(),
                number,
                archive_digest: archive_digest.to_string(),
                lint: Check::pending(),
                build: Check::pending(),
                test: Check::pending(),
                created_at: now,
            })
        })
    }

    /// Records a check's result (once: results are final) and where its
    /// log is.
    #[allow(clippy::too_many_arguments)]
    pub fn record_check(
        &mut self,
        actor: &str,
        template: &str,
        revision: u32,
        kind: CheckKind,
        status: CheckStatus,
        log: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        if let Some(l) = log {
            validate::text("log reference", l)?;
        }
        // Column names come from this fixed table, never from input.
        let sql = match kind {
            CheckKind::Lint => {
                "UPDATE revisions SET lint_status = $3, lint_log = $4 WHERE template = $1 AND number = $2"
            }
            CheckKind::Build => {
                "UPDATE revisions SET build_status = $3, build_log = $4 WHERE template = $1 AND number = $2"
            }
            CheckKind::Test => {
                "UPDATE revisions SET test_status = $3, test_log = $4 WHERE template = $1 AND number = $2"
            }
        };
        db::transaction(self.conn.as_mut(), |conn| {
            let rev = must(
                load_revision(conn, template, revision)?,
                "revision",
                format!("{template} {revision}"),
            )?;
            rules::check_record(template, revision, kind, rev.check(kind))?;
            conn.execute(
                sql,
                &[
                    template.into(),
                    revision.into(),
                    status.as_str().into(),
                    log.into(),
                ],
            )?;
            let detail = format!("{kind} {status}");
            audit(
                conn,
                now,
                actor,
                "check",
                Some(template),
                Some(revision),
                &detail,
            )?;
            Ok(())
        })
    }

    /// A reviewer's verdict on the current revision. When the approvals
    /// reach the policy's number, the revision is published in the same
    /// transaction.
    pub fn review(
        &mut self,
        reviewer: &str,
        template: &str,
        revision: u32,
        verdict: Verdict,
        comment: &str,
        now: i64,
    ) -> Result<ReviewOutcome, StoreError> {
        validate::text("comment", comment)?;
        let policy = self.policy.clone();
        db::transaction(self.conn.as_mut(), |conn| {
            let t = must(load_template(conn, template)?, "template", template)?;
            let rev = must(
                load_revision(conn, template, revision)?,
                "revision",
                format!("{template} {revision}"),
            )?;
            rules::check_review(&policy, &t, &rev, reviewer, verdict)?;
            let id = conn.query(
                "INSERT INTO reviews (template, revision, reviewer, verdict, comment, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    template.into(),
                    revision.into(),
                    reviewer.into(),
                    verdict.as_str().into(),
                    comment.into(),
                    now.into(),
                ],
            )?;
            let id = id
                .first()
                .ok_or_else(|| DbError::Decode("INSERT ... RETURNING gave no row".into()))?
                .int(0)?;
            audit(
                conn,
                now,
                reviewer,
                "review",
                Some(template),
                Some(revision),
                verdict.as_str(),
            )?;
            let reviews = load_reviews(conn, template)?;
            let published = rules::to_publish(&policy, &t, &reviews);
            if let Some(n) = published {
                conn.execute(
                    "UPDATE templates SET state = $2, published_revision = $3, updated_at = $4 \
                     WHERE name = $1",
                    &[
                        template.into(),
                        TemplateState::Published.as_str().into(),
                        n.into(),
                        now.into(),
                    ],
                )?;
                let approvers: Vec<String> = rules::approvals(&t.author, n, &reviews)
                    .into_iter()
                    .collect();
                let detail = format!("approved by {}", approvers.join(", "));
                audit(
                    conn,
                    now,
                    reviewer,
                    "published",
                    Some(template),
                    Some(n),
                    &detail,
                )?;
            }
            Ok(ReviewOutcome {
                review: Review {
                    id,
                    template: template.to_string(),
                    revision,
                    reviewer: reviewer.to_string(),
                    verdict,
                    comment: comment.to_string(),
                    created_at: now,
                },
                published,
            })
        })
    }

    /// A maintainer takes a published template down: it leaves listings
    /// and stays findable by digest ([`Store::by_digest`]).
    pub fn withdraw(
        &mut self,
        maintainer: &str,
        template: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        validate::text("reason", reason)?;
        let policy = self.policy.clone();
        db::transaction(self.conn.as_mut(), |conn| {
            let t = must(load_template(conn, template)?, "template", template)?;
            rules::check_withdraw(&policy, &t, maintainer)?;
            conn.execute(
                "UPDATE templates SET state = $2, updated_at = $3 WHERE name = $1",
                &[
                    template.into(),
                    TemplateState::Withdrawn.as_str().into(),
                    now.into(),
                ],
            )?;
            audit(
                conn,
                now,
                maintainer,
                "withdrawn",
                Some(template),
                t.published_revision,
                reason,
            )?;
            Ok(())
        })
    }

    /// Records in the audit log that publishing revision `revision` of
    /// `template` failed with `error` (control characters made spaces,
    /// cut to 4 KiB), and when the next attempt is due.
    pub fn record_publish_failure(
        &mut self,
        actor: &str,
        template: &str,
        revision: u32,
        error: &str,
        retry_in: std::time::Duration,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut detail: String = error
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if detail.len() > 4096 {
            let mut end = 4096;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
            detail.push_str(" …");
        }
        detail.push_str(&format!(
            " (next attempt in {} s)",
            retry_in.as_secs().max(1)
        ));
        db::transaction(self.conn.as_mut(), |conn| {
            audit(
                conn,
                now,
                actor,
                "publish-failed",
                Some(template),
                Some(revision),
                &detail,
            )?;
            Ok(())
        })
    }

    pub fn template(&mut self, name: &str) -> Result<Option<Template>, StoreError> {
        Ok(load_template(self.conn.as_mut(), name)?)
    }

    pub fn revision(
        &mut self,
        template: &str,
        number: u32,
    ) -> Result<Option<Revision>, StoreError> {
        Ok(load_revision(self.conn.as_mut(), template, number)?)
    }

    /// Every revision of a template, oldest first.
    pub fn revisions(&mut self, template: &str) -> Result<Vec<Revision>, StoreError> {
        let sql = concat!(
            "SELECT ",
            revision_columns!(),
            " FROM revisions WHERE template = $1 ORDER BY number"
        );
        Ok(self
            .conn
            .query(sql, &[template.into()])?
            .iter()
            .map(revision_of)
            .collect::<Result<_, _>>()?)
    }

    /// Every review of a template, in the order given.
    pub fn reviews(&mut self, template: &str) -> Result<Vec<Review>, StoreError> {
        Ok(load_reviews(self.conn.as_mut(), template)?)
    }

    fn templates_in(&mut self, state: TemplateState) -> Result<Vec<Template>, StoreError> {
        let sql = concat!(
            "SELECT ",
            template_columns!(),
            " FROM templates WHERE state = $1 ORDER BY name"
        );
        Ok(self
            .conn
            .query(sql, &[state.as_str().into()])?
            .iter()
            .map(template_of)
            .collect::<Result<_, _>>()?)
    }

    /// The published templates, by name: what listings show.
    pub fn listed(&mut self) -> Result<Vec<Template>, StoreError> {
        self.templates_in(TemplateState::Published)
    }

    /// The withdrawn templates, by name: what listings leave out.
    pub fn withdrawn(&mut self) -> Result<Vec<Template>, StoreError> {
        self.templates_in(TemplateState::Withdrawn)
    }

    /// Templates waiting for their first approval, by name.
    pub fn under_review(&mut self) -> Result<Vec<Template>, StoreError> {
        self.templates_in(TemplateState::UnderReview)
    }

    /// The template and revision an archive digest belongs to, whatever the
    /// template's state (a withdrawn template stays pullable by digest).
    pub fn by_digest(&mut self, digest: &str) -> Result<Option<(Template, Revision)>, StoreError> {
        let sql = concat!(
            "SELECT ",
            revision_columns!(),
            " FROM revisions WHERE archive_digest = $1 ORDER BY template, number LIMIT 1"
        );
        let Some(rev) = self
            .conn
            .query(sql, &[digest.into()])?
            .first()
            .map(revision_of)
        else {
            return Ok(None);
        };
        let rev = rev?;
        let t = must(
            self.template(&rev.template)?,
            "template",
            rev.template.clone(),
        )?;
        Ok(Some((t, rev)))
    }

    /// The current revisions of templates not withdrawn that still have a
    /// pending check, oldest first: the check runner's work.
    pub fn checks_to_run(&mut self) -> Result<Vec<Revision>, StoreError> {
        let sql = concat!(
            "SELECT ",
            revision_columns!(),
            " FROM revisions WHERE (lint_status = 'pending' OR build_status = 'pending' \
             OR test_status = 'pending') AND (template, number) IN \
             (SELECT name, current_revision FROM templates WHERE state <> 'withdrawn') \
             ORDER BY created_at, template"
        );
        Ok(self
            .conn
            .query(sql, &[])?
            .iter()
            .map(revision_of)
            .collect::<Result<_, _>>()?)
    }

    /// The audit lines about one template, oldest first.
    pub fn audit_of(&mut self, template: &str) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self
            .conn
            .query(
                "SELECT id, at, actor, action, template, revision, detail FROM audit_log \
                 WHERE template = $1 ORDER BY id",
                &[template.into()],
            )?
            .iter()
            .map(audit_of)
            .collect::<Result<_, _>>()?)
    }

    /// The whole audit log, oldest first.
    pub fn audit_log(&mut self) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self
            .conn
            .query(
                "SELECT id, at, actor, action, template, revision, detail FROM audit_log ORDER BY id",
                &[],
            )?
            .iter()
            .map(audit_of)
            .collect::<Result<_, _>>()?)
    }
}
