//! Where a cell is deployed: the value of its `target` key (SPEC §9), as
//! the topology states it and as a manifest records it (rollback and gc
//! read no topology). A value, no IO: `apply::target` turns it into a
//! `Target`.

use std::fmt;

/// Where a cell's deploy dir lives.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum TargetSpec {
    /// This machine (the default).
    #[default]
    Local,
    /// A host reached with the system OpenSSH client.
    Ssh(SshSpec),
}

/// An SSH target: the address and the `[ssh]` settings that reach it.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct SshSpec {
    /// Login user, if given (`user@`).
    pub user: Option<String>,
    /// Host name or IP address (without brackets).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
    /// `[ssh] config_file` (absolute), passed as `-F`.
    pub config_file: Option<String>,
    /// `[ssh] options`, each passed as `-o`, before pgbr's own.
    pub options: Vec<String>,
    /// `[ssh] sudo`: host-side work runs through `sudo -n --`.
    pub sudo: bool,
}

impl TargetSpec {
    /// Whether this is the local machine.
    pub fn is_local(&self) -> bool {
        matches!(self, TargetSpec::Local)
    }
}

impl SshSpec {
    /// `[user@]host[:port]` as ssh and messages show it.
    pub fn address(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        match self.port {
            Some(p) => format!("{user}{host}:{p}"),
            None => format!("{user}{host}"),
        }
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Local => f.write_str("local"),
            TargetSpec::Ssh(s) => write!(f, "ssh://{}", s.address()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_the_topology_writes_it() {
        assert_eq!(TargetSpec::Local.to_string(), "local");
        let s = SshSpec {
            user: Some("root".into()),
            host: "10.0.0.2".into(),
            port: Some(2222),
            ..SshSpec::default()
        };
        assert_eq!(TargetSpec::Ssh(s).to_string(), "ssh://root@10.0.0.2:2222");
        let v6 = SshSpec {
            host: "fd00::2".into(),
            ..SshSpec::default()
        };
        assert_eq!(TargetSpec::Ssh(v6).to_string(), "ssh://[fd00::2]");
    }
}
