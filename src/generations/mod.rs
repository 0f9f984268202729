//! Generations: manifests and rollback planning. Pure: the store keeps
//! manifests, commands gather what rollback needs.

mod manifest;
mod rollback;

pub use manifest::{v1, Cause, CellEntry, CertSummary, FileEntry, Manifest};
pub use rollback::{default_target, plan_rollback, DefaultTarget, RollbackCell, RollbackPlan};
