//! `pgbr gc`: drop old generations from the store and from the deploy dirs.
//! Gathers what retention decides from, prints the plan, executes exactly it.

use super::generations::live_on_disk;
use crate::apply::Targets;
use crate::generations::{plan_gc, GcInputs, GenerationDir};
use crate::output::{out, outln};
use crate::store::{Location, Store};
use crate::{exit_codes, generations, Error, Result};
use std::collections::BTreeSet;

/// `pgbr gc`.
pub fn gc(state: &Location, keep: usize, dry_run: bool) -> Result<u8> {
    let store = Store::open_existing(state)?;
    let manifests = generations::read_all(&store)?;
    let targets = Targets::new();
    let live = live_on_disk(&targets, &manifests)?;
    let journaled: BTreeSet<u64> = store
        .journal()?
        .values()
        .flat_map(|j| j.live.into_iter().chain(j.in_flight))
        .collect();
    let mut dirs = Vec::new();
    // Stale `.<N>.partial` dirs of killed runs: no manifest knows them.
    let mut partials = Vec::new();
    let (id, newest) = (store.id()?, store.next_generation()? - 1);
    let mut skipped = Vec::new();
    // Every target error names its cell, once (the target names its address).
    let of_cell = |cell: &str| {
        let cell = cell.to_owned();
        move |source| Error::GcCell { cell, source }
    };
    for (cell, l) in &live {
        let target = targets.of(&l.target).map_err(of_cell(cell))?;
        let observed = target.observe(cell, &l.deploy_dir).map_err(of_cell(cell))?;
        // A dir another store deploys (or a newer copy of this one) is not
        // this store's to collect.
        if let Some(other) = observed.store.as_ref().filter(|s| Some(*s) != id.as_ref()) {
            skipped.push(format!(
                "gc leaves `{}` alone: it is deployed by store `{other}`",
                l.deploy_dir
            ));
            continue;
        }
        if let Some(n) = observed.generations.iter().find(|n| **n > newest) {
            skipped.push(format!(
                "gc leaves `{}` alone: it holds generation {n}, newer than any this store made",
                l.deploy_dir
            ));
            continue;
        }
        partials.extend(
            observed
                .partials
                .iter()
                .map(|n| (cell, target.clone(), l.deploy_dir.clone(), *n)),
        );
        for generation in observed.generations {
            dirs.push(GenerationDir {
                target: l.target.clone(),
                deploy_dir: l.deploy_dir.clone(),
                generation,
                bytes: target
                    .generation_size(&l.deploy_dir, generation)
                    .map_err(of_cell(cell))?,
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
            // The cell whose deploy dir it is, for the error.
            let cell = live
                .iter()
                .find(|(_, l)| l.deploy_dir == d.deploy_dir && l.target == d.target)
                .map_or("?", |(c, _)| c.as_str());
            targets
                .of(&d.target)
                .and_then(|t| t.remove_generation(&d.deploy_dir, d.generation))
                .map_err(of_cell(cell))?;
        }
        store.sweep(&plan.generations, &plan.objects)?;
        for (cell, target, dir, n) in &partials {
            target.remove_partial(dir, *n).map_err(of_cell(cell))?;
        }
    }
    // Other pgbr builds' agents in the hosts' caches, once per host.
    let mut builds = Vec::new();
    let mut hosts = BTreeSet::new();
    for (cell, l) in &live {
        if hosts.insert(l.target.place()) {
            let target = targets.of(&l.target).map_err(of_cell(cell))?;
            builds.extend(target.other_builds(dry_run).map_err(of_cell(cell))?);
        }
    }
    out!("{}", plan.render(dry_run));
    for line in &skipped {
        outln!("{line}");
    }
    for (_, _, dir, n) in &partials {
        outln!(
            "gc {} stale `{dir}/generations/.{n}.partial` (left by a killed run)",
            if dry_run { "would remove" } else { "removed" }
        );
    }
    for build in &builds {
        outln!(
            "gc {} {build} (another pgbr build's agent)",
            if dry_run { "would remove" } else { "removed" }
        );
    }
    Ok(exit_codes::SUCCESS)
}
