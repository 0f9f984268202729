//! The embedded backend: a sled 0.34 database in a local directory.
//!
//! `<dir>/lock` is the process lock (see `sled_dir.rs`), `<dir>/db` the
//! database, one tree per keyspace: `objects`, `generations`, `meta`,
//! `journal`, `plans`. The head is `meta/last_generation`, a versioned u64.
//! Commits are sled transactions over `generations`, `meta` and `plans`,
//! flushed before they return.

use super::sled_dir::{self, StateLock};
use super::sled_rewrite;
use super::{Backend, Keyspace, Pair, Transaction, Visit};
use crate::store::{format, Error};
use ::sled::transaction::{ConflictableTransactionError, TransactionError};
use ::sled::Transactional;
use std::path::{Path, PathBuf};

/// The key of the head in the `meta` tree.
const HEAD_KEY: &[u8] = b"last_generation";
/// What errors call the head.
const HEAD_WHAT: &str = "last generation number";

/// An open, locked sled store.
pub(super) struct SledBackend {
    name: String,
    pub(super) dir: PathBuf,
    pub(super) db: ::sled::Db,
    objects: ::sled::Tree,
    generations: ::sled::Tree,
    meta: ::sled::Tree,
    journal: ::sled::Tree,
    plans: ::sled::Tree,
    // Declared last so it is dropped last: the lock outlives every sled
    // handle, and the next owner never meets a half-closed database.
    _lock: StateLock,
}

impl SledBackend {
    /// Opens (creating with mode 0700) and locks the store at `dir`.
    pub(super) fn open(dir: &Path) -> Result<SledBackend, Error> {
        sled_dir::prepare(dir)?;
        let lock = StateLock::acquire(dir)?;
        sled_rewrite::recover(dir)?;
        let name = dir.display().to_string();
        let db_err = |source| Error::backend(&name, Box::new(source));
        let db_dir = dir.join("db");
        sled_dir::prepare_db(&db_dir)?;
        let db = config(&db_dir).open().map_err(db_err)?;
        sled_dir::tighten_db(&db_dir)?;
        let tree = |space| db.open_tree(tree_name(space)).map_err(db_err);
        Ok(SledBackend {
            objects: tree(Keyspace::Objects)?,
            generations: tree(Keyspace::Generations)?,
            meta: tree(Keyspace::Meta)?,
            journal: tree(Keyspace::Journal)?,
            plans: tree(Keyspace::Plans)?,
            name: name.clone(),
            dir: dir.to_owned(),
            db,
            _lock: lock,
        })
    }

    fn tree(&self, space: Keyspace) -> &::sled::Tree {
        match space {
            Keyspace::Objects => &self.objects,
            Keyspace::Generations => &self.generations,
            Keyspace::Meta => &self.meta,
            Keyspace::Journal => &self.journal,
            Keyspace::Plans => &self.plans,
        }
    }

    pub(super) fn err(&self, source: ::sled::Error) -> Error {
        Error::backend(&self.name, Box::new(source))
    }

    /// Closes every sled handle, keeping only the lock.
    pub(super) fn close(self) -> StateLock {
        let SledBackend {
            db,
            objects,
            generations,
            meta,
            journal,
            plans,
            _lock,
            ..
        } = self;
        drop((objects, generations, meta, journal, plans, db));
        _lock
    }
}

/// The sled configuration of the database at `path`.
pub(super) fn config(path: &Path) -> ::sled::Config {
    // Objects are compressed one by one (see object.rs). sled's own
    // compression on top costs little CPU and takes back most of its
    // log's space amplification: over 100 one-cell-change generations
    // of a 256-cell fleet the database grew by 4.2% of the raw bytes
    // changed with it, 6.2% without (objects alone: 4.1%). The setting
    // is recorded in the database; sled refuses to reopen it otherwise.
    ::sled::Config::new()
        .path(path)
        .use_compression(true)
        .compression_factor(5)
}

