//! Garbage collection and size accounting.
//!
//! The store does not decide what goes: `generations::plan_gc` does, from
//! the manifests and the object listing below, and hands back the manifests
//! to drop and the objects nothing kept refers to. [`Store::sweep`] deletes
//! manifests before objects, each step one atomic, durable removal. A crash
//! between the steps leaves unreferenced objects (the next `gc` takes them),
//! never a kept manifest pointing at a missing object. Objects written by an
//! apply that has not committed yet look unreferenced: gc and apply never
//! run at once, the process lock sees to that. Works the same on every
//! backend: it scans and removes through the
//! [`Backend`](super::backend::Backend) seam.

use super::backend::Keyspace;
use super::object::{self, StoredObject};
use super::{format, Error, ObjectId, Store, StoreStats};

impl Store {
    /// Every stored object with its stored (compressed) length.
    pub fn object_sizes(&self) -> Result<Vec<(ObjectId, u64)>, Error> {
        let mut out = Vec::new();
        self.backend.scan(Keyspace::Objects, &mut |key, value| {
            let id = ObjectId::from_key(key).ok_or_else(|| {
                Error::corrupt(
                    self.name(),
                    "an object key",
                    "it is not a 32-byte object id",
                )
            })?;
            out.push((id, value.len() as u64));
            Ok(())
        })?;
        Ok(out)
    }

    /// Deletes the manifests `generations`, then the objects `objects`.
    /// The caller has made sure no kept manifest and no PKI record refers
    /// to any of `objects`.
    pub fn sweep(&self, generations: &[u64], objects: &[ObjectId]) -> Result<(), Error> {
        let numbers: Vec<Vec<u8>> = generations
            .iter()
            .map(|n| n.to_be_bytes().to_vec())
            .collect();
        self.backend.remove(Keyspace::Generations, &numbers)?;
        let ids: Vec<Vec<u8>> = objects.iter().map(|id| id.0.to_vec()).collect();
        self.backend.remove(Keyspace::Objects, &ids)
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
    use super::super::tests::{manifest, numbers, on_both_backends, Fixture};
    use super::super::Commit;
    use super::*;

    fn sweep_deletes_exactly_the_given_manifests_and_objects(f: &Fixture) {
        let store = f.open();
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
        let stored_len = |id: &ObjectId| {
            let value = store.backend.get(Keyspace::Objects, &id.0).unwrap();
            value.unwrap().len() as u64
        };
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
        assert_eq!(numbers(&store), [2]);
        let stats = store.stats().unwrap();
        assert_eq!((stats.generations, stats.objects), (1, 1));
        // Sweeping what is gone already is fine.
        store.sweep(&[1], &[a]).unwrap();
    }

    on_both_backends!(sweep_deletes_exactly_the_given_manifests_and_objects);
}
