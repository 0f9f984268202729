//! Store failures. Messages read after "failed to"; the cause is in
//! `#[source]`, never repeated in the message. A store is named by its
//! display string (a directory path, or a URL without its password), so
//! these errors read the same whichever backend served the store.

use crate::io_error::IoError;
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
    /// The store, or the directory it would be made in, belongs to another
    /// user, who alone may open it.
    #[error("open state `{store}`: `{}` belongs to `{owner}`, and pgbr runs as `{user}`", owned.display())]
    NotYours {
        /// The store.
        store: String,
        /// The directory whose owner decides.
        owned: PathBuf,
        /// Its owner's name.
        owner: String,
        /// Who pgbr runs as.
        user: String,
        /// The refusal.
        #[source]
        source: Box<Error>,
    },
    /// No store exists where a command that only reads one looked.
    #[error("read state `{store}`: there is no state there")]
    NoState {
        /// Where it looked.
        store: String,
    },
    /// IO on a local file of the store.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The database behind the store failed.
    #[error("access state database `{store}`")]
    Backend {
        /// The store.
        store: String,
        /// The cause.
        #[source]
        source: BackendCause,
    },
    /// The connection to the state database ended under this command (the
    /// server restarted or shut down, or ended the session): the open
    /// transaction was rolled back by the server.
    #[error("access state database `{store}`: the connection was lost (the server restarted, shut down or ended this session)")]
    ConnectionLost {
        /// The store, without password.
        store: String,
        /// The driver's report.
        #[source]
        source: BackendCause,
    },
    /// The state database could not write for want of disk space.
    #[error("write to state database `{store}`: the database server is out of disk space")]
    DatabaseFull {
        /// The store, without password.
        store: String,
        /// The schema whose tables could not grow.
        schema: String,
        /// The server's report ("could not extend file …").
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
    #[error("rekey the state `{store}`: it is not sealed")]
    NotSealed {
        /// The store.
        store: String,
    },
    /// A commit raced a newer one and was fenced out.
    #[error("commit generation {number} to state `{store}`: another pgbr committed generation {head} meanwhile")]
    Fenced {
        /// The store.
        store: String,
        /// The generation this commit would have made.
        number: u64,
        /// The head found.
        head: u64,
    },
    /// The lock session ended before a commit (connection lost, backend
    /// terminated): nothing was written.
    #[error("commit to state `{store}`: this pgbr no longer holds the state lock")]
    LockLost {
        /// The store.
        store: String,
    },
    /// `--state` is a URL pgbr cannot use.
    #[error("parse state URL `{url}`: {reason}")]
    BadStateUrl {
        /// The URL, without password.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Connecting to the state database failed.
    #[error("connect to state database `{store}`")]
    Connect {
        /// The store.
        store: String,
        /// The cause.
        #[source]
        source: BackendCause,
    },
    /// The TLS settings of the state URL are unusable.
    #[error("{what} for state database `{store}`")]
    DbTls {
        /// The store.
        store: String,
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: BackendCause,
    },
    /// The lock is not held by our own session: a transaction pooler.
    #[error("lock state `{store}`: the connection goes through a transaction-pooling pooler, which cannot hold a session lock")]
    Pooled {
        /// The store.
        store: String,
    },
    /// `state unlock` will not end a holder that may be alive.
    #[error("unlock state `{store}`: it is held by {holder}, which may still be running")]
    HolderMayBeAlive {
        /// The store.
        store: String,
        /// Who holds it.
        holder: String,
    },
    /// `state copy` into a store that holds something.
    #[error("copy into state `{store}`: it is not empty")]
    NotEmpty {
        /// The destination.
        store: String,
    },
    /// `state verify` found problems.
    #[error("verify state `{store}`: {count} problem(s) found")]
    Unverified {
        /// The store.
        store: String,
        /// How many.
        count: usize,
    },
    /// A state directory, its `db/` or its lock file that pgbr must not
    /// trust: another user's, writable by others, or a symlink.
    #[error("use `{}`: {why}", path.display())]
    Untrusted {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        why: Distrust,
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

/// Why a path of a state directory is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Distrust {
    /// Another user owns it.
    #[error("it is owned by `{owner}` (uid {uid}), not by the user running pgbr (uid {me})")]
    Owner {
        /// The owner's name (or uid).
        owner: String,
        /// The owner's uid.
        uid: u32,
        /// Ours.
        me: u32,
    },
    /// Others may write it.
    #[error("it is writable by others (mode {mode:04o})")]
    Writable {
        /// Its mode bits.
        mode: u32,
    },
    /// It is a symlink.
    #[error("it is a symlink, and pgbr follows no symlink inside a state directory")]
    Symlink,
}

impl Error {
    /// What the operator can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Locked { .. } => {
                "wait for the other pgbr to finish; the lock is released when it exits \
                 (`pgbr state unlock` ends the session of a holder that is gone)"
                    .into()
            }
            Error::Corrupt { .. } => {
                "the store is damaged; restore the state from a backup".into()
            }
            Error::NotYours { owner, .. } => format!(
                "run pgbr as `{owner}` (e.g. `sudo -u {owner} pgbr …`), the user who deploys \
                 with this store; or give `--state DIR` (or PGBR_STATE) a store of your own"
            ),
            Error::NoState { .. } => "pgbr keeps its state in `./state` of the directory it runs in, \
                 unless `--state DIR` or PGBR_STATE says otherwise: run it where the state is, or \
                 name it; `pgbr apply TOPOLOGY` makes the first generation"
                .into(),
            Error::Fenced { .. } | Error::LockLost { .. } => {
                "nothing was committed; run `pgbr plan` again against the current state".into()
            }
            Error::ConnectionLost { .. } => {
                "nothing was committed half (the server rolls back an unfinished transaction) and \
                 the lock went with the session; once the database is up again, run the command again"
                    .into()
            }
            Error::DatabaseFull { schema, .. } => format!(
                "nothing was committed; free disk space on the database server (the disk or \
                 tablespace that holds schema `{schema}` and the WAL), then run the command again"
            ),
            Error::BadStateUrl { .. } => "use `postgresql://user@host:port/dbname?sslmode=verify-full` (docs/store.md)".into(),
            Error::Connect { .. } => "check the host, port, user and password (`PGPASSWORD` or `~/.pgpass`) and the `sslmode`/`sslrootcert` of the state URL".into(),
            Error::DbTls { .. } => "`sslrootcert` must be a PEM file of the CA that signed the database server's certificate".into(),
            Error::Pooled { .. } => "connect to PostgreSQL directly, or through a pooler in session mode (PgBouncer `pool_mode=session`)".into(),
            Error::HolderMayBeAlive { .. } => "stop that pgbr first, or pass `--force` if you know it is gone".into(),
            Error::NotEmpty { .. } => "copy into a new directory, or a new database or `schema=`".into(),
            Error::Unverified { .. } => "restore the state from a backup, or from a copy made with `pgbr state copy`".into(),
            Error::Recipient { .. } => "a recipient is an age X25519 public key, `age1…`; \
                 `age-keygen -y IDENTITY_FILE` prints the one of an identity"
                .into(),
            Error::NoRecipients { .. } => {
                "pass `--recipient age1…` (repeatable) or `--recipients-file FILE`".into()
            }
            Error::IdentityLine { .. } | Error::IdentityEmpty { .. } => {
                "an identity file holds `AGE-SECRET-KEY-1…` lines, as `age-keygen -o FILE` writes it"
                    .into()
            }
            Error::IdentityNeeded { .. } => "pass `--identity FILE` or set PGBR_IDENTITY_FILE to \
                 the age identity of one of those recipients"
                .into(),
            Error::WrongIdentity { .. } => "use the identity file of one of those recipients; to \
                 add an operator, one of them runs `pgbr state rekey` with the new recipient list"
                .into(),
            Error::AlreadySealed { .. } => "to change who can read the keys, run `pgbr state \
                 rekey --recipient …` with an identity of the current recipients"
                .into(),
            Error::NotSealed { .. } => "seal it first: `pgbr state seal --recipient age1…`".into(),
            Error::Untrusted { why, path } => match why {
                Distrust::Owner { owner, .. } => format!(
                    "it holds private keys: run pgbr as `{owner}`, or use a state directory of \
                     your own; if you trust it as it is, `chown -R` it to yourself"
                ),
                Distrust::Writable { .. } => format!(
                    "someone else could have planted links or keys in it: check its content, \
                     then `chmod -R go-rwx {}`",
                    path.display()
                ),
                Distrust::Symlink => format!(
                    "remove `{}` (pgbr makes its own) and find out who put it there",
                    path.display()
                ),
            },
            _ => return None,
        })
    }

    /// An IO failure doing `action` on `path`.
    pub(crate) fn io(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let io = IoError::of(action, path);
        move |source| Error::Io(io(source))
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
