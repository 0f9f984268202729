//! The value encoding: `[format version: u16 LE][postcard bytes]`.
//!
//! Every value the store writes goes through [`encode`], every value it
//! reads through [`decode`], so a value from a newer pgbr is refused with
//! [`Error::FormatVersion`] instead of being misread. Keys are not
//! versioned: they are raw bytes (object ids, big-endian generation
//! numbers, cell names, plan ids).

use super::Error;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The format version this pgbr writes and the newest it reads.
pub(super) const FORMAT_VERSION: u16 = 1;

/// Encodes `value` (described as `what` in errors) with the version prefix.
pub(super) fn encode<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, Error> {
    postcard::to_extend(value, FORMAT_VERSION.to_le_bytes().to_vec()).map_err(|source| {
        Error::Encode {
            what: what.to_owned(),
            source,
        }
    })
}

/// Decodes a value written by [`encode`]; `what` names the key in errors.
pub(super) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    store: &str,
) -> Result<T, Error> {
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
        assert_eq!(bytes[..2], FORMAT_VERSION.to_le_bytes());
        let back: (u64, String) = decode(&bytes, "t", "s").unwrap();
        assert_eq!(back, (7, "x".to_owned()));
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
