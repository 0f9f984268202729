//! Where a cell is deployed: the value of its `target` key (SPEC §9), as
//! the topology states it and as a manifest records it (rollback and gc
//! read no topology). A value, no IO: `apply::target` turns it into a
//! `Target`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a cell's deploy dir lives.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TargetSpec {
    /// This machine (the default).
    #[default]
    Local,
    /// A host reached with the system OpenSSH client.
    Ssh(SshSpec),
}

/// Where a deploy dir physically is: this machine, or a host and port.
/// The login and the `[ssh]` settings that reach a host are not part of
/// it: they change without the cell moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place<'a> {
    /// This machine.
    Local,
    /// A host (as the topology names it) and its SSH port, if given.
    Host(&'a str, Option<u16>),
}

impl TargetSpec {
    /// Where the target's deploy dirs are (see [`Place`]).
    pub fn place(&self) -> Place<'_> {
        match self {
            TargetSpec::Local => Place::Local,
            TargetSpec::Ssh(s) => Place::Host(&s.host, s.port),
        }
    }
}

/// An SSH target: the address and the `[ssh]` settings that reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

/// The `[ssh]` table: how every SSH target is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SshSettings {
    /// `config_file`, resolved against the module that set it.
    pub config_file: Option<String>,
    /// `options`, each passed as `-o` before pgbr's own.
    pub options: Vec<String>,
    /// `parallel`: hosts observed and written at once.
    pub parallel: usize,
    /// `sudo`: host-side work runs through `sudo -n --`.
    pub sudo: bool,
}

/// `[ssh] parallel` when not set.
pub const DEFAULT_PARALLEL: usize = 10;

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings {
            config_file: None,
            options: Vec::new(),
            parallel: DEFAULT_PARALLEL,
            sudo: false,
        }
    }
}

impl SshSettings {
    /// Whether nothing was set (left out of the topology hash then).
    pub fn is_default(&self) -> bool {
        *self == SshSettings::default()
    }
}

/// A `target` value's address part: `local`, or `ssh://[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `local`.
    Local,
    /// `ssh://…`: user, host (no brackets), port.
    Ssh(Option<String>, String, Option<u16>),
}

/// Parses a `target` value (placeholders already replaced).
pub fn parse_address(s: &str) -> Option<Address> {
    if s == "local" {
        return Some(Address::Local);
    }
    let rest = s.strip_prefix("ssh://")?;
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    if let Some(u) = user {
        let ok = u
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && u.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok || u.len() > 32 {
            return None;
        }
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        if !h.contains(':') {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (h, port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('-')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !host_ok {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
    };
    Some(Address::Ssh(user.map(str::to_owned), host.to_owned(), port))
}

impl TargetSpec {
    /// The spec for an address under the `[ssh]` settings.
    pub fn new(address: Address, ssh: &SshSettings) -> TargetSpec {
        match address {
            Address::Local => TargetSpec::Local,
            Address::Ssh(user, host, port) => TargetSpec::Ssh(SshSpec {
                user,
                host,
                port,
                config_file: ssh.config_file.clone(),
                options: ssh.options.clone(),
                sudo: ssh.sudo,
            }),
        }
    }

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
    fn addresses_parse() {
        use Address::*;
        assert_eq!(parse_address("local"), Some(Local));
        assert_eq!(
            parse_address("ssh://db1"),
            Some(Ssh(None, "db1".into(), None))
        );
        assert_eq!(
            parse_address("ssh://root@10.0.0.2:2222"),
            Some(Ssh(Some("root".into()), "10.0.0.2".into(), Some(2222)))
        );
        assert_eq!(
            parse_address("ssh://pg@[fd00::2]:22"),
            Some(Ssh(Some("pg".into()), "fd00::2".into(), Some(22)))
        );
        for bad in [
            "",
            "remote",
            "ssh://",
            "ssh://-oProxyCommand=x",
            "ssh://h:0",
            "ssh://h:99999",
            "ssh://h:",
            "ssh://a b",
            "ssh://-u@h",
            "ssh://[10.0.0.1]",
            "ssh://[fd00::2",
            "scp://h",
            "ssh://h/path",
        ] {
            assert_eq!(parse_address(bad), None, "{bad}");
        }
    }

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
