//! The store that is not there: what a command that only reads the state
//! (`plan`) sees where no store exists yet, so that reading never creates
//! one. It holds nothing and takes nothing; a write is a bug in the caller
//! (commands that write open a real store).

use super::{Backend, Keyspace, Pair, Transaction, Visit};
use crate::store::Error;

/// An empty, read-only store named after the location it stands for.
pub(super) struct EmptyBackend {
    pub(super) name: String,
}

impl EmptyBackend {
    fn refuse(&self) -> Error {
        Error::corrupt(
            &self.name,
            "nothing",
            "a read-only command tried to write to a store that does not exist (a bug in pgbr)",
        )
    }
}

impl Backend for EmptyBackend {
    fn name(&self) -> &str {
        &self.name
    }
    fn get(&self, _: Keyspace, _: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }
    fn contains(&self, _: Keyspace, _: &[u8]) -> Result<bool, Error> {
        Ok(false)
    }
    fn put(&self, _: Keyspace, _: &[u8], _: &[u8]) -> Result<(), Error> {
        Err(self.refuse())
    }
    fn scan(&self, _: Keyspace, _: &mut Visit<'_>) -> Result<(), Error> {
        Ok(())
    }
    fn last(&self, _: Keyspace) -> Result<Option<Pair>, Error> {
        Ok(None)
    }
    fn len(&self, _: Keyspace) -> Result<u64, Error> {
        Ok(0)
    }
    fn remove(&self, _: Keyspace, _: &[Vec<u8>]) -> Result<(), Error> {
        Err(self.refuse())
    }
    fn head(&self) -> Result<u64, Error> {
        Ok(0)
    }
    fn commit(&self, _: Transaction) -> Result<(), Error> {
        Err(self.refuse())
    }
    fn sync(&self) -> Result<(), Error> {
        Ok(())
    }
    fn disk_bytes(&self) -> Result<u64, Error> {
        Ok(0)
    }
    fn rewrite(self: Box<Self>, _: Vec<(Keyspace, Vec<u8>, Vec<u8>)>) -> Result<(), Error> {
        Err(self.refuse())
    }
}
