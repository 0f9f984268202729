//! Generation manifests: what one fleet-wide generation deployed, per cell.
//!
//! A manifest records everything needed to re-deploy its bytes without the
//! topology (rollback takes no topology): per cell the deploy dir, owner,
//! hooks, phase, its target, and the files as store object ids. No IO here.

use crate::render::Phase;
use crate::store::ObjectId;
use crate::topology::{Health, TargetSpec};
use std::collections::BTreeMap;

/// Why a generation exists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Cause {
    /// A plain `apply`.
    Apply,
    /// `apply --bootstrap CELL`.
    Bootstrap(String),
    /// `rollback --to N`.
    RollbackOf(u64),
    /// `rotate` (leaves re-issued on request).
    Rotation,
    /// A step of `rotate --ca` (1: trust both CAs, 2: re-issue, 3: drop old CA).
    CaRotation(u8),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Apply => f.write_str("apply"),
            Cause::Bootstrap(c) => write!(f, "bootstrap of {c}"),
            Cause::RollbackOf(n) => write!(f, "rollback of {n}"),
            Cause::Rotation => f.write_str("rotation"),
            Cause::CaRotation(step) => write!(f, "ca rotation step {step}"),
        }
    }
}

/// One deployed file of a cell, relative to its generation directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    /// Relative path: `pgbackrest.conf`, `tls/ca.crt`, `tls/server.crt`, `tls/server.key`.
    pub path: String,
    /// The content's id in the store.
    pub object: ObjectId,
    /// Unix mode bits (0o644, 0o600 for keys).
    pub mode: u32,
}

/// The certificate a cell has deployed in a generation (no key material).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertSummary {
    /// Serial number, lowercase hex with colons.
    pub serial: String,
    /// SHA-256 fingerprint of the DER, lowercase hex with colons.
    pub fingerprint: String,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
}

/// What one cell has in a generation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CellEntry {
    /// `bootstrap` or `full`.
    pub phase: Phase,
    /// The cell's deploy dir.
    pub deploy_dir: String,
    /// Generation whose directory holds these bytes (== the manifest's
    /// number when the cell changed in it).
    pub dir_generation: u64,
    /// The files, sorted by path.
    pub files: Vec<FileEntry>,
    /// The deployed leaf.
    pub cert: Option<CertSummary>,
    /// The renewal window in force when this generation was made.
    pub renew_before_days: u32,
    /// How the cell is deployed besides its files. Last, and encoded as
    /// its fields in order: manifests written when these were fields of
    /// the entry read the same.
    pub settings: Settings,
}

/// How a cell is deployed besides its files (owner, directories,
/// `config_link`, `activate`, health check), as its manifest entry records
/// it. A change here is a change of the cell: it gets a new generation (the
/// same bytes) and is re-activated, so the new hooks are exercised at once
/// and a later rollback knows them. `plan::Settings::of` derives it from
/// the topology.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// Owner of deployed files (`user` or `user:group`), if set.
    pub owner: Option<String>,
    /// Directories pgbr creates for the cell (log, lock, spool).
    pub dirs: Vec<String>,
    /// `config_link`, if set.
    pub config_link: Option<String>,
    /// `activate` command, if set.
    pub activate: Option<String>,
    /// The check after activation; stored as `none`, `tls` or `command:<cmd>`.
    #[serde(with = "health_text")]
    pub health: Health,
    /// Where the built-in health check connects: `host:port`.
    pub health_target: String,
    /// Where the cell was deployed (its `target`): rollback and gc reach
    /// it there without the topology. Store format 2 and later.
    pub target: TargetSpec,
}

impl Settings {
    /// The cell's log dir: the first of [`Settings::dirs`]
    /// (`plan::Settings::of` lists log, lock, spool).
    pub fn log_dir(&self) -> Option<&str> {
        self.dirs.first().map(String::as_str)
    }
}

/// [`Health`] as the text manifests have always stored it.
mod health_text {
    use crate::topology::Health;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(health: &Health, s: S) -> Result<S::Ok, S::Error> {
        match health {
            Health::None => s.serialize_str("none"),
            Health::Tls => s.serialize_str("tls"),
            Health::Command(cmd) => s.serialize_str(&format!("command:{cmd}")),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Health, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "none" => Ok(Health::None),
            "tls" => Ok(Health::Tls),
            other => match other.strip_prefix("command:") {
                Some(cmd) => Ok(Health::Command(cmd.to_owned())),
                None => Err(D::Error::custom(format!(
                    "unknown health check `{other}` (expected `none`, `tls` or `command:<cmd>`)"
                ))),
            },
        }
    }
}

/// One fleet-wide generation. `E` is the cell entry of the format it was
/// written in ([`v1::CellEntry`] for format 1).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest<E = CellEntry> {
    /// The generation number (1, 2, ...).
    pub number: u64,
    /// The generation that was latest when this one was made.
    pub parent: Option<u64>,
    /// Creation time, unix seconds (the `--now` clock when given).
    pub created_at: i64,
    /// `pgbr` version that made it.
    pub tool_version: String,
    /// blake3 of the topology it was made from (a rollback copies its target's).
    pub topology_hash: String,
    /// Why it exists.
    pub cause: Cause,
    /// Per cell, by name.
    pub cells: BTreeMap<String, E>,
}

