//! Gathering what a plan is computed from: the PKI record and live
//! manifest entries from the store, and each deploy dir from its target
//! (several at once). Read-only.

use super::deploy::error_chain;
use super::parallel;
use super::target::{Error, Targets};
use crate::generations::CellEntry;
use crate::plan::{CellNow, Inputs, LeafKey, Objects, Observed, Request, StoredCert};
use crate::progress::{Event, Reporter};
use crate::store::ObjectId;
use crate::store::{Store, StoredPair};
use crate::topology::Topology;
use crate::{generations, pki, Result};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// Loads a stored certificate and parses it.
pub fn stored_cert(store: &Store, pair: &StoredPair, what: &str) -> Result<StoredCert> {
    let pem = String::from_utf8(store.get_object(&pair.cert)?).map_err(|_| {
        crate::Error::StoredCertNotPem {
            what: what.to_owned(),
        }
    })?;
    let info = pki::inspect(&pem)?;
    Ok(StoredCert {
        pem,
        cert_id: pair.cert,
        key_id: pair.key,
        info,
    })
}

/// The `tls/ca.crt` every cell deploys: the current CA, then the previous
/// one while a CA rotation is under way.
pub fn ca_bundle_text(current: &str, previous: Option<&str>) -> String {
    let mut s = current.to_owned();
    if let Some(p) = previous {
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(p);
    }
    s
}

impl Objects for Store {
    fn object(&self, id: &ObjectId) -> Option<Vec<u8>> {
        self.get_object(id).ok()
    }
}

/// How one cell's deploy dir was found.
enum Found {
    /// Read.
    Observed(Observed),
    /// Read, and pgbr refuses to use it as it is: why.
    Refused(String),
    /// Could not be read: why, and what to do about it.
    Unobserved(String, Option<String>),
}

/// Observes every cell's deploy dir, up to `[ssh] parallel` at once;
/// the results in the topology's cell order. Only a target this pgbr
/// cannot serve at all fails the whole run.
fn observe_all(
    targets: &Targets,
    topology: &Topology,
    reporter: &dyn Reporter,
) -> Result<Vec<Found>> {
    reporter.event(Event::Batch {
        what: "observe".into(),
        total: topology.cells.len(),
    });
    let results = parallel::each(&topology.cells, topology.ssh.parallel, |cell| {
        let name = cell.name.to_string();
        reporter.event(Event::Working {
            cell: name.clone(),
            done: false,
        });
        let result = targets.of(&cell.target).and_then(|t| {
            let observed = t.observe(&name, cell.deploy_dir.as_str())?;
            // An owner the cell's machine does not know stops that cell
            // (a blocker), before anything is committed for it.
            if let Some(owner) = &cell.owner {
                t.resolve_owner(owner)?;
            }
            Ok(observed)
        });
        reporter.event(Event::Working {
            cell: name,
            done: true,
        });
        result
    });
    reporter.event(Event::Finish);
    results
        .into_iter()
        .map(|r| match r {
            Ok(o) => Ok(Found::Observed(o)),
            Err(e @ (Error::Refused { .. } | Error::Owner { .. })) => {
                Ok(Found::Refused(e.to_string()))
            }
            Err(e @ Error::Unsupported { .. }) => Err(e.into()),
            Err(e) => Ok(Found::Unobserved(
                error_chain(&e),
                crate::error::deploy_hint(&e),
            )),
        })
        .collect()
}

