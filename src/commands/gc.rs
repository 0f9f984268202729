//! `pgbr gc`: drop old generations from the store and from the deploy dirs.
//! Gathers what retention decides from, prints the plan, executes exactly it.

use super::generations::live_on_disk;
use crate::apply::{LocalTarget, Target};
use crate::generations::{plan_gc, GcInputs, GenerationDir};
use crate::output::out;
use crate::store::{Location, Store};
use crate::{exit_codes, Result};
use std::collections::BTreeSet;

/// `pgbr gc`.
pub fn gc(state: &Location, keep: usize, dry_run: bool) -> Result<u8> {
    let store = Store::open(state)?;
    let manifests = store.generations()?;
    let live = live_on_disk(&manifests)?;
    let journaled: BTreeSet<u64> = store
        .journal()?
        .values()
        .flat_map(|j| j.live.into_iter().chain(j.in_flight))
        .collect();
    let mut dirs = Vec::new();
    for (cell, (dir, _)) in &live {
        for generation in LocalTarget.observe(cell, dir)?.generations {
            dirs.push(GenerationDir {
                deploy_dir: dir.clone(),
                generation,
                bytes: LocalTarget.generation_size(dir, generation)?,
            });
        }
    }
    let plan = plan_gc(&GcInputs {
        manifests: &manifests,
        keep,
        live: &live,
        journaled: &journaled,
        pki_objects: &store.pki()?.objects().collect(),
        stored_objects: &store.object_sizes()?,
        dirs: &dirs,
    });
    if !dry_run {
        for d in &plan.dirs {
            LocalTarget.remove_generation(&d.deploy_dir, d.generation)?;
        }
        store.sweep(&plan.generations, &plan.objects)?;
    }
    out!("{}", plan.render(dry_run));
    Ok(exit_codes::SUCCESS)
}
