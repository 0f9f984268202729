//! Generation manifests: what one fleet-wide generation deployed, per cell.
//!
//! A manifest records everything needed to re-deploy its bytes without the
//! topology (rollback takes no topology): per cell the deploy dir, owner,
//! hooks, phase, and the files as store object ids. No IO here.

use crate::render::Phase;
use crate::store::ObjectId;
use std::collections::BTreeMap;

/// Why a generation exists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Cause {
    /// A plain `apply`.
    Apply,
    /// `apply --bootstrap CELL`.
    Bootstrap(String),
    /// `rollback --to N`.
    RollbackOf(u64),
    /// `rotate` (leaves re-issued on request).
    Rotation,
    /// A step of `rotate --ca` (1: trust both CAs, 2: re-issue, 3: drop old CA).
    CaRotation(u8),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Apply => f.write_str("apply"),
            Cause::Bootstrap(c) => write!(f, "bootstrap of {c}"),
            Cause::RollbackOf(n) => write!(f, "rollback of {n}"),
            Cause::Rotation => f.write_str("rotation"),
            Cause::CaRotation(step) => write!(f, "ca rotation step {step}"),
        }
    }
}

/// One deployed file of a cell, relative to its generation directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    /// Relative path: `pgbackrest.conf`, `tls/ca.crt`, `tls/server.crt`, `tls/server.key`.
    pub path: String,
    /// The content's id in the store.
    pub object: ObjectId,
    /// Unix mode bits (0o644, 0o600 for keys).
    pub mode: u32,
}

/// The certificate a cell has deployed in a generation (no key material).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertSummary {
    /// Serial number, lowercase hex with colons.
    pub serial: String,
    /// SHA-256 fingerprint of the DER, lowercase hex with colons.
    pub fingerprint: String,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
}

/// What one cell has in a generation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CellEntry {
    /// `bootstrap` or `full`.
    pub phase: Phase,
    /// The cell's deploy dir.
    pub deploy_dir: String,
    /// Generation whose directory holds these bytes (== the manifest's
    /// number when the cell changed in it).
    pub dir_generation: u64,
    /// The files, sorted by path.
    pub files: Vec<FileEntry>,
    /// The deployed leaf.
    pub cert: Option<CertSummary>,
    /// The renewal window in force when this generation was made.
    pub renew_before_days: u32,
    /// Owner of deployed files (`user` or `user:group`), if set.
    pub owner: Option<String>,
    /// Directories pgbr creates for the cell (log, lock, spool).
    pub dirs: Vec<String>,
    /// `config_link`, if set.
    pub config_link: Option<String>,
    /// `activate` command, if set.
    pub activate: Option<String>,
    /// Health check: `none`, `tls`, or `command:<cmd>`.
    pub health: String,
    /// Where the built-in health check connects: `host:port`.
    pub health_target: String,
}

/// One fleet-wide generation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The generation number (1, 2, ...).
    pub number: u64,
    /// The generation that was latest when this one was made.
    pub parent: Option<u64>,
    /// Creation time, unix seconds (the `--now` clock when given).
    pub created_at: i64,
    /// `pgbr` version that made it.
    pub tool_version: String,
    /// blake3 of the topology it was made from (a rollback copies its target's).
    pub topology_hash: String,
    /// Why it exists.
    pub cause: Cause,
    /// Per cell, by name.
    pub cells: BTreeMap<String, CellEntry>,
}
