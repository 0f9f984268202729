//! One function per command: turns CLI arguments into typed requests, runs
//! the core, prints results. The only place that writes to stdout.

mod check;

use crate::cli::{Cli, Command};
use crate::Result;

/// Runs the parsed command; returns the exit code on success.
pub fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Check { topology } => check::check(&topology),
        Command::Render {
            topology,
            cell,
            phase,
            out,
        } => check::render(&topology, cell.as_deref(), phase, out.as_deref()),
        _ => Err(crate::Error::msg("run this command: not implemented yet")),
    }
}
