//! The state store: the only module that imports sled.
//!
//! Content-addressed objects (blake3, verified on read), generation
//! manifests, the PKI record, the per-cell activation journal and consumed
//! plan ids. Every value carries a format version. One process at a time:
//! `open` takes an exclusive lock and fails fast with [`Error::Locked`].
//! The store knows nothing of topologies, rendering or deploy dirs: it keeps
//! bytes and records and refuses to hand back anything it cannot verify.

mod db;
mod error;
mod format;
mod gc;
mod lock;
mod object;
mod records;
mod rewrite;
pub mod seal;
mod sealing;
#[cfg(test)]
mod seal_tests;
#[cfg(test)]
mod tests;

pub use db::Store;
pub use error::Error;
pub use object::ObjectId;
pub use records::{CellJournal, Commit, GcReport, PkiRecord, StoreStats, StoredPair};
pub use seal::{Identity, Recipients};
pub use sealing::SealReport;
