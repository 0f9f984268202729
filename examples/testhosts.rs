//! Test hosts for shell scripts (`tests/e2e/run-hosts.sh`), from the same
//! code as the integration tests (`tests/it/hosts.rs`):
//!
//! ```text
//! testhosts N [PRIVATE_DIR]
//! ```
//!
//! starts N hosts whose private tmpfs is on PRIVATE_DIR, prints shell
//! assignments (`HOSTS_ADDRS=(…)`, `HOSTS_PIDS=(…)`, `HOSTS_SSH_CONFIG=…`,
//! then `HOSTS_READY=1`) and keeps them until its stdin closes; then it
//! tears everything down. Needs root.
// Test tooling printing to a shell script: a closed pipe is not its
// concern (clippy.toml disallows the std printing macros in pgbr).
#![allow(clippy::disallowed_macros)]

#[path = "../tests/it/hosts.rs"]
mod hosts;

use std::io::Write;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(n) = args.first().and_then(|n| n.parse().ok()) else {
        eprintln!("usage: testhosts N [PRIVATE_DIR]");
        std::process::exit(2);
    };
    let private = args.get(1).map(PathBuf::from);
    let hosts = hosts::Hosts::start_with(n, private.as_deref());
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}HOSTS_READY=1", hosts.env()).expect("stdout");
    out.flush().expect("stdout");
    drop(out);
    // Until the script that started us closes our stdin (or exits).
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    drop(hosts);
}
