//! The shared backend: the store in a PostgreSQL database (SPEC §10).
//!
//! Schema `pgbr` (or the URL's `schema=`), created on first use:
//!
//! | table | columns |
//! | --- | --- |
//! | `format` | `version int`: the schema's format version; newer is refused |
//! | `objects` | `id bytea` (blake3) → `value bytea` (versioned, compressed) |
//! | `generations` | `number bigint` → `manifest bytea` |
//! | `meta` | `key text` (`pki`) → `value bytea` |
//! | `journal` | `cell text` → `entry bytea` |
//! | `plans` | `id text` → `marker bytea` |
//! | `head` | one row: `generation bigint`, the highest number ever committed |
//! | `lock` | one row: who holds the store (see `pg_lock.rs`) |
//!
//! Values are the same versioned bytes sled keeps; the layer above
//! verifies them. Two connections: one holds the session advisory lock for
//! the whole command and nothing else, the other carries the data. A commit
//! is one transaction on the data connection that checks the lock is still
//! held and moves the head with `UPDATE … WHERE generation = <old>`: a
//! holder that lost its lock, or raced a newer commit, writes nothing.

use super::pg_connect::connect;
use super::pg_lock::{self, LockKey};
use super::pg_url::PgUrl;
use super::{Backend, Keyspace, Pair, Transaction, Visit};
use crate::store::Error;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, Statement};
use std::collections::HashMap;
use std::sync::Mutex;

/// The schema format this pgbr creates and the newest it reads.
const SCHEMA_VERSION: i32 = 1;

/// A connection and the statements prepared on it.
struct Conn {
    client: Client,
    prepared: HashMap<String, Statement>,
}

impl Conn {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.prepared.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

/// An open, locked PostgreSQL store.
pub(super) struct PostgresBackend {
    name: String,
    schema: String,
    data: Mutex<Conn>,
    lock: pg_lock::Held,
}

/// A key in its column's type.
enum Key {
    Bytes(Vec<u8>),
    Int(i64),
    Text(String),
}

impl Key {
    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Key::Bytes(b) => b,
            Key::Int(i) => i,
            Key::Text(t) => t,
        }
    }
}

/// Table, key column and value column of a keyspace.
fn table(space: Keyspace) -> (&'static str, &'static str, &'static str) {
    match space {
        Keyspace::Objects => ("objects", "id", "value"),
        Keyspace::Generations => ("generations", "number", "manifest"),
        Keyspace::Meta => ("meta", "key", "value"),
        Keyspace::Journal => ("journal", "cell", "entry"),
        Keyspace::Plans => ("plans", "id", "marker"),
    }
}

impl PostgresBackend {
    /// Connects, creates the schema when missing, and takes the lock.
    pub(super) fn open(raw: &str) -> Result<PostgresBackend, Error> {
        let env = |k: &str| std::env::var(k).ok();
        let url = PgUrl::parse(raw, &env)?;
        let name = url.redacted().to_owned();
        let mut client = connect(&url)?;
        ensure_schema(&mut client, &url.schema, &name)?;
        let key = LockKey::for_schema(&url.schema);
        let lock = pg_lock::acquire(&url, &mut client, key, &name)?;
        Ok(PostgresBackend {
            name,
            schema: url.schema.clone(),
            data: Mutex::new(Conn {
                client,
                prepared: HashMap::new(),
            }),
            lock,
        })
    }

