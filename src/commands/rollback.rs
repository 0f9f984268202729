//! `pgbr rollback`.

use super::generations::live_on_disk;
use super::report::{recorded, Human, Record};
use super::{confirm_or, reporter};
use crate::apply::{deploy_generation, Outcome, Rollout, Targets};
use crate::cli::RollbackArgs;
use crate::clock::Clock;
use crate::generations::{
    default_target, plan_rollback, Cause, CertSummary, DefaultTarget, Manifest,
};
use crate::layout;
use crate::plan::unified_diff;
use crate::store::{Commit, Location, Store};
use crate::{exit_codes, generations, Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// `pgbr rollback`.
pub fn rollback(state: &Location, identity: Option<&Path>, args: &RollbackArgs) -> Result<u8> {
    recorded("rollback", args.json, |record| {
        rollback_with(state, identity, args, record)
    })
}

fn rollback_with(
    state: &Location,
    identity: Option<&Path>,
    args: &RollbackArgs,
    record: &mut Record,
) -> Result<u8> {
    let human = Human::new(args.json);
    let clock = Clock::resolve(args.now.as_deref())?;
    let mut store = Store::open_existing(state)?;
    store.set_identity(identity);
    let manifests = generations::read_all(&store)?;
    let Some(latest) = manifests.last() else {
        return Err(Error::NoGenerations);
    };
    let targets = Targets::new();
    let disk = live_on_disk(&targets, &manifests)?;
    // A rollback generation some cell of which is not on it: cut short.
    let incomplete = matches!(latest.cause, Cause::RollbackOf(_))
        && latest.cells.iter().any(|(cell, e)| {
            e.dir_generation == latest.number
                && disk.get(cell).and_then(|l| l.current) != Some(latest.number)
        });
    let to = match (args.to, default_target(&manifests, incomplete)) {
        (Some(n), _) => n,
        (None, Some(DefaultTarget::Resume(t))) => {
            human.line(format_args!(
                "Resuming the rollback to generation {t} (generation {} did not reach every cell).",
                latest.number
            ));
            t
        }
        (None, Some(DefaultTarget::Parent(p))) => p,
        (None, Some(DefaultTarget::NoParent(generation))) => {
            return Err(Error::NoEarlierGeneration { generation });
        }
        (None, None) => unreachable!("there is a latest generation"),
    };
    let Some(target) = manifests.iter().find(|m| m.number == to) else {
        return Err(Error::GenerationGone {
            to,
            kept: manifests.iter().map(|m| m.number).collect(),
        });
    };
    let mut live = BTreeMap::new();
    for (cell, live_cell) in &disk {
        let current = live_cell.current;
        // The newest record of dir `c`: a later generation may have
        // recorded a new way to reach its host (`plan::CONNECTION`).
        let entry = current.and_then(|c| {
            manifests
                .iter()
                .rev()
                .filter(|m| m.number >= c)
                .find_map(|m| {
                    m.cells
                        .get(cell)
                        .filter(|e| e.dir_generation == c && e.deploy_dir == live_cell.deploy_dir)
                })
                .map(|e| (c, e.clone()))
        });
        live.insert(cell.clone(), entry);
    }
    let cas = signing_cas(&store, target)?;
    let plan = plan_rollback(
        target,
        &live,
        &cas,
        latest.number,
        store.next_generation()?,
        clock.now.unix_timestamp(),
        env!("CARGO_PKG_VERSION"),
    );

    record.rollback_to = Some(to);
    for c in &plan.cells {
        let outcome = if c.changes {
            Outcome::NotStarted
        } else {
            Outcome::Unchanged
        };
        record.summary.set(&c.cell, outcome, None);
    }
    // Cells live now that generation `to` does not have stay as they are.
    record.summary.left_out(
        live.iter()
            .filter(|(_, l)| l.is_some())
            .map(|(c, _)| c.as_str()),
    );
    let changing = plan.cells.iter().filter(|c| c.changes).count();
    if changing == 0 {
        human.line(format_args!("Rollback to generation {to}:"));
    } else {
        human.line(format_args!(
            "Rollback to generation {to} (as new generation {}):",
            plan.manifest.number
        ));
    }
    for c in &plan.cells {
        let from = c
            .live
            .map(|g| format!("generation {g}"))
            .unwrap_or_else(|| "nothing".into());
        if !c.changes {
            human.line(format_args!(
                "= {}: unchanged (already has generation {to}'s files)",
                c.cell
            ));
            continue;
        }
        human.line(format_args!(
            "~ {}: {from} -> generation {to}'s files",
            c.cell
        ));
        let want = &target.cells[&c.cell];
        let old_conf = live
            .get(&c.cell)
            .cloned()
            .flatten()
            .and_then(|(_, e)| e.files.into_iter().find(|f| f.path == layout::CONFIG));
        let new_conf = want.files.iter().find(|f| f.path == layout::CONFIG);
        if let Some(new) = new_conf {
            let old_text = match &old_conf {
                Some(f) => String::from_utf8_lossy(&store.get_object(&f.object)?).into_owned(),
                None => String::new(),
            };
            let new_text = String::from_utf8_lossy(&store.get_object(&new.object)?).into_owned();
            if old_text != new_text {
                for line in unified_diff(
                    &old_text,
                    &new_text,
                    &format!("{} (live)", c.cell),
                    &format!("{} (generation {to})", c.cell),
                )
                .lines()
                {
                    human.line(format_args!("      {line}"));
                }
            }
        }
        if let Some(cert) = &want.cert {
            human.line(format_args!(
                "    certificate: serial {} (fingerprint {})",
                cert.serial, cert.fingerprint
            ));
        }
    }
    human.line(format_args!(
        "Rollback: {changing} cell(s) to change, {} unchanged.",
        plan.cells.len() - changing
    ));
    if !plan.cert_problems.is_empty() {
        for p in &plan.cert_problems {
            human.line(format_args!("  ! {p}"));
        }
        if !args.force {
            return Err(Error::RollbackCertsDue { to });
        }
    }
    if args.dry_run {
        return Ok(exit_codes::SUCCESS);
    }
    if changing == 0 {
        human.line(format_args!(
            "Nothing to roll back: every cell already has generation {to}'s files."
        ));
        return Ok(exit_codes::SUCCESS);
    }
    store.require_keys(&format!("the private keys generation {to} deploys"))?;
    if !confirm_or(&format!("roll back to generation {to}"), args.yes, false)? {
        human.line(format_args!("Rollback cancelled."));
        return Ok(exit_codes::ERROR);
    }
    store.commit(Commit {
        manifest: Some(plan.manifest.record()?),
        ..Commit::default()
    })?;
    record.generation = Some(plan.manifest.number);
    let previous: BTreeMap<String, Option<u64>> = live
        .iter()
        .map(|(c, l)| (c.clone(), l.as_ref().map(|l| l.0)))
        .collect();
    let rep = reporter();
    // The manifests record no `[ssh] parallel`: rollback, which reads no
    // topology, writes at the default bound.
    let rollout = Rollout {
        adopt: false,
        parallel: crate::topology::DEFAULT_PARALLEL,
        // Without the topology: those of the last apply.
        hook_timeouts: crate::apply::HookTimeouts::from_seconds(store.hook_timeouts()?),
    };
    let report = record.deploy_ended(
        human,
        deploy_generation(
            &store,
            &targets,
            &plan.manifest,
            &previous,
            rollout,
            rep.as_ref(),
        ),
    )?;
    human.line(format_args!(
        "Rollback complete: generation {} holds generation {to}'s files ({} cell(s) deployed).",
        plan.manifest.number,
        report.deployed.len()
    ));
    human.line(record.summary.line());
    Ok(exit_codes::SUCCESS)
}

/// Per cell of `target`, the CA in its `tls/ca.crt` that signed its
/// `tls/server.crt` (rollback checks the CA's validity too).
fn signing_cas(store: &Store, target: &Manifest) -> Result<BTreeMap<String, CertSummary>> {
    let mut cas = BTreeMap::new();
    for (cell, entry) in &target.cells {
        let text = |path: &str| -> Result<Option<String>> {
            entry
                .files
                .iter()
                .find(|f| f.path == path)
                .map(|f| Ok(String::from_utf8_lossy(&store.get_object(&f.object)?).into_owned()))
                .transpose()
        };
        let (Some(bundle), Some(leaf)) = (text(layout::CA_BUNDLE)?, text(layout::SERVER_CERT)?)
        else {
            continue;
        };
        let signer = crate::pki::ca_bundle(&bundle)
            .into_iter()
            .find(|ca| crate::pki::signed_by(&leaf, ca));
        if let Some(info) = signer.and_then(|ca| crate::pki::inspect(&ca).ok()) {
            cas.insert(
                cell.clone(),
                CertSummary {
                    serial: info.serial,
                    fingerprint: info.fingerprint,
                    not_before: info.not_before.unix_timestamp(),
                    not_after: info.not_after.unix_timestamp(),
                },
            );
        }
    }
    Ok(cas)
}
