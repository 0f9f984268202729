//! Rollback planning (pure): which cells go back to generation N's bytes,
//! whether N's certificates are still fit to deploy, and the new manifest
//! ("rollback of N") that records it.

use super::{Cause, CellEntry, Manifest};
use std::collections::BTreeMap;

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

fn same_files(a: &CellEntry, b: &CellEntry) -> bool {
    a.files == b.files && a.phase == b.phase
}

/// Plans the return to `target`. `live` maps each cell to its live
/// generation and entry; `latest` is the newest generation number and
/// `number` the one the rollback's generation gets.
pub fn plan_rollback(
    target: &Manifest,
    live: &BTreeMap<String, Option<(u64, CellEntry)>>,
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
        if let Some(c) = &want.cert {
            let days_left = (c.not_after - now).div_euclid(86_400);
            if now >= c.not_after {
                cert_problems.push(format!(
                    "{cell}: certificate {} expired {} days ago",
                    c.serial,
                    (now - c.not_after) / 86_400
                ));
            } else if days_left < i64::from(want.renew_before_days) {
                cert_problems.push(format!(
                    "{cell}: certificate {} expires in {days_left} days, inside its renewal window of {} days",
                    c.serial, want.renew_before_days
                ));
            }
        }
        let entry = match (&now_live, changes) {
            (Some((_, e)), false) => e.clone(),
            // N's files, but reloaded and checked the way the cell is now:
            // N may predate its `activate`/`health` (hooks alone make no
            // generation), and without them the running server would keep
            // the certificates being rolled back, unchecked.
            (Some((_, e)), true) => CellEntry {
                dir_generation: number,
                activate: e.activate.clone(),
                health: e.health.clone(),
                // Where the cell is now, even if it lived elsewhere in N.
                target: e.target.clone(),
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
