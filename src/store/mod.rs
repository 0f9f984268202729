//! The state store: the only module that imports sled.
//!
//! Content-addressed objects (blake3, verified on read), generation
//! manifests, the PKI record, the per-cell activation journal and consumed
//! plan ids. Every value carries a format version. One process at a time:
//! `open` takes an exclusive lock and fails fast with [`Error::Locked`].
//! (The `Store` below is still a stub.)

mod error;
mod format;
mod lock;
mod object;
mod records;

pub use error::Error;
pub use object::ObjectId;
pub use records::{CellJournal, Commit, GcReport, PkiRecord, StoreStats, StoredPair};

use crate::generations::Manifest;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// An open, locked store.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating with mode 0700) and locks the store at `dir`.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        let _ = dir;
        todo!("store helper")
    }
    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Stores `bytes` (idempotent) and returns its id.
    pub fn put_object(&self, bytes: &[u8]) -> Result<ObjectId, Error> {
        let _ = bytes;
        todo!()
    }
    /// Reads an object and verifies its hash.
    pub fn get_object(&self, id: &ObjectId) -> Result<Vec<u8>, Error> {
        let _ = id;
        todo!()
    }
    /// Whether an object is present.
    pub fn has_object(&self, id: &ObjectId) -> Result<bool, Error> {
        let _ = id;
        todo!()
    }
    /// All generations, ascending.
    pub fn generations(&self) -> Result<Vec<Manifest>, Error> {
        todo!()
    }
    /// Generation `number`, if kept.
    pub fn generation(&self, number: u64) -> Result<Option<Manifest>, Error> {
        let _ = number;
        todo!()
    }
    /// The highest-numbered generation.
    pub fn latest(&self) -> Result<Option<Manifest>, Error> {
        todo!()
    }
    /// The PKI record (default when none yet).
    pub fn pki(&self) -> Result<PkiRecord, Error> {
        todo!()
    }
    /// The activation journal of every cell.
    pub fn journal(&self) -> Result<BTreeMap<String, CellJournal>, Error> {
        todo!()
    }
    /// Durably records one cell's journal entry.
    pub fn set_journal(&self, cell: &str, entry: &CellJournal) -> Result<(), Error> {
        let _ = (cell, entry);
        todo!()
    }
    /// Applies `commit` in one transaction and flushes.
    pub fn commit(&self, commit: Commit) -> Result<(), Error> {
        let _ = commit;
        todo!()
    }
    /// Whether a saved plan with this id was applied already.
    pub fn plan_consumed(&self, plan_id: &str) -> Result<bool, Error> {
        let _ = plan_id;
        todo!()
    }
    /// A digest of the latest generation, PKI record and journal: a saved
    /// plan records it and is stale when it changed.
    pub fn state_digest(&self) -> Result<String, Error> {
        todo!()
    }
    /// Removes every generation not in `keep` and every object that no kept
    /// generation and no PKI record references. With `dry_run`, only reports.
    pub fn gc(&self, keep: &BTreeSet<u64>, dry_run: bool) -> Result<GcReport, Error> {
        let _ = (keep, dry_run);
        todo!()
    }
}
