//! Failpoints for crash tests: `PGBR_FAILPOINT=<name>` makes the process
//! abort (as if killed) when it reaches that point. Without the variable
//! this is one env lookup per call, on paths that do IO anyway.

/// Aborts the process if `PGBR_FAILPOINT` names `name`.
pub fn hit(name: &str) {
    if std::env::var_os("PGBR_FAILPOINT").is_some_and(|v| v == name) {
        eprintln!("pgbr: failpoint `{name}` reached, aborting");
        std::process::abort();
    }
}
