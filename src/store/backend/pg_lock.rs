//! The PostgreSQL store's lock: a session-level advisory lock held for the
//! whole command on a connection that does nothing else, plus a row in
//! `<schema>.lock` saying who holds it (user@host, pid, command, pgbr
//! version, since, backend pid).
//!
//! The advisory lock is the lock: it goes with its session, so a killed
//! pgbr's lock is gone as soon as the server notices (at once for a clean
//! close, within the keepalive bound for a half-open one). The row only
//! explains. "state is locked" names the holder from the row when the row's
//! backend pid is the real holder's (from `pg_locks`), and says whether
//! that session is alive. A transaction-pooling pooler hands statements of
//! one client to different server sessions; the lock would be held by some
//! other client's session: it is detected right after locking (the data
//! connection must see the lock held by the lock connection's backend, a
//! different backend than its own) and refused.

use super::command_line;
use super::pg_connect::connect;
use super::pg_url::PgUrl;
use crate::store::Error;
use postgres::{Client, GenericClient};
use std::sync::Mutex;

/// The advisory lock class of pgbr stores ("pgbr").
const LOCK_CLASS: i32 = 0x7067_6272;
/// How long a lock whose holder is going away is waited for before
/// "state is locked" (a killed client's session ends within moments).
const RELEASE_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
/// The advisory lock class serializing schema creation.
pub(super) const CREATE_CLASS: i32 = 0x7067_6273;

/// The advisory lock of one schema.
#[derive(Debug, Clone, Copy)]
pub(super) struct LockKey {
    /// Second half of the two-key lock: a hash of the schema name.
    pub object: i32,
}

impl LockKey {
    /// The lock of `schema`.
    pub(super) fn for_schema(schema: &str) -> LockKey {
        let hash = blake3::hash(schema.as_bytes());
        let bytes: [u8; 4] = hash.as_bytes()[..4].try_into().expect("4 bytes");
        LockKey {
            object: (u32::from_le_bytes(bytes) & 0x7fff_ffff) as i32,
        }
    }
}

/// `pg_locks` rows of a granted lock `($1, $2)` (two-key form: objsubid 2)
/// in this database (advisory locks are per database; `pg_locks` shows all).
const HOLDERS: &str = "SELECT l.pid FROM pg_locks l \
     WHERE l.locktype = 'advisory' AND l.classid::int8 = $1 AND l.objid::int8 = $2 \
     AND l.objsubid = 2 AND l.granted \
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// A held lock; dropping it removes the row and ends the session.
pub(super) struct Held {
    client: Mutex<Client>,
    backend_pid: i32,
    key: LockKey,
    schema: String,
}

impl Held {
    /// Whether the lock is still held by our lock session, as seen from
    /// `client` (inside the commit's transaction).
    pub(super) fn still_held(
        &self,
        client: &mut impl GenericClient,
    ) -> Result<bool, postgres::Error> {
        let sql = format!("SELECT EXISTS ({HOLDERS} AND l.pid = $3)");
        let row = client.query_one(
            &sql,
            &[
                &i64::from(LOCK_CLASS),
                &i64::from(self.key.object),
                &self.backend_pid,
            ],
        )?;
        row.try_get(0)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let client = self.client.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = client.execute(
            &format!(
                "DELETE FROM {}.lock WHERE backend_pid = pg_backend_pid()",
                self.schema
            ),
            &[],
        );
        let _ = client.execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&LOCK_CLASS, &self.key.object],
        );
    }
}

