//! The state store: the only module that imports sled.
//!
//! Content-addressed objects (blake3, verified on read), generation
//! manifests, the PKI record, the per-cell activation journal and consumed
//! plan ids. Every value carries a format version. One process at a time:
//! `open` takes an exclusive lock and fails fast with [`Error::Locked`].
//! (STUB signatures: the store helper implements them.)

use crate::generations::Manifest;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// blake3 of an object's content.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> ObjectId {
        ObjectId(*blake3::hash(bytes).as_bytes())
    }
    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
    /// The first 12 hex digits, for display.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_owned()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short())
    }
}

/// A certificate and its key, as object ids.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredPair {
    /// The certificate PEM's object.
    pub cert: ObjectId,
    /// The private key PEM's object.
    pub key: ObjectId,
}

/// The PKI record: current CA, the CA being retired, and the leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PkiRecord {
    /// The current CA.
    pub ca: Option<StoredPair>,
    /// The previous CA while a CA rotation is under way.
    pub previous_ca: Option<StoredPair>,
    /// CA rotation step reached (0: none under way).
    pub ca_rotation_step: u8,
    /// Leaves by cell name (`*` for the shared leaf).
    pub leaves: BTreeMap<String, StoredPair>,
}

/// What the store believes a cell has live.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CellJournal {
    /// The generation whose files are live on the cell.
    pub live: Option<u64>,
    /// A generation being activated right now (set before the flip,
    /// cleared after the health check).
    pub in_flight: Option<u64>,
}

/// Writes that belong together, committed in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// A new generation; its number must be the latest + 1.
    pub manifest: Option<Manifest>,
    /// The new PKI record.
    pub pki: Option<PkiRecord>,
    /// A saved plan's id, marked as consumed.
    pub consumed_plan: Option<String>,
}

/// What `gc` removed (or would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Generation manifests removed.
    pub generations: Vec<u64>,
    /// Objects removed.
    pub objects: usize,
    /// Their stored bytes.
    pub bytes: u64,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds the store.
    #[error("open state `{}`: state is locked by {holder}", dir.display())]
    Locked {
        /// The store directory.
        dir: PathBuf,
        /// Who holds it (pid and command), as known.
        holder: String,
    },
    /// IO on the store directory.
    #[error("{action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: String,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// sled failed.
    #[error("access state database `{}`", dir.display())]
    Db {
        /// The store directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: sled::Error,
    },
    /// A value failed verification or decoding.
    #[error("read {what} from state `{}`: {reason}", dir.display())]
    Corrupt {
        /// The store directory.
        dir: PathBuf,
        /// What was read.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value was written by a newer pgbr.
    #[error("read {what}: format version {found} is newer than this pgbr supports ({supported})")]
    FormatVersion {
        /// What was read.
        what: String,
        /// Its version.
        found: u16,
        /// Ours.
        supported: u16,
    },
    /// A commit's generation number is not latest + 1.
    #[error("commit generation {number}: the latest generation is {latest}")]
    GenerationNumber {
        /// Proposed.
        number: u64,
        /// Latest in the store.
        latest: u64,
    },
}

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
