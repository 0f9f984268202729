//! The validated topology: typed values that the rest of pgbr consumes.
//!
//! Everything here has already passed validation (`super::validate`): names
//! match `[a-z0-9_-]+`, paths are absolute, ports are in range, cells are
//! sorted by name. This module owns no IO and no parsing.

use super::pgbackrest::Pgbackrest;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A cell name: `[a-z0-9_-]+`, at most 63 bytes.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct CellName(String);

/// A pgBackRest stanza name: `[a-z0-9_-]+`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct StanzaName(String);

/// Whether `s` is a valid cell or stanza name.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

macro_rules! name_type {
    ($t:ident) => {
        impl $t {
            /// Checks the name; `None` when it is not `[a-z0-9_-]{1,63}`.
            pub fn new(s: &str) -> Option<Self> {
                is_valid_name(s).then(|| Self(s.to_owned()))
            }
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
name_type!(CellName);
name_type!(StanzaName);

/// The first character of `s` that must not reach a pgBackRest INI file:
/// a control character (C0 with tab, `\v`, `\f`, `\r` and NUL; DEL; C1
/// with U+0085, the "next line") or a Unicode line or paragraph separator.
/// pgBackRest splits lines on `\n` only, but a file holding the others is
/// one that editors, `grep` and reviewers read differently from pgBackRest.
///
/// The one check for every string that is rendered: topology validation
/// reports what it finds, and the INI writer asserts it never sees one.
pub fn ini_unsafe_char(s: &str) -> Option<char> {
    s.chars()
        .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
}

/// An absolute, UTF-8, normalized path (no `.`/`..` components, no trailing slash).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct AbsPath(String);

impl AbsPath {
    /// Accepts absolute paths without `.`/`..` components or control
    /// characters ([`ini_unsafe_char`]); trailing and doubled slashes are
    /// normalized away.
    pub fn new(s: &str) -> Option<Self> {
        if !s.starts_with('/') || ini_unsafe_char(s).is_some() {
            return None;
        }
        let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
        if parts.iter().any(|p| *p == "." || *p == "..") {
            return None;
        }
        Some(Self(format!("/{}", parts.join("/"))))
    }
    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The path as a `Path`.
    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }
    /// `self/rel` (rel is a relative path made of normal components).
    pub fn join(&self, rel: &str) -> AbsPath {
        if self.0 == "/" {
            AbsPath(format!("/{rel}"))
        } else {
            AbsPath(format!("{}/{rel}", self.0))
        }
    }
    /// Whether `other` is `self` or lies below it.
    pub fn contains(&self, other: &AbsPath) -> bool {
        self.0 == "/"
            || other.0 == self.0
            || (other.0.starts_with(&self.0) && other.0.as_bytes()[self.0.len()] == b'/')
    }
}

impl fmt::Display for AbsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<AbsPath> for PathBuf {
    fn from(p: AbsPath) -> PathBuf {
        PathBuf::from(p.0)
    }
}

/// Key algorithm for the CA and leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default).
    EcdsaP256,
    /// RSA 2048 with SHA-256.
    Rsa2048,
}

impl KeyAlgorithm {
    /// The topology spelling (`ecdsa-p256`, `rsa-2048`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
        }
    }
}

/// Whether every cell gets its own leaf or all share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyScope {
    /// One leaf per cell (default).
    PerCell,
    /// One leaf for all cells.
    Shared,
}

impl KeyScope {
    /// The topology spelling (`per-cell`, `shared`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::PerCell => "per-cell",
            KeyScope::Shared => "shared",
        }
    }
}

/// The `[repo]` table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Repo {
    /// `repo1-path`.
    pub path: AbsPath,
    /// `repo1-retention-full`.
    pub retention_full: u32,
}

/// The `[tls]` table: the TLS server settings and the certificate policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Tls {
    /// Cell i (in name order) listens on `server_port_base + i`.
    pub server_port_base: u16,
    /// `tls-server-address`.
    pub server_address: String,
    /// CN of the leaf certificates; `tls-server-auth = <cn>=*`.
    pub client_cn: String,
    /// Validity of the CA in days.
    pub ca_validity_days: u32,
    /// Validity of a leaf in days.
    pub cert_validity_days: u32,
    /// A leaf is due for renewal when fewer days than this remain.
    pub renew_before_days: u32,
    /// Key algorithm of the CA and leaves.
    pub key_algorithm: KeyAlgorithm,
    /// Further SANs on every leaf.
    pub extra_sans: Vec<String>,
    /// One leaf per cell or one shared leaf.
    pub key_scope: KeyScope,
    /// Whether every IP address SAN is also written (and required) as a
    /// DNS SAN: pgBackRest before 2.53 matches a `pgN-host` only against
    /// DNS SANs. Not a key: it follows `[pgbackrest] version`
    /// ([`super::PgbackrestVersion::checks_ip_sans`]). Left out of the hash
    /// while it is true, as it was before the table existed.
    #[serde(skip_serializing_if = "is_true")]
    pub ip_sans_as_dns: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

