//! The one shape of a failed filesystem operation: what was being done,
//! on which path, and the system's report as its cause. Module errors wrap
//! it as their `Io` variant (transparently), so every such failure reads
//! `<action> `<path>`` followed by `caused by: <the system's report>`.
//! It is a serde value, so a failure on another host (a target's agent)
//! reaches this one with its kind.

use std::path::{Path, PathBuf};

/// A filesystem operation that failed.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{action} `{}`", path.display())]
pub struct IoError {
    /// What was being done (`read identity file`).
    pub action: String,
    /// Where.
    pub path: PathBuf,
    /// The system's report.
    #[source]
    #[serde(with = "system_error")]
    pub source: std::io::Error,
}

impl IoError {
    /// The failure of `action` on `path`, as a `map_err` argument.
    pub fn of(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> IoError {
        let (action, path) = (action.to_owned(), path.to_owned());
        move |source| IoError {
            action,
            path,
            source,
        }
    }
}

/// A `std::io::Error` as serde sees it: its OS error number, when it has
/// one (so the kind survives), and its text otherwise.
pub mod system_error {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes `e` as (OS error number, text).
    pub fn serialize<S: Serializer>(e: &std::io::Error, s: S) -> Result<S::Ok, S::Error> {
        (e.raw_os_error(), e.to_string()).serialize(s)
    }

    /// Reads what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::io::Error, D::Error> {
        let (os, text) = <(Option<i32>, String)>::deserialize(d)?;
        Ok(match os {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::other(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::IoError;
    use std::path::Path;

    fn round_trip(e: IoError) -> IoError {
        postcard::from_bytes(&postcard::to_stdvec(&e).unwrap()).unwrap()
    }

    #[test]
    fn the_message_and_the_kind_survive_serde() {
        let denied =
            IoError::of("create", Path::new("/srv/x"))(std::io::Error::from_raw_os_error(13));
        let back = round_trip(denied);
        assert_eq!(back.to_string(), "create `/srv/x`");
        assert_eq!(back.source.kind(), std::io::ErrorKind::PermissionDenied);
        let other = IoError::of("open", Path::new("/s"))(std::io::Error::other("not a dir"));
        assert_eq!(round_trip(other).source.to_string(), "not a dir");
    }
}
