//! The value encoding: `[format version: u16 LE][postcard bytes]`.
//!
//! Every value the store writes goes through [`encode`] (or
//! [`encode_sealed`]), every value it reads through [`decode`], so a value
//! from a newer pgbr is refused with [`Error::FormatVersion`] instead of
//! being misread (see [`FORMAT_VERSION`] for the versions). Keys are not
//! versioned: they are raw bytes (object ids, big-endian generation
//! numbers, cell names, plan ids).

use super::Error;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The newest format version this pgbr reads.
///
/// 1: the first. 2: manifest cell entries record their `target`; every
/// other value is laid out as in 1 (see [`decode_migrating`]). 3: the
/// values that belong to sealing (sealed objects, the seal record, a sealed
/// store's PKI record), laid out as in 2: a pgbr that does not know sealing
/// refuses them instead of storing a plaintext key beside them.
pub(super) const FORMAT_VERSION: u16 = 3;

/// The version of every value except those that belong to sealing.
pub(super) const PLAIN_VERSION: u16 = 2;

/// The version of the values that belong to sealing.
pub(super) const SEALED_VERSION: u16 = 3;

/// Encodes `value` (described as `what` in errors) with the version prefix.
pub fn encode<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, Error> {
    encode_as(value, what, PLAIN_VERSION)
}

/// Encodes a value that belongs to sealing (version 3).
pub(super) fn encode_sealed<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, Error> {
    encode_as(value, what, SEALED_VERSION)
}

fn encode_as<T: Serialize>(value: &T, what: &str, version: u16) -> Result<Vec<u8>, Error> {
    postcard::to_extend(value, version.to_le_bytes().to_vec()).map_err(|source| Error::Encode {
        what: what.to_owned(),
        source,
    })
}

/// Decodes a value written by [`encode`]; `what` names the key in errors.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str, store: &str) -> Result<T, Error> {
    let (_, body) = version(bytes, what, store)?;
    body_of(body, what, store)
}

/// Decodes a value whose layout changed in format 2: format-1 bytes are
/// read as `V1` and converted, so stores written by older pgbr still open.
pub fn decode_migrating<T, V1>(bytes: &[u8], what: &str, store: &str) -> Result<T, Error>
where
    T: DeserializeOwned,
    V1: DeserializeOwned + Into<T>,
{
    match version(bytes, what, store)? {
        (1, body) => body_of::<V1>(body, what, store).map(Into::into),
        (_, body) => body_of(body, what, store),
    }
}

/// The version header and the body after it; refuses unknown versions.
fn version<'b>(bytes: &'b [u8], what: &str, store: &str) -> Result<(u16, &'b [u8]), Error> {
    let Some((version, body)) = bytes.split_first_chunk::<2>() else {
        return Err(Error::corrupt(
            store,
            what,
            "value is shorter than its version header",
        ));
    };
    let version = u16::from_le_bytes(*version);
    if version > FORMAT_VERSION {
        return Err(Error::FormatVersion {
            what: what.to_owned(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(Error::corrupt(
            store,
            what,
            "format version 0 does not exist",
        ));
    }
    Ok((version, body))
}

fn body_of<T: DeserializeOwned>(body: &[u8], what: &str, store: &str) -> Result<T, Error> {
    let (value, rest) = postcard::take_from_bytes(body)
        .map_err(|e| Error::corrupt(store, what, format!("cannot decode: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::corrupt(
            store,
            what,
            format!("{} unexpected bytes after the value", rest.len()),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_carries_the_version() {
        let bytes = encode(&(7u64, "x".to_owned()), "t").unwrap();
        assert_eq!(bytes[..2], PLAIN_VERSION.to_le_bytes());
        let back: (u64, String) = decode(&bytes, "t", "s").unwrap();
        assert_eq!(back, (7, "x".to_owned()));
        let bytes = encode_sealed(&7u64, "t").unwrap();
        assert_eq!(bytes[..2], SEALED_VERSION.to_le_bytes());
        assert_eq!(decode::<u64>(&bytes, "t", "s").unwrap(), 7);
    }

    #[test]
    fn newer_version_is_refused() {
        let mut bytes = encode(&1u64, "t").unwrap();
        bytes[..2].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let err = decode::<u64>(&bytes, "generation 3", "s").unwrap_err();
        assert!(matches!(err, Error::FormatVersion { found, .. } if found == FORMAT_VERSION + 1));
        assert_eq!(
            err.to_string(),
            format!(
                "read generation 3: format version {} is newer than this pgbr supports ({})",
                FORMAT_VERSION + 1,
                FORMAT_VERSION
            )
        );
    }

    #[test]
    fn format_1_values_are_migrated() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Old(u64);
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct New(u64, bool);
        impl From<Old> for New {
            fn from(o: Old) -> New {
                New(o.0, false)
            }
        }
        let mut old = postcard::to_allocvec(&Old(7)).unwrap();
        old.splice(0..0, 1u16.to_le_bytes());
        let new: New = decode_migrating::<New, Old>(&old, "t", "s").unwrap();
        assert_eq!(new, New(7, false));
        let mut current = postcard::to_allocvec(&(8u64, true)).unwrap();
        current.splice(0..0, FORMAT_VERSION.to_le_bytes());
        let new: New = decode_migrating::<New, Old>(&current, "t", "s").unwrap();
        assert_eq!(new, New(8, true));
    }

    #[test]
    fn garbage_is_corrupt_and_names_the_key() {
        for bytes in [
            &b""[..],
            &b"\x01"[..],
            &b"\x01\x00\xff\xff"[..],
            &b"\x00\x00\x01"[..],
        ] {
            let err = decode::<String>(bytes, "pki record", "st").unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
            assert!(err
                .to_string()
                .starts_with("read pki record from state `st`: "));
        }
        let mut bytes = encode(&1u8, "t").unwrap();
        bytes.push(0);
        assert!(matches!(
            decode::<u8>(&bytes, "t", "s"),
            Err(Error::Corrupt { .. })
        ));
    }
}
