//! SQLite through rusqlite, linked against the system's libsqlite3.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::types::{Value as SqlValue, ValueRef};

use super::{Connection, DbError, Dialect, Row, Value};

/// How long an opener waits for another process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SqliteConnection {
    conn: rusqlite::Connection,
}

impl SqliteConnection {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = rusqlite::Connection::open(path)?;
        // Another process (a second `corral mirror serve` on the same file)
        // holding the write lock makes us wait, not fail.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers do not block the writer. Switching a new file to
        // WAL needs it alone, and SQLite answers "database is locked" at
        // once, without the busy handler, while another replica opens the
        // same new file: try again for as long as the busy timeout.
        let started = Instant::now();
        loop {
            match conn.execute_batch("PRAGMA journal_mode = WAL;") {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
        // foreign keys are off by default in SQLite; the schema relies on them
        conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        Ok(SqliteConnection { conn })
    }
}

/// `$1` → `?1`: SQLite reads `$1` as a named parameter whose index is its
/// order of first use, `?1` as the first one.
fn positional(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

fn bind(params: &[Value]) -> Vec<SqlValue> {
    params
        .iter()
        .map(|v| match v {
            Value::Int(i) => SqlValue::Integer(*i),
            Value::Text(s) => SqlValue::Text(s.clone()),
            Value::NullInt | Value::NullText => SqlValue::Null,
        })
        .collect()
}

impl Connection for SqliteConnection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &'static str, params: &[Value]) -> Result<u64, DbError> {
        let mut stmt = self.conn.prepare_cached(&positional(sql))?;
        let n = stmt.execute(rusqlite::params_from_iter(bind(params)))?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &'static str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let mut stmt = self.conn.prepare_cached(&positional(sql))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(bind(params)))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::NullText,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Text(t) => Value::Text(
                        String::from_utf8(t.to_vec())
                            .map_err(|e| DbError::Decode(format!("column {i}: {e}")))?,
                    ),
                    other => {
                        return Err(DbError::Decode(format!(
                            "column {i} has type {:?}",
                            other.data_type()
                        )))
                    }
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &'static str) -> Result<(), DbError> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn begin(&mut self) -> Result<(), DbError> {
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn commit(&mut self) -> Result<(), DbError> {
        Ok(self.conn.execute_batch("COMMIT")?)
    }

    fn rollback(&mut self) -> Result<(), DbError> {
        Ok(self.conn.execute_batch("ROLLBACK")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_do_not_block_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let mut reader = SqliteConnection::open(&path).unwrap();
        let rows = reader.query("PRAGMA journal_mode", &[]).unwrap();
        assert_eq!(rows[0].text(0).unwrap(), "wal");
        reader.batch("CREATE TABLE t (v INTEGER)").unwrap();
        let mut writer = SqliteConnection::open(&path).unwrap();
        // A short wait, so a blocked writer fails fast instead of waiting.
        writer.conn.busy_timeout(Duration::from_millis(50)).unwrap();
        reader.batch("BEGIN").unwrap();
        assert!(reader.query("SELECT v FROM t", &[]).unwrap().is_empty());
        writer.begin().unwrap();
        writer
            .execute("INSERT INTO t (v) VALUES ($1)", &[Value::Int(7)])
            .unwrap();
        writer.commit().unwrap();
        // The reader's snapshot is unchanged until its transaction ends.
        assert!(reader.query("SELECT v FROM t", &[]).unwrap().is_empty());
        reader.rollback().unwrap();
        assert_eq!(
            reader.query("SELECT v FROM t", &[]).unwrap()[0]
                .int(0)
                .unwrap(),
            7
        );
    }

    #[test]
    fn dollar_parameters_become_positional() {
        assert_eq!(
            super::positional("SELECT a FROM t WHERE b = $2 AND c = $1 AND d = $10"),
            "SELECT a FROM t WHERE b = ?2 AND c = ?1 AND d = ?10"
        );
        assert_eq!(super::positional("SELECT '$'"), "SELECT '$'");
    }
}
