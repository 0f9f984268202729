//! The records the store keeps besides objects and manifests, and the
//! request and report types of its operations. Plain data, no IO.

use super::ObjectId;
use std::collections::BTreeMap;

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
    /// Leaves by `plan::LeafKey` text: the cell name, `*` for the shared leaf.
    pub leaves: BTreeMap<String, StoredPair>,
}

impl PkiRecord {
    /// Every object the record refers to (certificates and keys).
    pub fn objects(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.ca
            .iter()
            .chain(self.previous_ca.iter())
            .chain(self.leaves.values())
            .flat_map(|pair| [pair.cert, pair.key])
    }
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

/// A generation's manifest as the store keeps it: its number and its
/// value, versioned bytes the store does not read (`generations` encodes
/// and decodes them with [`super::format`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationRecord {
    /// The generation number, the record's key.
    pub number: u64,
    /// The encoded manifest, format version header included.
    pub value: Vec<u8>,
}

/// Writes that belong together, committed in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// A new generation; its number must be the latest + 1.
    pub manifest: Option<GenerationRecord>,
    /// The new PKI record.
    pub pki: Option<PkiRecord>,
    /// A saved plan's id, marked as consumed.
    pub consumed_plan: Option<String>,
}

/// Sizes of the store, for `status` and the size benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Generation manifests kept.
    pub generations: u64,
    /// Objects kept.
    pub objects: u64,
    /// Their total raw (uncompressed) length.
    pub raw_bytes: u64,
    /// Their total stored length (compressed, with the value header).
    pub stored_bytes: u64,
    /// Size of the database files on disk, after a flush.
    pub disk_bytes: u64,
}

/// The marker stored for a consumed saved plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct ConsumedPlan {
    /// The generation the plan's apply committed, if it made one.
    pub generation: Option<u64>,
}
