//! Store failures. Messages read after "failed to"; the cause is in
//! `#[source]`, never repeated in the message.

use std::path::{Path, PathBuf};

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds the store.
    #[error("open state `{}`: state is locked by {holder}", dir.display())]
    Locked {
        /// The store directory.
        dir: PathBuf,
        /// Who holds it (pid and command), as known.
        holder: String,
    },
    /// IO on the store directory.
    #[error("{action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: String,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// sled failed.
    #[error("access state database `{}`", dir.display())]
    Db {
        /// The store directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: sled::Error,
    },
    /// A value failed verification or decoding.
    #[error("read {what} from state `{}`: {reason}", dir.display())]
    Corrupt {
        /// The store directory.
        dir: PathBuf,
        /// What was read.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value was written by a newer pgbr.
    #[error("read {what}: format version {found} is newer than this pgbr supports ({supported})")]
    FormatVersion {
        /// What was read.
        what: String,
        /// Its version.
        found: u16,
        /// Ours.
        supported: u16,
    },
    /// A commit's generation number is not latest + 1.
    #[error("commit generation {number}: the latest generation is {latest}")]
    GenerationNumber {
        /// Proposed.
        number: u64,
        /// Latest in the store.
        latest: u64,
    },
    /// A value could not be encoded (a bug, not bad input).
    #[error("encode {what} for the state store")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The cause.
        #[source]
        source: postcard::Error,
    },
}

impl Error {
    /// An IO failure doing `action` on `path`.
    pub(super) fn io(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let (action, path) = (action.to_owned(), path.to_owned());
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    /// A corrupt value `what` in the store at `dir`.
    pub(super) fn corrupt(dir: &Path, what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            dir: dir.to_owned(),
            what: what.into(),
            reason: reason.into(),
        }
    }
}
