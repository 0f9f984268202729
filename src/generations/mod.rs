//! Generations: manifests, listing and rollback.

mod manifest;

pub use manifest::{Cause, CellEntry, CertSummary, FileEntry, Manifest};
