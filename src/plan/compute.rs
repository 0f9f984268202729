//! Computing a plan: desired state (rendered files and certificate policy)
//! against what each cell has live (its manifest entry) and what its disk
//! holds (drift).
//!
//! Pure: the clock, certificates, store contents and observed disk state
//! all come in through [`Inputs`]; nothing here reads a clock or a file.

use super::diff::unified_diff;
use super::model::*;
use super::observed::Observed;
use super::settings::Settings;
use crate::clock::rfc3339;
use crate::generations::CellEntry;
use crate::layout;
use crate::pki::{self, CertInfo};
use crate::render::{render_cell, Phase};
use crate::store::{CellJournal, ObjectId};
use crate::topology::{Cell, KeyScope, Topology};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A stored certificate, as plan needs it.
#[derive(Debug, Clone)]
pub struct StoredCert {
    /// The PEM.
    pub pem: String,
    /// Its object id.
    pub cert_id: ObjectId,
    /// Its key's object id.
    pub key_id: ObjectId,
    /// Parsed.
    pub info: CertInfo,
}

/// What one cell has now.
#[derive(Debug, Clone, Default)]
pub struct CellNow {
    /// Generation `current` points at, with that generation's entry for the cell.
    pub live: Option<(u64, CellEntry)>,
    /// The deploy dir as observed.
    pub observed: Observed,
    /// The store's activation journal for the cell, if it has one.
    pub journal: Option<CellJournal>,
    /// Why pgbr refuses to use the deploy dir as it is, if it does.
    pub unusable: Option<String>,
    /// Why the deploy dir could not be observed at all (its target
    /// failed), if so; `live` then holds what the store last recorded.
    pub unobserved: Option<String>,
    /// What to do about it (`unobserved`'s hint), if pgbr knows.
    pub unobserved_hint: Option<String>,
}

/// The store a plan is made against, as deploy dirs are judged by it:
/// their markers name the store that deploys them, and their generation
/// numbers must be ones it made.
#[derive(Debug, Clone, Default)]
pub struct ThisStore {
    /// Its id (`None`: it never deployed since stores had one).
    pub id: Option<String>,
    /// How it is named (a path or a URL without password).
    pub name: String,
    /// The highest generation number it ever committed.
    pub newest: u64,
}

/// Object contents by id: where old configs are read from for diffs.
/// A content-addressed lookup, so `compute` stays a pure function of its
/// inputs; it is only consulted for configs that differ.
pub trait Objects {
    /// The content of `id`, if present.
    fn object(&self, id: &ObjectId) -> Option<Vec<u8>>;
}

/// Everything a plan is computed from.
pub struct Inputs<'a> {
    /// The validated topology.
    pub topology: &'a Topology,
    /// Its root module, as given.
    pub topology_path: String,
    /// The clock.
    pub now: OffsetDateTime,
    /// What was asked.
    pub request: Request,
    /// The CA bundle deployed as `tls/ca.crt` when the CA is kept.
    pub ca_bundle: Option<StoredCert>,
    /// The current CA.
    pub ca: Option<StoredCert>,
    /// The CA being retired while a rotation is under way.
    pub previous_ca: Option<StoredCert>,
    /// The CA rotation step applied so far (0: none under way).
    pub ca_rotation_step: u8,
    /// Leaves by key (cell name or `*`).
    pub leaves: BTreeMap<LeafKey, StoredCert>,
    /// Per cell in the topology and in the live fleet.
    pub cells: BTreeMap<String, CellNow>,
    /// Store digest.
    pub store_digest: String,
    /// Cells that were live in the latest generation but left the topology.
    pub removed: Vec<String>,
    /// The store, as deploy dirs are bound to it.
    pub this_store: ThisStore,
    /// Stored objects, for the diffs of changed configs.
    pub objects: &'a dyn Objects,
}

