//! The deploy target: where a cell's files live. One trait, so a remote
//! (SSH) target can be added later without touching plan or apply.

use crate::store::ObjectId;
use std::collections::BTreeMap;
use std::time::Duration;

/// One file to deploy into a generation directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    /// Path relative to the generation directory (`tls/server.key`).
    pub path: String,
    /// Unix mode bits.
    pub mode: u32,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// What a deploy dir holds, as found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The deploy dir exists.
    pub exists: bool,
    /// It holds pgbr's marker (naming this cell).
    pub managed: bool,
    /// It exists, is not empty, and has no marker.
    pub foreign: bool,
    /// The generation `current` points at.
    pub current: Option<u64>,
    /// Files under `current`: relative path -> (content id, mode).
    pub files: BTreeMap<String, (ObjectId, u32)>,
    /// Generation directories present.
    pub generations: Vec<u64>,
    /// Stale `generations/.<N>.partial` dirs a killed run left behind.
    pub partials: Vec<u64>,
}

/// The output of a hook that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutput {
    /// Exit code (`None`: killed by a signal or the timeout).
    pub code: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// The last lines of stdout and stderr.
    pub tail: String,
}

/// Where cells are deployed.
pub trait Target {
    /// Reads the state of a deploy dir without changing anything.
    fn observe(&self, cell: &str, deploy_dir: &str) -> Result<Observed, super::Error>;
    /// Creates the deploy dir (and log/lock/spool dirs) if missing, checks
    /// or writes the marker, refuses foreign content unless `adopt`.
    fn prepare(&self, req: &Prepare<'_>) -> Result<(), super::Error>;
    /// Writes `generations/<generation>/` completely and durably.
    fn materialize(
        &self,
        deploy_dir: &str,
        generation: u64,
        files: &[FileContent],
        owner: Option<&str>,
    ) -> Result<(), super::Error>;
    /// Points `current` at `generations/<generation>` atomically, or
    /// removes it (`None`).
    fn flip(&self, deploy_dir: &str, generation: Option<u64>) -> Result<(), super::Error>;
    /// Makes `link` a symlink to `<deploy_dir>/current/pgbackrest.conf`.
    fn link_config(&self, link: &str, deploy_dir: &str) -> Result<(), super::Error>;
    /// Runs a shell command with `env`, bounded by `timeout`.
    fn run_hook(
        &self,
        command: &str,
        env: &[(&str, String)],
        timeout: Duration,
    ) -> Result<HookOutput, super::Error>;
    /// Bytes held by `generations/<generation>`.
    fn generation_size(&self, deploy_dir: &str, generation: u64) -> Result<u64, super::Error>;
    /// Removes `generations/<generation>` (never the one `current` names).
    fn remove_generation(&self, deploy_dir: &str, generation: u64) -> Result<(), super::Error>;
}

/// What [`Target::prepare`] needs.
#[derive(Debug, Clone)]
pub struct Prepare<'a> {
    /// The cell.
    pub cell: &'a str,
    /// Its deploy dir.
    pub deploy_dir: &'a str,
    /// Owner (`user` or `user:group`), if set.
    pub owner: Option<&'a str>,
    /// Further directories pgbr creates for the cell (log, lock, spool).
    pub dirs: Vec<&'a str>,
    /// Take over a non-empty dir without marker.
    pub adopt: bool,
}
