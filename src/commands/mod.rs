//! One function per command: turns CLI arguments into typed requests, runs
//! the core, prints results. The only place that writes to stdout.

use crate::output::err;
mod apply;
mod certs;
mod check;
mod gc;
mod generations;
mod plan;
mod report;
mod rollback;
mod state;
mod status;

use crate::cli::{Cli, Command};
use crate::progress::{PlainReporter, Reporter, TerminalReporter};
use crate::{Error, Result};
use std::io::IsTerminal;

/// Runs the parsed command; returns the exit code on success.
pub fn dispatch(cli: Cli) -> Result<u8> {
    let state = crate::store::Location::new(cli.state);
    let identity = cli.identity.as_deref();
    match cli.command {
        Command::Check { topology } => check::check(&topology),
        Command::Render {
            topology,
            cell,
            phase,
            out,
        } => check::render(&topology, cell.as_deref(), phase, out.as_deref()),
        Command::Plan(args) => plan::plan(&state, &args),
        Command::Apply(args) => apply::apply(&state, identity, &args),
        Command::Rotate(args) => apply::rotate(&state, identity, &args),
        Command::Status(args) => status::status(&state, identity, &args),
        Command::Generations { json } => generations::generations(&state, json),
        Command::Certs { json, now } => certs::certs(&state, json, now.as_deref()),
        Command::Rollback(args) => rollback::rollback(&state, identity, &args),
        Command::Gc { keep, dry_run } => gc::gc(&state, keep, dry_run),
        Command::State(command) => state::state(&state, identity, command),
        Command::Agent => {
            crate::apply::target::agent::serve_stdio().map_err(Error::Agent)?;
            Ok(crate::exit_codes::SUCCESS)
        }
    }
}

/// Progress bars on a terminal, plain lines otherwise.
pub(crate) fn reporter() -> Box<dyn Reporter> {
    if std::io::stderr().is_terminal() {
        Box::new(TerminalReporter::default())
    } else {
        Box::new(PlainReporter)
    }
}

/// Asks for confirmation on a terminal; without one, `--yes` is required.
pub(crate) fn confirm(what: &str, yes: bool) -> Result<bool> {
    confirm_or(what, yes, true)
}

/// Like [`confirm`]; `saved_plan` says whether the command also takes a
/// saved plan (the hint without a terminal must not suggest one otherwise).
pub(crate) fn confirm_or(what: &str, yes: bool, saved_plan: bool) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::NoTerminal {
            what: what.to_owned(),
            saved_plan,
        });
    }
    err!("Do you want to {what}? Only `yes` will be accepted: ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(Error::ReadAnswer)?;
    Ok(answer.trim() == "yes")
}