impl Inputs<'_> {
    /// The cells the request targets whose deploy dir could not be
    /// observed, as `cell: why`, in name order. A plan of unseen cells is
    /// not a plan: `plan` and `status` exit 1, `apply` changes nothing.
    pub fn unobserved(&self) -> Vec<String> {
        targets(self.topology, &self.request)
            .into_iter()
            .filter_map(|(cell, _)| {
                let why = self.cells.get(cell.name.as_str())?.unobserved.as_ref()?;
                Some(format!("{}: {why}", cell.name))
            })
            .collect()
    }

    /// What to do about the cells of [`Inputs::unobserved`], each hint once.
    pub fn unobserved_hints(&self) -> Vec<String> {
        let mut hints: Vec<String> = Vec::new();
        for (cell, _) in targets(self.topology, &self.request) {
            let now = self.cells.get(cell.name.as_str());
            if let Some(hint) = now.and_then(|n| n.unobserved_hint.as_ref()) {
                if !hints.contains(hint) {
                    hints.push(hint.clone());
                }
            }
        }
        hints
    }
}

/// The leaf key of a cell under the topology's key scope.
pub fn leaf_key(topology: &Topology, cell: &Cell) -> LeafKey {
    match topology.tls.key_scope {
        KeyScope::PerCell => LeafKey::Cell(cell.name.to_string()),
        KeyScope::Shared => LeafKey::Shared,
    }
}

/// The SANs the leaf for `key` must carry.
pub fn leaf_sans(topology: &Topology, key: &LeafKey) -> Vec<String> {
    let hosts: Vec<&str> = topology
        .cells
        .iter()
        .filter(|c| key.covers(c.name.as_str()))
        .map(|c| c.host.as_str())
        .collect();
    pki::required_sans(&hosts, &topology.tls)
}

/// Whole days from `now` until `t`, rounded down (negative once past).
pub fn days_until(t: OffsetDateTime, now: OffsetDateTime) -> i64 {
    pki::days_left(t, now)
}

/// The cells a request targets, with their phase.
pub fn targets<'t>(topology: &'t Topology, request: &Request) -> Vec<(&'t Cell, Phase)> {
    match &request.bootstrap {
        Some(b) => topology
            .cells
            .iter()
            .filter(|c| c.name.as_str() == b)
            .map(|c| (c, Phase::Bootstrap))
            .collect(),
        None => topology
            .cells
            .iter()
            .filter(|c| {
                request.cells.is_empty() || request.cells.iter().any(|n| n == c.name.as_str())
            })
            .map(|c| (c, Phase::Full))
            .collect(),
    }
}

pub use crate::layout::FILES;

