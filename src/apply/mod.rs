//! Apply: materialize generations on a [`Target`], flip `current`, run
//! `activate`, check health, and revert a failing cell.
//!
//! The deploy sequence of one cell lives in `deploy.rs`; the targets in
//! `target/` (`local.rs` is the only writer of deployed files); the hook
//! runner in `hook.rs`; the TLS probe in `health.rs`.

mod build;
mod deploy;
mod execute;
mod gather;
pub mod health;
mod hook;
mod parallel;
mod summary;
pub mod target;
mod version;

pub use build::{build_generation, Built};
pub use deploy::{deploy_cell, error_chain, CellDeploy, CellOutcome, HealthSpec, HookTimeouts};
pub use execute::{
    deploy_generation, entry_files, health_spec, DeployReport, DeployStopped, Rollout,
};
pub use gather::{ca_bundle_text, gather, stored_cert};
pub use summary::{CellResult, Outcome, Stop, Summary, NAMED_UP_TO};
pub use target::{Error, FileContent, HookOutput, HookRun, Prepare, Target, Targets, MARKER};
pub use version::{check_releases, read_releases, release_in, CellRelease, ReleaseMismatch};
