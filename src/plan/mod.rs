//! Plans: desired state vs. what each cell has live vs. its disk.
//!
//! `compute` is pure; gathering its inputs (store, disk) is the caller's.

mod compute;
#[cfg(test)]
mod compute_tests;
mod diff;
mod display;
mod model;
mod observed;
mod settings;

pub use compute::{
    compute, days_until, disk_digest, leaf_key, leaf_sans, targets, CellNow, Inputs, Objects,
    StoredCert, ThisStore, FILES,
};
pub use diff::unified_diff;
pub use display::{render, summary_line};
pub use model::*;
pub use observed::Observed;
pub use settings::{Settings, CONNECTION};
