//! Rollback planning (pure): which cells go back to generation N's bytes,
//! whether N's certificates are still fit to deploy, and the new manifest
//! ("rollback of N") that records it.

use super::{Cause, CellEntry, CertSummary, Manifest, Settings};
use crate::clock::rfc3339_unix;
use std::collections::BTreeMap;

/// Why a certificate recorded with a generation is unfit to deploy at
/// `now` (unix seconds): not valid yet, expired, or inside `window` days of
/// its end (no window for a CA: its own check is `plan`'s).
fn cert_problem(what: &str, c: &CertSummary, window: Option<u32>, now: i64) -> Option<String> {
    let serial = &c.serial;
    if now < c.not_before {
        return Some(format!(
            "{what} {serial} is not valid until {}",
            rfc3339_unix(c.not_before)
        ));
    }
    if now >= c.not_after {
        return Some(format!(
            "{what} {serial} expired {} days ago",
            (now - c.not_after) / 86_400
        ));
    }
    let days_left = (c.not_after - now).div_euclid(86_400);
    match window {
        Some(w) if days_left < i64::from(w) => Some(format!(
            "{what} {serial} expires in {days_left} days, inside its renewal window of {w} days"
        )),
        _ => None,
    }
}

/// One cell's part in a rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackCell {
    /// The cell.
    pub cell: String,
    /// Generation live now.
    pub live: Option<u64>,
    /// Whether its files change.
    pub changes: bool,
}

/// A planned rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackPlan {
    /// The generation returned to.
    pub to: u64,
    /// Per cell of generation `to`.
    pub cells: Vec<RollbackCell>,
    /// Certificate problems (`zone1: expired 3 days ago`), empty when fit.
    pub cert_problems: Vec<String>,
    /// The manifest to commit.
    pub manifest: Manifest,
}

/// Where `rollback` without `--to` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultTarget {
    /// The latest generation is a rollback to this one that did not reach
    /// every cell: finish it.
    Resume(u64),
    /// The parent of the live generation (rollbacks stepped over).
    Parent(u64),
    /// The live generation (this one, rollbacks stepped over) has no parent.
    NoParent(u64),
}

/// The generation whose files `n` holds: `n`, or for a `rollback of M`
/// generation, M's (followed through chains of rollbacks).
fn effective(manifests: &[Manifest], mut n: u64) -> u64 {
    for _ in 0..manifests.len() {
        match manifests.iter().find(|m| m.number == n).map(|m| &m.cause) {
            Some(Cause::RollbackOf(t)) if *t != n => n = *t,
            _ => break,
        }
    }
    n
}

/// NixOS semantics: roll back to the parent of the live (latest)
/// generation, where a `rollback of N` generation stands for N, so that
/// rollbacks in a row step back instead of toggling; a rollback that did
/// not reach every cell (`latest_incomplete`) is resumed instead.
/// `manifests` are in number order; `None` when there are none.
pub fn default_target(manifests: &[Manifest], latest_incomplete: bool) -> Option<DefaultTarget> {
    let latest = manifests.last()?;
    if let (Cause::RollbackOf(t), true) = (&latest.cause, latest_incomplete) {
        return Some(DefaultTarget::Resume(*t));
    }
    let live = effective(manifests, latest.number);
    let parent = manifests
        .iter()
        .find(|m| m.number == live)
        .and_then(|m| m.parent);
    Some(match parent {
        Some(p) => DefaultTarget::Parent(effective(manifests, p)),
        None => DefaultTarget::NoParent(live),
    })
}

fn same_files(a: &CellEntry, b: &CellEntry) -> bool {
    a.files == b.files && a.phase == b.phase
}

/// Plans the return to `target`. `live` maps each cell to its live
/// generation and entry; `cas` each cell of `target` to the CA that signed
/// its leaf; `latest` is the newest generation number and `number` the one
/// the rollback's generation gets.
pub fn plan_rollback(
    target: &Manifest,
    live: &BTreeMap<String, Option<(u64, CellEntry)>>,
    cas: &BTreeMap<String, CertSummary>,
    latest: u64,
    number: u64,
    now: i64,
    tool_version: &str,
) -> RollbackPlan {
    let mut cells = Vec::new();
    let mut entries = BTreeMap::new();
    let mut cert_problems = Vec::new();
    // Cells live now but absent from the target stay as they are.
    for (cell, l) in live {
        if let Some((_, e)) = l {
            if !target.cells.contains_key(cell) {
                entries.insert(cell.clone(), e.clone());
            }
        }
    }
    for (cell, want) in &target.cells {
        let now_live = live.get(cell).cloned().flatten();
        let changes = !matches!(&now_live, Some((_, e)) if same_files(e, want));
        let leaf = want
            .cert
            .as_ref()
            .and_then(|c| cert_problem("certificate", c, Some(want.renew_before_days), now));
        let ca = cas
            .get(cell)
            .and_then(|c| cert_problem("its CA", c, None, now));
        for p in leaf.into_iter().chain(ca) {
            cert_problems.push(format!("{cell}: {p}"));
        }
        let entry = match (&now_live, changes) {
            (Some((_, e)), false) => e.clone(),
            // N's files, but reloaded and checked the way the cell is now:
            // N may predate its `activate`/`health` (hooks alone make no
            // generation), and without them the running server would keep
            // the certificates being rolled back, unchecked.
            (Some((_, e)), true) => CellEntry {
                dir_generation: number,
                settings: Settings {
                    activate: e.settings.activate.clone(),
                    health: e.settings.health.clone(),
                    // Where the cell is now, even if it lived elsewhere in N.
                    target: e.settings.target.clone(),
                    ..want.settings.clone()
                },
                ..want.clone()
            },
            (None, _) => CellEntry {
                dir_generation: number,
                ..want.clone()
            },
        };
        entries.insert(cell.clone(), entry);
        cells.push(RollbackCell {
            cell: cell.clone(),
            live: now_live.map(|l| l.0),
            changes,
        });
    }
    RollbackPlan {
        to: target.number,
        cells,
        cert_problems,
        manifest: Manifest {
            number,
            parent: Some(latest),
            created_at: now,
            tool_version: tool_version.into(),
            topology_hash: target.topology_hash.clone(),
            cause: Cause::RollbackOf(target.number),
            cells: entries,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(number: u64, parent: Option<u64>, cause: Cause) -> Manifest {
        Manifest {
            number,
            parent,
            created_at: 0,
            tool_version: String::new(),
            topology_hash: String::new(),
            cause,
            cells: BTreeMap::new(),
        }
    }

    #[test]
    fn the_default_target_steps_back_over_rollbacks() {
        let mut gens = vec![
            m(1, None, Cause::Apply),
            m(2, Some(1), Cause::Apply),
            m(3, Some(2), Cause::Apply),
        ];
        assert_eq!(default_target(&gens, false), Some(DefaultTarget::Parent(2)));
        gens.push(m(4, Some(3), Cause::RollbackOf(2)));
        assert_eq!(default_target(&gens, false), Some(DefaultTarget::Parent(1)));
        assert_eq!(default_target(&gens, true), Some(DefaultTarget::Resume(2)));
        gens.push(m(5, Some(4), Cause::RollbackOf(1)));
        assert_eq!(
            default_target(&gens, false),
            Some(DefaultTarget::NoParent(1))
        );
        gens.push(m(6, Some(5), Cause::Apply));
        assert_eq!(default_target(&gens, false), Some(DefaultTarget::Parent(1)));
        assert_eq!(default_target(&[], false), None);
    }
}
