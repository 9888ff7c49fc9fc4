//! The community portal's foundation (docs/portal.md): the state of
//! shared templates and their peer review, kept in SQLite or PostgreSQL,
//! and the checks every upload passes before anything else reads it.
//! Bottom up:
//!
//! - [`model`]: accounts, templates, revisions with their checks, reviews
//!   and audit entries, as plain data.
//! - [`validate`]: what names and text are accepted.
//! - [`rules`]: who may submit, review and withdraw; when an approval
//!   counts and when a revision is published — pure functions.
//! - [`accounts`]: bcrypt passwords, and the mirror's htpasswd users, who
//!   sign in as they are.
//! - [`db`]: one code path over SQLite and PostgreSQL: bound parameters
//!   only, versioned migrations applied on open.
//! - [`store`]: the state in the database; each change is one transaction
//!   that applies the rules and appends to the audit log.
//! - [`upload`]: unpacking a submitted archive safely, and checking that
//!   it is a library folder.
//! - [`sessions`]: web sessions in the database (shared by replicas), each
//!   with its CSRF token.
//! - [`config`]: the `[portal]` table.
//! - [`web`]: the pages (axum, server-rendered, each with a JSON twin):
//!   sign-in, listing, template pages, the upload, review and withdraw
//!   forms; CSRF checks, rate limits and upload caps.
//! - [`checks`]: the check runner: lint, a build FROM an official base in
//!   the Docker Engine without network and under limits, a labelled test
//!   run, a tree recipe's lint, build (in corral-tree's sandbox) and
//!   package check with corral-tree; its loop records the results and
//!   logs.
//! - [`publish`]: pushing a published revision as `community/NAME` (a
//!   tree recipe's tree packed into an image by corral-image) and signing
//!   it with the community key; the users' policy snippet.
//! - [`remote`] and [`cli`]: `corral portal submit`, through the pages.
//!
//! ```no_run
//! use corral_portal::{db::Database, model::{TemplateKind, Verdict}, rules::ReviewPolicy, store::Store};
//! # fn f() -> Result<(), corral_portal::store::StoreError> {
//! let policy = ReviewPolicy {
//!     reviewers: ["rita".to_string(), "rob".to_string()].into(),
//!     ..ReviewPolicy::default()
//! };
//! let mut store = Store::open(&Database::Sqlite("portal.db".into()), policy)?;
//! let digest = format!("sha256:{}", "0".repeat(64));
//! let rev = store.submit("ann", "hello", TemplateKind::DockerfileFolder, &digest, 1_700_000_000)?;
//! // ... the checks pass, then two reviewers approve:
//! let outcome = store.review("rita", "hello", rev.number, Verdict::Approve, "looks good", 1_700_000_100)?;
//! assert_eq!(outcome.published, None);
//! # Ok(())
//! # }
//! ```

pub mod accounts;
pub mod checks;
pub mod cli;
pub mod config;
pub mod db;
pub mod model;
pub mod publish;
pub mod remote;
pub mod rules;
pub mod sessions;
pub mod store;
pub mod upload;
pub mod validate;
pub mod web;
