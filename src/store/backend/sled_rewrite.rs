//! Rewriting a sled database into a fresh one ([`Backend::rewrite`] for
//! sled), for sealing and rekeying.
//!
//! sled is log-structured: a value overwritten in place stays in an old
//! segment of its files until sled happens to reuse the space. Sealing
//! must leave no plaintext key behind (and rekeying no copy a removed
//! recipient could open), so the rewrite copies every tree into a new
//! database (`db.next`), with the new values substituted, and swaps it in:
//!
//! 1. build and flush `db.next` (the old `db` untouched);
//! 2. rename `db` to `db.old`, then `db.next` to `db`, syncing the state
//!    directory after each;
//! 3. remove `db.old`.
//!
//! A crash in 1 leaves `db` as it was; in 2, `db` missing means `db.next`
//! was complete. [`recover`], run by every open, finishes or discards what
//! a crash left.
//!
//! [`Backend::rewrite`]: super::Backend::rewrite

use super::sled::SledBackend;
use super::Keyspace;
use crate::store::Error;
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

/// Rewrites `backend`'s database with `puts` applied, then swaps it in.
pub(super) fn rewrite(
    backend: SledBackend,
    puts: Vec<(Keyspace, Vec<u8>, Vec<u8>)>,
) -> Result<(), Error> {
    let dir = backend.dir.clone();
    let next_dir = dir.join(NEXT);
    if next_dir.exists() {
        fs::remove_dir_all(&next_dir)
            .map_err(Error::io("remove leftover state database", &next_dir))?;
    }
    super::sled_dir::prepare_db(&next_dir)?;
    let copy = || -> Result<(), ::sled::Error> {
        let next = super::sled::config(&next_dir).open()?;
        for name in backend.db.tree_names() {
            let from = backend.db.open_tree(&name)?;
            let to = next.open_tree(&name)?;
            let mut batch = ::sled::Batch::default();
            for item in from.iter() {
                let (key, value) = item?;
                batch.insert(key, value);
            }
            for (space, key, value) in &puts {
                if super::sled::tree_name(*space).as_bytes() == &name[..] {
                    batch.insert(key.as_slice(), value.as_slice());
                }
            }
            to.apply_batch(batch)?;
        }
        next.flush()?;
        Ok(())
    };
    copy().map_err(|e| backend.err(e))?;
    super::sled_dir::tighten_db(&next_dir)?;
    // Every sled handle of the old database is closed before the swap; the
    // lock is held until it is done.
    let lock = backend.close();
    let db = dir.join("db");
    let old = dir.join(OLD);
    fs::rename(&db, &old).map_err(Error::io("set aside state database", &db))?;
    sync_dir(&dir)?;
    fs::rename(&next_dir, &db).map_err(Error::io("swap in state database", &next_dir))?;
    sync_dir(&dir)?;
    fs::remove_dir_all(&old).map_err(Error::io("remove old state database", &old))?;
    sync_dir(&dir)?;
    drop(lock);
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync state directory", dir))
}
