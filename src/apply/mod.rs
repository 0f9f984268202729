//! Apply: materialize generations on a [`Target`], flip `current`, run
//! `activate`, check health, and revert a failing cell.
//!
//! The deploy sequence of one cell lives in `deploy.rs`; the filesystem
//! work in `fs.rs` (the only writer of deployed files); hooks and the TLS
//! probe in `health.rs`.

mod build;
mod deploy;
mod execute;
mod fs;
mod gather;
pub mod health;
mod target;
mod version;

pub use build::{build_generation, Built};
pub use deploy::{deploy_cell, error_chain, CellDeploy, CellOutcome, HealthSpec};
pub use execute::{deploy_generation, entry_files, health_spec, DeployReport};
pub use fs::{LocalTarget, MARKER};
pub use gather::{ca_bundle_text, gather, stored_cert};
pub use target::{FileContent, HookOutput, Observed, Prepare, Target};
pub use version::{check_releases, read_releases, release_in, CellRelease};

use std::path::PathBuf;

/// Failures while deploying.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
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
    /// pgbr refused to touch a path.
    #[error("use `{}`: {reason}", path.display())]
    Refused {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
        /// What to do.
        hint: String,
    },
    /// The owner could not be resolved.
    #[error("resolve owner `{owner}`: {reason}")]
    Owner {
        /// The owner spec.
        owner: String,
        /// Why.
        reason: String,
    },
    /// chown failed.
    #[error("give `{}` to uid {uid} gid {gid}", path.display())]
    Chown {
        /// The path.
        path: PathBuf,
        /// Wanted uid.
        uid: u32,
        /// Wanted gid.
        gid: u32,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The cells do not all run the pgBackRest release of the topology.
    #[error("deploy: {why} (expected {expected}): {}", cells.join("; "))]
    PgbackrestRelease {
        /// What is wrong.
        why: String,
        /// `[pgbackrest] version`.
        expected: String,
        /// Every cell's release, or why it is unknown.
        cells: Vec<String>,
    },
}
