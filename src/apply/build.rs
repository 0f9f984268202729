//! Turning a plan into a committed generation: issue the certificates it
//! calls for (now, not at plan time), store every file as an object, write
//! the manifest and the PKI record in one commit.

use super::gather::ca_bundle_text;
use crate::generations::{Cause, CellEntry, CertSummary, FileEntry, Manifest};
use crate::layout;
use crate::pki::{self, CertAndKey, SecretPem};
use crate::plan::{CellAction, Inputs, LeafAction, LeafKey, Plan, Settings, FILES};
use crate::render::render_cell;
use crate::store::{Commit, ObjectId, Store, StoredPair};
use crate::topology::Topology;
use crate::{generations, Error, Result};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A generation ready to deploy.
#[derive(Debug, Clone)]
pub struct Built {
    /// The committed manifest.
    pub manifest: Manifest,
    /// Each cell's live generation before it.
    pub previous: BTreeMap<String, Option<u64>>,
}

fn put_pair(store: &Store, ck: &CertAndKey) -> Result<StoredPair> {
    Ok(StoredPair {
        cert: store.put_object(ck.cert_pem.as_bytes())?,
        key: store.put_object(ck.key_pem.0.as_bytes())?,
    })
}

fn summary(pem: &str) -> Result<CertSummary> {
    let info = pki::inspect(pem)?;
    Ok(CertSummary {
        serial: info.serial,
        fingerprint: info.fingerprint,
        not_before: info.not_before.unix_timestamp(),
        not_after: info.not_after.unix_timestamp(),
    })
}

