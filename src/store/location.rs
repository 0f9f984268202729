//! Where a store lives, as given by `--state` / `PGBR_STATE`.
//!
//! A [`Location`] is the operator's text, kept as given; the backend it
//! names is decided once, in [`Location::resolve`]: `postgresql://…` or
//! `postgres://…` is a PostgreSQL store, anything else a directory holding
//! an embedded store.

use super::Error;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The `--state` argument: where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    raw: OsString,
}

/// A location resolved to the kind of store it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// A directory holding an embedded database.
    Dir(PathBuf),
    /// A PostgreSQL connection URL (may hold a password).
    Postgres(String),
}

impl Location {
    /// The location named by `raw` (a directory path).
    pub fn new(raw: impl Into<OsString>) -> Location {
        Location { raw: raw.into() }
    }

    /// Decides which kind of store this location names.
    pub(crate) fn resolve(&self) -> Result<Resolved, Error> {
        match self.raw.to_str() {
            Some(url) if super::backend::is_url(url) => Ok(Resolved::Postgres(url.to_owned())),
            _ => Ok(Resolved::Dir(PathBuf::from(&self.raw))),
        }
    }

    /// How messages name this location: the path, or the URL without its
    /// password.
    pub fn display(&self) -> String {
        match self.resolve() {
            Ok(Resolved::Postgres(url)) => super::backend::redact(&url),
            _ => Path::new(&self.raw).display().to_string(),
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::new(path.as_os_str())
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::new(path.into_os_string())
    }
}

impl From<&OsStr> for Location {
    fn from(raw: &OsStr) -> Location {
        Location::new(raw)
    }
}