impl<E> Manifest<E> {
    /// The same generation with each cell entry converted by `f`.
    fn map_cells<F>(self, mut f: impl FnMut(E) -> F) -> Manifest<F> {
        Manifest {
            number: self.number,
            parent: self.parent,
            created_at: self.created_at,
            tool_version: self.tool_version,
            topology_hash: self.topology_hash,
            cause: self.cause,
            cells: self.cells.into_iter().map(|(c, e)| (c, f(e))).collect(),
        }
    }
}

/// Manifests as store format 1 wrote them (before cells had a `target`):
/// every cell was local. Read only, to open old stores.
pub mod v1 {
    use super::{CertSummary, FileEntry};
    use crate::render::Phase;
    use crate::topology::{Health, TargetSpec};

    /// A format-1 cell entry: [`super::CellEntry`] without `target`.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    #[allow(missing_docs)]
    pub struct CellEntry {
        pub phase: Phase,
        pub deploy_dir: String,
        pub dir_generation: u64,
        pub files: Vec<FileEntry>,
        pub cert: Option<CertSummary>,
        pub renew_before_days: u32,
        pub owner: Option<String>,
        pub dirs: Vec<String>,
        pub config_link: Option<String>,
        pub activate: Option<String>,
        #[serde(with = "super::health_text")]
        pub health: Health,
        pub health_target: String,
    }

    /// A format-1 manifest: the same fields, format-1 cell entries.
    pub type Manifest = super::Manifest<CellEntry>;

    impl From<CellEntry> for super::CellEntry {
        fn from(e: CellEntry) -> Self {
            super::CellEntry {
                phase: e.phase,
                deploy_dir: e.deploy_dir,
                dir_generation: e.dir_generation,
                files: e.files,
                cert: e.cert,
                renew_before_days: e.renew_before_days,
                settings: super::Settings {
                    owner: e.owner,
                    dirs: e.dirs,
                    config_link: e.config_link,
                    activate: e.activate,
                    health: e.health,
                    health_target: e.health_target,
                    target: TargetSpec::Local,
                },
            }
        }
    }

    impl From<Manifest> for super::Manifest {
        fn from(m: Manifest) -> Self {
            m.map_cells(Into::into)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell entry as manifests stored it before [`Settings`] existed.
    #[derive(serde::Serialize)]
    struct FlatEntry {
        phase: Phase,
        deploy_dir: String,
        dir_generation: u64,
        files: Vec<FileEntry>,
        cert: Option<CertSummary>,
        renew_before_days: u32,
        owner: Option<String>,
        dirs: Vec<String>,
        config_link: Option<String>,
        activate: Option<String>,
        health: String,
        health_target: String,
    }

    #[test]
    fn entries_encode_as_format_1_plus_the_target() {
        for (health, text) in [
            (Health::None, "none"),
            (Health::Tls, "tls"),
            (
                Health::Command("pg_isready -p 5432".into()),
                "command:pg_isready -p 5432",
            ),
        ] {
            let flat = FlatEntry {
                phase: Phase::Full,
                deploy_dir: "/srv/zone1".into(),
                dir_generation: 3,
                files: vec![],
                cert: None,
                renew_before_days: 30,
                owner: Some("postgres".into()),
                dirs: vec!["/var/log/pgbackrest".into()],
                config_link: None,
                activate: Some("reload".into()),
                health: text.into(),
                health_target: "db1:8432".into(),
            };
            let entry = CellEntry {
                phase: Phase::Full,
                deploy_dir: "/srv/zone1".into(),
                dir_generation: 3,
                files: vec![],
                cert: None,
                renew_before_days: 30,
                settings: Settings {
                    owner: Some("postgres".into()),
                    dirs: vec!["/var/log/pgbackrest".into()],
                    config_link: None,
                    activate: Some("reload".into()),
                    health,
                    health_target: "db1:8432".into(),
                    target: TargetSpec::Local,
                },
            };
            // Format 1: the flat layout, read through `v1` (every cell was local).
            let old = postcard::to_allocvec(&flat).unwrap();
            let v1: v1::CellEntry = postcard::from_bytes(&old).unwrap();
            assert_eq!(CellEntry::from(v1), entry);
            // Format 2: the same fields, then the target.
            let mut new = old.clone();
            new.extend(postcard::to_allocvec(&TargetSpec::Local).unwrap());
            assert_eq!(postcard::to_allocvec(&entry).unwrap(), new);
            assert_eq!(postcard::from_bytes::<CellEntry>(&new).unwrap(), entry);
        }
    }

    #[test]
    fn an_unknown_health_text_is_an_error() {
        let json = r#"{"owner":null,"dirs":[],"config_link":null,"activate":null,"health":"ping","health_target":"","target":"Local"}"#;
        let err = serde_json::from_str::<Settings>(json).unwrap_err();
        assert!(
            err.to_string().contains("unknown health check `ping`"),
            "{err}"
        );
    }
}