/// Issues what `plan` calls for, stores everything, commits generation
/// the store's next number. Returns `None` when the plan has no changes.
pub fn build_generation(
    store: &Store,
    topology: &Topology,
    plan: &Plan,
    inputs: &Inputs<'_>,
    now: OffsetDateTime,
    cause: Cause,
    consumed_plan: Option<String>,
) -> Result<Option<Built>> {
    if !plan.has_changes() {
        return Ok(None);
    }
    // Before anything is issued or committed: a sealed store without the
    // identity must not end up with a generation nobody here can deploy.
    store.require_keys("the private keys this generation deploys")?;
    let mut record = store.pki()?;
    let load_ca = |pair: &StoredPair| -> Result<CertAndKey> {
        Ok(CertAndKey {
            cert_pem: String::from_utf8_lossy(&store.get_object(&pair.cert)?).into_owned(),
            key_pem: SecretPem(
                String::from_utf8(store.get_object(&pair.key)?)
                    .map_err(|_| Error::StoredCaKeyNotPem)?,
            ),
        })
    };
    // The CA that signs this generation's leaves. During step 1 of a CA
    // rotation that is still the old CA: not every cell trusts the new one yet.
    let signer = match (&record.ca, plan.request.ca_step) {
        (None, _) => {
            let ca = pki::issue_ca(&topology.tls, now)?;
            record.ca = Some(put_pair(store, &ca)?);
            ca
        }
        (Some(old), Some(1)) => {
            let old = old.clone();
            let new = pki::issue_ca(&topology.tls, now)?;
            record.previous_ca = Some(old.clone());
            record.ca = Some(put_pair(store, &new)?);
            record.ca_rotation_step = 1;
            let old = load_ca(&old)?;
            // An expired old CA backs no leaf: sign with the new one, which
            // every cell trusts once this generation is live.
            let old_expired = pki::inspect(&old.cert_pem).is_ok_and(|c| c.not_after <= now);
            if old_expired {
                new
            } else {
                old
            }
        }
        (Some(current), step) => {
            match step {
                Some(2) => record.ca_rotation_step = 2,
                Some(3) => {
                    record.previous_ca = None;
                    record.ca_rotation_step = 0;
                }
                _ => {}
            }
            load_ca(current)?
        }
    };
    let ca_pem = match &record.ca {
        Some(pair) => String::from_utf8_lossy(&store.get_object(&pair.cert)?).into_owned(),
        None => unreachable!("set above"),
    };
    let previous_ca = match &record.previous_ca {
        Some(p) => Some(String::from_utf8_lossy(&store.get_object(&p.cert)?).into_owned()),
        None => None,
    };
    let bundle = ca_bundle_text(&ca_pem, previous_ca.as_deref());
    let bundle_id = store.put_object(bundle.as_bytes())?;

    // The leaves: each one's certificate, and its key as the stored object
    // (a kept leaf's key is never read: its id is all the manifest needs).
    let mut leaf_pems: BTreeMap<LeafKey, (String, ObjectId)> = BTreeMap::new();
    for leaf in &plan.leaves {
        let pems = match &leaf.action {
            LeafAction::Issue { sans, .. } => {
                let issued = pki::issue_leaf(&signer, &topology.tls, sans, now)?;
                let pair = put_pair(store, &issued)?;
                record.leaves.insert(leaf.key.to_string(), pair.clone());
                (issued.cert_pem.clone(), pair.key)
            }
            LeafAction::Keep { .. } => {
                let pair = record
                    .leaves
                    .get(leaf.key.as_str())
                    .ok_or_else(|| Error::LeafGone {
                        key: leaf.key.to_string(),
                    })?;
                (
                    String::from_utf8_lossy(&store.get_object(&pair.cert)?).into_owned(),
                    pair.key,
                )
            }
        };
        leaf_pems.insert(leaf.key.clone(), pems);
    }

    let parent = generations::read_latest(store)?.map(|m| m.number);
    // Never reused, even after gc dropped a newer manifest: cells may still
    // hold a `generations/<N>` of that number.
    // Nor may it collide with a generation dir another store left in a
    // deploy dir this apply takes over (`--adopt`; without it such a dir is
    // blocked): numbers up to the highest found there are skipped.
    let found = plan
        .cells
        .iter()
        .filter(|c| matches!(c.action, CellAction::Create | CellAction::Update))
        .filter_map(|c| inputs.cells.get(&c.cell))
        .flat_map(|now| {
            let o = &now.observed;
            o.generations.iter().chain(&o.partials).chain(&o.current)
        })
        .copied()
        .max()
        .unwrap_or(0);
    store.skip_numbers_through(found)?;
    let number = store.next_generation()?;
    let mut cells = BTreeMap::new();
    let mut previous = BTreeMap::new();
    // Carry every live cell of the topology as it is...
    for (name, now_state) in &inputs.cells {
        if let Some((_, entry)) = &now_state.live {
            cells.insert(name.clone(), entry.clone());
        }
        previous.insert(name.clone(), now_state.live.as_ref().map(|l| l.0));
    }
    // ... then replace what the plan changes.
    for cp in &plan.cells {
        match cp.action {
            // Never built: apply refuses a plan with unreachable cells; a
            // carried entry stays as the store last recorded it.
            CellAction::Unchanged | CellAction::Unreachable => continue,
            CellAction::Remove => {
                cells.remove(&cp.cell);
                continue;
            }
            CellAction::Create | CellAction::Update => {}
        }
        let cell = topology.cell(&cp.cell).ok_or_else(|| Error::CellGone {
            cell: cp.cell.clone(),
        })?;
        if cp.only_recorded() {
            // Only how its host is reached changed: the live entry, carried
            // above (same dir, files and hooks), records the new way.
            if let Some(entry) = cells.get_mut(&cp.cell) {
                entry.settings = Settings::of(topology, cell);
                continue;
            }
        }
        let key = crate::plan::leaf_key(topology, cell);
        let (cert_pem, key_id) = leaf_pems.get(&key).ok_or_else(|| Error::LeafNotPlanned {
            cell: cp.cell.clone(),
        })?;
        let config = render_cell(topology, cell, cp.phase);
        let mut files = Vec::new();
        for (path, mode) in FILES {
            let object = match path {
                layout::CONFIG => store.put_object(config.as_bytes())?,
                layout::CA_BUNDLE => bundle_id,
                layout::SERVER_CERT => store.put_object(cert_pem.as_bytes())?,
                _ => *key_id,
            };
            files.push(FileEntry {
                path: path.into(),
                object,
                mode,
            });
        }
        let settings = Settings::of(topology, cell);
        cells.insert(
            cp.cell.clone(),
            CellEntry {
                phase: cp.phase,
                deploy_dir: cell.deploy_dir.to_string(),
                dir_generation: number,
                files,
                cert: Some(summary(cert_pem)?),
                renew_before_days: topology.tls.renew_before_days,
                settings,
            },
        );
    }
    let manifest = Manifest {
        number,
        parent,
        created_at: now.unix_timestamp(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        topology_hash: topology.hash(),
        cause,
        cells,
    };
    store.commit(Commit {
        manifest: Some(manifest.record()?),
        pki: Some(record),
        consumed_plan,
    })?;
    crate::failpoint::hit("after-commit");
    Ok(Some(Built { manifest, previous }))
}
