//! The seam between what the store means and where it keeps its bytes.
//!
//! A [`Backend`] is a locked, ordered key-value store with a few keyspaces
//! and one atomic commit, fenced on the highest generation number ever
//! committed. It knows nothing of value formats, object verification or
//! manifests: the layer above encodes, decodes and verifies everything.
//! [`open`] is the one place that chooses an implementation from a
//! [`Location`]; nothing outside this folder names one. A directory is
//! served by `sled.rs`, a `postgresql://` URL by `postgres.rs`.

mod empty;
mod pg_connect;
mod pg_lock;
mod pg_url;
mod postgres;
mod sled;
mod sled_dir;
mod sled_rewrite;

pub use pg_lock::Unlocked;
pub(crate) use pg_url::{is_url, redact};

use super::location::Resolved;
use super::{Error, Location};

/// The keyspaces of a store. Keys are raw bytes: object ids, big-endian
/// generation numbers (so that key order is numeric order), cell names,
/// plan ids, and the names of the singletons in `Meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyspace {
    /// Object id → stored object.
    Objects,
    /// Generation number → manifest.
    Generations,
    /// `pki` → PKI record.
    Meta,
    /// Cell name → journal entry.
    Journal,
    /// Saved plan id → consumed marker.
    Plans,
}

/// Writes that belong together.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    /// Moves the recorded head (the highest generation number ever
    /// committed) from `.0` to `.1`; the commit fails with
    /// [`Error::GenerationNumber`] when the head is no longer `.0`.
    pub head: Option<(u64, u64)>,
    /// Values to write.
    pub puts: Vec<(Keyspace, Vec<u8>, Vec<u8>)>,
}

/// A key and its value.
pub(crate) type Pair = (Vec<u8>, Vec<u8>);

/// A visitor of `(key, value)` pairs in key order.
pub(crate) type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), Error> + 'a;

