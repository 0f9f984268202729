//! A sealed store (SPEC §11): which recipients it is sealed to, the
//! identity that opens its keys, and the two operations that change them,
//! [`Store::seal`] and [`Store::rekey`].
//!
//! The seal record (`meta/seal`) lists the recipients. While it exists,
//! every object that holds a private key is stored sealed, whoever stores
//! it (`put_object` decides from the content), so no caller can put a
//! plaintext key into a sealed store. Reading a sealed object needs the
//! identity; nothing else does: manifests, certificates, ids and sizes stay
//! readable, so `plan`, `status`, `gc` and the rest work without one.
//! Sealing and rekeying go through [`Backend::rewrite`](super::backend),
//! so no earlier copy of a key, plaintext or sealed to a removed
//! recipient, stays in the store's files, whichever backend keeps them.

use super::backend::Keyspace;
use super::object::{self, Codec, StoredObject};
use super::seal::{self, Identity, Recipients, UnsealError};
use super::store::PKI_KEY;
use super::{format, Error, ObjectId, PkiRecord, Store};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// The key under which the seal record lives in the meta tree.
pub(super) const SEAL_KEY: &[u8] = b"seal";

/// The seal record: who the store's keys are sealed to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct SealRecord {
    /// The recipients, `age1…`, sorted.
    pub recipients: Vec<String>,
}

/// A store's sealing state: its recipients (none: not sealed) and the
/// identity file given for this run, loaded when first needed.
#[derive(Debug, Default)]
pub(super) struct Keys {
    recipients: Option<Recipients>,
    identity_path: Option<PathBuf>,
    identity: OnceLock<Identity>,
}

impl Keys {
    /// The state of a store whose seal record is `record` (none: unsealed).
    pub(super) fn from_record(record: Option<&[u8]>, store: &str) -> Result<Keys, Error> {
        let recipients = match record {
            Some(value) => {
                let record: SealRecord = format::decode(value, "seal record", store)?;
                Some(Recipients::from_recorded(&record.recipients, store)?)
            }
            None => None,
        };
        Ok(Keys {
            recipients,
            ..Keys::default()
        })
    }

    /// The recipients, when the store is sealed.
    pub(super) fn recipients(&self) -> Option<&Recipients> {
        self.recipients.as_ref()
    }

    /// Whether an identity file was given.
    pub(super) fn has_identity(&self) -> bool {
        self.identity_path.is_some()
    }

    /// The identity, loaded on first use; `what` names what needs it.
    fn identity(&self, what: &str, recipients: &Recipients) -> Result<&Identity, Error> {
        if let Some(identity) = self.identity.get() {
            return Ok(identity);
        }
        let Some(path) = &self.identity_path else {
            return Err(Error::IdentityNeeded {
                what: what.to_owned(),
                recipients: recipients.to_string(),
            });
        };
        let loaded = Identity::load(path)?;
        Ok(self.identity.get_or_init(|| loaded))
    }

    /// The identity, checked to be one of the recipients.
    fn matching_identity(&self, what: &str, recipients: &Recipients) -> Result<&Identity, Error> {
        let identity = self.identity(what, recipients)?;
        if identity.matches(recipients) {
            Ok(identity)
        } else {
            Err(wrong_identity(what, identity, recipients))
        }
    }

    /// Decrypts a sealed object's data.
    pub(super) fn unseal(
        &self,
        what: &str,
        data: &[u8],
        store: &str,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let Some(recipients) = &self.recipients else {
            return Err(Error::corrupt(
                store,
                what,
                "it is sealed but the state has no seal record",
            ));
        };
        let identity = self.identity(what, recipients)?;
        seal::unseal(data, identity).map_err(|e| match e {
            UnsealError::NotARecipient => wrong_identity(what, identity, recipients),
            UnsealError::Damaged(reason) => {
                Error::corrupt(store, what, format!("cannot decrypt: {reason}"))
            }
        })
    }
}

fn wrong_identity(what: &str, identity: &Identity, recipients: &Recipients) -> Error {
    Error::WrongIdentity {
        what: what.to_owned(),
        path: identity.path().to_owned(),
        public: identity
            .public_keys()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        recipients: recipients.to_string(),
    }
}

