//! Whole-store operations across backends: `state copy` and `state verify`.
//!
//! Both read every value through the same decoding and verification as
//! any other read; a copy writes the source's exact bytes, so a store
//! copied there and back is byte-identical.

use super::backend::{Keyspace, Transaction};
use super::{format, object, CellJournal, Error, GenerationRecord, ObjectId, PkiRecord, Store};
use std::collections::BTreeSet;

/// What a copy moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Objects copied.
    pub objects: u64,
    /// Generations copied.
    pub generations: u64,
}

/// What `state verify` checked, and the problems it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Objects read and re-hashed.
    pub objects: u64,
    /// Generations decoded.
    pub generations: u64,
    /// Every problem, one line each.
    pub problems: Vec<String>,
}

/// Decodes a generation's record and names the objects it refers to, each
/// with who refers to it (`generation 3 cell `zone1` file `pgbackrest.conf``).
pub type References<'a> = &'a dyn Fn(&GenerationRecord) -> Result<Vec<(String, ObjectId)>, Error>;

const RECORDS: [Keyspace; 3] = [Keyspace::Meta, Keyspace::Journal, Keyspace::Plans];

impl Store {
    /// Whether the store holds nothing at all.
    pub fn is_empty(&self) -> Result<bool, Error> {
        for space in [Keyspace::Objects, Keyspace::Generations]
            .into_iter()
            .chain(RECORDS)
        {
            if self.backend.len(space)? > 0 {
                return Ok(false);
            }
        }
        Ok(self.backend.head()? == 0)
    }

    /// Copies everything into the empty store `to`, verifying every object
    /// and record on the way (a generation's record through `references`,
    /// which decodes it: see [`Store::verify`]): objects first, then
    /// generations, records and the head in one transaction.
    pub fn copy_into(&self, to: &Store, references: References<'_>) -> Result<CopyReport, Error> {
        if !to.is_empty()? {
            return Err(Error::NotEmpty {
                store: to.name().to_owned(),
            });
        }
        let mut report = CopyReport::default();
        self.backend.scan(Keyspace::Objects, &mut |key, value| {
            let id = ObjectId::from_key(key).ok_or_else(|| {
                Error::corrupt(self.name(), "objects", "a key is not an object id")
            })?;
            object::verify(&id, value, self.name(), &self.keys)?;
            to.backend.put(Keyspace::Objects, key, value)?;
            report.objects += 1;
            Ok(())
        })?;
        to.backend.sync()?;
        let mut transaction = Transaction::default();
        self.backend
            .scan(Keyspace::Generations, &mut |key, value| {
                references(&self.generation_record_of(key, value)?)?;
                transaction
                    .puts
                    .push((Keyspace::Generations, key.to_vec(), value.to_vec()));
                report.generations += 1;
                Ok(())
            })?;
        for space in RECORDS {
            self.backend.scan(space, &mut |key, value| {
                self.check_record(space, key, value)?;
                transaction.puts.push((space, key.to_vec(), value.to_vec()));
                Ok(())
            })?;
        }
        let head = self.backend.head()?;
        if head > 0 {
            transaction.head = Some((0, head));
        }
        to.backend.commit(transaction)?;
        Ok(report)
    }

    /// Reads every value, re-hashes every object, and checks that every
    /// object a kept generation or the PKI record names is present. The
    /// store does not read manifests: `references` decodes a generation's
    /// record and lists the objects it names (`generations::references`).
    pub fn verify(&self, references: References<'_>) -> Result<VerifyReport, Error> {
        let mut report = VerifyReport::default();
        let mut present = BTreeSet::new();
        self.backend.scan(Keyspace::Objects, &mut |key, value| {
            report.objects += 1;
            match ObjectId::from_key(key) {
                Some(id) => match object::verify(&id, value, self.name(), &self.keys) {
                    Ok(_) => {
                        present.insert(id);
                    }
                    Err(e) => report.problems.push(e.to_string()),
                },
                None => report
                    .problems
                    .push("an objects key is not an object id".into()),
            }
            Ok(())
        })?;
        let mut wanted: Vec<(String, ObjectId)> = Vec::new();
        self.backend
            .scan(Keyspace::Generations, &mut |key, value| {
                report.generations += 1;
                let named = self
                    .generation_record_of(key, value)
                    .and_then(|record| references(&record));
                match named {
                    Ok(named) => wanted.extend(named),
                    Err(e) => report.problems.push(e.to_string()),
                }
                Ok(())
            })?;
        for space in RECORDS {
            self.backend.scan(space, &mut |key, value| {
                if let Err(e) = self.check_record(space, key, value) {
                    report.problems.push(e.to_string());
                }
                Ok(())
            })?;
        }
        match self.pki() {
            Ok(pki) => wanted.extend(pki.objects().map(|id| ("the PKI record".to_owned(), id))),
            Err(e) => report.problems.push(e.to_string()),
        }
        for (who, id) in wanted {
            if !present.contains(&id) {
                report.problems.push(format!(
                    "{who} names {}, which is missing or damaged",
                    object::describe(&id)
                ));
            }
        }
        Ok(report)
    }

    fn check_record(&self, space: Keyspace, key: &[u8], value: &[u8]) -> Result<(), Error> {
        let text = String::from_utf8_lossy(key);
        match space {
            Keyspace::Meta if key == b"pki" => {
                format::decode::<PkiRecord>(value, "pki record", self.name()).map(drop)
            }
            Keyspace::Meta if key == super::store::ID_KEY => {
                format::decode::<String>(value, "store id", self.name()).map(drop)
            }
            Keyspace::Meta => Ok(()),
            Keyspace::Journal => format::decode::<CellJournal>(
                value,
                &format!("journal of cell `{text}`"),
                self.name(),
            )
            .map(drop),
            Keyspace::Plans => format::decode::<super::records::ConsumedPlan>(
                value,
                &format!("consumed plan `{text}`"),
                self.name(),
            )
            .map(drop),
            Keyspace::Objects | Keyspace::Generations => Ok(()),
        }
    }
}
