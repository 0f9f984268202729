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

    #[test]
    fn the_default_target_follows_chains_of_rollbacks() {
        let gens = vec![
            m(1, None, Cause::Apply),
            m(2, Some(1), Cause::Apply),
            m(3, Some(2), Cause::Rotation),
            m(4, Some(3), Cause::RollbackOf(3)),
            // A rollback to a rollback stands for what that one stood for.
            m(5, Some(4), Cause::RollbackOf(4)),
        ];
        assert_eq!(default_target(&gens, false), Some(DefaultTarget::Parent(2)));
        // Only rollbacks are stepped over: a rotation or a CA rotation step
        // is a generation of its own.
        let gens = vec![
            m(1, None, Cause::Apply),
            m(2, Some(1), Cause::CaRotation(1)),
            m(3, Some(2), Cause::Rotation),
        ];
        assert_eq!(default_target(&gens, false), Some(DefaultTarget::Parent(2)));
    }

    #[test]
    fn the_default_target_resumes_only_an_unfinished_rollback() {
        let gens = vec![
            m(1, None, Cause::Apply),
            m(2, Some(1), Cause::Apply),
            m(3, Some(2), Cause::Bootstrap("zone1".into())),
        ];
        // An apply that did not reach every cell is not a rollback to resume.
        assert_eq!(default_target(&gens, true), Some(DefaultTarget::Parent(2)));
        assert_eq!(
            default_target(&gens[..1], true),
            Some(DefaultTarget::NoParent(1))
        );
    }

    #[test]
    fn the_default_target_names_a_parent_gc_removed_and_survives_bad_causes() {
        // gc kept 7 and 8 only: the parent of 8 is 7, the parent of 7 is gone
        // (the command says so, naming the generations kept).
        let gens = vec![m(7, Some(6), Cause::Apply), m(8, Some(7), Cause::Apply)];
        assert_eq!(default_target(&gens, false), Some(DefaultTarget::Parent(7)));
        assert_eq!(
            default_target(&gens[..1], false),
            Some(DefaultTarget::Parent(6))
        );
        // A rollback of a generation gc removed stands for that number.
        let gens = vec![m(9, Some(8), Cause::RollbackOf(4))];
        assert_eq!(
            default_target(&gens, false),
            Some(DefaultTarget::NoParent(4))
        );
        // Causes that loop (a damaged store) end instead of spinning.
        let gens = vec![
            m(1, None, Cause::Apply),
            m(2, Some(1), Cause::RollbackOf(3)),
            m(3, Some(2), Cause::RollbackOf(2)),
        ];
        assert!(default_target(&gens, false).is_some());
        let gens = vec![m(1, None, Cause::RollbackOf(1))];
        assert_eq!(
            default_target(&gens, false),
            Some(DefaultTarget::NoParent(1))
        );
    }

    const DAY: i64 = 86_400;

    fn entry(dir_generation: u64, config: &[u8], activate: &str) -> CellEntry {
        CellEntry {
            phase: crate::render::Phase::Full,
            deploy_dir: "/zone1/pgbackrest".into(),
            dir_generation,
            files: vec![crate::generations::FileEntry {
                path: crate::layout::CONFIG.into(),
                object: crate::store::ObjectId::of(config),
                mode: 0o640,
            }],
            cert: Some(cert(-10, 355)),
            renew_before_days: 122,
            settings: Settings {
                owner: None,
                dirs: vec![],
                config_link: None,
                activate: Some(activate.into()),
                health: crate::topology::Health::Tls,
                health_target: "localhost:8432".into(),
                target: crate::topology::TargetSpec::Local,
            },
        }
    }

    /// A certificate valid from `from` to `to` days around day 0.
    fn cert(from: i64, to: i64) -> CertSummary {
        CertSummary {
            serial: "0a:0b".into(),
            fingerprint: String::new(),
            not_before: from * DAY,
            not_after: to * DAY,
        }
    }

    fn fleet(cells: &[(&str, CellEntry)], number: u64) -> Manifest {
        Manifest {
            cells: cells
                .iter()
                .map(|(c, e)| ((*c).to_owned(), e.clone()))
                .collect(),
            ..m(number, Some(number - 1), Cause::Apply)
        }
    }

    #[test]
    fn a_rollback_plan_takes_the_files_of_n_and_the_hooks_of_now() {
        let target = fleet(
            &[
                ("zone1", entry(2, b"old", "reload v2")),
                ("zone2", entry(2, b"same", "reload v2")),
            ],
            2,
        );
        let mut zone1_now = entry(3, b"new", "reload v3");
        zone1_now.settings.owner = Some("postgres".into());
        let live = BTreeMap::from([
            ("zone1".to_owned(), Some((3, zone1_now))),
            (
                "zone2".to_owned(),
                Some((2, entry(2, b"same", "reload v3"))),
            ),
            // Live now, absent from generation 2: stays as it is.
            ("zone3".to_owned(), Some((3, entry(3, b"zone3", "x")))),
            ("zone4".to_owned(), None),
        ]);
        let plan = plan_rollback(&target, &live, &BTreeMap::new(), 3, 4, 0, "0.1.0");
        assert_eq!(plan.to, 2);
        assert!(plan.cert_problems.is_empty(), "{:?}", plan.cert_problems);
        assert_eq!(
            plan.cells,
            [
                RollbackCell {
                    cell: "zone1".into(),
                    live: Some(3),
                    changes: true
                },
                RollbackCell {
                    cell: "zone2".into(),
                    live: Some(2),
                    changes: false
                },
            ]
        );
        let m = &plan.manifest;
        assert_eq!(
            (m.number, m.parent, &m.cause),
            (4, Some(3), &Cause::RollbackOf(2))
        );
        let zone1 = &m.cells["zone1"];
        assert_eq!(zone1.dir_generation, 4, "a new directory for N's bytes");
        assert_eq!(zone1.files, target.cells["zone1"].files);
        assert_eq!(zone1.settings.activate.as_deref(), Some("reload v3"));
        assert_eq!(zone1.settings.owner, None, "generation 2's owner");
        // Unchanged files: the live entry, hooks and directory as they are.
        assert_eq!(m.cells["zone2"], live["zone2"].clone().unwrap().1);
        assert_eq!(m.cells["zone3"], live["zone3"].clone().unwrap().1);
        assert!(!m.cells.contains_key("zone4"));
    }

    #[test]
    fn a_rollback_plan_names_certificates_unfit_to_deploy() {
        let mut expired = entry(1, b"a", "x");
        expired.cert = Some(cert(-400, -35));
        let mut due = entry(1, b"b", "x");
        due.cert = Some(cert(-300, 65));
        let mut early = entry(1, b"c", "x");
        early.cert = Some(cert(2, 367));
        let target = fleet(&[("zone1", expired), ("zone2", due), ("zone3", early)], 1);
        let cas = BTreeMap::from([("zone2".to_owned(), cert(-3650, -1))]);
        let plan = plan_rollback(&target, &BTreeMap::new(), &cas, 5, 6, 0, "0.1.0");
        assert_eq!(
            plan.cert_problems,
            [
                "zone1: certificate 0a:0b expired 35 days ago",
                "zone2: certificate 0a:0b expires in 65 days, inside its renewal window of 122 days",
                "zone2: its CA 0a:0b expired 1 days ago",
                "zone3: certificate 0a:0b is not valid until 1970-01-03T00:00:00Z",
            ]
        );
        // Cells with nothing live get generation 6's directory.
        assert!(plan.manifest.cells.values().all(|e| e.dir_generation == 6));
        assert!(plan.cells.iter().all(|c| c.changes && c.live.is_none()));
    }
}
