//! The schema, as numbered migrations applied in order when a database is
//! opened. `portal_migrations` records the applied ones, so opening again
//! is a no-op; each migration and its record commit together.

use super::{Connection, DbError, Dialect, Value};

/// One step of the schema, in each dialect.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Every migration, oldest first. Never edit a released one: add another.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts, templates, revisions, reviews, audit log",
        sqlite: "
CREATE TABLE accounts (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE templates (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    author TEXT NOT NULL,
    state TEXT NOT NULL,
    current_revision INTEGER NOT NULL,
    published_revision INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE revisions (
    template TEXT NOT NULL REFERENCES templates (name),
    number INTEGER NOT NULL,
    archive_digest TEXT NOT NULL,
    lint_status TEXT NOT NULL,
    lint_log TEXT,
    build_status TEXT NOT NULL,
    build_log TEXT,
    test_status TEXT NOT NULL,
    test_log TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (template, number)
);
CREATE INDEX revisions_by_digest ON revisions (archive_digest);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    template TEXT NOT NULL,
    revision INTEGER NOT NULL,
    reviewer TEXT NOT NULL,
    verdict TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (template, revision) REFERENCES revisions (template, number)
);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    template TEXT,
    revision INTEGER,
    detail TEXT NOT NULL
);
",
        postgres: "
CREATE TABLE accounts (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE templates (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    author TEXT NOT NULL,
    state TEXT NOT NULL,
    current_revision BIGINT NOT NULL,
    published_revision BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE revisions (
    template TEXT NOT NULL REFERENCES templates (name),
    number BIGINT NOT NULL,
    archive_digest TEXT NOT NULL,
    lint_status TEXT NOT NULL,
    lint_log TEXT,
    build_status TEXT NOT NULL,
    build_log TEXT,
    test_status TEXT NOT NULL,
    test_log TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (template, number)
);
CREATE INDEX revisions_by_digest ON revisions (archive_digest);
CREATE TABLE reviews (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    template TEXT NOT NULL,
    revision BIGINT NOT NULL,
    reviewer TEXT NOT NULL,
    verdict TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (template, revision) REFERENCES revisions (template, number)
);
CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    template TEXT,
    revision BIGINT,
    detail TEXT NOT NULL
);
",
    },
    Migration {
        version: 2,
        name: "the audit log is append-only",
        sqlite: "
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
",
        postgres: "
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
",
    },
    Migration {
        version: 3,
        name: "web sessions",
        sqlite: "
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    account TEXT,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
",
        postgres: "
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    account TEXT,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
",
    },
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS portal_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL
)";

/// Applies the migrations the database lacks; the versions applied now.
pub fn migrate(conn: &mut dyn Connection) -> Result<Vec<i64>, DbError> {
    let postgres = conn.dialect() == Dialect::Postgres;
    if postgres {
        // Replicas starting together: one migrates, the others wait and
        // then find nothing left to do. The lock is the session's, taken
        // before the transaction: a serializable transaction's snapshot
        // dates from its first statement, so a lock taken inside it would
        // leave the waiter looking at the schema as it was before the wait.
        conn.execute("SELECT pg_advisory_lock(7262657669657773)", &[])?;
    }
    let result = apply(conn);
    if postgres {
        conn.execute("SELECT pg_advisory_unlock(7262657669657773)", &[])?;
    }
    result
}

fn apply(conn: &mut dyn Connection) -> Result<Vec<i64>, DbError> {
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    super::transaction(conn, |conn| {
        conn.batch(CREATE_TABLE)?;
        let rows = conn.query(
            "SELECT COALESCE(MAX(version), 0) FROM portal_migrations",
            &[],
        )?;
        let have = rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
        if have > known {
            return Err(DbError::TooNew { found: have, known });
        }
        let mut applied = Vec::new();
        for m in MIGRATIONS.iter().filter(|m| m.version > have) {
            conn.batch(match conn.dialect() {
                Dialect::Sqlite => m.sqlite,
                Dialect::Postgres => m.postgres,
            })?;
            conn.execute(
                "INSERT INTO portal_migrations (version, name) VALUES ($1, $2)",
                &[Value::Int(m.version), Value::from(m.name)],
            )?;
            applied.push(m.version);
        }
        Ok(applied)
    })
}

/// The versions recorded in the database, oldest first.
pub fn applied(conn: &mut dyn Connection) -> Result<Vec<i64>, DbError> {
    conn.query(
        "SELECT version FROM portal_migrations ORDER BY version",
        &[],
    )?
    .iter()
    .map(|r| r.int(0))
    .collect()
}
