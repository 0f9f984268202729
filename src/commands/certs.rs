//! `pgbr certs`: every certificate the store still holds a use for — the
//! PKI record's (current CA, a CA being retired, the next leaves) and every
//! one a kept generation deploys — marking which are live on a cell.

use super::generations::live_on_disk;
use crate::clock::{rfc3339, Clock};
use crate::generations::Manifest;
use crate::output::outln;
use crate::pki::{self, CertInfo};
use crate::plan::{days_until, LeafKey};
use crate::store::{Location, ObjectId, Store};
use crate::{exit_codes, generations, layout, Result};
use std::collections::{BTreeSet, HashMap};

/// What a certificate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ca,
    Leaf,
}

/// One certificate and where it is used.
struct Row {
    kind: Kind,
    info: CertInfo,
    /// The cells whose leaf it is (a shared leaf: several, or `*`).
    cells: BTreeSet<String>,
    /// `current` or `previous` when the PKI record holds it.
    record: Option<&'static str>,
    /// Kept generations that deploy it.
    generations: BTreeSet<u64>,
    /// Cells whose live generation deploys it.
    live_on: BTreeSet<String>,
}

impl Row {
    /// The cell of a leaf; `*` for a shared one; `None` for a CA.
    fn cell(&self) -> Option<String> {
        match (self.kind, self.cells.len()) {
            (Kind::Ca, _) => None,
            (Kind::Leaf, 1) => self.cells.iter().next().cloned(),
            (Kind::Leaf, _) => Some(LeafKey::Shared.to_string()),
        }
    }

    fn sans(&self) -> Vec<(&'static str, &str)> {
        let dns = self.info.dns_sans.iter().map(|s| ("DNS", s.as_str()));
        dns.chain(self.info.ip_sans.iter().map(|s| ("IP", s.as_str())))
            .collect()
    }

    /// `current`, `previous`, `live on …`, or `kept` (only old generations).
    fn state(&self) -> String {
        let mut parts: Vec<String> = self.record.iter().map(|r| (*r).to_owned()).collect();
        if !self.live_on.is_empty() {
            let cells: Vec<&str> = self.live_on.iter().map(String::as_str).collect();
            parts.push(format!("live on {}", cells.join(", ")));
        }
        if parts.is_empty() {
            parts.push("kept, not live".into());
        }
        parts.join("; ")
    }
}

/// The certificates found, by fingerprint.
#[derive(Default)]
struct Found {
    rows: Vec<Row>,
    by_fingerprint: HashMap<String, usize>,
}

impl Found {
    fn add(&mut self, kind: Kind, pem: &str) -> Option<&mut Row> {
        let info = pki::inspect(pem).ok()?;
        let i = match self.by_fingerprint.get(&info.fingerprint) {
            Some(i) => *i,
            None => {
                self.by_fingerprint
                    .insert(info.fingerprint.clone(), self.rows.len());
                self.rows.push(Row {
                    kind,
                    info,
                    cells: BTreeSet::new(),
                    record: None,
                    generations: BTreeSet::new(),
                    live_on: BTreeSet::new(),
                });
                self.rows.len() - 1
            }
        };
        self.rows.get_mut(i)
    }
}

/// Reads a stored object as text, once per id.
struct Texts<'s> {
    store: &'s Store,
    cache: HashMap<ObjectId, String>,
}

impl Texts<'_> {
    fn get(&mut self, id: &ObjectId) -> Result<String> {
        if let Some(t) = self.cache.get(id) {
            return Ok(t.clone());
        }
        let text = String::from_utf8_lossy(&self.store.get_object(id)?).into_owned();
        self.cache.insert(*id, text.clone());
        Ok(text)
    }
}

