//! `pgbr state copy|verify|unlock|seal|rekey`: the store as a whole, and
//! who can read its private keys (SPEC §11).

use crate::cli::{RecipientArgs, StateCommand};
use crate::output::outln;
use crate::store::{self, Location, Recipients, SealReport, Store, Unlocked};
use crate::{exit_codes, generations, Result};
use std::path::Path;

/// Runs one `pgbr state` command.
pub fn state(state: &Location, identity: Option<&Path>, command: StateCommand) -> Result<u8> {
    match command {
        StateCommand::Copy { from, to } => copy(&Location::new(from), &Location::new(to), identity),
        StateCommand::Verify => verify(state, identity),
        StateCommand::Unlock { force } => unlock(state, force),
        StateCommand::Seal(args) => seal(state, identity, &args),
        StateCommand::Rekey(args) => rekey(state, identity, &args),
    }
}

fn copy(from: &Location, to: &Location, identity: Option<&Path>) -> Result<u8> {
    let mut source = Store::open_existing(from)?;
    source.set_identity(identity);
    let destination = Store::open(to)?;
    // The copy is the same state, moved: it keeps the identity that the
    // deploy dirs' markers name (made now if the source has none yet).
    source.ensure_id()?;
    let references = |record: &_| generations::references(record, source.name());
    let report = source.copy_into(&destination, &references)?;
    outln!(
        "Copied {} generations and {} objects from `{}` to `{}`; every object verified.",
        report.generations,
        report.objects,
        source.name(),
        destination.name()
    );
    Ok(exit_codes::SUCCESS)
}

fn verify(state: &Location, identity: Option<&Path>) -> Result<u8> {
    let mut store = Store::open(state)?;
    store.set_identity(identity);
    let references = |record: &_| generations::references(record, store.name());
    let report = store.verify(&references)?;
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

/// `pgbr state seal`.
fn seal(state: &Location, identity: Option<&Path>, args: &RecipientArgs) -> Result<u8> {
    let recipients = Recipients::parse(&args.recipients, &args.recipients_files)?;
    let mut store = Store::open(state)?;
    store.set_identity(identity);
    let name = store.name().to_owned();
    let report = store.seal(&recipients)?;
    print_report("Sealed", &name, &report);
    outln!(
        "From now on apply, rotate and rollback need one of their identities \
         (--identity FILE or PGBR_IDENTITY_FILE)."
    );
    Ok(exit_codes::SUCCESS)
}

/// `pgbr state rekey`.
fn rekey(state: &Location, identity: Option<&Path>, args: &RecipientArgs) -> Result<u8> {
    let recipients = Recipients::parse(&args.recipients, &args.recipients_files)?;
    let mut store = Store::open(state)?;
    store.set_identity(identity);
    let name = store.name().to_owned();
    let report = store.rekey(&recipients)?;
    print_report("Re-sealed", &name, &report);
    Ok(exit_codes::SUCCESS)
}

fn print_report(done: &str, store: &str, report: &SealReport) {
    outln!(
        "{done} {} private key(s) in `{}` to {} recipient(s):",
        report.keys,
        store,
        report.recipients.len()
    );
    for r in &report.recipients {
        outln!("  {r}");
    }
}
