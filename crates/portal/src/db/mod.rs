//! The two databases behind one code path.
//!
//! Every query is a constant SQL text with bound parameters (`$1`, `$2`,
//! ... in both dialects: the SQLite side rewrites them to `?1`, `?2`), run
//! through [`Connection`]; values cross it as [`Value`]s (integers, text
//! and their NULLs), so the store's code is the same for SQLite and
//! PostgreSQL. Only the schema's DDL differs per dialect
//! ([`migrations`]).

pub mod migrations;
mod postgres;
mod sqlite;

use std::path::PathBuf;

/// Which database, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file, created when missing (the default: nothing to run
    /// or install).
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`host=/run/postgresql dbname=portal`
    /// or `postgresql://user@host/db`), for several mirror replicas sharing
    /// one portal.
    Postgres(String),
}

/// The SQL dialect of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound parameter or a column value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Text(String),
    /// NULL in an integer column.
    NullInt,
    /// NULL in a text column.
    NullText,
}

impl From<::postgres::Error> for DbError {
    fn from(source: ::postgres::Error) -> DbError {
        let message = match source.as_db_error() {
            Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
            None => match std::error::Error::source(&source) {
                Some(cause) => format!("{source}: {cause}"),
                None => source.to_string(),
            },
        };
        DbError::Postgres { message, source }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Value {
        v.map_or(Value::NullText, Value::from)
    }
}

impl From<Option<u32>> for Value {
    fn from(v: Option<u32>) -> Value {
        v.map_or(Value::NullInt, Value::from)
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn get(&self, i: usize) -> Result<&Value, DbError> {
        self.0
            .get(i)
            .ok_or_else(|| DbError::Decode(format!("no column {i}")))
    }

    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        match self.get(i)? {
            Value::Int(v) => Ok(*v),
            other => Err(DbError::Decode(format!(
                "column {i} is {other:?}, not an integer"
            ))),
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.get(i)? {
            Value::NullInt | Value::NullText => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, DbError> {
        match self.get(i)? {
            Value::Text(v) => Ok(v.clone()),
            other => Err(DbError::Decode(format!(
                "column {i} is {other:?}, not text"
            ))),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.get(i)? {
            Value::NullInt | Value::NullText => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
}

/// A database failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgresql: {message}")]
    Postgres {
        /// The server's message when there is one (`postgres::Error`
        /// alone prints only "db error").
        message: String,
        source: ::postgres::Error,
    },
    /// Another transaction changed the same rows (PostgreSQL's serialization
    /// failure); the store runs the transaction again.
    #[error("a concurrent transaction conflicted: {0}")]
    Conflict(String),
    #[error("unexpected column value: {0}")]
    Decode(String),
    #[error("the database has migration {found}, newer than this corral knows ({known})")]
    TooNew { found: i64, known: i64 },
}

/// A connection to either database. SQL uses `$N` parameters and is
/// `&'static str`: a statement cannot be built from input at run time, so
/// every value goes in as a bound parameter.
pub trait Connection: Send {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &'static str, params: &[Value]) -> Result<u64, DbError>;
    /// Runs a query; its rows.
    fn query(&mut self, sql: &'static str, params: &[Value]) -> Result<Vec<Row>, DbError>;
    /// Runs constant statements without parameters (the schema's DDL).
    fn batch(&mut self, sql: &'static str) -> Result<(), DbError>;
    /// Starts a transaction that sees and makes changes as if alone:
    /// `BEGIN IMMEDIATE` on SQLite (the write lock up front), `SERIALIZABLE`
    /// on PostgreSQL (a conflict is [`DbError::Conflict`] and is retried).
    fn begin(&mut self) -> Result<(), DbError>;
    fn commit(&mut self) -> Result<(), DbError>;
    fn rollback(&mut self) -> Result<(), DbError>;
}

/// Opens the database and brings its schema up to date.
pub fn open(db: &Database) -> Result<Box<dyn Connection>, DbError> {
    let mut conn: Box<dyn Connection> = match db {
        Database::Sqlite(path) => Box::new(sqlite::SqliteConnection::open(path)?),
        Database::Postgres(url) => Box::new(postgres::PostgresConnection::open(url)?),
    };
    migrations::migrate(conn.as_mut())?;
    Ok(conn)
}

/// Runs `f` in a transaction: committed when it returns `Ok`, rolled back
/// otherwise; run again (up to 5 times) when a concurrent transaction
/// conflicted.
pub fn transaction<T, E>(
    conn: &mut dyn Connection,
    mut f: impl FnMut(&mut dyn Connection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DbError>,
    E: AsConflict,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        conn.begin()?;
        let result = f(conn).and_then(|v| conn.commit().map(|()| v).map_err(E::from));
        match result {
            Ok(v) => return Ok(v),
            Err(e) => {
                // A failed COMMIT already ended the transaction; a ROLLBACK
                // then only warns, so its error is not the one to report.
                let _ = conn.rollback();
                if attempt < 5 && e.is_conflict() {
                    continue;
                }
                return Err(e);
            }
        }
    }
}

/// Whether an error is a serialization conflict worth retrying.
pub trait AsConflict {
    fn is_conflict(&self) -> bool;
}

impl AsConflict for DbError {
    fn is_conflict(&self) -> bool {
        matches!(self, DbError::Conflict(_))
    }
}
