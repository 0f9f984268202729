//! Garbage collection and size accounting.
//!
//! `gc` computes what goes first (a plan, like every other change pgbr
//! makes), then deletes manifests before objects, each step one atomic
//! batch followed by a flush. A crash between the steps leaves unreferenced
//! objects (the next `gc` takes them), never a kept manifest pointing at a
//! missing object. Objects written by an apply that has not committed yet
//! look unreferenced: gc and apply never run at once, the process lock sees
//! to that. Works the same on every backend: it scans and removes through
//! the [`Backend`](super::backend::Backend) seam.

use super::backend::Keyspace;
use super::object::{self, StoredObject};
use super::{format, Error, GcReport, ObjectId, Store, StoreStats};
use std::collections::BTreeSet;

impl Store {
    /// Removes every generation not in `keep` and every object that no kept
    /// generation and no PKI record references. With `dry_run`, only reports.
    pub fn gc(&self, keep: &BTreeSet<u64>, dry_run: bool) -> Result<GcReport, Error> {
        let mut referenced: BTreeSet<ObjectId> = self.pki()?.objects().collect();
        let mut doomed_generations = Vec::new();
        self.backend
            .scan(Keyspace::Generations, &mut |key, value| {
                let number = self.generation_number(key)?;
                if keep.contains(&number) {
                    let manifest = self.decode_manifest(key, value)?;
                    let files = manifest.cells.values().flat_map(|cell| &cell.files);
                    referenced.extend(files.map(|file| file.object));
                } else {
                    doomed_generations.push(number);
                }
                Ok(())
            })?;
        let mut doomed_objects = Vec::new();
        let mut bytes = 0;
        self.backend.scan(Keyspace::Objects, &mut |key, value| {
            let kept = ObjectId::from_key(key).is_some_and(|id| referenced.contains(&id));
            if !kept {
                bytes += value.len() as u64;
                doomed_objects.push(key.to_vec());
            }
            Ok(())
        })?;
        let report = GcReport {
            generations: doomed_generations,
            objects: doomed_objects.len(),
            bytes,
        };
        if dry_run {
            return Ok(report);
        }
        let numbers: Vec<Vec<u8>> = report
            .generations
            .iter()
            .map(|n| n.to_be_bytes().to_vec())
            .collect();
        self.backend.remove(Keyspace::Generations, &numbers)?;
        self.backend.remove(Keyspace::Objects, &doomed_objects)?;
        Ok(report)
    }

    /// Counts and sizes of what the store holds; syncs first so that
    /// `disk_bytes` is what a crash would leave behind.
    pub fn stats(&self) -> Result<StoreStats, Error> {
        let mut stats = StoreStats {
            generations: self.backend.len(Keyspace::Generations)?,
            ..StoreStats::default()
        };
        self.backend.scan(Keyspace::Objects, &mut |key, value| {
            let what = match ObjectId::from_key(key) {
                Some(id) => object::describe(&id),
                None => "object with a malformed id".to_owned(),
            };
            let stored: StoredObject = format::decode(value, &what, self.name())?;
            stats.objects += 1;
            stats.raw_bytes += stored.raw_len;
            stats.stored_bytes += value.len() as u64;
            Ok(())
        })?;
        stats.disk_bytes = self.backend.disk_bytes()?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{manifest, open_temp};
    use super::super::{Commit, PkiRecord, StoredPair};
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn gc_keeps_what_kept_generations_and_pki_reference() {
        let (_t, store) = open_temp();
        let put = |s: &str| store.put_object(s.as_bytes()).unwrap();
        let (a, b, c) = (put("a"), put("b"), put("c"));
        let (ca_cert, ca_key, leaf_cert, leaf_key) =
            (put("ca"), put("ca key"), put("leaf"), put("leaf key"));
        let orphan = put("orphan");
        let pki = PkiRecord {
            ca: Some(StoredPair {
                cert: ca_cert,
                key: ca_key,
            }),
            previous_ca: None,
            ca_rotation_step: 0,
            leaves: BTreeMap::from([(
                "zone1".to_owned(),
                StoredPair {
                    cert: leaf_cert,
                    key: leaf_key,
                },
            )]),
        };
        store
            .commit(Commit {
                manifest: Some(manifest(1, &[a, b])),
                pki: Some(pki),
                consumed_plan: None,
            })
            .unwrap();
        store
            .commit(Commit {
                manifest: Some(manifest(2, &[b, c])),
                ..Commit::default()
            })
            .unwrap();
        let stored_len = |id: &ObjectId| {
            let value = store.backend.get(Keyspace::Objects, &id.0).unwrap();
            value.unwrap().len() as u64
        };
        let expected = GcReport {
            generations: vec![1],
            objects: 2,
            bytes: stored_len(&a) + stored_len(&orphan),
        };
        let keep = BTreeSet::from([2, 7]);

        let before = store.stats().unwrap();
        assert_eq!(store.gc(&keep, true).unwrap(), expected);
        let after_dry_run = store.stats().unwrap();
        assert_eq!(
            (after_dry_run.generations, after_dry_run.objects),
            (before.generations, before.objects)
        );
        assert!(store.has_object(&a).unwrap() && store.generation(1).unwrap().is_some());

        assert_eq!(store.gc(&keep, false).unwrap(), expected);
        assert!(!store.has_object(&a).unwrap());
        assert!(!store.has_object(&orphan).unwrap());
        for kept in [b, c, ca_cert, ca_key, leaf_cert, leaf_key] {
            assert!(!store.get_object(&kept).unwrap().is_empty());
        }
        let numbers: Vec<u64> = store
            .generations()
            .unwrap()
            .iter()
            .map(|m| m.number)
            .collect();
        assert_eq!(numbers, [2]);
        assert_eq!(store.gc(&keep, false).unwrap(), GcReport::default());
    }

    #[test]
    fn gc_with_nothing_kept_empties_the_store() {
        let (_t, store) = open_temp();
        let id = store.put_object(b"x").unwrap();
        store
            .commit(Commit {
                manifest: Some(manifest(1, &[id])),
                ..Commit::default()
            })
            .unwrap();
        let report = store.gc(&BTreeSet::new(), false).unwrap();
        assert_eq!((report.generations, report.objects), (vec![1], 1));
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.generations, stats.objects, stats.raw_bytes),
            (0, 0, 0)
        );
    }
}
