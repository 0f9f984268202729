//! Generations: manifests, rollback planning and retention (what `gc`
//! removes). The store keeps manifests as opaque records; [`read_all`] and
//! friends encode and decode them. Otherwise pure: commands gather what
//! rollback and gc need.

mod manifest;
mod retention;
mod rollback;
mod stored;

pub use manifest::{v1, Cause, CellEntry, CertSummary, FileEntry, Manifest, Settings};
pub use retention::{plan_gc, GcInputs, GcPlan, GenerationDir, LiveCell};
pub use rollback::{default_target, plan_rollback, DefaultTarget, RollbackCell, RollbackPlan};
pub use stored::{read, read_all, read_latest, references, state_digest};
