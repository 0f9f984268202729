//! Garbage collection and size accounting.
//!
//! `gc` computes what goes first (a plan, like every other change pgbr
//! makes), then deletes manifests before objects, each step one atomic
//! batch followed by a flush. A crash between the steps leaves unreferenced
//! objects (the next `gc` takes them), never a kept manifest pointing at a
//! missing object. Objects written by an apply that has not committed yet
//! look unreferenced: gc and apply never run at once, the process lock sees
//! to that.

use super::object::{self, StoredObject};
use super::{format, Error, GcReport, ObjectId, Store, StoreStats};
use std::collections::BTreeSet;
use std::path::Path;

impl Store {
    /// Removes every generation not in `keep` and every object that no kept
    /// generation and no PKI record references. With `dry_run`, only reports.
    pub fn gc(&self, keep: &BTreeSet<u64>, dry_run: bool) -> Result<GcReport, Error> {
        let mut referenced: BTreeSet<ObjectId> = self.pki()?.objects().collect();
        let mut doomed_generations = Vec::new();
        for item in self.generations.iter() {
            let (key, value) = item.map_err(|e| self.db_err(e))?;
            let number = self.generation_number(&key)?;
            if keep.contains(&number) {
                let manifest = self.decode_manifest(&key, &value)?;
                let files = manifest.cells.values().flat_map(|cell| &cell.files);
                referenced.extend(files.map(|file| file.object));
            } else {
                doomed_generations.push(number);
            }
        }
        let mut doomed_objects = Vec::new();
        let mut bytes = 0;
        for item in self.objects.iter() {
            let (key, value) = item.map_err(|e| self.db_err(e))?;
            let kept = ObjectId::from_key(&key).is_some_and(|id| referenced.contains(&id));
            if !kept {
                bytes += value.len() as u64;
                doomed_objects.push(key);
            }
        }
        let report = GcReport {
            generations: doomed_generations,
            objects: doomed_objects.len(),
            bytes,
        };
        if dry_run {
            return Ok(report);
        }
        let mut batch = sled::Batch::default();
        for number in &report.generations {
            batch.remove(&number.to_be_bytes());
        }
        self.generations
            .apply_batch(batch)
            .map_err(|e| self.db_err(e))?;
        self.flush()?;
        let mut batch = sled::Batch::default();
        for key in doomed_objects {
            batch.remove(key);
        }
        self.objects
            .apply_batch(batch)
            .map_err(|e| self.db_err(e))?;
        self.flush()?;
        Ok(report)
    }

    /// Counts and sizes of what the store holds; flushes first so that
    /// `disk_bytes` is what a crash would leave behind.
    pub fn stats(&self) -> Result<StoreStats, Error> {
        let mut stats = StoreStats {
            generations: self.generations.len() as u64,
            ..StoreStats::default()
        };
        for item in self.objects.iter() {
            let (key, value) = item.map_err(|e| self.db_err(e))?;
            let what = match ObjectId::from_key(&key) {
                Some(id) => object::describe(&id),
                None => "object with a malformed id".to_owned(),
            };
            let stored: StoredObject = format::decode(&value, &what, &self.dir)?;
            stats.objects += 1;
            stats.raw_bytes += stored.raw_len;
            stats.stored_bytes += value.len() as u64;
        }
        self.flush()?;
        let db_dir = self.dir.join("db");
        stats.disk_bytes =
            tree_size(&db_dir).map_err(Error::io("measure state database", &db_dir))?;
        Ok(stats)
    }
}

/// Total length of the files under `path`.
fn tree_size(path: &Path) -> std::io::Result<u64> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        total += tree_size(&entry?.path())?;
    }
    Ok(total)
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
        let stored_len = |id: &ObjectId| store.objects.get(id.0).unwrap().unwrap().len() as u64;
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