/// Takes the lock of `url`'s schema without waiting; `data` is the store's
/// other connection, used to check the lock is real.
pub(super) fn acquire(
    url: &PgUrl,
    data: &mut Client,
    key: LockKey,
    name: &str,
) -> Result<Held, Error> {
    let err = |e: postgres::Error| Error::backend(name, Box::new(e));
    let mut client = connect(url)?;
    // A holder that is going away (released a moment ago, or killed while
    // the server has not yet ended its session) is waited for, briefly:
    // the next command after a crash should not fail on a dying lock.
    let deadline = std::time::Instant::now() + RELEASE_GRACE;
    let backend_pid = loop {
        // The checks up to the pooler verdict use the simple protocol: one
        // message each, which a transaction pooler cannot split across its
        // server sessions the way it splits a prepared statement's steps.
        let row = simple_row(
            &mut client,
            &format!(
                "SELECT pg_try_advisory_lock({LOCK_CLASS}, {}), pg_backend_pid()",
                key.object
            ),
        )
        .map_err(err)?;
        let backend_pid: i32 = row.get(1).and_then(|p| p.parse().ok()).unwrap_or(-1);
        if row.first().map(String::as_str) == Some("t") {
            break backend_pid;
        }
        let (holder, leaving) = describe_holder(data, &url.schema, key).map_err(err)?;
        if !leaving || std::time::Instant::now() >= deadline {
            return Err(Error::Locked {
                store: name.to_owned(),
                holder,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // Held from here on: dropping `held` releases it on every early return.
    let held = Held {
        client: Mutex::new(client),
        backend_pid,
        key,
        schema: url.schema.clone(),
    };
    let row = simple_row(
        data,
        &format!(
            "SELECT pg_backend_pid(), EXISTS ({} AND l.pid = {backend_pid})",
            HOLDERS
                .replace("$1", &LOCK_CLASS.to_string())
                .replace("$2", &key.object.to_string())
        ),
    )
    .map_err(err)?;
    let data_pid: i32 = row.first().and_then(|p| p.parse().ok()).unwrap_or(-1);
    let visible = row.get(1).map(String::as_str) == Some("t");
    if data_pid == backend_pid || !visible {
        return Err(Error::Pooled {
            store: name.to_owned(),
        });
    }
    let note = Note::of_this_process();
    {
        let mut client = held.client.lock().unwrap_or_else(|p| p.into_inner());
        let again = simple_row(&mut client, "SELECT pg_backend_pid()").map_err(err)?;
        if again.first().and_then(|p| p.parse::<i32>().ok()) != Some(backend_pid) {
            return Err(Error::Pooled {
                store: name.to_owned(),
            });
        }
        client
            .execute(
                &format!(
                    "INSERT INTO {}.lock (holder, pid, command, version, backend_pid) \
                     VALUES ($1, $2, $3, $4, pg_backend_pid()) \
                     ON CONFLICT (one) DO UPDATE SET holder = EXCLUDED.holder, pid = EXCLUDED.pid, \
                     command = EXCLUDED.command, version = EXCLUDED.version, since = now(), \
                     backend_pid = EXCLUDED.backend_pid",
                    url.schema
                ),
                &[&note.holder, &note.pid, &note.command, &note.version],
            )
            .map_err(err)?;
    }
    Ok(held)
}

/// The first row of a simple-protocol query, as text.
fn simple_row(client: &mut Client, sql: &str) -> Result<Vec<String>, postgres::Error> {
    for message in client.simple_query(sql)? {
        if let postgres::SimpleQueryMessage::Row(row) = message {
            return Ok((0..row.len())
                .map(|i| row.get(i).unwrap_or_default().to_owned())
                .collect());
        }
    }
    Ok(Vec::new())
}

/// What this process writes into the lock row.
struct Note {
    holder: String,
    pid: i64,
    command: String,
    version: String,
}

impl Note {
    fn of_this_process() -> Note {
        Note {
            holder: format!("{}@{}", user_name(), host_name()),
            pid: i64::from(std::process::id()),
            command: command_line(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::getuid().to_string())
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// The lock row, if any.
struct Row {
    holder: String,
    pid: i64,
    command: String,
    version: String,
    since: String,
    backend_pid: i32,
}

impl Row {
    /// The holder ran on this host and its process is gone.
    fn process_gone_here(&self) -> bool {
        self.holder.rsplit_once('@').map(|(_, h)| h) == Some(host_name().as_str())
            && !process_alive(self.pid)
    }
}

fn read_row(client: &mut Client, schema: &str) -> Result<Option<Row>, postgres::Error> {
    let row = client.query_opt(
        &format!(
            "SELECT holder, pid, command, version, \
             to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), backend_pid \
             FROM {schema}.lock"
        ),
        &[],
    )?;
    Ok(row.map(|r| Row {
        holder: r.get(0),
        pid: r.get(1),
        command: r.get(2),
        version: r.get(3),
        since: r.get(4),
        backend_pid: r.get(5),
    }))
}

/// The backend pid that really holds `key`, if any.
fn holder_pid(client: &mut Client, key: LockKey) -> Result<Option<i32>, postgres::Error> {
    let row = client.query_opt(HOLDERS, &[&i64::from(LOCK_CLASS), &i64::from(key.object)])?;
    Ok(row.map(|r| r.get(0)))
}

/// Whether the server still has a session with this backend pid.
fn session_alive(client: &mut Client, backend_pid: i32) -> Result<bool, postgres::Error> {
    let row = client.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
        &[&backend_pid],
    )?;
    Ok(row.get(0))
}

/// `alice@laptop pid 4242 (pgbr apply t.toml), pgbr 0.1.0, since …;
/// its session is alive (backend pid 77)`, from the row and `pg_locks`;
/// and whether the holder is going away: the lock was just released, its
/// session has ended, or its process (on this host) is gone.
fn describe_holder(
    client: &mut Client,
    schema: &str,
    key: LockKey,
) -> Result<(String, bool), postgres::Error> {
    let real = holder_pid(client, key)?;
    let row = read_row(client, schema)?;
    Ok(match (real, row) {
        (Some(pid), Some(row)) if row.backend_pid == pid => {
            let alive = session_alive(client, pid)?;
            let process_gone = row.process_gone_here();
            let text = format!(
                "{} pid {} ({}), pgbr {}, since {}; its session {} (backend pid {pid})",
                row.holder,
                row.pid,
                row.command,
                row.version,
                row.since,
                if alive { "is alive" } else { "has ended" },
            );
            (text, !alive || process_gone)
        }
        (Some(pid), _) => (
            format!("a session that recorded no holder (backend pid {pid}); it is alive"),
            false,
        ),
        (None, _) => (
            "another pgbr that has just released it; try again".to_owned(),
            true,
        ),
    })
}

/// What `pgbr state unlock` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlocked {
    /// Nobody held the lock (a stale row, if any, was removed).
    WasFree,
    /// The holder's session was ended.
    Ended {
        /// Who held it.
        holder: String,
    },
}

/// Ends the session holding the lock of `url`'s store when its process is
/// gone (same host) or when `force` says so.
pub(super) fn unlock(raw: &str, force: bool) -> Result<Unlocked, Error> {
    let env = |k: &str| std::env::var(k).ok();
    let url = PgUrl::parse(raw, &env)?;
    let name = url.redacted().to_owned();
    let err = |e: postgres::Error| Error::backend(&name, Box::new(e));
    let mut client = connect(&url)?;
    let key = LockKey::for_schema(&url.schema);
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{}.lock", url.schema)],
        )
        .map_err(err)?
        .get(0);
    if !exists {
        return Ok(Unlocked::WasFree);
    }
    let Some(pid) = holder_pid(&mut client, key).map_err(err)? else {
        client
            .execute(&format!("DELETE FROM {}.lock", url.schema), &[])
            .map_err(err)?;
        return Ok(Unlocked::WasFree);
    };
    let (holder, _) = describe_holder(&mut client, &url.schema, key).map_err(err)?;
    let row = read_row(&mut client, &url.schema).map_err(err)?;
    let gone_here = row
        .as_ref()
        .is_some_and(|r| r.backend_pid == pid && r.process_gone_here());
    if !(gone_here || force) {
        return Err(Error::HolderMayBeAlive {
            store: name.clone(),
            holder,
        });
    }
    let ended: bool = client
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .map_err(err)?
        .get(0);
    if !ended {
        return Err(Error::HolderMayBeAlive {
            store: name.clone(),
            holder,
        });
    }
    // The server drops the lock when the terminated backend has exited.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while holder_pid(&mut client, key).map_err(err)? == Some(pid) {
        if std::time::Instant::now() > deadline {
            return Err(Error::HolderMayBeAlive {
                store: name.clone(),
                holder,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    client
        .execute(
            &format!("DELETE FROM {}.lock WHERE backend_pid = $1", url.schema),
            &[&pid],
        )
        .map_err(err)?;
    Ok(Unlocked::Ended { holder })
}

fn process_alive(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(_) => true,
    }
}
