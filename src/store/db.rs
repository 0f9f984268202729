//! The sled database behind [`Store`]: opening, trees, reads and the
//! transactional commit.
//!
//! Trees: `objects` (id → compressed content), `generations` (number, u64
//! big-endian so that sled's order is numeric → manifest), `meta` (`pki` →
//! PKI record, `last_generation` → highest number ever committed),
//! `journal` (cell → journal entry), `plans` (plan id → consumed marker).
//! Objects are immutable and written before the commit that refers to them;
//! a crash in between leaves orphans for `gc`, never a dangling reference.

use super::lock::StateLock;
use super::records::ConsumedPlan;
use super::sealing::{Keys, SEAL_KEY};
use super::{format, object, rewrite, CellJournal, Commit, Error, ObjectId, PkiRecord};
use crate::generations::Manifest;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub(super) const PKI_KEY: &[u8] = b"pki";
const LAST_GENERATION_KEY: &[u8] = b"last_generation";

/// An open, locked store.
pub struct Store {
    pub(super) dir: PathBuf,
    pub(super) db: sled::Db,
    pub(super) objects: sled::Tree,
    pub(super) generations: sled::Tree,
    pub(super) meta: sled::Tree,
    pub(super) journal: sled::Tree,
    pub(super) plans: sled::Tree,
    /// Sealing: recipients and the identity to open keys with.
    pub(super) keys: Keys,
    // Declared last so it is dropped last: the lock outlives every sled
    // handle, and the next owner never meets a half-closed database.
    pub(super) _lock: StateLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating with mode 0700) and locks the store at `dir`.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        prepare_dir(dir)?;
        let lock = StateLock::acquire(dir)?;
        rewrite::recover(dir)?;
        let db_err = |source| Error::Db {
            dir: dir.to_owned(),
            source,
        };
        let db = sled_config(&dir.join("db")).open().map_err(db_err)?;
        let tree = |name: &str| db.open_tree(name).map_err(db_err);
        let meta = tree("meta")?;
        let keys = Keys::from_record(meta.get(SEAL_KEY).map_err(db_err)?.as_deref(), dir)?;
        Ok(Store {
            dir: dir.to_owned(),
            objects: tree("objects")?,
            generations: tree("generations")?,
            meta,
            keys,
            journal: tree("journal")?,
            plans: tree("plans")?,
            db,
            _lock: lock,
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `bytes` (idempotent) and returns its id.
    pub fn put_object(&self, bytes: &[u8]) -> Result<ObjectId, Error> {
        let id = ObjectId::of(bytes);
        if !self
            .objects
            .contains_key(id.0)
            .map_err(|e| self.db_err(e))?
        {
            let value = object::encode(&id, bytes, &self.dir, &self.keys)?;
            self.objects
                .insert(id.0, value)
                .map_err(|e| self.db_err(e))?;
        }
        Ok(id)
    }

    /// Reads an object and verifies its hash.
    pub fn get_object(&self, id: &ObjectId) -> Result<Vec<u8>, Error> {
        match self.objects.get(id.0).map_err(|e| self.db_err(e))? {
            Some(value) => object::decode(id, &value, &self.dir, &self.keys),
            None => Err(Error::corrupt(
                &self.dir,
                object::describe(id),
                "it is not in the store",
            )),
        }
    }

    /// Whether an object is present.
    pub fn has_object(&self, id: &ObjectId) -> Result<bool, Error> {
        self.objects.contains_key(id.0).map_err(|e| self.db_err(e))
    }

    /// All generations, ascending.
    pub fn generations(&self) -> Result<Vec<Manifest>, Error> {
        self.generations
            .iter()
            .map(|item| {
                let (key, value) = item.map_err(|e| self.db_err(e))?;
                self.decode_manifest(&key, &value)
            })
            .collect()
    }

    /// Generation `number`, if kept.
    pub fn generation(&self, number: u64) -> Result<Option<Manifest>, Error> {
        let value = self
            .generations
            .get(number.to_be_bytes())
            .map_err(|e| self.db_err(e))?;
        value
            .map(|v| format::decode(&v, &format!("generation {number}"), &self.dir))
            .transpose()
    }

    /// The highest-numbered generation.
    pub fn latest(&self) -> Result<Option<Manifest>, Error> {
        match self.generations.last().map_err(|e| self.db_err(e))? {
            Some((key, value)) => self.decode_manifest(&key, &value).map(Some),
            None => Ok(None),
        }
    }

    /// The number the next committed generation must carry: one more than
    /// the highest ever committed, so numbers are never reused, even after
    /// `gc` removed the latest manifest.
    pub fn next_generation(&self) -> Result<u64, Error> {
        let recorded = match self
            .meta
            .get(LAST_GENERATION_KEY)
            .map_err(|e| self.db_err(e))?
        {
            Some(v) => format::decode::<u64>(&v, "last generation number", &self.dir)?,
            None => 0,
        };
        Ok(recorded.max(self.highest_kept()?) + 1)
    }

    /// The PKI record (default when none yet).
    pub fn pki(&self) -> Result<PkiRecord, Error> {
        match self.meta.get(PKI_KEY).map_err(|e| self.db_err(e))? {
            Some(value) => format::decode(&value, "pki record", &self.dir),
            None => Ok(PkiRecord::default()),
        }
    }

    /// The activation journal of every cell.
    pub fn journal(&self) -> Result<BTreeMap<String, CellJournal>, Error> {
        self.journal
            .iter()
            .map(|item| {
                let (key, value) = item.map_err(|e| self.db_err(e))?;
                let cell = String::from_utf8_lossy(&key).into_owned();
                let entry = format::decode(&value, &journal_what(&cell), &self.dir)?;
                Ok((cell, entry))
            })
            .collect()
    }

    /// Durably records one cell's journal entry.
    pub fn set_journal(&self, cell: &str, entry: &CellJournal) -> Result<(), Error> {
        self.note_journal(cell, entry)?;
        self.flush()
    }

    /// Records one cell's journal entry without waiting for the disk; a
    /// later [`Store::sync`] (or sled's background flush) makes it durable.
    /// For the per-cell steps of a deploy, where the deploy dir's `current`
    /// link, not the journal, is the truth after a crash.
    pub fn note_journal(&self, cell: &str, entry: &CellJournal) -> Result<(), Error> {
        let value = format::encode(entry, &journal_what(cell))?;
        self.journal
            .insert(cell.as_bytes(), value)
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Makes every write so far durable.
    pub fn sync(&self) -> Result<(), Error> {
        self.flush()
    }

    /// Applies `commit` in one transaction and flushes.
    pub fn commit(&self, commit: Commit) -> Result<(), Error> {
        let manifest = match &commit.manifest {
            Some(m) => Some((
                m.number,
                format::encode(m, &format!("generation {}", m.number))?,
            )),
            None => None,
        };
        let pki = match (&commit.pki, self.keys.recipients()) {
            (None, _) => None,
            (Some(p), None) => Some(format::encode(p, "pki record")?),
            // See `Store::seal`: version 2 keeps older pgbr versions out.
            (Some(p), Some(_)) => Some(format::encode_sealed(p, "pki record")?),
        };
        let plan = match &commit.consumed_plan {
            Some(id) => {
                let marker = ConsumedPlan {
                    generation: manifest.as_ref().map(|(n, _)| *n),
                };
                Some((id.as_bytes(), format::encode(&marker, &plan_what(id))?))
            }
            None => None,
        };
        // Outside the transaction (sled transactions cannot scan); the
        // process lock keeps other writers away, and the recorded counter
        // read inside the transaction covers this process's other threads.
        let highest_kept = self.highest_kept()?;
        let trees = (&self.generations, &self.meta, &self.plans);
        let result = trees.transaction(|(generations, meta, plans)| {
            if let Some((number, value)) = &manifest {
                let recorded = match meta.get(LAST_GENERATION_KEY)? {
                    Some(v) => format::decode::<u64>(&v, "last generation number", &self.dir)
                        .map_err(ConflictableTransactionError::Abort)?,
                    None => 0,
                };
                let latest = recorded.max(highest_kept);
                if *number != latest + 1 {
                    return Err(ConflictableTransactionError::Abort(
                        Error::GenerationNumber {
                            number: *number,
                            latest,
                        },
                    ));
                }
                let counter = format::encode(number, "last generation number")
                    .map_err(ConflictableTransactionError::Abort)?;
                generations.insert(&number.to_be_bytes(), value.as_slice())?;
                meta.insert(LAST_GENERATION_KEY, counter)?;
            }
            if let Some(value) = &pki {
                meta.insert(PKI_KEY, value.as_slice())?;
            }
            if let Some((id, value)) = &plan {
                plans.insert(*id, value.as_slice())?;
            }
            Ok(())
        });
        match result {
            Ok(()) => self.flush(),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(self.db_err(e)),
        }
    }

    /// Whether a saved plan with this id was applied already.
    pub fn plan_consumed(&self, plan_id: &str) -> Result<bool, Error> {
        self.plans
            .contains_key(plan_id.as_bytes())
            .map_err(|e| self.db_err(e))
    }

    /// A digest of the latest generation, PKI record and journal: a saved
    /// plan records it and is stale when it changed.
    pub fn state_digest(&self) -> Result<String, Error> {
        // Hashes canonical encodings of the decoded values, each length
        // prefixed, so "no PKI record yet" and an empty one digest alike and
        // no two states share a byte stream.
        let mut hasher = blake3::Hasher::new_derive_key("pgbr state digest v1");
        let mut part = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        match self.latest()? {
            Some(m) => {
                part(&m.number.to_be_bytes());
                part(&format::encode(&m, "latest generation")?);
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

    /// Makes every write so far durable.
    pub(super) fn flush(&self) -> Result<(), Error> {
        self.db.flush().map(drop).map_err(|e| self.db_err(e))
    }

    pub(super) fn db_err(&self, source: sled::Error) -> Error {
        Error::Db {
            dir: self.dir.clone(),
            source,
        }
    }

    /// The generation number under a key of the generations tree.
    pub(super) fn generation_number(&self, key: &[u8]) -> Result<u64, Error> {
        key.try_into().map(u64::from_be_bytes).map_err(|_| {
            Error::corrupt(
                &self.dir,
                "generations",
                format!("key of {} bytes is no generation number", key.len()),
            )
        })
    }

    pub(super) fn decode_manifest(&self, key: &[u8], value: &[u8]) -> Result<Manifest, Error> {
        let number = self.generation_number(key)?;
        let manifest: Manifest = format::decode(value, &format!("generation {number}"), &self.dir)?;
        if manifest.number != number {
            return Err(Error::corrupt(
                &self.dir,
                format!("generation {number}"),
                format!("it says it is generation {}", manifest.number),
            ));
        }
        Ok(manifest)
    }

    /// The highest generation number kept, 0 when none.
    fn highest_kept(&self) -> Result<u64, Error> {
        match self.generations.last().map_err(|e| self.db_err(e))? {
            Some((key, _)) => self.generation_number(&key),
            None => Ok(0),
        }
    }
}

/// The sled configuration of the database at `path`.
pub(super) fn sled_config(path: &Path) -> sled::Config {
    // Objects are compressed one by one (see object.rs). sled's own
    // compression on top costs little CPU and takes back most of its
    // log's space amplification: over 100 one-cell-change generations
    // of a 256-cell fleet the database grew by 4.2% of the raw bytes
    // changed with it, 6.2% without (objects alone: 4.1%). The setting
    // is recorded in the database; sled refuses to reopen it otherwise.
    sled::Config::new()
        .path(path)
        .use_compression(true)
        .compression_factor(5)
}

fn journal_what(cell: &str) -> String {
    format!("journal of cell `{cell}`")
}

fn plan_what(id: &str) -> String {
    format!("consumed plan `{id}`")
}

/// Creates `dir` (mode 0700) or checks it is a directory and takes away any
/// group/other bits: the store holds private keys.
fn prepare_dir(dir: &Path) -> Result<(), Error> {
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(Error::Io {
            action: "open state directory".into(),
            path: dir.to_owned(),
            source: std::io::Error::other("it exists and is not a directory"),
        }),
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(Error::io("restrict permissions of state directory", dir))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(Error::io("create state directory", dir))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    Err(Error::io("create state directory", dir)(e))
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(Error::io("inspect state directory", dir)(e)),
    }
}