/// Where a store keeps its bytes. Opening one takes its lock; dropping it
/// releases the lock.
pub(crate) trait Backend: Send {
    /// How errors name this store: a path, or a URL without its password.
    fn name(&self) -> &str;
    /// The value under `key`.
    fn get(&self, space: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
    /// Whether `key` holds a value.
    fn contains(&self, space: Keyspace, key: &[u8]) -> Result<bool, Error>;
    /// Writes one value; durable after the next [`Backend::sync`] or commit.
    fn put(&self, space: Keyspace, key: &[u8], value: &[u8]) -> Result<(), Error>;
    /// Calls `visit` with every pair of `space`, in key order.
    fn scan(&self, space: Keyspace, visit: &mut Visit<'_>) -> Result<(), Error>;
    /// The pair with the greatest key.
    fn last(&self, space: Keyspace) -> Result<Option<Pair>, Error>;
    /// How many keys `space` holds.
    fn len(&self, space: Keyspace) -> Result<u64, Error>;
    /// Removes `keys` at once, durably.
    fn remove(&self, space: Keyspace, keys: &[Vec<u8>]) -> Result<(), Error>;
    /// The recorded head: the highest generation number ever committed
    /// (0 when none was recorded).
    fn head(&self) -> Result<u64, Error>;
    /// Applies `transaction` atomically and durably, or nothing of it.
    fn commit(&self, transaction: Transaction) -> Result<(), Error>;
    /// Makes every write so far durable.
    fn sync(&self) -> Result<(), Error>;
    /// Bytes the store takes on its medium, after a sync.
    fn disk_bytes(&self) -> Result<u64, Error>;
    /// Writes `puts` atomically and durably, and leaves no earlier version
    /// of any value on the medium: sealing and rekeying replace private
    /// keys and must leave no plaintext copy (nor one sealed to a removed
    /// recipient) in the store's files. Consumes the backend, which may
    /// rebuild its files to get there; the lock is held until it is done.
    fn rewrite(self: Box<Self>, puts: Vec<(Keyspace, Vec<u8>, Vec<u8>)>) -> Result<(), Error>;
}

/// Opens and locks the store at `location`: a directory is a sled store.
pub(crate) fn open(location: &Location) -> Result<Box<dyn Backend>, Error> {
    match location.resolve()? {
        Resolved::Dir(dir) => match sled::SledBackend::open(&dir) {
            Ok(backend) => Ok(Box::new(backend)),
            Err(e) => Err(not_yours(&dir, e)),
        },
        Resolved::Postgres(url) => Ok(Box::new(postgres::PostgresBackend::open(&url)?)),
    }
}

/// Like [`open`], but `None` where no store was ever made (a directory
/// without a database, a database without pgbr's schema): nothing is
/// created.
pub(crate) fn open_existing(location: &Location) -> Result<Option<Box<dyn Backend>>, Error> {
    if let Resolved::Postgres(url) = location.resolve()? {
        if !postgres::PostgresBackend::exists(&url)? {
            return Ok(None);
        }
    }
    if let Resolved::Dir(dir) = location.resolve()? {
        let exists = |name: &str| match std::fs::symlink_metadata(dir.join(name)) {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        };
        // `db.next` alone: a rewrite was cut short, and opening finishes it.
        if !exists("db") && !exists("db.next") {
            return Ok(None);
        }
    }
    open(location).map(Some)
}

/// A store that holds nothing and takes nothing, named after `location`.
pub(crate) fn empty(location: &Location) -> Box<dyn Backend> {
    Box::new(empty::EmptyBackend {
        name: location.display(),
    })
}

/// An open that failed for lack of permission, told as whose store (or
/// directory) it is and who pgbr runs as.
fn not_yours(dir: &std::path::Path, e: Error) -> Error {
    use std::os::unix::fs::MetadataExt;
    let denied = matches!(&e, Error::Io(io)
        if io.source.kind() == std::io::ErrorKind::PermissionDenied);
    if !denied {
        return e;
    }
    // The store dir, or the nearest directory above it that exists.
    let Some((owned, meta)) = dir
        .ancestors()
        .find_map(|d| std::fs::metadata(d).ok().map(|m| (d.to_path_buf(), m)))
    else {
        return e;
    };
    let name = |uid: u32| {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| format!("uid {uid}"))
    };
    Error::NotYours {
        store: dir.display().to_string(),
        owned,
        owner: name(meta.uid()),
        user: name(nix::unistd::geteuid().as_raw()),
        source: Box::new(e),
    }
}

/// Ends the lock of a holder that is gone (`pgbr state unlock`). An
/// embedded store's lock is the kernel's and goes with its process: there
/// is nothing to end, and a live holder is reported as [`Error::Locked`].
pub(crate) fn unlock(location: &Location, force: bool) -> Result<Unlocked, Error> {
    match location.resolve()? {
        Resolved::Dir(_) => match open_existing(location)? {
            Some(held) => {
                drop(held);
                Ok(Unlocked::WasFree)
            }
            None => Err(Error::NoState {
                store: location.display(),
            }),
        },
        Resolved::Postgres(url) => pg_lock::unlock(&url, force),
    }
}

/// Longest command line recorded in a lock note, in characters.
const MAX_COMMAND_CHARS: usize = 200;

/// This process's command line, with the program's path shortened to its
/// file name (`pgbr apply topology.toml`) and any URL's password removed,
/// for the notes that say who holds a lock.
pub(super) fn command_line() -> String {
    // A state URL may carry a password: lock notes show it redacted.
    let mut words = std::env::args_os().map(|a| {
        let word = a.to_string_lossy().into_owned();
        if word.contains("://") {
            redact_word(&word)
        } else {
            word
        }
    });
    let program = words
        .next()
        .map(|p| match p.rsplit_once('/') {
            Some((_, name)) => name.to_owned(),
            None => p,
        })
        .unwrap_or_default();
    let line = std::iter::once(program)
        .chain(words)
        .collect::<Vec<_>>()
        .join(" ");
    line.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_COMMAND_CHARS)
        .collect()
}

/// `word` with the password of any URL in it removed (`--state=postgresql://…`).
fn redact_word(word: &str) -> String {
    match word.find("postgres") {
        Some(at) if is_url(&word[at..]) => format!("{}{}", &word[..at], redact(&word[at..])),
        _ => word.to_owned(),
    }
}
