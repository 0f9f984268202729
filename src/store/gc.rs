//! Garbage collection and size accounting.
//!
//! The store does not decide what goes: `generations::plan_gc` does, from
//! the manifests and the object listing below, and hands back the manifests
//! to drop and the objects nothing kept refers to. [`Store::sweep`] deletes
//! manifests before objects, each step one atomic batch followed by a flush.
//! A crash between the steps leaves unreferenced objects (the next `gc`
//! takes them), never a kept manifest pointing at a missing object. Objects
//! written by an apply that has not committed yet look unreferenced: gc and
//! apply never run at once, the process lock sees to that.

use super::object::{self, StoredObject};
use super::{format, Error, ObjectId, Store, StoreStats};
use std::path::Path;

impl Store {
    /// Every stored object with its stored (compressed) length.
    pub fn object_sizes(&self) -> Result<Vec<(ObjectId, u64)>, Error> {
        let mut out = Vec::new();
        for item in self.objects.iter() {
            let (key, value) = item.map_err(|e| self.db_err(e))?;
            let id = ObjectId::from_key(&key).ok_or_else(|| {
                Error::corrupt(&self.dir, "an object key", "it is not a 32-byte object id")
            })?;
            out.push((id, value.len() as u64));
        }
        Ok(out)
    }

    /// Deletes the manifests `generations`, then the objects `objects`.
    /// The caller has made sure no kept manifest and no PKI record refers
    /// to any of `objects`.
    pub fn sweep(&self, generations: &[u64], objects: &[ObjectId]) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for number in generations {
            batch.remove(&number.to_be_bytes());
        }
        self.generations
            .apply_batch(batch)
            .map_err(|e| self.db_err(e))?;
        self.flush()?;
        let mut batch = sled::Batch::default();
        for id in objects {
            batch.remove(&id.0);
        }
        self.objects
            .apply_batch(batch)
            .map_err(|e| self.db_err(e))?;
        self.flush()
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
    use super::super::Commit;
    use super::*;

    #[test]
    fn sweep_deletes_exactly_the_given_manifests_and_objects() {
        let (_t, store) = open_temp();
        let put = |s: &str| store.put_object(s.as_bytes()).unwrap();
        let (a, b, orphan) = (put("a"), put("b"), put("orphan"));
        for m in [manifest(1, &[a]), manifest(2, &[b])] {
            store
                .commit(Commit {
                    manifest: Some(m),
                    ..Commit::default()
                })
                .unwrap();
        }
        let stored_len = |id: &ObjectId| store.objects.get(id.0).unwrap().unwrap().len() as u64;
        let mut sizes = store.object_sizes().unwrap();
        sizes.sort();
        let mut expected = vec![
            (a, stored_len(&a)),
            (b, stored_len(&b)),
            (orphan, stored_len(&orphan)),
        ];
        expected.sort();
        assert_eq!(sizes, expected);

        store.sweep(&[1], &[a, orphan]).unwrap();
        assert!(!store.has_object(&a).unwrap() && !store.has_object(&orphan).unwrap());
        assert_eq!(store.get_object(&b).unwrap(), b"b");
        let numbers: Vec<u64> = store
            .generations()
            .unwrap()
            .iter()
            .map(|m| m.number)
            .collect();
        assert_eq!(numbers, [2]);
        let stats = store.stats().unwrap();
        assert_eq!((stats.generations, stats.objects), (1, 1));
        // Sweeping what is gone already is fine.
        store.sweep(&[1], &[a]).unwrap();
    }
}
