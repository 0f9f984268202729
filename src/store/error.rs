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
    /// A recipient for `state seal` or `state rekey` does not parse.
    #[error("parse age recipient `{value}` {origin}: {reason}")]
    Recipient {
        /// The text given.
        value: String,
        /// Where it was given (`--recipient`, or a file and line).
        origin: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `state seal` or `state rekey` was given no recipient.
    #[error("seal the state: no age recipient: {origin}")]
    NoRecipients {
        /// Where none was found.
        origin: String,
    },
    /// A line of an identity file is no age X25519 identity.
    #[error("read identity file `{}`: line {line} is not an age X25519 identity", path.display())]
    IdentityLine {
        /// The file.
        path: PathBuf,
        /// The line number (its content is never shown: it may be a key).
        line: usize,
    },
    /// An identity file holds no identity.
    #[error("read identity file `{}`: it holds no age identity", path.display())]
    IdentityEmpty {
        /// The file.
        path: PathBuf,
    },
    /// A sealed key is needed and no identity was given.
    #[error("read {what}: the state is sealed to {recipients} and no identity was given")]
    IdentityNeeded {
        /// What was being read.
        what: String,
        /// The recipients the store is sealed to, `age1…`, comma-separated.
        recipients: String,
    },
    /// The identity given is none of the store's recipients.
    #[error(
        "read {what} with identity `{}` ({public}): the state is sealed to {recipients}",
        path.display()
    )]
    WrongIdentity {
        /// What was being read.
        what: String,
        /// The identity file.
        path: PathBuf,
        /// Its public keys, `age1…`.
        public: String,
        /// The recipients the store is sealed to.
        recipients: String,
    },
    /// `state seal` on a store sealed to other recipients.
    #[error("seal the state: it is already sealed to {recipients}")]
    AlreadySealed {
        /// The recipients it is sealed to.
        recipients: String,
    },
    /// `state rekey` on a store that is not sealed.
    #[error("rekey the state `{}`: it is not sealed", dir.display())]
    NotSealed {
        /// The store.
        dir: PathBuf,
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

    /// What the operator can do about it, when there is something.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Locked { .. } => {
                Some("wait for the other pgbr to finish; the lock is released when it exits".into())
            }
            Error::Corrupt { .. } => {
                Some("the store is damaged; restore the state directory from a backup".into())
            }
            Error::Recipient { .. } => Some(
                "a recipient is an age X25519 public key, `age1…`; \
                 `age-keygen -y IDENTITY_FILE` prints the one of an identity"
                    .into(),
            ),
            Error::NoRecipients { .. } => Some(
                "pass `--recipient age1…` (repeatable) or `--recipients-file FILE`".into(),
            ),
            Error::IdentityLine { .. } | Error::IdentityEmpty { .. } => Some(
                "an identity file holds `AGE-SECRET-KEY-1…` lines, as `age-keygen -o FILE` writes it"
                    .into(),
            ),
            Error::IdentityNeeded { .. } => Some(
                "pass `--identity FILE` or set PGBR_IDENTITY_FILE to the age identity of one of \
                 those recipients"
                    .into(),
            ),
            Error::WrongIdentity { .. } => Some(
                "use the identity file of one of those recipients; an operator who is not one \
                 needs a recipient to run `pgbr state rekey` adding them"
                    .into(),
            ),
            Error::AlreadySealed { .. } => Some(
                "to change who can read the keys, run `pgbr state rekey --recipient …` with an \
                 identity of the current recipients"
                    .into(),
            ),
            Error::NotSealed { .. } => {
                Some("seal it first: `pgbr state seal --recipient age1…`".into())
            }
            _ => None,
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
