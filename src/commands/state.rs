//! `pgbr state copy|verify|unlock`: the store as a whole.

use crate::cli::StateCommand;
use crate::output::outln;
use crate::store::{self, Location, Store, Unlocked};
use crate::{exit_codes, Result};

/// Runs one `pgbr state` command.
pub fn state(state: &Location, command: StateCommand) -> Result<u8> {
    match command {
        StateCommand::Copy { from, to } => copy(&Location::new(from), &Location::new(to)),
        StateCommand::Verify => verify(state),
        StateCommand::Unlock { force } => unlock(state, force),
    }
}

fn copy(from: &Location, to: &Location) -> Result<u8> {
    let source = Store::open(from)?;
    let destination = Store::open(to)?;
    let report = source.copy_into(&destination)?;
    outln!(
        "Copied {} generations and {} objects from `{}` to `{}`; every object verified.",
        report.generations,
        report.objects,
        source.name(),
        destination.name()
    );
    Ok(exit_codes::SUCCESS)
}

fn verify(state: &Location) -> Result<u8> {
    let store = Store::open(state)?;
    let report = store.verify()?;
    for problem in &report.problems {
        outln!("problem: {problem}");
    }
    if !report.problems.is_empty() {
        return Err(store::Error::Unverified {
            store: store.name().to_owned(),
            count: report.problems.len(),
        }
        .into());
    }
    outln!(
        "State `{}` verified: {} generations, {} objects, every reference present.",
        store.name(),
        report.generations,
        report.objects
    );
    Ok(exit_codes::SUCCESS)
}

fn unlock(state: &Location, force: bool) -> Result<u8> {
    match store::unlock(state, force)? {
        Unlocked::WasFree => outln!("State `{}` is not locked.", state.display()),
        Unlocked::Ended { holder } => {
            outln!("Ended the lock of {holder} on state `{}`.", state.display())
        }
    }
    Ok(exit_codes::SUCCESS)
}
