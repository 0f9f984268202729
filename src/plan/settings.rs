//! A cell's deployment settings besides its files (owner, directories,
//! `config_link`, `activate`, health check) as the topology asks for them;
//! the type is the one manifest entries record ([`Settings`]). Pure.

pub use crate::generations::Settings;
use crate::topology::{Cell, Topology};

/// The settings key of a change in how a cell's host is reached (the
/// login, `[ssh] config_file`, `options` or `sudo`), the host and its port
/// staying the same: `apply` records it in a new generation and redeploys
/// nothing for it (the deploy dir is where it was, with the same files).
pub const CONNECTION: &str = "connection";

impl Settings {
    /// What the topology asks for `cell`.
    pub fn of(topology: &Topology, cell: &Cell) -> Settings {
        let host = if cell.host.contains(':') {
            format!("[{}]", cell.host)
        } else {
            cell.host.clone()
        };
        Settings {
            owner: cell.owner.clone(),
            dirs: vec![
                cell.log_path.to_string(),
                cell.lock_path.to_string(),
                cell.spool_path.to_string(),
            ],
            config_link: cell.config_link.as_ref().map(|p| p.to_string()),
            activate: cell.activate.clone(),
            health: cell.health.clone(),
            health_target: format!("{host}:{}", topology.tls_port(cell)),
            target: cell.target.clone(),
        }
    }

    /// The topology keys that differ between `self` and `other`.
    pub fn changed_keys(&self, other: &Settings) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.owner != other.owner {
            keys.push("owner");
        }
        if self.dirs != other.dirs {
            keys.push("log_path/lock_path/spool_path");
        }
        if self.config_link != other.config_link {
            keys.push("config_link");
        }
        if self.activate != other.activate {
            keys.push("activate");
        }
        if self.health != other.health {
            keys.push("health");
        }
        if self.health_target != other.health_target {
            keys.push("health target");
        }
        if self.target.place() != other.target.place() {
            keys.push("target");
        } else if self.target != other.target {
            keys.push(CONNECTION);
        }
        keys
    }
}