/// Reads everything [`crate::plan::compute`] needs; the deploy dirs are
/// observed up to `[ssh] parallel` at once, with progress to `reporter`.
pub fn gather<'t>(
    store: &'t Store,
    targets: &Targets,
    topology: &'t Topology,
    topology_path: &str,
    request: Request,
    now: OffsetDateTime,
    reporter: &dyn Reporter,
) -> Result<Inputs<'t>> {
    let record = store.pki()?;
    let ca = record
        .ca
        .as_ref()
        .map(|p| stored_cert(store, p, "the CA certificate"))
        .transpose()?;
    let previous = record
        .previous_ca
        .as_ref()
        .map(|p| stored_cert(store, p, "the previous CA certificate"))
        .transpose()?;
    let ca_bundle = ca.as_ref().map(|c| {
        let text = ca_bundle_text(&c.pem, previous.as_ref().map(|p| p.pem.as_str()));
        StoredCert {
            cert_id: crate::store::ObjectId::of(text.as_bytes()),
            pem: text,
            key_id: c.key_id,
            info: c.info.clone(),
        }
    });
    let mut leaves = BTreeMap::new();
    for (key, pair) in &record.leaves {
        leaves.insert(
            LeafKey::from(key.clone()),
            stored_cert(store, pair, &format!("the leaf of `{key}`"))?,
        );
    }

    let latest = generations::read_latest(store)?;
    let found = observe_all(targets, topology, reporter)?;
    let mut manifests = HashMap::new();
    let mut journal = store.journal()?;
    let mut cells = BTreeMap::new();
    for (cell, found) in topology.cells.iter().zip(found) {
        let mut now_state = CellNow {
            journal: journal.remove(cell.name.as_str()),
            ..CellNow::default()
        };
        match found {
            Found::Observed(o) => now_state.observed = o,
            // A deploy dir pgbr refuses to use (a `current` pointing outside
            // it, say) stops that cell only: the plan shows it as a blocker.
            Found::Refused(why) => {
                now_state.observed.exists = true;
                now_state.unusable = Some(why);
            }
            // A deploy dir that cannot be read at all: the cell is listed
            // as unreachable, and what the store last recorded for it is
            // carried (a generation built meanwhile keeps its entry).
            Found::Unobserved(why, hint) => {
                now_state.unobserved = Some(why);
                now_state.unobserved_hint = hint;
                now_state.live = latest
                    .as_ref()
                    .and_then(|m| m.cells.get(cell.name.as_str()))
                    .filter(|e| {
                        e.deploy_dir == cell.deploy_dir.as_str()
                            && e.settings.target.place() == cell.target.place()
                    })
                    .map(|e| (e.dir_generation, e.clone()));
                cells.insert(cell.name.to_string(), now_state);
                continue;
            }
        }
        if let Some(c) = now_state.observed.current {
            let describes = |e: &&CellEntry| {
                e.dir_generation == c
                    && e.deploy_dir == cell.deploy_dir.as_str()
                    && e.settings.target.place() == cell.target.place()
            };
            // The newest record of dir `c`: the latest generation's entry
            // when it still has the cell on `c` (it may have recorded a new
            // way to reach the host since, `plan::CONNECTION`), else
            // generation `c`'s own.
            let newest = latest
                .as_ref()
                .and_then(|m| m.cells.get(cell.name.as_str()))
                .filter(describes);
            let entry = match newest {
                Some(e) => Some(e.clone()),
                None => {
                    if let std::collections::hash_map::Entry::Vacant(v) = manifests.entry(c) {
                        v.insert(generations::read(store, c)?);
                    }
                    manifests
                        .get(&c)
                        .and_then(|m| m.as_ref()?.cells.get(cell.name.as_str()))
                        .filter(describes)
                        .cloned()
                }
            };
            now_state.live = entry.map(|e| (c, e));
        }
        cells.insert(cell.name.to_string(), now_state);
    }
    let removed = match latest {
        Some(m) => m
            .cells
            .keys()
            .filter(|c| topology.cell(c).is_none())
            .cloned()
            .collect(),
        None => vec![],
    };
    Ok(Inputs {
        topology,
        topology_path: topology_path.to_owned(),
        now,
        request,
        ca_bundle,
        ca,
        previous_ca: previous,
        ca_rotation_step: record.ca_rotation_step,
        leaves,
        cells,
        store_digest: generations::state_digest(store)?,
        this_store: crate::plan::ThisStore {
            id: store.id()?,
            name: store_label(store.name()),
            newest: store.next_generation()? - 1,
        },
        removed,
        objects: store,
    })
}

/// How a deploy dir's marker names a store: a URL as it is (without its
/// password), a directory as `host:/absolute/path`, so that whoever meets
/// the marker can tell which store, on which machine, deployed it.
pub fn store_label(name: &str) -> String {
    if name.contains("://") {
        return name.to_owned();
    }
    let path = std::path::absolute(name)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| name.to_owned());
    match nix::unistd::gethostname() {
        Ok(host) => format!("{}:{path}", host.to_string_lossy()),
        Err(_) => path,
    }
}