/// Computes the plan.
pub fn compute(inputs: &Inputs<'_>) -> Plan {
    let topo = inputs.topology;
    let now = inputs.now;
    let targets = targets(topo, &inputs.request);

    // The CA.
    let ca = match (&inputs.ca, inputs.request.ca_step) {
        (Some(_), Some(step)) => CaAction::Rotate {
            step,
            description: ca_step_text(step).into(),
        },
        (Some(c), None) => CaAction::Keep {
            serial: c.info.serial.clone(),
            fingerprint: c.info.fingerprint.clone(),
            not_after: rfc3339(c.info.not_after),
            days_left: days_until(c.info.not_after, now),
        },
        (None, _) => CaAction::Create {
            key_algorithm: topo.tls.key_algorithm.as_str().into(),
            validity_days: topo.tls.ca_validity_days,
        },
    };
    let ca_problem = match (&ca, &inputs.ca) {
        (CaAction::Keep { .. }, Some(c)) => ca_problem(&c.pem, &topo.tls, now),
        _ => None,
    };
    let ca_new = inputs.ca.is_none();
    let step = inputs.request.ca_step;
    // The bundle every cell will trust: unknown until a new CA is issued.
    let bundle_id = match step {
        _ if ca_new => None,
        Some(1) => None,
        Some(3) => inputs.ca.as_ref().map(|c| ObjectId::of(c.pem.as_bytes())),
        _ => inputs.ca_bundle.as_ref().map(|c| c.cert_id),
    };

    // The leaves the targeted cells use.
    let mut leaves: Vec<LeafPlan> = Vec::new();
    for (cell, _) in &targets {
        let key = leaf_key(topo, cell);
        if leaves.iter().any(|l| l.key == key) {
            continue;
        }
        let sans = leaf_sans(topo, &key);
        let stored = inputs.leaves.get(&key);
        let reason = match (stored, &inputs.ca) {
            (Some(l), Some(ca)) if step == Some(2) && !pki::signed_by(&l.pem, &ca.pem) => {
                Some("CA rotation step 2: re-issue from the new CA".to_owned())
            }
            (None, _) => Some("no certificate yet".to_owned()),
            (Some(_), None) => Some("a new CA is created".to_owned()),
            (Some(_), _)
                if inputs
                    .request
                    .force_rotate
                    .iter()
                    .any(|k| *k == key.as_str() || *k == cell.name.as_str()) =>
            {
                Some("rotation requested".to_owned())
            }
            (Some(l), Some(ca)) => leaf_renewal(inputs, l, ca, &sans),
        };
        let action = match (reason, stored) {
            (Some(reason), prev) => LeafAction::Issue {
                reason,
                replaces: prev.map(|p| p.info.serial.clone()),
                sans,
            },
            (None, Some(l)) => LeafAction::Keep {
                serial: l.info.serial.clone(),
                fingerprint: l.info.fingerprint.clone(),
                not_after: rfc3339(l.info.not_after),
                days_left: days_until(l.info.not_after, now),
            },
            (None, None) => unreachable!("a missing leaf always has a reason"),
        };
        leaves.push(LeafPlan { key, action });
    }

    let mut cells = Vec::new();
    let mut summary = Summary::default();
    for (cell, phase) in &targets {
        let now_state = inputs
            .cells
            .get(cell.name.as_str())
            .cloned()
            .unwrap_or_default();
        if let Some(why) = &now_state.unobserved {
            summary.unreachable += 1;
            cells.push(CellPlan {
                cell: cell.name.to_string(),
                action: CellAction::Unreachable,
                phase: *phase,
                previous_phase: None,
                live_generation: None,
                drift: vec![],
                blockers: vec![],
                settings_changed: vec![],
                files: vec![],
                config_diff: None,
                unreachable: Some(why.clone()),
            });
            continue;
        }
        let key = leaf_key(topo, cell);
        let leaf = leaves.iter().find(|l| l.key == key).expect("planned above");
        let config = render_cell(topo, cell, *phase);
        let config_id = ObjectId::of(config.as_bytes());
        let desired: BTreeMap<&str, (Option<ObjectId>, u32)> = FILES
            .iter()
            .map(|(path, mode)| {
                let id = match *path {
                    layout::CONFIG => Some(config_id),
                    layout::CA_BUNDLE => bundle_id,
                    _ => match (&leaf.action, inputs.leaves.get(&key)) {
                        (LeafAction::Keep { .. }, Some(l)) => {
                            Some(if *path == layout::SERVER_KEY {
                                l.key_id
                            } else {
                                l.cert_id
                            })
                        }
                        _ => None, // issued at apply time
                    },
                };
                (*path, (id, *mode))
            })
            .collect();
        let live_files: BTreeMap<&str, (ObjectId, u32)> = now_state
            .live
            .as_ref()
            .map(|(_, e)| {
                e.files
                    .iter()
                    .map(|f| (f.path.as_str(), (f.object, f.mode)))
                    .collect()
            })
            .unwrap_or_default();

        let mut files = Vec::new();
        for (path, (id, mode)) in &desired {
            let change = match (live_files.get(path), id) {
                (None, _) => FileChange::Add,
                (Some((lid, lmode)), Some(id)) if lid == id && lmode == mode => {
                    FileChange::Unchanged
                }
                _ => FileChange::Modify,
            };
            files.push(FilePlan {
                path: (*path).into(),
                change,
                mode: format!("{mode:04o}"),
            });
        }
        for path in live_files.keys() {
            if !desired.contains_key(path) {
                files.push(FilePlan {
                    path: (*path).into(),
                    change: FileChange::Remove,
                    mode: String::new(),
                });
            }
        }

        // Drift: the disk against the live entry.
        let mut drift = Vec::new();
        let mut blockers = Vec::new();
        let obs = &now_state.observed;
        if let Some(why) = &now_state.unusable {
            blockers.push(format!("cannot {why}"));
        }
        if obs.foreign {
            blockers.push(format!(
                "`{}` is not empty and holds no pgbr deployment; apply needs `--adopt`",
                cell.deploy_dir
            ));
        }
        blockers.extend(binding_blockers(inputs, cell, &now_state));
        match (&now_state.live, obs.current) {
            (Some((n, _)), Some(c)) if *n != c => {
                drift.push(format!("`current` points at generation {c}, expected {n}"))
            }
            (Some(_), None) => drift.push("`current` is missing".into()),
            _ => {}
        }
        drift.extend(journal_drift(&now_state));
        for n in &obs.partials {
            drift.push(format!(
                "stale `generations/.{n}.partial` left by a killed run (it may hold a key \
                 that was never deployed); `pgbr gc` or the next deploy removes it"
            ));
        }
        if now_state.live.is_some() && obs.current.is_some() {
            for (path, (id, mode)) in &live_files {
                match obs.files.get(*path) {
                    None => drift.push(format!("`{path}` is missing")),
                    Some((oid, _)) if oid != id => drift.push(format!("`{path}` was modified")),
                    Some((_, omode)) if omode != mode => drift.push(format!(
                        "`{path}` has mode {omode:04o}, expected {mode:04o}"
                    )),
                    _ => {}
                }
            }
            for path in obs.files.keys() {
                if !live_files.contains_key(path.as_str()) {
                    drift.push(format!("`{path}` is not part of the generation"));
                }
            }
        }

        let previous_phase = now_state.live.as_ref().map(|(_, e)| e.phase);
        let settings_changed: Vec<String> = match &now_state.live {
            Some((_, e)) => e
                .settings
                .changed_keys(&Settings::of(topo, cell))
                .into_iter()
                .map(str::to_owned)
                .collect(),
            None => vec![],
        };
        let changed = files.iter().any(|f| f.change != FileChange::Unchanged)
            || previous_phase != Some(*phase)
            || !settings_changed.is_empty();
        let action = if now_state.live.is_none() {
            CellAction::Create
        } else if changed || !drift.is_empty() {
            CellAction::Update
        } else {
            CellAction::Unchanged
        };
        let live_config = live_files.get(layout::CONFIG).map(|(id, _)| *id);
        // Only a config that differs is read back for its diff; a new one is
        // not shown as a diff (`pgbr render` prints it).
        let config_diff = match (live_config, action) {
            (_, CellAction::Unchanged) => None,
            (Some(old_id), _) if old_id != config_id => {
                let old = inputs
                    .objects
                    .object(&old_id)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                Some(unified_diff(
                    &old,
                    &config,
                    &format!(
                        "{}/pgbackrest.conf (generation {})",
                        cell.name,
                        now_state.live.as_ref().map(|l| l.0).unwrap_or(0)
                    ),
                    &format!("{}/pgbackrest.conf (planned)", cell.name),
                ))
            }
            _ => None,
        };
        match action {
            CellAction::Create => summary.create += 1,
            CellAction::Update => summary.update += 1,
            CellAction::Unchanged => summary.unchanged += 1,
            CellAction::Remove => summary.remove += 1,
            CellAction::Unreachable => summary.unreachable += 1,
        }
        if !drift.is_empty() {
            summary.drift += 1;
        }
        cells.push(CellPlan {
            cell: cell.name.to_string(),
            action,
            phase: *phase,
            previous_phase,
            live_generation: now_state.live.as_ref().map(|l| l.0),
            drift,
            blockers,
            settings_changed,
            files,
            config_diff,
            unreachable: None,
        });
    }
    if inputs.request.bootstrap.is_none() && inputs.request.cells.is_empty() {
        for name in &inputs.removed {
            summary.remove += 1;
            cells.push(CellPlan {
                cell: name.clone(),
                action: CellAction::Remove,
                phase: Phase::Full,
                previous_phase: inputs
                    .cells
                    .get(name)
                    .and_then(|c| c.live.as_ref())
                    .map(|l| l.1.phase),
                live_generation: inputs
                    .cells
                    .get(name)
                    .and_then(|c| c.live.as_ref())
                    .map(|l| l.0),
                drift: vec![],
                blockers: vec![],
                settings_changed: vec![],
                files: vec![],
                config_diff: None,
                unreachable: None,
            });
        }
        cells.sort_by(|a, b| a.cell.cmp(&b.cell));
    }
    summary.certificates = usize::from(ca_new || step == Some(1))
        + leaves
            .iter()
            .filter(|l| matches!(l.action, LeafAction::Issue { .. }))
            .count();

    let disk_digest = disk_digest(inputs);
    Plan {
        version: 1,
        id: String::new(),
        topology: inputs.topology_path.clone(),
        topology_hash: topo.hash(),
        store_digest: inputs.store_digest.clone(),
        disk_digest,
        now: rfc3339(now),
        request: inputs.request.clone(),
        ca,
        ca_rotation: rotation_note(inputs.ca_rotation_step),
        ca_problem,
        leaves,
        cells,
        summary,
    }
    .seal()
}

