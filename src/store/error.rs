//! Store failures. Messages read after "failed to"; the cause is in
//! `#[source]`, never repeated in the message. A store is named by its
//! display string (a directory path, or a URL without its password), so
//! these errors read the same whichever backend served the store.

use std::path::{Path, PathBuf};

/// The cause a backend reports, without naming the backend's types.
pub type BackendCause = Box<dyn std::error::Error + Send + Sync>;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds the store.
    #[error("open state `{store}`: state is locked by {holder}")]
    Locked {
        /// The store.
        store: String,
        /// Who holds it (pid and command), as known.
        holder: String,
    },
    /// IO on a local file of the store.
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
    /// The database behind the store failed.
    #[error("access state database `{store}`")]
    Backend {
        /// The store.
        store: String,
        /// The cause.
        #[source]
        source: BackendCause,
    },
    /// A value failed verification or decoding.
    #[error("read {what} from state `{store}`: {reason}")]
    Corrupt {
        /// The store.
        store: String,
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
    pub(crate) fn io(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let (action, path) = (action.to_owned(), path.to_owned());
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }

    /// A corrupt value `what` in the store named `store`.
    pub(crate) fn corrupt(
        store: &str,
        what: impl Into<String>,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corrupt {
            store: store.to_owned(),
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// A failure of the database behind the store named `store`.
    pub(crate) fn backend(store: &str, source: impl Into<BackendCause>) -> Error {
        Error::Backend {
            store: store.to_owned(),
            source: source.into(),
        }
    }
}
