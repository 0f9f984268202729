//! `pgbr gc`: drop old generations from the store and from the deploy dirs.

use super::generations::live_on_disk;
use crate::apply::{LocalTarget, Target};
use crate::output::outln;
use crate::store::{Location, Store};
use crate::{exit_codes, Result};
use std::collections::BTreeSet;

/// `pgbr gc`.
pub fn gc(state: &Location, keep: usize, dry_run: bool) -> Result<u8> {
    let store = Store::open(state)?;
    let manifests = store.generations()?;
    let disk = live_on_disk(&manifests)?;
    let journal = store.journal()?;
    // Manifests kept: the newest `keep`, and every one a cell has live or in flight.
    let mut kept: BTreeSet<u64> = manifests
        .iter()
        .rev()
        .take(keep)
        .map(|m| m.number)
        .collect();
    kept.extend(disk.values().filter_map(|(_, g)| *g));
    kept.extend(
        journal
            .values()
            .flat_map(|j| j.live.into_iter().chain(j.in_flight)),
    );
    // Generation dirs kept: those the kept manifests point at.
    let mut kept_dirs: BTreeSet<(String, u64)> = BTreeSet::new();
    for m in manifests.iter().filter(|m| kept.contains(&m.number)) {
        for e in m.cells.values() {
            kept_dirs.insert((e.deploy_dir.clone(), e.dir_generation));
        }
    }
    for (dir, g) in disk.values() {
        if let Some(g) = g {
            kept_dirs.insert((dir.clone(), *g));
        }
    }
    let mut dir_bytes = 0u64;
    let mut dirs_removed = Vec::new();
    for (cell, (dir, _)) in &disk {
        let observed = LocalTarget.observe(cell, dir)?;
        for g in observed.generations {
            if kept_dirs.contains(&(dir.clone(), g)) {
                continue;
            }
            let size = LocalTarget.generation_size(dir, g)?;
            dir_bytes += size;
            dirs_removed.push(format!("{dir}/generations/{g} ({size} bytes)"));
            if !dry_run {
                LocalTarget.remove_generation(dir, g)?;
            }
        }
    }
    let report = store.gc(&kept, dry_run)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    outln!(
        "gc {verb} {} generation(s){}",
        report.generations.len(),
        if report.generations.is_empty() {
            String::new()
        } else {
            format!(": {}", list(&report.generations))
        }
    );
    for d in &dirs_removed {
        outln!("  {d}");
    }
    outln!(
        "gc {verb} {} generation dir(s) ({dir_bytes} bytes) and {} store object(s) ({} bytes); kept generations: {}",
        dirs_removed.len(),
        report.objects,
        report.bytes,
        list(&kept.iter().copied().collect::<Vec<_>>())
    );
    Ok(exit_codes::SUCCESS)
}
