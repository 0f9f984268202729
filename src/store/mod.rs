//! The state store: objects and records behind one seam.
//!
//! Content-addressed objects (blake3, verified on read), generation
//! manifests as opaque versioned records (`generations` reads them), the
//! PKI record, the per-cell activation journal and consumed plan ids. Every value carries a format version. One process at a time:
//! `open` takes an exclusive lock and fails fast with [`Error::Locked`].
//! The store knows nothing of topologies, rendering or deploy dirs: it keeps
//! bytes and records and refuses to hand back anything it cannot verify.
//! Where the bytes live is a [`backend`]'s business; only `backend/` names
//! one.

mod backend;
mod copy;
mod error;
pub mod format;
mod gc;
mod location;
mod object;
mod records;
pub mod seal;
#[cfg(test)]
mod seal_tests;
mod sealing;
#[allow(clippy::module_inception)]
mod store;
#[cfg(test)]
mod tests;

pub use backend::Unlocked;
pub use copy::{CopyReport, References, VerifyReport};
pub use error::{BackendCause, Distrust, Error};
pub use location::Location;
pub use object::ObjectId;
pub use records::{CellJournal, Commit, GenerationRecord, PkiRecord, StoreStats, StoredPair};
pub use seal::{Identity, Recipients};
pub use sealing::SealReport;
pub use store::Store;

/// Ends the state lock of a holder that is gone (`pgbr state unlock`);
/// `force` ends it even when the holder may be alive.
pub fn unlock(location: &Location, force: bool) -> Result<Unlocked, Error> {
    backend::unlock(location, force)
}