/// A digest of what the deploy dirs of the cells `inputs.request` targets
/// hold: a saved plan records it and is stale when it changed.
pub fn disk_digest(inputs: &Inputs<'_>) -> String {
    let mut h = blake3::Hasher::new();
    for (cell, _) in targets(inputs.topology, &inputs.request) {
        h.update(cell.name.as_str().as_bytes());
        if let Some(c) = inputs.cells.get(cell.name.as_str()) {
            let o = &c.observed;
            h.update(&[o.exists as u8, o.managed as u8, o.foreign as u8]);
            h.update(&o.current.unwrap_or(0).to_le_bytes());
            if let Some(store) = &o.store {
                h.update(store.as_bytes());
            }
            for (path, (id, mode)) in &o.files {
                h.update(path.as_bytes());
                h.update(&id.0);
                h.update(&mode.to_le_bytes());
            }
        }
    }
    h.finalize().to_hex()[..32].to_owned()
}

/// Why a deploy dir is not this store's to deploy: its marker names
/// another store, or it shows work this store did not do (a `current` it
/// does not know, a generation newer than any it made). A stale copy of
/// the state, or a fresh store run from another directory, must not take
/// over a fleet; `apply --adopt` does so on purpose.
fn binding_blockers(inputs: &Inputs<'_>, cell: &Cell, now_state: &CellNow) -> Vec<String> {
    let obs = &now_state.observed;
    let me = &inputs.this_store;
    let this = match &me.id {
        Some(id) => format!("this store `{id}` (`{}`)", me.name),
        None => format!("this store (`{}`)", me.name),
    };
    let adopt = "use the store that deploys it (`--state`), or take the cell over \
                 with `pgbr apply --adopt` (the other store must then stop deploying it)";
    let mut blockers = Vec::new();
    if !obs.managed {
        return blockers;
    }
    match &obs.store {
        Some(other) if me.id.as_ref() != Some(other) => {
            let where_ = match &obs.store_name {
                Some(name) => format!(" (`{name}`)"),
                None => String::new(),
            };
            blockers.push(format!(
                "`{}` is deployed by store `{other}`{where_}, not by {this}; {adopt}",
                cell.deploy_dir
            ));
            return blockers;
        }
        _ => {}
    }
    if let (None, Some(c)) = (&now_state.live, obs.current) {
        blockers.push(format!(
            "`current` points at generation {c}, which {this} did not deploy there \
             (another store, or another copy of this one, did); {adopt}"
        ));
    }
    if let Some(n) = obs.generations.iter().find(|n| **n > me.newest) {
        blockers.push(format!(
            "`{}` holds generation {n}, but the newest {this} made is {}: another store, \
             or another copy of this one, deploys there; {adopt}",
            cell.deploy_dir, me.newest
        ));
    }
    blockers
}

