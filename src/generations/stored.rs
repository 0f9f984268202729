//! Manifests in the store: the store keeps each as an opaque versioned
//! record; this is where they are encoded, decoded (format-1 manifests
//! migrated through [`super::v1`]) and checked against their key.

use super::manifest::{v1, Manifest};
use crate::store::{format, Error, GenerationRecord, ObjectId, Store};

impl Manifest {
    /// The record the store keeps for this manifest.
    pub fn record(&self) -> Result<GenerationRecord, Error> {
        Ok(GenerationRecord {
            number: self.number,
            value: format::encode(self, &format!("generation {}", self.number))?,
        })
    }

    /// Decodes the record of store `store`; refuses a manifest that is not
    /// the generation its key says.
    pub fn from_record(record: &GenerationRecord, store: &str) -> Result<Manifest, Error> {
        let number = record.number;
        let what = format!("generation {number}");
        let manifest: Manifest =
            format::decode_migrating::<_, v1::Manifest>(&record.value, &what, store)?;
        if manifest.number != number {
            return Err(Error::corrupt(
                store,
                what,
                format!("it says it is generation {}", manifest.number),
            ));
        }
        Ok(manifest)
    }
}

/// Every generation kept in `store`, ascending.
pub fn read_all(store: &Store) -> Result<Vec<Manifest>, Error> {
    store
        .generation_records()?
        .iter()
        .map(|record| Manifest::from_record(record, store.name()))
        .collect()
}

/// Generation `number`, if kept.
pub fn read(store: &Store, number: u64) -> Result<Option<Manifest>, Error> {
    store
        .generation_record(number)?
        .map(|record| Manifest::from_record(&record, store.name()))
        .transpose()
}

/// The highest-numbered generation.
pub fn read_latest(store: &Store) -> Result<Option<Manifest>, Error> {
    store
        .latest_record()?
        .map(|record| Manifest::from_record(&record, store.name()))
        .transpose()
}

/// The store's state digest (see [`Store::state_digest_with`]), over the
/// latest manifest in canonical form.
pub fn state_digest(store: &Store) -> Result<String, Error> {
    let latest = read_latest(store)?.map(|m| m.record()).transpose()?;
    store.state_digest_with(latest.as_ref())
}

/// Decodes a record of `store` and names every object its cells' files
/// refer to: what `state copy` and `state verify` check records with.
pub fn references(
    record: &GenerationRecord,
    store: &str,
) -> Result<Vec<(String, ObjectId)>, Error> {
    let m = Manifest::from_record(record, store)?;
    let mut named = Vec::new();
    for (cell, entry) in &m.cells {
        for file in &entry.files {
            let who = format!("generation {} cell `{cell}` file `{}`", m.number, file.path);
            named.push((who, file.object));
        }
    }
    Ok(named)
}