/// What `seal` or `rekey` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealReport {
    /// The recipients the store is now sealed to, `age1…`.
    pub recipients: Vec<String>,
    /// Private key objects sealed (or re-sealed) to them.
    pub keys: usize,
}

impl Store {
    /// Uses the identity file at `path` (if any) to open sealed keys; it is
    /// read only when a sealed key is.
    pub fn set_identity(&mut self, path: Option<&Path>) {
        self.keys.identity_path = path.map(Path::to_owned);
        self.keys.identity = OnceLock::new();
    }

    /// The recipients the store is sealed to (`age1…`), none when it is not.
    pub fn sealed_to(&self) -> Vec<String> {
        self.keys
            .recipients()
            .map(Recipients::to_strings)
            .unwrap_or_default()
    }

    /// Fails unless the store's keys can be opened: an unsealed store, or a
    /// sealed one with an identity of one of its recipients. Commands that
    /// will need a key ask first, before they change anything.
    pub fn require_keys(&self, what: &str) -> Result<(), Error> {
        match self.keys.recipients() {
            Some(recipients) => self.keys.matching_identity(what, recipients).map(drop),
            None => Ok(()),
        }
    }

    /// Seals every private key in the store to `recipients`, and keeps every
    /// later one sealed. On a store already sealed to the same recipients it
    /// seals whatever key is still plaintext (none, normally); to other
    /// recipients it is refused: that is [`Store::rekey`]. Consumes the
    /// store: the database is rewritten.
    pub fn seal(self, recipients: &Recipients) -> Result<SealReport, Error> {
        if let Some(current) = self.keys.recipients() {
            if current != recipients {
                return Err(Error::AlreadySealed {
                    recipients: current.to_string(),
                });
            }
        }
        self.reseal(recipients, false)
    }

    /// Re-encrypts every sealed key to `recipients` (add an operator,
    /// remove one who left). Needs an identity of the current recipients.
    /// Consumes the store: the database is rewritten, so no copy sealed to
    /// the old set remains in it.
    pub fn rekey(self, recipients: &Recipients) -> Result<SealReport, Error> {
        let Some(current) = self.keys.recipients() else {
            return Err(Error::NotSealed {
                store: self.name().to_owned(),
            });
        };
        self.keys
            .matching_identity("the sealed keys to rekey them", current)?;
        self.reseal(recipients, true)
    }

    /// Seals every plaintext private key object to `recipients` (and, with
    /// `again`, re-seals the sealed ones) and rewrites the database with
    /// them and the new seal record.
    fn reseal(self, recipients: &Recipients, again: bool) -> Result<SealReport, Error> {
        let name = self.name();
        let mut puts = Vec::new();
        self.backend.scan(Keyspace::Objects, &mut |key, value| {
            let Some(id) = ObjectId::from_key(key) else {
                return Ok(());
            };
            let stored: StoredObject = format::decode(value, &object::describe(&id), name)?;
            if stored.codec == Codec::Age && !again {
                return Ok(());
            }
            let content = Zeroizing::new(object::decode(&id, value, name, &self.keys)?);
            if stored.codec == Codec::Age || seal::is_private_key(&content) {
                let sealed = object::encode_sealed(&id, &content, name, recipients)?;
                puts.push((Keyspace::Objects, id.0.to_vec(), sealed));
            }
            Ok(())
        })?;
        let keys = puts.len();
        let record = SealRecord {
            recipients: recipients.to_strings(),
        };
        let value = format::encode_sealed(&record, "seal record")?;
        puts.push((Keyspace::Meta, SEAL_KEY.to_vec(), value));
        // The PKI record of a sealed store is version 3 too: an older pgbr
        // refuses it instead of issuing a key in the clear beside it.
        if let Some(value) = self.backend.get(Keyspace::Meta, PKI_KEY)? {
            let pki: PkiRecord = format::decode(&value, "pki record", name)?;
            let value = format::encode_sealed(&pki, "pki record")?;
            puts.push((Keyspace::Meta, PKI_KEY.to_vec(), value));
        }
        self.backend.rewrite(puts)?;
        Ok(SealReport {
            recipients: record.recipients,
            keys,
        })
    }
}
