//! The deploy target: where a cell's files live and its hooks run. One
//! trait, one implementation per transport in a file of its own
//! (`local.rs`), and one place that chooses among them ([`Targets::of`]):
//! plan and apply never learn which one they got.
//!
//! Errors are transport-neutral: a failure names a path on the cell's
//! machine and what was done, whichever machine that is; a remote target
//! adds the failures of reaching a host (unreachable, lost, no agent),
//! which name the host's address and ssh's words. None names the cell:
//! the caller, which knows it, does (`zone3: reach …`, ``deploy cell
//! `zone3` ``), so that a message names it once.
//! They are serde values: the agent sends the local target's errors back
//! as they are.

pub mod agent;
mod binaries;
mod local;
mod ssh;

pub use local::MARKER;

use crate::io_error::IoError;
use crate::plan::Observed;
use crate::topology::TargetSpec;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One file to deploy into a generation directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileContent {
    /// Path relative to the generation directory (`tls/server.key`).
    pub path: String,
    /// Unix mode bits.
    pub mode: u32,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The output of a hook that ran.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HookOutput {
    /// Exit code (`None`: killed by a signal or the timeout).
    pub code: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// The last lines of stdout and stderr (bounded: at most
    /// [`crate::apply::hook::TAIL_CHARS`] bytes).
    pub tail: String,
    /// The file on the cell's machine that holds the whole output, if any.
    pub log: Option<String>,
}

/// A hook to run on a cell's machine (`activate`, a health command, the
/// pgBackRest version check).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HookRun {
    /// The shell command (`/bin/sh -c`).
    pub command: String,
    /// Its environment, besides pgbr's own.
    pub env: Vec<(String, String)>,
    /// After this long its whole process group is killed.
    pub timeout: Duration,
    /// Where to keep its whole output (replaced on each run); `None`, or a
    /// missing directory: nowhere once it finished.
    pub log: Option<String>,
}

/// Where cells are deployed. `Send + Sync`: observation and writing run on
/// several targets at once.
pub trait Target: Send + Sync {
    /// Reads the state of a deploy dir without changing anything.
    fn observe(&self, cell: &str, deploy_dir: &str) -> Result<Observed, Error>;
    /// Creates the deploy dir (and log/lock/spool dirs) if missing, takes
    /// the deploy dir's lock for the rest of the run, checks or writes the
    /// marker (which names the store), refuses foreign content, another
    /// store's dir, or a `current` this store did not leave there, unless
    /// `adopt`. Returns the generation `current` names, read under the
    /// lock: the one the flip must find there ([`Target::flip`]'s `from`).
    fn prepare(&self, req: &Prepare<'_>) -> Result<Option<u64>, Error>;
    /// Checks that `owner` (`user` or `user:group`) exists on the cell's
    /// machine ([`Error::Owner`] when not), so that nothing is committed
    /// for a cell that could not be deployed.
    fn resolve_owner(&self, owner: &str) -> Result<(), Error>;
    /// Writes `generations/<generation>/` completely and durably.
    fn materialize(
        &self,
        deploy_dir: &str,
        generation: u64,
        files: &[FileContent],
        owner: Option<&str>,
    ) -> Result<(), Error>;
    /// Points `current` at `generations/<to>` atomically, or removes it
    /// (`None`), under the deploy dir's lock, if and only if `current`
    /// names `from` now (`None`: there is none). Anything else is refused
    /// and nothing changes: a flip that arrives late (sent before a
    /// connection was cut) never moves a cell behind another run's back.
    fn flip(&self, deploy_dir: &str, from: Option<u64>, to: Option<u64>) -> Result<(), Error>;
    /// Makes `link` a symlink to `<deploy_dir>/current/pgbackrest.conf`.
    fn link_config(&self, link: &str, deploy_dir: &str) -> Result<(), Error>;
    /// Runs a hook in a process group of its own, bounded by its timeout.
    fn run_hook(&self, hook: &HookRun) -> Result<HookOutput, Error>;
    /// Bytes held by `generations/<generation>`.
    fn generation_size(&self, deploy_dir: &str, generation: u64) -> Result<u64, Error>;
    /// Removes `generations/<generation>` (never the one `current` names).
    fn remove_generation(&self, deploy_dir: &str, generation: u64) -> Result<(), Error>;
    /// Removes a stale `generations/.<generation>.partial` a killed run left.
    fn remove_partial(&self, deploy_dir: &str, generation: u64) -> Result<(), Error>;
    /// The copies of other pgbr builds this target keeps for itself (a
    /// host's agent cache, `ssh.rs`), described for people; removed
    /// unless `dry_run`. What `gc` collects besides generations; none
    /// on this machine.
    fn other_builds(&self, dry_run: bool) -> Result<Vec<String>, Error> {
        let _ = dry_run;
        Ok(Vec::new())
    }
}

/// What [`Target::prepare`] needs. Sent as it is to a remote host's agent
/// (`agent.rs`): a borrowed field other than a plain `&str` needs
/// `#[serde(borrow)]`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Prepare<'a> {
    /// The cell.
    pub cell: &'a str,
    /// Its deploy dir.
    pub deploy_dir: &'a str,
    /// Owner (`user` or `user:group`), if set.
    #[serde(borrow)]
    pub owner: Option<&'a str>,
    /// Further directories pgbr creates for the cell (log, lock, spool).
    #[serde(borrow)]
    pub dirs: Vec<&'a str>,
    /// Take over a non-empty dir without marker, or one another store
    /// deploys (the marker is rewritten to name this store).
    pub adopt: bool,
    /// The id of the store that deploys (recorded in the marker; a dir
    /// whose marker names another store is refused unless `adopt`).
    pub store: &'a str,
    /// How that store is named (a path or a URL without password), for
    /// the messages of whoever meets the marker later.
    pub store_name: &'a str,
    /// The generation being deployed: a dir holding a newer one was
    /// deployed by another store (or another copy of this one).
    pub generation: u64,
    /// The generation this store has live there (`None`: none): a dir
    /// whose `current` is anything else was changed by someone else.
    pub expect_current: Option<u64>,
}

