//! Every exit code pgbr returns, in one place (documented in docs/exit-codes.md).
//!
//! Scripts rely on these numbers: never renumber one.

/// Success; for `plan --detailed-exitcode`: no changes.
pub const SUCCESS: u8 = 0;
/// An error: invalid topology, IO failure, refused operation, and so on.
pub const ERROR: u8 = 1;
/// `plan --detailed-exitcode` (and `status`): there are changes or drift.
pub const CHANGES: u8 = 2;
/// Another pgbr process holds the state store.
pub const LOCKED: u8 = 3;
/// A saved plan no longer matches the store or the deployed state.
pub const STALE_PLAN: u8 = 4;
/// Activation or a health check failed; the failing cell was reverted.
pub const CELL_REVERTED: u8 = 5;
/// Activation or health failed and reverting the cell failed too: the cell
/// needs an operator.
pub const REVERT_FAILED: u8 = 6;
/// `status --probe`: at least one cell's TLS probe failed (monitoring).
pub const PROBE_FAILED: u8 = 7;
/// A cell's host was lost during `apply` (SSH connection broken, or an
/// operation on it got no answer in time): cells already switched stay on
/// their new generation, later cells were not started; `apply` again
/// converges once the host is back.
pub const HOST_LOST: u8 = 8;
/// The command line was malformed (clap's usage errors).
pub const USAGE: u8 = 64;
