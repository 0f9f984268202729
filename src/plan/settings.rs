//! A cell's deployment settings besides its files (owner, directories,
//! `config_link`, `activate`, health check), as the topology asks for them
//! and as a manifest entry recorded them. Pure.

use crate::generations::CellEntry;
use crate::topology::{Cell, Health, TargetSpec, Topology};

/// How a cell is deployed besides its files, as its manifest entry records
/// it. A change here is a change of the cell: it gets a new generation (the
/// same bytes) and is re-activated, so the new hooks are exercised at once
/// and a later rollback knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Owner of deployed files.
    pub owner: Option<String>,
    /// log, lock and spool directories.
    pub dirs: Vec<String>,
    /// `config_link`.
    pub config_link: Option<String>,
    /// `activate`.
    pub activate: Option<String>,
    /// Health check: `none`, `tls` or `command:<cmd>`.
    pub health: String,
    /// `host:port` of the cell's TLS server.
    pub health_target: String,
    /// Where the cell is deployed.
    pub target: TargetSpec,
}

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
            health: match &cell.health {
                Health::None => "none".into(),
                Health::Tls => "tls".into(),
                Health::Command(c) => format!("command:{c}"),
            },
            health_target: format!("{host}:{}", topology.tls_port(cell)),
            target: cell.target.clone(),
        }
    }

    /// What a manifest entry recorded.
    pub fn recorded(e: &CellEntry) -> Settings {
        Settings {
            owner: e.owner.clone(),
            dirs: e.dirs.clone(),
            config_link: e.config_link.clone(),
            activate: e.activate.clone(),
            health: e.health.clone(),
            health_target: e.health_target.clone(),
            target: e.target.clone(),
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
        if self.target != other.target {
            keys.push("target");
        }
        keys
    }
}
