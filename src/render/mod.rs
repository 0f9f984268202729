//! Rendering: the pure function (topology, cell, phase) -> `pgbackrest.conf`.
//!
//! No clock, no randomness, no environment, no disk: the same topology
//! renders byte-identical files everywhere.

mod config;
mod ini;

pub use config::render_cell;
pub use ini::{IniKey, IniValue, IniWriter};

/// Which peers a cell's config lists.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Only `pg1` (first backup of a new primary).
    Bootstrap,
    /// `pg1` plus every other cell as `pg2..pgN`.
    Full,
}

impl Phase {
    /// `bootstrap` or `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Bootstrap => "bootstrap",
            Phase::Full => "full",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
