//! `pgbr state seal` and `pgbr state rekey`: who can read the store's
//! private keys (SPEC §11).

use crate::cli::RecipientArgs;
use crate::store::{Location, Recipients, SealReport, Store};
use crate::{exit_codes, Result};
use std::path::Path;

/// `pgbr state seal`.
pub fn seal(state: &Location, identity: Option<&Path>, args: &RecipientArgs) -> Result<u8> {
    let recipients = Recipients::parse(&args.recipients, &args.recipients_files)?;
    let mut store = Store::open(state)?;
    store.set_identity(identity);
    let name = store.name().to_owned();
    let report = store.seal(&recipients)?;
    print_report("Sealed", &name, &report);
    println!(
        "From now on apply, rotate and rollback need one of their identities \
         (--identity FILE or PGBR_IDENTITY_FILE)."
    );
    Ok(exit_codes::SUCCESS)
}

/// `pgbr state rekey`.
pub fn rekey(state: &Location, identity: Option<&Path>, args: &RecipientArgs) -> Result<u8> {
    let recipients = Recipients::parse(&args.recipients, &args.recipients_files)?;
    let mut store = Store::open(state)?;
    store.set_identity(identity);
    let name = store.name().to_owned();
    let report = store.rekey(&recipients)?;
    print_report("Re-sealed", &name, &report);
    Ok(exit_codes::SUCCESS)
}

fn print_report(done: &str, store: &str, report: &SealReport) {
    println!(
        "{done} {} private key(s) in `{}` to {} recipient(s):",
        report.keys,
        store,
        report.recipients.len()
    );
    for r in &report.recipients {
        println!("  {r}");
    }
}
