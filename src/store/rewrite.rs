//! Rewriting the sled database into a fresh one, for sealing and rekeying.
//!
//! sled is log-structured: a value overwritten in place stays in an old
//! segment of its files until sled happens to reuse the space. Sealing
//! must leave no plaintext key behind (and rekeying no copy a removed
//! recipient could open), so both copy every tree into a new database
//! (`db.next`), with the new values substituted, and swap it in:
//!
//! 1. build and flush `db.next` (the old `db` untouched);
//! 2. rename `db` to `db.old`, then `db.next` to `db`, syncing the state
//!    directory after each;
//! 3. remove `db.old`.
//!
//! A crash in 1 leaves `db` as it was; in 2, `db` missing means `db.next`
//! was complete. [`recover`], run by every open, finishes or discards what
//! a crash left.

use super::{Error, ObjectId, Store};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

const NEXT: &str = "db.next";
const OLD: &str = "db.old";

/// Finishes or discards a rewrite a crash interrupted.
pub(super) fn recover(dir: &Path) -> Result<(), Error> {
    let (db, next, old) = (dir.join("db"), dir.join(NEXT), dir.join(OLD));
    if !db.exists() && next.exists() {
        fs::rename(&next, &db).map_err(Error::io("finish rewriting state database", &next))?;
        sync_dir(dir)?;
    }
    for leftover in [next, old] {
        if leftover.exists() {
            fs::remove_dir_all(&leftover)
                .map_err(Error::io("remove leftover state database", &leftover))?;
        }
    }
    Ok(())
}

impl Store {
    /// Rewrites the database with `objects` and `meta` values replacing
    /// (or adding to) what is stored under their keys. Consumes the store:
    /// its handles are closed before the swap.
    pub(super) fn rewrite(
        self,
        objects: &BTreeMap<ObjectId, Vec<u8>>,
        meta: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), Error> {
        let next_dir = self.dir.join(NEXT);
        if next_dir.exists() {
            fs::remove_dir_all(&next_dir)
                .map_err(Error::io("remove leftover state database", &next_dir))?;
        }
        let next = super::db::sled_config(&next_dir)
            .open()
            .map_err(|e| self.db_err(e))?;
        let copy = || -> Result<(), sled::Error> {
            for name in self.db.tree_names() {
                let from = self.db.open_tree(&name)?;
                let to = next.open_tree(&name)?;
                let mut batch = sled::Batch::default();
                for item in from.iter() {
                    let (key, value) = item?;
                    batch.insert(key, value);
                }
                if name == "objects" {
                    for (id, value) in objects {
                        batch.insert(&id.0, value.as_slice());
                    }
                }
                if name == "meta" {
                    for (key, value) in meta {
                        batch.insert(key.as_slice(), value.as_slice());
                    }
                }
                to.apply_batch(batch)?;
            }
            next.flush()?;
            Ok(())
        };
        copy().map_err(|e| self.db_err(e))?;
        drop(next);
        // Every sled handle of the old database is closed before the swap;
        // the lock is held until it is done.
        let Store {
            dir,
            db,
            objects: t1,
            generations: t2,
            meta: t3,
            journal: t4,
            plans: t5,
            keys: _,
            _lock,
        } = self;
        drop((t1, t2, t3, t4, t5));
        drop(db);
        let db = dir.join("db");
        let old = dir.join(OLD);
        fs::rename(&db, &old).map_err(Error::io("set aside state database", &db))?;
        sync_dir(&dir)?;
        fs::rename(&next_dir, &db).map_err(Error::io("swap in state database", &next_dir))?;
        sync_dir(&dir)?;
        fs::remove_dir_all(&old).map_err(Error::io("remove old state database", &old))?;
        sync_dir(&dir)?;
        drop(_lock);
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync state directory", dir))
}