fn collect(store: &Store, manifests: &[Manifest]) -> Result<Found> {
    let mut found = Found::default();
    let mut texts = Texts {
        store,
        cache: HashMap::new(),
    };
    let record = store.pki()?;
    for (pair, what) in [(&record.ca, "current"), (&record.previous_ca, "previous")] {
        if let Some(pair) = pair {
            if let Some(row) = found.add(Kind::Ca, &texts.get(&pair.cert)?) {
                row.record = Some(what);
            }
        }
    }
    for (key, pair) in &record.leaves {
        if let Some(row) = found.add(Kind::Leaf, &texts.get(&pair.cert)?) {
            row.record = Some("current");
            row.cells.insert(key.clone());
        }
    }
    let live = live_on_disk(&crate::apply::Targets::new(), manifests)?;
    for m in manifests {
        for (cell, entry) in &m.cells {
            // `current` names the generation whose directory is live.
            let is_live = entry.dir_generation == m.number
                && live.get(cell).and_then(|l| l.current) == Some(m.number);
            for f in &entry.files {
                let kind = match f.path.as_str() {
                    layout::SERVER_CERT => Kind::Leaf,
                    layout::CA_BUNDLE => Kind::Ca,
                    _ => continue,
                };
                let text = texts.get(&f.object)?;
                let pems = match kind {
                    Kind::Ca => pki::ca_bundle(&text),
                    Kind::Leaf => vec![text],
                };
                for pem in pems {
                    if let Some(row) = found.add(kind, &pem) {
                        row.generations.insert(m.number);
                        if kind == Kind::Leaf {
                            row.cells.insert(cell.clone());
                        }
                        if is_live {
                            row.live_on.insert(cell.clone());
                        }
                    }
                }
            }
        }
    }
    found.rows.sort_by(|a, b| {
        (a.kind, a.cell(), std::cmp::Reverse(a.info.not_after)).cmp(&(
            b.kind,
            b.cell(),
            std::cmp::Reverse(b.info.not_after),
        ))
    });
    Ok(found)
}

/// `pgbr certs`.
pub fn certs(state: &Location, json: bool, now: Option<&str>) -> Result<u8> {
    let clock = Clock::resolve(now)?;
    let store = Store::open_existing(state)?;
    let manifests = generations::read_all(&store)?;
    let found = collect(&store, &manifests)?;
    if json {
        let rows: Vec<_> = found
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "kind": match r.kind { Kind::Ca => "ca", Kind::Leaf => "leaf" },
                    "cell": r.cell(),
                    "serial": r.info.serial,
                    "fingerprint": r.info.fingerprint,
                    "subject_cn": r.info.subject_cn,
                    "sans": r.sans().iter().map(|(t, v)| serde_json::json!({"type": t, "value": v})).collect::<Vec<_>>(),
                    "not_before": rfc3339(r.info.not_before),
                    "not_after": rfc3339(r.info.not_after),
                    "days_left": days_until(r.info.not_after, clock.now),
                    "record": r.record,
                    "live": !r.live_on.is_empty(),
                    "live_on": r.live_on,
                    "generations": r.generations,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return Ok(exit_codes::SUCCESS);
    }
    if found.rows.is_empty() {
        outln!("No certificates yet: `pgbr apply` issues them.");
        return Ok(exit_codes::SUCCESS);
    }
    for r in &found.rows {
        let what = match (r.kind, r.cell()) {
            (Kind::Ca, _) => "ca".to_owned(),
            (Kind::Leaf, Some(c)) if c == LeafKey::Shared.as_str() => "leaf (shared)".to_owned(),
            (Kind::Leaf, c) => format!("leaf {}", c.unwrap_or_default()),
        };
        let sans: Vec<String> = r.sans().iter().map(|(t, v)| format!("{t}:{v}")).collect();
        let gens: Vec<String> = r.generations.iter().map(u64::to_string).collect();
        outln!(
            "{what} ({}): serial {} (sha256 {})",
            r.state(),
            r.info.serial,
            r.info.fingerprint
        );
        if sans.is_empty() {
            outln!("    CN {}", r.info.subject_cn);
        } else {
            outln!("    CN {}, SANs {}", r.info.subject_cn, sans.join(", "));
        }
        outln!(
            "    valid {} to {} ({} days left){}",
            rfc3339(r.info.not_before),
            rfc3339(r.info.not_after),
            days_until(r.info.not_after, clock.now),
            if gens.is_empty() {
                String::new()
            } else {
                format!("; in generation(s) {}", gens.join(", "))
            }
        );
    }
    Ok(exit_codes::SUCCESS)
}
