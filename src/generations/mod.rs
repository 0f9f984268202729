//! Generations: manifests, rollback planning and retention (what `gc`
//! removes). Pure: the store keeps manifests, commands gather what rollback
//! and gc need.

mod manifest;
mod retention;
mod rollback;

pub use manifest::{v1, Cause, CellEntry, CertSummary, FileEntry, Manifest, Settings};
pub use retention::{plan_gc, GcInputs, GcPlan, GenerationDir, LiveCell};
pub use rollback::{default_target, plan_rollback, DefaultTarget, RollbackCell, RollbackPlan};
