//! The topology: TOML modules with imports, merged like Nix modules,
//! validated into typed values ([`Topology`]).
//!
//! Loading reads files; everything after the merge is pure. Validation
//! reports every problem at once. (STUB: the topology helper implements
//! `load`.)

mod model;

pub use model::{
    is_valid_name, AbsPath, Cell, CellName, Health, KeyAlgorithm, KeyScope, Repo, StanzaName, Tls,
    Topology,
};

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a topology: file, key path, what was expected and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The module file the value came from.
    pub file: String,
    /// Dotted key path (`cells.zone2.pg_port`); empty for whole-file problems.
    pub key: String,
    /// `expected …, found …` or another explanation.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

/// A topology that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("load topology `{}`: {} problem(s)", root.display(), problems.len())]
pub struct Error {
    /// The root module.
    pub root: PathBuf,
    /// Every problem found, in file then key order.
    pub problems: Vec<Problem>,
}

/// Loads, merges and validates the topology rooted at `path`.
pub fn load(path: &Path) -> Result<Topology, Error> {
    let _ = path;
    todo!("topology helper")
}
