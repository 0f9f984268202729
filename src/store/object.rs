//! Object ids and the stored form of an object.
//!
//! An object is any rendered file, certificate or key, addressed by the
//! blake3 hash of its raw content. It is stored zstd-compressed on its own
//! (no dictionary, no delta base), so every object can be read, verified
//! and garbage-collected independently. Reading always re-hashes: a value
//! whose content does not match its id is reported, never returned.
//!
//! In a sealed store a private key is stored as an age file instead
//! ([`Codec::Age`]); its id is still the blake3 of the plaintext, checked
//! after decryption.

use super::sealing::Keys;
use super::{format, seal, Error};
use std::fmt;

/// zstd level for objects. Rendered configs are long runs of near-identical
/// peer blocks; on a synthetic 256-cell config (166 KB) level 3 stores 4.0%
/// of the raw bytes in 0.3 ms, while level 19 stores 4.3% in 114 ms: higher
/// levels buy nothing here and would make an apply of 256 cells take
/// seconds of compression.
const ZSTD_LEVEL: i32 = 3;

/// blake3 of an object's content.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> ObjectId {
        ObjectId(*blake3::hash(bytes).as_bytes())
    }
    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
    /// The first 12 hex digits, for display.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_owned()
    }
    /// The id stored under a key of the objects tree, if it is one.
    pub(super) fn from_key(key: &[u8]) -> Option<ObjectId> {
        key.try_into().ok().map(ObjectId)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short())
    }
}

/// How an object's bytes are stored. New codecs are added at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) enum Codec {
    /// One zstd frame of the whole content.
    Zstd,
    /// The whole content as an age file (binary format), encrypted to the
    /// store's recipients; a private key in a sealed store.
    Age,
}

/// The value under an object's id in the objects tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct StoredObject {
    /// How `data` encodes the content.
    pub codec: Codec,
    /// Length of the raw content.
    pub raw_len: u64,
    /// The encoded content.
    pub data: Vec<u8>,
}

/// What errors call the object `id`.
pub(super) fn describe(id: &ObjectId) -> String {
    format!("object {}", id.to_hex())
}

/// The encoded, versioned value for `content`: sealed when the store is
/// sealed and the content is a private key.
pub(super) fn encode(
    id: &ObjectId,
    content: &[u8],
    store: &str,
    keys: &Keys,
) -> Result<Vec<u8>, Error> {
    match keys.recipients() {
        Some(recipients) if seal::is_private_key(content) => {
            encode_sealed(id, content, store, recipients)
        }
        _ => encode_plain(id, content, store),
    }
}

/// The sealed value for `content`.
pub(super) fn encode_sealed(
    id: &ObjectId,
    content: &[u8],
    store: &str,
    recipients: &seal::Recipients,
) -> Result<Vec<u8>, Error> {
    let what = describe(id);
    // Encrypting into memory fails only when memory runs out.
    let data = seal::seal(content, recipients).map_err(|e| Error::backend(store, e))?;
    let stored = StoredObject {
        codec: Codec::Age,
        raw_len: content.len() as u64,
        data,
    };
    format::encode_sealed(&stored, &what)
}

/// The plain (compressed) value for `content`.
pub(super) fn encode_plain(id: &ObjectId, content: &[u8], store: &str) -> Result<Vec<u8>, Error> {
    let what = describe(id);
    // Compressing an in-memory slice fails only when memory runs out.
    let data = zstd::block::compress(content, ZSTD_LEVEL).map_err(|e| Error::backend(store, e))?;
    let stored = StoredObject {
        codec: Codec::Zstd,
        raw_len: content.len() as u64,
        data,
    };
    format::encode(&stored, &what)
}

/// Decodes, decompresses (or unseals) and verifies the value stored under
/// `id`.
pub(super) fn decode(
    id: &ObjectId,
    value: &[u8],
    store: &str,
    keys: &Keys,
) -> Result<Vec<u8>, Error> {
    let what = describe(id);
    let stored: StoredObject = format::decode(value, &what, store)?;
    let raw_len = usize::try_from(stored.raw_len)
        .map_err(|_| Error::corrupt(store, &what, "recorded length does not fit in memory"))?;
    let content = match stored.codec {
        Codec::Zstd => zstd::block::decompress(&stored.data, raw_len)
            .map_err(|e| Error::corrupt(store, &what, format!("cannot decompress: {e}")))?,
        // Verified below like any object: age authenticates the ciphertext,
        // the hash ties the plaintext to the id the manifests name.
        Codec::Age => keys
            .unseal(&format!("private key {what}"), &stored.data, store)?
            .to_vec(),
    };
    if content.len() != raw_len || ObjectId::of(&content) != *id {
        return Err(Error::corrupt(store, &what, "content hash mismatch"));
    }
    Ok(content)
}

/// Checks the value stored under `id` as far as it can be checked here:
/// everything [`decode`] checks, except that a sealed object, when no
/// identity was given, is only checked to be a well-formed age file
/// (`state verify` and `state copy` work on a sealed store without one).
pub(super) fn verify(id: &ObjectId, value: &[u8], store: &str, keys: &Keys) -> Result<(), Error> {
    let what = describe(id);
    let stored: StoredObject = format::decode(value, &what, store)?;
    if stored.codec == Codec::Age && !keys.has_identity() {
        return seal::check_sealed(&stored.data)
            .map_err(|reason| Error::corrupt(store, &what, format!("cannot decrypt: {reason}")));
    }
    decode(id, value, store, keys).map(drop)
}