/// The targets of one run: each cell's [`TargetSpec`] turned into its
/// [`Target`], once per distinct spec (a remote host is connected to once
/// per run, however many cells it holds).
#[derive(Default)]
pub struct Targets {
    open: Mutex<BTreeMap<TargetSpec, Arc<dyn Target>>>,
    fixed: Option<Arc<dyn Target>>,
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.open.lock().map(|o| o.len()).unwrap_or_default();
        f.debug_struct("Targets").field("open", &open).finish()
    }
}

impl Targets {
    /// No target opened yet.
    pub fn new() -> Targets {
        Targets::default()
    }

    /// Every cell on `target`, whatever its spec: for benchmarks and tests
    /// that bring a target of their own.
    pub fn fixed(target: Arc<dyn Target>) -> Targets {
        Targets {
            open: Mutex::default(),
            fixed: Some(target),
        }
    }

    /// The target a cell is deployed on. The one place that chooses an
    /// implementation.
    pub fn of(&self, spec: &TargetSpec) -> Result<Arc<dyn Target>, Error> {
        if let Some(t) = &self.fixed {
            return Ok(Arc::clone(t));
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = open.get(spec) {
            return Ok(Arc::clone(t));
        }
        let target: Arc<dyn Target> = match spec {
            TargetSpec::Local => Arc::new(local::LocalTarget::default()),
            TargetSpec::Ssh(s) => Arc::new(ssh::SshTarget::new(s.clone())),
        };
        open.insert(spec.clone(), Arc::clone(&target));
        Ok(target)
    }
}

impl Drop for Targets {
    /// Closes the targets all at once: a remote host's goodbye (the agent
    /// told to end, its master closed) is a wait, not work, and 32 hosts
    /// closed one after the other would wait 32 times.
    fn drop(&mut self) {
        let open = std::mem::take(self.open.get_mut().unwrap_or_else(|e| e.into_inner()));
        std::thread::scope(|s| {
            for target in open.into_values() {
                s.spawn(move || drop(target));
            }
        });
    }
}

/// Failures of a target operation, the same for every transport. (The
/// remote variants box their strings: this error is carried by others.)
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Error {
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// pgbr refused to touch a path.
    #[error("use `{}`: {reason}", path.display())]
    Refused {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
        /// What to do.
        hint: String,
    },
    /// The owner could not be resolved.
    #[error("resolve owner `{owner}`: {reason}")]
    Owner {
        /// The owner spec.
        owner: String,
        /// Why.
        reason: String,
    },
    /// chown failed.
    #[error("give `{}` to uid {uid} gid {gid}", path.display())]
    Chown {
        /// The path.
        path: PathBuf,
        /// Wanted uid.
        uid: u32,
        /// Wanted gid.
        gid: u32,
        /// The cause.
        #[source]
        #[serde(with = "crate::io_error::system_error")]
        source: std::io::Error,
    },
    /// This pgbr cannot serve the cell's target.
    #[error("deploy to `{target}`: {reason}")]
    Unsupported {
        /// The target, as the topology writes it.
        target: String,
        /// Why.
        reason: String,
    },
    /// The host could not be reached, or refused the login (SPEC §9).
    #[error("reach `{target}`: {}{detail}", why.lead())]
    Unreachable {
        /// The target, as the topology writes it.
        target: Box<str>,
        /// The cells on it that this run has named so far. Not in the
        /// message: whoever reports the error names its cell, once.
        cells: Box<[String]>,
        /// What kind of failure (decides the hint).
        why: Reach,
        /// ssh's own words.
        detail: Box<str>,
    },
    /// The connection to the host broke, or an answer did not come in time.
    #[error("{action} on `{target}`: the host was lost: {detail}")]
    Lost {
        /// The target.
        target: Box<str>,
        /// The cells on it that this run has named so far. Not in the
        /// message: whoever reports the error names its cell, once.
        cells: Box<[String]>,
        /// What was being done.
        action: Box<str>,
        /// ssh's own words, or the bound that ran out.
        detail: Box<str>,
    },
    /// pgbr's agent could not be installed or started on the host.
    #[error("start pgbr's agent on `{target}`: {detail}")]
    Agent {
        /// The target.
        target: Box<str>,
        /// The cells on it that this run has named so far. Not in the
        /// message: whoever reports the error names its cell, once.
        cells: Box<[String]>,
        /// What went wrong, in the host's words.
        detail: Box<str>,
    },
    /// `[ssh] sudo = true`, and `sudo -n` refused (it wants a password).
    #[error("run pgbr's agent through `sudo -n` on `{target}`: {detail}")]
    Sudo {
        /// The target.
        target: Box<str>,
        /// The cells on it that this run has named so far. Not in the
        /// message: whoever reports the error names its cell, once.
        cells: Box<[String]>,
        /// sudo's own words.
        detail: Box<str>,
    },
    /// The host is of another OS or architecture than this pgbr, and no
    /// agent of this build for it lies next to pgbr.
    #[error(
        "run pgbr on `{target}`: the host is `{host}`, this pgbr is built for `{} {}`, \
         and {why}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )]
    Platform {
        /// The target.
        target: Box<str>,
        /// The cells on it that this run has named so far. Not in the
        /// message: whoever reports the error names its cell, once.
        cells: Box<[String]>,
        /// `uname -sm` on the host.
        host: Box<str>,
        /// The agent pgbr would copy there: `pgbr-agent.<os>-<arch>`.
        file: Box<str>,
        /// What is wrong with it: missing, or of another build.
        why: Box<str>,
    },
}

/// Why a host could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Reach {
    /// No answer, refused, no route, name not resolved.
    Network,
    /// An unknown or changed host key.
    HostKey,
    /// The login was refused (key, user).
    Login,
    /// ssh itself refused to start (its config, an option).
    Ssh,
}

