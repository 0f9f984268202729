//! Failpoints for crash tests: `PGBR_FAILPOINT=<name>` makes the process
//! abort (as if killed) when it reaches that point; `<name>@<k>` aborts at
//! the k-th time it is reached (1-based), so a test can stop mid-fleet.
//! Without the variable this is one env lookup per call, on paths that do
//! IO anyway.
//!
//! Compiled in only with the `failpoints` feature, which the tests turn on
//! (Cargo.toml): a release binary ignores `PGBR_FAILPOINT`, so no stray
//! environment variable can abort a production apply.
//!
//! Points: `after-commit` (generation committed, no cell touched),
//! `between-cells`, `partial-written` (a generation dir written as
//! `.<N>.partial`, not yet renamed), `before-flip`, `after-flip` (`current`
//! flipped, `activate` and the journal update not yet done).

#[cfg(feature = "failpoints")]
use crate::output::errln;
#[cfg(feature = "failpoints")]
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(feature = "failpoints")]
static HITS: AtomicU64 = AtomicU64::new(0);

/// Aborts the process if `PGBR_FAILPOINT` names `name` (and its hit count);
/// does nothing without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
pub fn hit(_name: &str) {}

/// Aborts the process if `PGBR_FAILPOINT` names `name` (and its hit count).
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    let Some(value) = std::env::var_os("PGBR_FAILPOINT") else {
        return;
    };
    let value = value.to_string_lossy();
    let (point, nth) = match value.split_once('@') {
        Some((p, k)) => (p, k.parse::<u64>().unwrap_or(1)),
        None => (&*value, 1),
    };
    if point != name {
        return;
    }
    if HITS.fetch_add(1, Ordering::SeqCst) + 1 >= nth {
        errln!("pgbr: failpoint `{value}` reached, aborting");
        std::process::abort();
    }
}
