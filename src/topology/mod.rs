//! The topology: TOML modules with imports, merged like Nix modules,
//! validated into typed values ([`Topology`]).
//!
//! Loading reads files (`load.rs`); everything after the merge is pure:
//! `validate.rs` checks the top level, `[repo]` and `[tls]`, `cells.rs`
//! `[defaults]` and `[cells]`, `pgbackrest.rs` the pgBackRest release and
//! its rules, `options.rs` the pgBackRest passthrough,
//! with the shared vocabulary in `fields.rs`. Validation reports every
//! problem at once. This file re-exports the model and owns the error type.

mod cells;
pub mod example;
mod fields;
mod load;
mod model;
mod options;
mod pgbackrest;
mod target;
mod validate;

pub use cells::DEFAULT_HOOK_TIMEOUT_SECONDS;
pub use model::{
    ini_unsafe_char, is_valid_name, AbsPath, Cell, CellName, Health, KeyAlgorithm, KeyScope, Repo,
    StanzaName, Tls, Topology,
};
pub use pgbackrest::{Pgbackrest, PgbackrestVersion};
pub use target::{
    parse_address, Address, Place, SshSettings, SshSpec, TargetSpec, DEFAULT_PARALLEL,
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
///
/// When a file cannot be read or parsed, or an import is missing or cyclic,
/// only those problems are reported: validating a partial merge would add
/// misleading ones.
pub fn load(path: &Path) -> Result<Topology, Error> {
    let mut problems = fields::Problems::default();
    let topology = load::load_tree(path, &mut problems)
        .filter(|_| problems.is_empty())
        .and_then(|tree| validate::validate(&tree, &mut problems));
    match topology {
        Some(t) if problems.is_empty() => Ok(t),
        _ => Err(Error {
            root: path.to_path_buf(),
            problems: problems.into_sorted(),
        }),
    }
}