/// What a CA rotation step does.
pub fn ca_step_text(step: u8) -> &'static str {
    match step {
        1 => "step 1 of 3: create a new CA; every cell trusts the old and the new one",
        2 => "step 2 of 3: re-issue every leaf from the new CA, cell by cell",
        _ => "step 3 of 3: drop the old CA from every cell's bundle",
    }
}

fn rotation_note(applied: u8) -> Option<String> {
    match applied {
        1 => Some(
            "CA rotation under way: step 1 of 3 applied (every cell trusts both CAs); \
             next: `pgbr rotate --ca` re-issues every leaf from the new CA"
                .into(),
        ),
        2 => Some(
            "CA rotation under way: step 2 of 3 applied (leaves come from the new CA); \
             next: `pgbr rotate --ca` drops the old CA"
                .into(),
        ),
        _ => None,
    }
}

/// What the activation journal says the disk should show and does not: a
/// deploy cut short after its flip (`activate` and the health check never
/// finished), or `current` moved or deleted by hand.
fn journal_drift(now_state: &CellNow) -> Option<String> {
    let journal = now_state.journal.as_ref()?;
    let current = now_state.observed.current;
    match (journal.in_flight, current, journal.live) {
        (Some(n), Some(c), _) if n == c => Some(format!(
            "the deploy of generation {n} was interrupted after its flip: \
             `activate` and the health check never finished (apply runs them again)"
        )),
        // The journal is made durable at the end of a run, so a deploy
        // killed after its flip may look like this too.
        (_, Some(c), Some(l)) if c != l && now_state.live.is_some() => Some(format!(
            "`current` points at generation {c}, but generation {l} was deployed last \
             (a deploy interrupted after its flip, or `current` moved by hand; \
             apply deploys it again and runs `activate` and the health check)"
        )),
        (_, None, Some(l)) if now_state.observed.managed => Some(format!(
            "`current` is missing (generation {l} was deployed last)"
        )),
        _ => None,
    }
}

