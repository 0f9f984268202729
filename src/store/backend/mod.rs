//! The seam between what the store means and where it keeps its bytes.
//!
//! A [`Backend`] is a locked, ordered key-value store with a few keyspaces
//! and one atomic commit, fenced on the highest generation number ever
//! committed. It knows nothing of value formats, object verification or
//! manifests: the layer above encodes, decodes and verifies everything.
//! [`open`] is the one place that chooses an implementation from a
//! [`Location`]; nothing outside this folder names one.

mod sled;
mod sled_dir;

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
}

/// Opens and locks the store at `location`: a directory is a sled store.
pub(crate) fn open(location: &Location) -> Result<Box<dyn Backend>, Error> {
    match location.resolve()? {
        Resolved::Dir(dir) => Ok(Box::new(sled::SledBackend::open(&dir)?)),
    }
}