/// The sled tree that holds `space`.
pub(super) fn tree_name(space: Keyspace) -> &'static str {
    match space {
        Keyspace::Objects => "objects",
        Keyspace::Generations => "generations",
        Keyspace::Meta => "meta",
        Keyspace::Journal => "journal",
        Keyspace::Plans => "plans",
    }
}

impl Backend for SledBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, space: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let value = self.tree(space).get(key).map_err(|e| self.err(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn contains(&self, space: Keyspace, key: &[u8]) -> Result<bool, Error> {
        self.tree(space).contains_key(key).map_err(|e| self.err(e))
    }

    fn put(&self, space: Keyspace, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.tree(space)
            .insert(key, value)
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn scan(&self, space: Keyspace, visit: &mut Visit<'_>) -> Result<(), Error> {
        for item in self.tree(space).iter() {
            let (key, value) = item.map_err(|e| self.err(e))?;
            visit(&key, &value)?;
        }
        Ok(())
    }

    fn last(&self, space: Keyspace) -> Result<Option<Pair>, Error> {
        let last = self.tree(space).last().map_err(|e| self.err(e))?;
        Ok(last.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    fn len(&self, space: Keyspace) -> Result<u64, Error> {
        Ok(self.tree(space).len() as u64)
    }

    fn remove(&self, space: Keyspace, keys: &[Vec<u8>]) -> Result<(), Error> {
        let mut batch = ::sled::Batch::default();
        for key in keys {
            batch.remove(key.as_slice());
        }
        self.tree(space)
            .apply_batch(batch)
            .map_err(|e| self.err(e))?;
        self.sync()
    }

    fn head(&self) -> Result<u64, Error> {
        match self.meta.get(HEAD_KEY).map_err(|e| self.err(e))? {
            Some(v) => format::decode::<u64>(&v, HEAD_WHAT, &self.name),
            None => Ok(0),
        }
    }

    fn commit(&self, transaction: Transaction) -> Result<(), Error> {
        let head = match transaction.head {
            Some((from, to)) => Some((from, to, format::encode(&to, HEAD_WHAT)?)),
            None => None,
        };
        let trees = (
            &self.objects,
            &self.generations,
            &self.meta,
            &self.journal,
            &self.plans,
        );
        let result = trees.transaction(|(objects, generations, meta, journal, plans)| {
            if let Some((from, to, value)) = &head {
                let recorded = match meta.get(HEAD_KEY)? {
                    Some(v) => format::decode::<u64>(&v, HEAD_WHAT, &self.name)
                        .map_err(ConflictableTransactionError::Abort)?,
                    None => 0,
                };
                if recorded != *from {
                    return Err(ConflictableTransactionError::Abort(
                        Error::GenerationNumber {
                            number: *to,
                            latest: recorded,
                        },
                    ));
                }
                meta.insert(HEAD_KEY, value.as_slice())?;
            }
            for (space, key, value) in &transaction.puts {
                let tree = match space {
                    Keyspace::Objects => objects,
                    Keyspace::Generations => generations,
                    Keyspace::Meta => meta,
                    Keyspace::Journal => journal,
                    Keyspace::Plans => plans,
                };
                tree.insert(key.as_slice(), value.as_slice())?;
            }
            Ok(())
        });
        match result {
            Ok(()) => self.sync(),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(self.err(e)),
        }
    }

    fn sync(&self) -> Result<(), Error> {
        self.db.flush().map(drop).map_err(|e| self.err(e))
    }

    fn disk_bytes(&self) -> Result<u64, Error> {
        self.sync()?;
        let db_dir = self.dir.join("db");
        crate::disk::tree_size(&db_dir).map_err(Error::io("measure state database", &db_dir))
    }

    fn rewrite(self: Box<Self>, puts: Vec<(Keyspace, Vec<u8>, Vec<u8>)>) -> Result<(), Error> {
        sled_rewrite::rewrite(*self, puts)
    }
}