/// What is wrong with the CA, with what to do, or `None` while it may stay.
fn ca_problem(ca_pem: &str, policy: &crate::topology::Tls, now: OffsetDateTime) -> Option<String> {
    let reason = pki::ca_renewal(ca_pem, policy, now)?;
    let why = match reason {
        pki::RenewReason::Due { .. } => format!(
            "{reason} (a {}-day leaf issued now would outlive it)",
            policy.cert_validity_days
        ),
        other => other.to_string(),
    };
    Some(format!(
        "CA: {why}; run `pgbr rotate --ca` (three steps) to replace it"
    ))
}

/// The renewal decision for a stored leaf. While step 1 of a CA rotation is
/// live, a leaf of the retiring CA is judged against that CA: re-issuing it
/// before every cell trusts the new CA would break the rolling rotation.
fn leaf_renewal(
    inputs: &Inputs<'_>,
    leaf: &StoredCert,
    ca: &StoredCert,
    sans: &[String],
) -> Option<String> {
    let topo = inputs.topology;
    let judge = match (&inputs.previous_ca, inputs.ca_rotation_step) {
        (Some(prev), 1) if !pki::signed_by(&leaf.pem, &ca.pem) => prev,
        _ => ca,
    };
    pki::renewal(&leaf.pem, &judge.pem, sans, &topo.tls, inputs.now).map(|r| r.to_string())
}