/// How `apply` checks a cell after activating it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Health {
    /// No check.
    None,
    /// Built in: TLS handshake to the cell's server with the cell's client
    /// certificate, expecting the deployed leaf.
    Tls,
    /// A shell command; exit 0 means healthy.
    Command(String),
}

/// One cell, after defaults and placeholders were applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Cell {
    /// The cell's name.
    pub name: CellName,
    /// Position in name order (0-based); TLS port = base + index.
    pub index: usize,
    /// How peers reach this cell's TLS server (DNS name or IP).
    pub host: String,
    /// `pg1-path` on this cell.
    pub pg_path: AbsPath,
    /// `pg1-socket-path`, when set.
    pub pg_socket_path: Option<AbsPath>,
    /// `pg1-port`.
    pub pg_port: u16,
    /// `pg1-user`.
    pub pg_user: String,
    /// `pg1-database`.
    pub pg_database: String,
    /// Root of everything pgbr deploys for this cell.
    pub deploy_dir: AbsPath,
    /// `user` or `user:group` owning deployed files; `None`: the deploy
    /// dir's owner (or its parent's).
    pub owner: Option<String>,
    /// `log-path` (default `<deploy_dir>/log`).
    pub log_path: AbsPath,
    /// `lock-path` (default `<deploy_dir>/lock`).
    pub lock_path: AbsPath,
    /// `spool-path` (default `<deploy_dir>/spool`).
    pub spool_path: AbsPath,
    /// A stable symlink to `current/pgbackrest.conf`, when set.
    pub config_link: Option<AbsPath>,
    /// Shell command run after the flip, when set.
    pub activate: Option<String>,
    /// Health check after activation.
    pub health: Health,
    /// How long `activate` or a health command may run before its whole
    /// process group is killed (`hook_timeout_seconds`). How a deploy runs,
    /// not what it deploys: left out of the topology hash.
    #[serde(skip)]
    pub hook_timeout: std::time::Duration,
    /// Where the cell is deployed (`target`). Left out of the topology
    /// hash when local, so hashes from before the key existed still match.
    #[serde(skip_serializing_if = "super::TargetSpec::is_local")]
    pub target: super::TargetSpec,
}

impl Cell {
    /// `<deploy_dir>/current`.
    pub fn current_dir(&self) -> AbsPath {
        self.deploy_dir.join(crate::layout::CURRENT)
    }
    /// `<deploy_dir>/current/pgbackrest.conf`: what peers name in `pgN-host-config`.
    pub fn config_path(&self) -> AbsPath {
        self.live_path(crate::layout::CONFIG)
    }
    /// `<deploy_dir>/current/<file>`, `file` one of [`crate::layout::FILES`].
    pub fn live_path(&self, file: &str) -> AbsPath {
        self.deploy_dir
            .join(&format!("{}/{file}", crate::layout::CURRENT))
    }
}

/// A validated topology. Cells are sorted by name (byte order).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Topology {
    /// The stanza.
    pub stanza: StanzaName,
    /// The repository.
    pub repo: Repo,
    /// TLS server and certificate policy.
    pub tls: Tls,
    /// The pgBackRest release the cells run and how to call it. Left out of
    /// the hash while it is the default, so a topology that does not set
    /// it keeps the hash it had before the table existed.
    #[serde(skip_serializing_if = "Pgbackrest::is_default")]
    pub pgbackrest: Pgbackrest,
    /// Further pgBackRest `[global]` options, name -> rendered value
    /// (booleans already `y`/`n`), sorted by name.
    pub options: BTreeMap<String, String>,
    /// Cells in name order; `cells[i].index == i`.
    pub cells: Vec<Cell>,
    /// The `[ssh]` table (left out of the hash when not set).
    #[serde(skip_serializing_if = "super::SshSettings::is_default")]
    pub ssh: super::SshSettings,
}

impl Topology {
    /// The cell named `name`.
    pub fn cell(&self, name: &str) -> Option<&Cell> {
        self.cells
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.cells[i])
    }
    /// The TLS server port of `cell`.
    pub fn tls_port(&self, cell: &Cell) -> u16 {
        // Validation guarantees base + index fits in a port.
        self.tls.server_port_base + cell.index as u16
    }
    /// blake3 of a canonical serialization: identifies the topology in manifests.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("topology serializes");
        blake3::hash(&json).to_hex().to_string()
    }
}
