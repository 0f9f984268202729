//! [`Store`]: the records and transactions the rest of pgbr uses, over
//! whichever [`Backend`] the location names.
//!
//! Everything backend-neutral lives here: value encoding with its format
//! version, object compression and verification on read, generation
//! numbering, the state digest. Manifests are opaque records here. The backend only keeps bytes under keys.
//! Objects are immutable and written before the commit that refers to
//! them; a crash in between leaves orphans for `gc`, never a dangling
//! reference.

use super::backend::{self, Backend, Keyspace, Transaction};
use super::records::ConsumedPlan;
use super::sealing::{Keys, SEAL_KEY};
use super::{
    format, object, CellJournal, Commit, Error, GenerationRecord, Location, ObjectId, PkiRecord,
};
use std::collections::BTreeMap;

/// The key of the last apply's hook timeouts in [`Keyspace::Meta`].
const HOOK_TIMEOUTS_KEY: &[u8] = b"hook_timeouts";

/// The key of the PKI record in [`Keyspace::Meta`].
pub(super) const PKI_KEY: &[u8] = b"pki";

/// The key of the store's identity in [`Keyspace::Meta`].
pub(super) const ID_KEY: &[u8] = b"id";

/// An open, locked store.
pub struct Store {
    pub(super) backend: Box<dyn Backend>,
    /// Sealing: the recipients, and the identity that opens keys.
    pub(super) keys: Keys,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens and locks the store at `location` (a directory is created
    /// with mode 0700 when missing).
    pub fn open(location: &Location) -> Result<Store, Error> {
        Store::over(backend::open(location)?)
    }

    /// Opens and locks the store at `location` for a command that only
    /// reads it; [`Error::NoState`] where none exists (nothing is created).
    pub fn open_existing(location: &Location) -> Result<Store, Error> {
        match backend::open_existing(location)? {
            Some(backend) => Store::over(backend),
            None => Err(Error::NoState {
                store: location.display(),
            }),
        }
    }

    /// The store at `location`, or, where none exists yet, an empty one
    /// that is not created: `plan` plans a first deployment from it.
    pub fn open_or_empty(location: &Location) -> Result<Store, Error> {
        match backend::open_existing(location)? {
            Some(backend) => Store::over(backend),
            None => Store::over(backend::empty(location)),
        }
    }

    fn over(backend: Box<dyn Backend>) -> Result<Store, Error> {
        let record = backend.get(Keyspace::Meta, SEAL_KEY)?;
        let keys = Keys::from_record(record.as_deref(), backend.name())?;
        Ok(Store { backend, keys })
    }

    /// How messages name this store: a path, or a URL without password.
    pub fn name(&self) -> &str {
        self.backend.name()
    }

    /// Stores `bytes` (idempotent) and returns its id.
    pub fn put_object(&self, bytes: &[u8]) -> Result<ObjectId, Error> {
        let id = ObjectId::of(bytes);
        if !self.backend.contains(Keyspace::Objects, &id.0)? {
            let value = object::encode(&id, bytes, self.name(), &self.keys)?;
            self.backend.put(Keyspace::Objects, &id.0, &value)?;
        }
        Ok(id)
    }

    /// Reads an object and verifies its hash.
    pub fn get_object(&self, id: &ObjectId) -> Result<Vec<u8>, Error> {
        match self.backend.get(Keyspace::Objects, &id.0)? {
            Some(value) => object::decode(id, &value, self.name(), &self.keys),
            None => Err(Error::corrupt(
                self.name(),
                object::describe(id),
                "it is not in the store",
            )),
        }
    }

    /// Whether an object is present.
    pub fn has_object(&self, id: &ObjectId) -> Result<bool, Error> {
        self.backend.contains(Keyspace::Objects, &id.0)
    }

    /// Every generation's record, ascending.
    pub fn generation_records(&self) -> Result<Vec<GenerationRecord>, Error> {
        let mut records = Vec::new();
        self.backend
            .scan(Keyspace::Generations, &mut |key, value| {
                records.push(self.generation_record_of(key, value)?);
                Ok(())
            })?;
        Ok(records)
    }

    /// Generation `number`'s record, if kept.
    pub fn generation_record(&self, number: u64) -> Result<Option<GenerationRecord>, Error> {
        let key = number.to_be_bytes();
        match self.backend.get(Keyspace::Generations, &key)? {
            Some(value) => self.generation_record_of(&key, &value).map(Some),
            None => Ok(None),
        }
    }

    /// The highest-numbered generation's record.
    pub fn latest_record(&self) -> Result<Option<GenerationRecord>, Error> {
        match self.backend.last(Keyspace::Generations)? {
            Some((key, value)) => self.generation_record_of(&key, &value).map(Some),
            None => Ok(None),
        }
    }

    /// The number the next committed generation must carry: one more than
    /// the highest ever committed, so numbers are never reused, even after
    /// `gc` removed the latest manifest.
    pub fn next_generation(&self) -> Result<u64, Error> {
        Ok(self.backend.head()?.max(self.highest_kept()?) + 1)
    }

    /// Makes the next generation number greater than `number` (durably),
    /// as if generations up to it had been committed and collected: a
    /// deploy dir taken over from another store may hold generation dirs
    /// of those numbers.
    pub fn skip_numbers_through(&self, number: u64) -> Result<(), Error> {
        if self.next_generation()? > number {
            return Ok(());
        }
        let recorded = self.backend.head()?;
        self.backend.commit(Transaction {
            head: Some((recorded, number)),
            puts: vec![],
        })
    }

    /// This store's identity, if it has one yet: a random id that deploy
    /// dirs record in their marker, so that another store (or a stale copy
    /// of this one) never takes them over unnoticed. A copy made with
    /// `pgbr state copy` keeps it: it is the same state, moved.
    pub fn id(&self) -> Result<Option<String>, Error> {
        match self.backend.get(Keyspace::Meta, ID_KEY)? {
            Some(value) => format::decode(&value, "store id", self.name()).map(Some),
            None => Ok(None),
        }
    }

    /// This store's identity, created (durably) on first use: by the first
    /// command that deploys, so that read-only commands write nothing.
    pub fn ensure_id(&self) -> Result<String, Error> {
        if let Some(id) = self.id()? {
            return Ok(id);
        }
        let bytes: [u8; 16] = rand::random();
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut transaction = Transaction::default();
        let value = format::encode(&id, "store id")?;
        transaction
            .puts
            .push((Keyspace::Meta, ID_KEY.to_vec(), value));
        self.backend.commit(transaction)?;
        Ok(id)
    }

    /// The PKI record (default when none yet).
    pub fn pki(&self) -> Result<PkiRecord, Error> {
        match self.backend.get(Keyspace::Meta, PKI_KEY)? {
            Some(value) => format::decode(&value, "pki record", self.name()),
            None => Ok(PkiRecord::default()),
        }
    }

    /// The activation journal of every cell.
    pub fn journal(&self) -> Result<BTreeMap<String, CellJournal>, Error> {
        let mut journal = BTreeMap::new();
        self.backend.scan(Keyspace::Journal, &mut |key, value| {
            let cell = String::from_utf8_lossy(key).into_owned();
            let entry = format::decode(value, &journal_what(&cell), self.name())?;
            journal.insert(cell, entry);
            Ok(())
        })?;
        Ok(journal)
    }

    /// Each cell's `hook_timeout_seconds` as the last apply's topology set
    /// it (empty before any): `rollback` runs without the topology. How a
    /// deploy runs, not what it deploys: not in the state digest.
    pub fn hook_timeouts(&self) -> Result<BTreeMap<String, u32>, Error> {
        match self.backend.get(Keyspace::Meta, HOOK_TIMEOUTS_KEY)? {
            Some(value) => format::decode(&value, "hook timeouts", self.name()),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Records the hook timeouts of the topology being applied.
    pub fn set_hook_timeouts(&self, seconds: &BTreeMap<String, u32>) -> Result<(), Error> {
        if self.hook_timeouts()? == *seconds {
            return Ok(());
        }
        let value = format::encode(seconds, "hook timeouts")?;
        self.backend.put(Keyspace::Meta, HOOK_TIMEOUTS_KEY, &value)
    }

    /// Durably records one cell's journal entry.
    pub fn set_journal(&self, cell: &str, entry: &CellJournal) -> Result<(), Error> {
        self.note_journal(cell, entry)?;
        self.sync()
    }

    /// Records one cell's journal entry without waiting for the disk; a
    /// later [`Store::sync`] (or the backend's own flushing) makes it
    /// durable. For the per-cell steps of a deploy, where the deploy dir's
    /// `current` link, not the journal, is the truth after a crash.
    pub fn note_journal(&self, cell: &str, entry: &CellJournal) -> Result<(), Error> {
        let value = format::encode(entry, &journal_what(cell))?;
        self.backend.put(Keyspace::Journal, cell.as_bytes(), &value)
    }

    /// Makes every write so far durable.
    pub fn sync(&self) -> Result<(), Error> {
        self.backend.sync()
    }

    /// Applies `commit` in one transaction, durably. A new generation's
    /// number must be the latest + 1, and the commit is fenced on the head
    /// it was numbered from: if another writer committed meanwhile, nothing
    /// is written.
    pub fn commit(&self, commit: Commit) -> Result<(), Error> {
        let mut transaction = Transaction::default();
        if let Some(record) = &commit.manifest {
            let recorded = self.backend.head()?;
            let latest = recorded.max(self.highest_kept()?);
            if record.number != latest + 1 {
                return Err(Error::GenerationNumber {
                    number: record.number,
                    latest,
                });
            }
            transaction.head = Some((recorded, record.number));
            let key = record.number.to_be_bytes().to_vec();
            let value = record.value.clone();
            transaction.puts.push((Keyspace::Generations, key, value));
        }
        if let Some(p) = &commit.pki {
            let value = match self.keys.recipients() {
                None => format::encode(p, "pki record")?,
                // See `Store::seal`: version 3 keeps older pgbr versions out.
                Some(_) => format::encode_sealed(p, "pki record")?,
            };
            transaction
                .puts
                .push((Keyspace::Meta, PKI_KEY.to_vec(), value));
        }
        if let Some(id) = &commit.consumed_plan {
            let marker = ConsumedPlan {
                generation: commit.manifest.as_ref().map(|r| r.number),
            };
            let value = format::encode(&marker, &plan_what(id))?;
            let key = id.as_bytes().to_vec();
            transaction.puts.push((Keyspace::Plans, key, value));
        }
        self.backend.commit(transaction)
    }

    /// Whether a saved plan with this id was applied already.
    pub fn plan_consumed(&self, plan_id: &str) -> Result<bool, Error> {
        self.backend.contains(Keyspace::Plans, plan_id.as_bytes())
    }

    /// A digest of the latest generation, PKI record and journal: a saved
    /// plan records it and is stale when it changed. `latest` is the latest
    /// generation's record in canonical form (its manifest decoded and
    /// encoded again, so a format-1 record digests as its migrated self);
    /// `generations::state_digest` passes it.
    pub fn state_digest_with(&self, latest: Option<&GenerationRecord>) -> Result<String, Error> {
        // Hashes canonical encodings of the decoded values, each length
        // prefixed, so "no PKI record yet" and an empty one digest alike and
        // no two states share a byte stream.
        let mut hasher = blake3::Hasher::new_derive_key("pgbr state digest v1");
        let mut part = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        match latest {
            Some(record) => {
                part(&record.number.to_be_bytes());
                part(&record.value);
            }
            None => part(b""),
        }
        part(&format::encode(&self.pki()?, "pki record")?);
        let journal = self.journal()?;
        part(&(journal.len() as u64).to_le_bytes());
        for (cell, entry) in &journal {
            part(cell.as_bytes());
            part(&format::encode(entry, &journal_what(cell))?);
        }
        Ok(hasher.finalize().to_hex().to_string())
    }

    /// The generation number under a key of the generations keyspace.
    pub(super) fn generation_number(&self, key: &[u8]) -> Result<u64, Error> {
        key.try_into().map(u64::from_be_bytes).map_err(|_| {
            Error::corrupt(
                self.name(),
                "generations",
                format!("key of {} bytes is no generation number", key.len()),
            )
        })
    }

    /// The record under a key of the generations keyspace.
    pub(super) fn generation_record_of(
        &self,
        key: &[u8],
        value: &[u8],
    ) -> Result<GenerationRecord, Error> {
        Ok(GenerationRecord {
            number: self.generation_number(key)?,
            value: value.to_vec(),
        })
    }

    /// The highest generation number kept, 0 when none.
    fn highest_kept(&self) -> Result<u64, Error> {
        match self.backend.last(Keyspace::Generations)? {
            Some((key, _)) => self.generation_number(&key),
            None => Ok(0),
        }
    }
}

fn journal_what(cell: &str) -> String {
    format!("journal of cell `{cell}`")
}

fn plan_what(id: &str) -> String {
    format!("consumed plan `{id}`")
}
