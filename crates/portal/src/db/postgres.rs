//! PostgreSQL through the `postgres` crate (a blocking client over
//! tokio-postgres), without TLS: the portal reaches its database over a
//! Unix socket or a private network.

use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};

use super::{Connection, DbError, Dialect, Row, Value};

pub struct PostgresConnection {
    client: Client,
}

impl PostgresConnection {
    pub fn open(url: &str) -> Result<Self, DbError> {
        Ok(PostgresConnection {
            client: Client::connect(url, NoTls)?,
        })
    }
}

/// A serialization failure or deadlock: the transaction may be run again.
fn classify(e: postgres::Error) -> DbError {
    use postgres::error::SqlState;
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            DbError::Conflict(DbError::from(e).to_string())
        }
        _ => DbError::from(e),
    }
}

fn bind(params: &[Value]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                Value::Int(i) => Box::new(*i),
                Value::Text(s) => Box::new(s.clone()),
                Value::NullInt => Box::new(None::<i64>),
                Value::NullText => Box::new(None::<String>),
            }
        })
        .collect()
}

impl Connection for PostgresConnection {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &'static str, params: &[Value]) -> Result<u64, DbError> {
        let owned = bind(params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        self.client.execute(sql, &refs).map_err(classify)
    }

    fn query(&mut self, sql: &'static str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let owned = bind(params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        let rows = self.client.query(sql, &refs).map_err(classify)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(row.len());
            for (i, col) in row.columns().iter().enumerate() {
                let t = col.type_();
                let v = if *t == Type::INT8 {
                    row.try_get::<_, Option<i64>>(i)?
                        .map_or(Value::NullInt, Value::Int)
                } else if *t == Type::INT4 {
                    row.try_get::<_, Option<i32>>(i)?
                        .map_or(Value::NullInt, |v| Value::Int(v.into()))
                } else if *t == Type::TEXT || *t == Type::VARCHAR {
                    row.try_get::<_, Option<String>>(i)?
                        .map_or(Value::NullText, Value::Text)
                } else {
                    return Err(DbError::Decode(format!("column {i} has type {t}")));
                };
                values.push(v);
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &'static str) -> Result<(), DbError> {
        self.client.batch_execute(sql).map_err(classify)
    }

    fn begin(&mut self) -> Result<(), DbError> {
        self.batch("BEGIN ISOLATION LEVEL SERIALIZABLE")
    }

    fn commit(&mut self) -> Result<(), DbError> {
        self.batch("COMMIT")
    }

    fn rollback(&mut self) -> Result<(), DbError> {
        self.batch("ROLLBACK")
    }
}