    /// Whether a store exists at `raw` (its schema was made): connects
    /// once, takes no lock and creates nothing.
    pub(super) fn exists(raw: &str) -> Result<bool, Error> {
        let env = |k: &str| std::env::var(k).ok();
        let url = PgUrl::parse(raw, &env)?;
        let mut client = connect(&url)?;
        client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{}.format", url.schema)],
            )
            .map(|row| row.get(0))
            .map_err(|e| classify(url.redacted(), &url.schema, e))
    }

    fn err(&self, source: postgres::Error) -> Error {
        classify(&self.name, &self.schema, source)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Conn> {
        // A panic while holding it leaves nothing half-done on our side:
        // the server rolls back an unfinished transaction.
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(&self, space: Keyspace, key: &[u8]) -> Result<Key, Error> {
        match space {
            Keyspace::Objects => Ok(Key::Bytes(key.to_vec())),
            Keyspace::Generations => {
                let n = <[u8; 8]>::try_from(key)
                    .ok()
                    .map(u64::from_be_bytes)
                    .and_then(|n| i64::try_from(n).ok());
                n.map(Key::Int).ok_or_else(|| {
                    Error::corrupt(&self.name, "generations", "key is no generation number")
                })
            }
            Keyspace::Meta | Keyspace::Journal | Keyspace::Plans => String::from_utf8(key.to_vec())
                .map(Key::Text)
                .map_err(|_| Error::corrupt(&self.name, "key", "a text key is not UTF-8")),
        }
    }

    fn key_bytes(&self, space: Keyspace, row: &postgres::Row) -> Result<Vec<u8>, Error> {
        Ok(match space {
            Keyspace::Objects => row.try_get::<_, Vec<u8>>(0).map_err(|e| self.err(e))?,
            Keyspace::Generations => {
                let n: i64 = row.try_get(0).map_err(|e| self.err(e))?;
                (n as u64).to_be_bytes().to_vec()
            }
            _ => row
                .try_get::<_, String>(0)
                .map_err(|e| self.err(e))?
                .into_bytes(),
        })
    }

    fn sql(&self, space: Keyspace, template: &str) -> String {
        let (t, k, v) = table(space);
        template
            .replace("{t}", &format!("{}.{t}", self.schema))
            .replace("{k}", k)
            .replace("{v}", v)
    }

    fn upsert_sql(&self, space: Keyspace) -> String {
        self.sql(
            space,
            "INSERT INTO {t} ({k}, {v}) VALUES ($1, $2) ON CONFLICT ({k}) DO UPDATE SET {v} = EXCLUDED.{v}",
        )
    }
}

impl Backend for PostgresBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, space: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let key = self.key(space, key)?;
        let sql = self.sql(space, "SELECT {v} FROM {t} WHERE {k} = $1");
        let mut conn = self.conn();
        let stmt = conn.statement(&sql).map_err(|e| self.err(e))?;
        let row = conn
            .client
            .query_opt(&stmt, &[key.sql()])
            .map_err(|e| self.err(e))?;
        row.map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| self.err(e))
    }

    fn contains(&self, space: Keyspace, key: &[u8]) -> Result<bool, Error> {
        let key = self.key(space, key)?;
        let sql = self.sql(space, "SELECT EXISTS (SELECT 1 FROM {t} WHERE {k} = $1)");
        let mut conn = self.conn();
        let stmt = conn.statement(&sql).map_err(|e| self.err(e))?;
        let row = conn
            .client
            .query_one(&stmt, &[key.sql()])
            .map_err(|e| self.err(e))?;
        row.try_get(0).map_err(|e| self.err(e))
    }

    fn put(&self, space: Keyspace, key: &[u8], value: &[u8]) -> Result<(), Error> {
        let key = self.key(space, key)?;
        let sql = self.upsert_sql(space);
        let mut conn = self.conn();
        let stmt = conn.statement(&sql).map_err(|e| self.err(e))?;
        conn.client
            .execute(&stmt, &[key.sql(), &value])
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn scan(&self, space: Keyspace, visit: &mut Visit<'_>) -> Result<(), Error> {
        let sql = self.sql(space, "SELECT {k}, {v} FROM {t} ORDER BY {k}");
        let mut conn = self.conn();
        let stmt = conn.statement(&sql).map_err(|e| self.err(e))?;
        let no_params: [&(dyn ToSql + Sync); 0] = [];
        let mut rows = conn
            .client
            .query_raw(&stmt, no_params)
            .map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let key = self.key_bytes(space, &row)?;
            let value: &[u8] = row.try_get(1).map_err(|e| self.err(e))?;
            visit(&key, value)?;
        }
        Ok(())
    }

    fn last(&self, space: Keyspace) -> Result<Option<Pair>, Error> {
        let sql = self.sql(space, "SELECT {k}, {v} FROM {t} ORDER BY {k} DESC LIMIT 1");
        let mut conn = self.conn();
        let stmt = conn.statement(&sql).map_err(|e| self.err(e))?;
        let row = conn.client.query_opt(&stmt, &[]).map_err(|e| self.err(e))?;
        match row {
            Some(row) => {
                let key = self.key_bytes(space, &row)?;
                let value: Vec<u8> = row.try_get(1).map_err(|e| self.err(e))?;
                Ok(Some((key, value)))
            }
            None => Ok(None),
        }
    }

    fn len(&self, space: Keyspace) -> Result<u64, Error> {
        let sql = self.sql(space, "SELECT count(*) FROM {t}");
        let mut conn = self.conn();
        let row = conn.client.query_one(&sql, &[]).map_err(|e| self.err(e))?;
        let n: i64 = row.try_get(0).map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    fn remove(&self, space: Keyspace, keys: &[Vec<u8>]) -> Result<(), Error> {
        let keys = keys
            .iter()
            .map(|k| self.key(space, k))
            .collect::<Result<Vec<_>, _>>()?;
        let sql = self.sql(space, "DELETE FROM {t} WHERE {k} = $1");
        let mut conn = self.conn();
        let stmt = conn.statement(&sql).map_err(|e| self.err(e))?;
        let mut tx = conn.client.transaction().map_err(|e| self.err(e))?;
        for key in &keys {
            tx.execute(&stmt, &[key.sql()]).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn head(&self) -> Result<u64, Error> {
        let sql = format!("SELECT generation FROM {}.head", self.schema);
        let mut conn = self.conn();
        let row = conn.client.query_one(&sql, &[]).map_err(|e| self.err(e))?;
        let n: i64 = row.try_get(0).map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    fn commit(&self, transaction: Transaction) -> Result<(), Error> {
        let puts = transaction
            .puts
            .iter()
            .map(|(space, key, value)| Ok((self.upsert_sql(*space), self.key(*space, key)?, value)))
            .collect::<Result<Vec<_>, Error>>()?;
        let mut conn = self.conn();
        let mut statements = Vec::new();
        for (sql, _, _) in &puts {
            statements.push(conn.statement(sql).map_err(|e| self.err(e))?);
        }
        let mut tx = conn.client.transaction().map_err(|e| self.err(e))?;
        if !self.lock.still_held(&mut tx).map_err(|e| self.err(e))? {
            return Err(Error::LockLost {
                store: self.name.clone(),
            });
        }
        if let Some((from, to)) = transaction.head {
            let moved = tx
                .execute(
                    &format!(
                        "UPDATE {}.head SET generation = $1 WHERE generation = $2",
                        self.schema
                    ),
                    &[&(to as i64), &(from as i64)],
                )
                .map_err(|e| self.err(e))?;
            if moved != 1 {
                let row = tx
                    .query_one(&format!("SELECT generation FROM {}.head", self.schema), &[])
                    .map_err(|e| self.err(e))?;
                let head: i64 = row.try_get(0).map_err(|e| self.err(e))?;
                return Err(Error::Fenced {
                    store: self.name.clone(),
                    number: to,
                    head: head as u64,
                });
            }
        }
        for ((_, key, value), stmt) in puts.iter().zip(&statements) {
            tx.execute(stmt, &[key.sql(), value])
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn sync(&self) -> Result<(), Error> {
        // Every statement commits durably on its own.
        Ok(())
    }

    fn rewrite(self: Box<Self>, puts: Vec<(Keyspace, Vec<u8>, Vec<u8>)>) -> Result<(), Error> {
        let mut spaces: Vec<Keyspace> = puts.iter().map(|(space, _, _)| *space).collect();
        spaces.dedup();
        self.commit(Transaction { head: None, puts })?;
        // An UPDATE leaves the old row version in the table's pages until
        // vacuum; VACUUM FULL writes the table anew and drops the old
        // files. (The WAL keeps the old values until its segments are
        // recycled: see docs/security.md.)
        let mut conn = self.conn();
        for space in spaces {
            let (name, _, _) = table(space);
            conn.client
                .batch_execute(&format!("VACUUM FULL {}.{name}", self.schema))
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn disk_bytes(&self) -> Result<u64, Error> {
        let mut conn = self.conn();
        let row = conn
            .client
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relkind = 'r'",
                &[&self.schema],
            )
            .map_err(|e| self.err(e))?;
        let n: i64 = row.try_get(0).map_err(|e| self.err(e))?;
        Ok(n as u64)
    }
}

/// Names the failures an operator can act on: a connection the server
/// ended (restart, shutdown, terminated backend) and a full disk; anything
/// else stays the driver's report.
fn classify(name: &str, schema: &str, source: postgres::Error) -> Error {
    use postgres::error::SqlState;
    let code = source.code();
    if code == Some(&SqlState::DISK_FULL) {
        return Error::DatabaseFull {
            store: name.to_owned(),
            schema: schema.to_owned(),
            source: Box::new(source),
        };
    }
    let ended = [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
    ];
    let io = std::error::Error::source(&source).is_some_and(|s| s.is::<std::io::Error>());
    if source.is_closed() || io || code.is_some_and(|c| ended.contains(c)) {
        return Error::ConnectionLost {
            store: name.to_owned(),
            source: Box::new(source),
        };
    }
    Error::backend(name, Box::new(source))
}

/// Creates the schema's tables when missing and checks its format version.
fn ensure_schema(client: &mut Client, schema: &str, name: &str) -> Result<(), Error> {
    let err = |e: postgres::Error| classify(name, schema, e);
    let mut tx = client.transaction().map_err(err)?;
    // Two first commands racing to create the schema take turns.
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&pg_lock::CREATE_CLASS, &LockKey::for_schema(schema).object],
    )
    .map_err(err)?;
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{schema}.format")],
        )
        .map_err(err)?
        .get(0);
    if !exists {
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE {schema}.format (version int NOT NULL);
             INSERT INTO {schema}.format VALUES ({SCHEMA_VERSION});
             CREATE TABLE {schema}.objects (id bytea PRIMARY KEY, value bytea NOT NULL);
             CREATE TABLE {schema}.generations (number bigint PRIMARY KEY, manifest bytea NOT NULL);
             CREATE TABLE {schema}.meta (key text PRIMARY KEY, value bytea NOT NULL);
             CREATE TABLE {schema}.journal (cell text PRIMARY KEY, entry bytea NOT NULL);
             CREATE TABLE {schema}.plans (id text PRIMARY KEY, marker bytea NOT NULL);
             CREATE TABLE {schema}.head (
                 one boolean PRIMARY KEY DEFAULT true CHECK (one),
                 generation bigint NOT NULL);
             INSERT INTO {schema}.head (generation) VALUES (0);
             CREATE TABLE {schema}.lock (
                 one boolean PRIMARY KEY DEFAULT true CHECK (one),
                 holder text NOT NULL,
                 pid bigint NOT NULL,
                 command text NOT NULL,
                 version text NOT NULL,
                 since timestamptz NOT NULL DEFAULT now(),
                 backend_pid int NOT NULL);"
        ))
        .map_err(err)?;
    }
    let version: i32 = tx
        .query_one(&format!("SELECT max(version) FROM {schema}.format"), &[])
        .map_err(err)?
        .try_get::<_, Option<i32>>(0)
        .map_err(err)?
        .unwrap_or(0);
    tx.commit().map_err(err)?;
    if version > SCHEMA_VERSION {
        return Err(Error::FormatVersion {
            what: format!("schema `{schema}` of state `{name}`"),
            found: version as u16,
            supported: SCHEMA_VERSION as u16,
        });
    }
    Ok(())
}