impl Reach {
    /// What the failure means, said before ssh's own words.
    fn lead(self) -> &'static str {
        match self {
            Reach::Login => "the host refused the login: ",
            Reach::HostKey => "ssh does not trust the host's key: ",
            Reach::Network | Reach::Ssh => "",
        }
    }
}

impl Error {
    /// Whether the host went away during the operation (exit code
    /// `HOST_LOST`).
    pub fn is_lost(&self) -> bool {
        matches!(self, Error::Lost { .. })
    }

    /// The same failure, its path named on `target` (`ssh://host/path`):
    /// what a remote host's agent reported names a path on that host.
    pub(crate) fn on_host(mut self, target: &str) -> Error {
        let path = match &mut self {
            Error::Io(e) => &mut e.path,
            Error::Refused { path, .. } | Error::Chown { path, .. } => path,
            _ => return self,
        };
        if path.is_absolute() {
            *path = format!("{target}{}", path.display()).into();
        }
        self
    }

    /// Whether the cell's host could not be used at all (unreachable, lost,
    /// no agent): nothing about its deploy dir is known.
    pub fn is_host_failure(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. }
                | Error::Lost { .. }
                | Error::Agent { .. }
                | Error::Sudo { .. }
                | Error::Platform { .. }
        )
    }
}

/// `Error::Io` for `action` on `path`, as a `map_err` argument.
pub(crate) fn io<'a>(
    action: &str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    let io = IoError::of(action, path);
    move |source| Error::Io(io(source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn errors_and_targets_cross_threads() {
        send_sync::<Error>();
        send_sync::<Targets>();
        send_sync::<Arc<dyn Target>>();
    }

    #[test]
    fn one_target_per_spec() {
        let targets = Targets::new();
        let a = targets.of(&TargetSpec::Local).unwrap();
        let b = targets.of(&TargetSpec::Local).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }
}
