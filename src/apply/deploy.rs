//! The deploy sequence of one cell: prepare, materialize, validate, flip,
//! link, activate, health check; on failure flip back and re-activate.
//!
//! It does not touch the store: the caller records the journal before and
//! after, so that a kill at any instant leaves `current` on the old or the
//! new generation and the next run can tell which.

use super::target::{FileContent, HookRun, Prepare, Target};
use super::Error;
use crate::layout;
use crate::pki::{self, CertAndKey};
use crate::progress::{Event, Reporter};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long `activate` and a health command may run when the topology
/// does not say (`hook_timeout_seconds`), or is not at hand (`rollback`).
pub const HOOK_TIMEOUT: Duration =
    Duration::from_secs(crate::topology::DEFAULT_HOOK_TIMEOUT_SECONDS as u64);
/// How long the TLS health check keeps retrying for the new certificate.
pub const TLS_HEALTH_TIMEOUT: Duration = Duration::from_secs(15);

/// How long each cell's hooks may run (`hook_timeout_seconds`), by cell.
/// A cell it does not name gets [`HOOK_TIMEOUT`]. A rollback runs without
/// the topology: it uses those of the last apply, which the store records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookTimeouts(BTreeMap<String, Duration>);

impl HookTimeouts {
    /// What `topology` sets for each of its cells.
    pub fn of(topology: &crate::topology::Topology) -> HookTimeouts {
        HookTimeouts(
            topology
                .cells
                .iter()
                .map(|c| (c.name.as_str().to_owned(), c.hook_timeout))
                .collect(),
        )
    }
    /// In whole seconds, as the store records them.
    pub fn seconds(&self) -> BTreeMap<String, u32> {
        self.0
            .iter()
            .map(|(c, d)| (c.clone(), u32::try_from(d.as_secs()).unwrap_or(u32::MAX)))
            .collect()
    }
    /// From whole seconds, as the store records them.
    pub fn from_seconds(seconds: BTreeMap<String, u32>) -> HookTimeouts {
        HookTimeouts(
            seconds
                .into_iter()
                .map(|(c, s)| (c, Duration::from_secs(u64::from(s))))
                .collect(),
        )
    }
    /// The bound for `cell`'s hooks.
    pub fn get(&self, cell: &str) -> Duration {
        self.0.get(cell).copied().unwrap_or(HOOK_TIMEOUT)
    }
}

/// How to check a cell after activation.
#[derive(Debug, Clone)]
pub enum HealthSpec {
    /// No check.
    None,
    /// A shell command that must exit 0.
    Command(String),
    /// A TLS handshake presenting the expected leaf.
    Tls {
        /// `host:port` of the cell's server.
        addr: String,
        /// The name to verify (the cell's `host`).
        server_name: String,
        /// The CA bundle to trust.
        ca_pem: String,
        /// The cell's own client certificate and key.
        client: CertAndKey,
        /// The serial the server must present.
        expect_serial: String,
    },
}

/// Everything needed to deploy one cell's generation.
#[derive(Debug, Clone)]
pub struct CellDeploy {
    /// The cell.
    pub cell: String,
    /// Its deploy dir.
    pub deploy_dir: String,
    /// Owner of what is created.
    pub owner: Option<String>,
    /// log/lock/spool directories to create.
    pub dirs: Vec<String>,
    /// A stable symlink to the config.
    pub config_link: Option<String>,
    /// Shell command after the flip.
    pub activate: Option<String>,
    /// The check after activation.
    pub health: HealthSpec,
    /// How long each hook may run. The revert's `activate` gets a budget of
    /// its own: putting the old generation back matters more than a
    /// quick failure, and the operator bounds the sum with this value.
    pub hook_timeout: Duration,
    /// The cell's log dir, where each hook's whole output is kept
    /// (`pgbr-activate.log`, `pgbr-health.log`, `pgbr-revert.log`).
    pub log_dir: Option<String>,
    /// The generation being deployed.
    pub generation: u64,
    /// The generation live before (what a revert returns to).
    pub previous: Option<u64>,
    /// The files of the generation.
    pub files: Vec<FileContent>,
    /// Take over a non-empty foreign deploy dir, or another store's.
    pub adopt: bool,
    /// The id of the store that deploys (see [`Prepare::store`]).
    pub store: String,
    /// How that store is named (a path or URL without password).
    pub store_name: String,
}

/// How a cell's deploy ended.
#[derive(Debug)]
pub enum CellOutcome {
    /// The new generation is live and healthy.
    Deployed,
    /// A step failed; the cell is back on its previous generation.
    Reverted {
        /// `activate` or `health`.
        step: String,
        /// What failed, with the hook's output tail.
        reason: StepFailure,
    },
    /// A step failed and so did the revert: the cell needs an operator.
    RevertFailed {
        /// `activate` or `health`.
        step: String,
        /// What failed.
        reason: StepFailure,
        /// Why the revert failed.
        revert: StepFailure,
    },
}

/// Why a step after the flip (`activate`, the health check, the revert)
/// failed. The message carries the hook's output tail.
#[derive(Debug, thiserror::Error)]
pub enum StepFailure {
    /// `activate` could not be started on the cell's target.
    #[error("could not run `activate`: {cause}")]
    RunActivate {
        /// Why.
        cause: Error,
    },
    /// The health command could not be started on the cell's target.
    #[error("could not run the health command: {cause}")]
    RunHealth {
        /// Why.
        cause: Error,
    },
    /// A hook ran out of time and was killed.
    #[error("`{hook}` did not finish within {secs}s\n{tail}")]
    HookTimedOut {
        /// `activate` or `health_command`.
        hook: &'static str,
        /// The bound.
        secs: u64,
        /// Its last output lines.
        tail: String,
    },
    /// A hook exited non-zero.
    #[error("`{hook}` exited with status {code}\n{tail}")]
    HookExited {
        /// `activate` or `health_command`.
        hook: &'static str,
        /// Its exit status.
        code: i32,
        /// Its last output lines.
        tail: String,
    },
    /// A hook was killed by a signal.
    #[error("`{hook}` was killed by a signal\n{tail}")]
    HookKilled {
        /// `activate` or `health_command`.
        hook: &'static str,
        /// Its last output lines.
        tail: String,
    },
    /// The TLS server still presents another certificate.
    #[error("the server at `{addr}` presents serial `{presented}`, expected the new `{expected}` (did `activate` reload it?)")]
    WrongSerial {
        /// `host:port`.
        addr: String,
        /// The serial it presents.
        presented: String,
        /// The serial just deployed.
        expected: String,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with `{addr}` failed: {}", error_chain(cause))]
    Handshake {
        /// `host:port`.
        addr: String,
        /// Why.
        cause: super::health::ProbeError,
    },
    /// Flipping `current` back failed.
    #[error("{}", error_chain(cause))]
    FlipBack {
        /// Why.
        cause: Error,
    },
}

/// Why a generation's TLS files cannot go live.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenTls {
    /// The key belongs to another certificate.
    #[error("`tls/server.key` does not belong to `tls/server.crt`")]
    ForeignKey,
    /// The leaf is not signed by a deployed CA.
    #[error("`tls/server.crt` is not signed by a CA in `tls/ca.crt`")]
    ForeignCa,
    /// The key would be readable by others.
    #[error("`tls/server.key` would have mode {mode:o}; pgBackRest needs 0600")]
    KeyMode {
        /// The mode it would have.
        mode: u32,
    },
}

/// The text of the file at `path` in a generation's files.
pub(super) fn file<'a>(files: &'a [FileContent], path: &str) -> Option<&'a str> {
    files
        .iter()
        .find(|f| f.path == path)
        .and_then(|f| std::str::from_utf8(&f.bytes).ok())
}

/// Checks the TLS files before anything is signalled: a pgBackRest server
/// reloading a broken cert/key dies.
fn validate_tls(d: &CellDeploy) -> Result<(), BrokenTls> {
    let (Some(ca), Some(cert), Some(key)) = (
        file(&d.files, layout::CA_BUNDLE),
        file(&d.files, layout::SERVER_CERT),
        file(&d.files, layout::SERVER_KEY),
    ) else {
        return Ok(()); // a generation without TLS files has nothing to check
    };
    if !pki::key_matches(cert, &pki::SecretPem(key.to_owned())) {
        return Err(BrokenTls::ForeignKey);
    }
    if !pki::ca_bundle(ca).iter().any(|c| pki::signed_by(cert, c)) {
        return Err(BrokenTls::ForeignCa);
    }
    match d.files.iter().find(|f| f.path == layout::SERVER_KEY) {
        Some(f) if f.mode & 0o077 != 0 => Err(BrokenTls::KeyMode { mode: f.mode }),
        _ => Ok(()),
    }
}

/// The hook `command` of `d`, run as `log` (`activate`, `health`,
/// `revert`) for `generation`, with `previous` before it.
fn hook_run(
    d: &CellDeploy,
    command: &str,
    log: &str,
    generation: Option<u64>,
    previous: Option<u64>,
) -> HookRun {
    let num = |g: Option<u64>| g.map(|g| g.to_string()).unwrap_or_default();
    HookRun {
        command: command.to_owned(),
        env: vec![
            ("PGBR_CELL".into(), d.cell.clone()),
            ("PGBR_DEPLOY_DIR".into(), d.deploy_dir.clone()),
            ("PGBR_GENERATION".into(), num(generation)),
            ("PGBR_PREVIOUS_GENERATION".into(), num(previous)),
        ],
        timeout: d.hook_timeout,
        log: d
            .log_dir
            .as_ref()
            .map(|dir| format!("{}/pgbr-{log}.log", dir.trim_end_matches('/'))),
    }
}

fn run_activate(
    target: &dyn Target,
    d: &CellDeploy,
    log: &str,
    generation: Option<u64>,
    previous: Option<u64>,
) -> Result<(), StepFailure> {
    let Some(cmd) = &d.activate else {
        return Ok(());
    };
    let out = target
        .run_hook(&hook_run(d, cmd, log, generation, previous))
        .map_err(|cause| StepFailure::RunActivate { cause })?;
    hook_result("activate", d.hook_timeout, &out)
}

fn hook_result(
    hook: &'static str,
    timeout: Duration,
    out: &super::HookOutput,
) -> Result<(), StepFailure> {
    let mut tail = out.tail.clone();
    if let Some(log) = &out.log {
        if !tail.is_empty() {
            tail.push('\n');
        }
        tail.push_str(&format!("(the whole output is in `{log}`)"));
    }
    if out.timed_out {
        return Err(StepFailure::HookTimedOut {
            hook,
            secs: timeout.as_secs(),
            tail,
        });
    }
    match out.code {
        Some(0) => Ok(()),
        Some(code) => Err(StepFailure::HookExited { hook, code, tail }),
        None => Err(StepFailure::HookKilled { hook, tail }),
    }
}

fn run_health(target: &dyn Target, d: &CellDeploy) -> Result<(), StepFailure> {
    match &d.health {
        HealthSpec::None => Ok(()),
        HealthSpec::Command(cmd) => {
            let out = target
                .run_hook(&hook_run(d, cmd, "health", Some(d.generation), d.previous))
                .map_err(|cause| StepFailure::RunHealth { cause })?;
            hook_result("health_command", d.hook_timeout, &out)
        }
        HealthSpec::Tls {
            addr,
            server_name,
            ca_pem,
            client,
            expect_serial,
        } => {
            // A SIGHUP'd server reloads asynchronously: retry until it
            // presents the new leaf, within a bound.
            let deadline = Instant::now() + TLS_HEALTH_TIMEOUT;
            loop {
                let last = match super::health::probe_tls(
                    addr,
                    server_name,
                    ca_pem,
                    client,
                    Duration::from_secs(3),
                ) {
                    Ok(r) if &r.presented.serial == expect_serial => return Ok(()),
                    Ok(r) => StepFailure::WrongSerial {
                        addr: addr.clone(),
                        presented: r.presented.serial,
                        expected: expect_serial.clone(),
                    },
                    Err(cause) => StepFailure::Handshake {
                        addr: addr.clone(),
                        cause,
                    },
                };
                if Instant::now() >= deadline {
                    return Err(last);
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

/// `e` and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Deploys one cell: [`write_cell`], then [`switch_cell`]. `Err` means
/// nothing was flipped (a write or a check before the flip failed): the
/// cell is untouched.
pub fn deploy_cell(
    target: &dyn Target,
    d: &CellDeploy,
    reporter: &dyn Reporter,
) -> Result<CellOutcome, Error> {
    reporter.event(Event::Step {
        cell: d.cell.clone(),
        step: "write".to_owned(),
    });
    let found = write_cell(target, d)?;
    switch_cell(target, d, found, reporter)
}

/// Prepares the deploy dir, checks the TLS material and writes the
/// generation dir completely. Touches nothing that is live, so it may run
/// for several cells at once. Returns the generation `current` named
/// under the deploy dir's lock ([`switch_cell`]'s `found`).
pub fn write_cell(target: &dyn Target, d: &CellDeploy) -> Result<Option<u64>, Error> {
    let found = target.prepare(&Prepare {
        cell: &d.cell,
        deploy_dir: &d.deploy_dir,
        owner: d.owner.as_deref(),
        dirs: d.dirs.iter().map(String::as_str).collect(),
        adopt: d.adopt,
        store: &d.store,
        store_name: &d.store_name,
        generation: d.generation,
        expect_current: d.previous,
    })?;
    validate_tls(d).map_err(|broken| Error::Refused {
        path: format!("{}/generations/{}", d.deploy_dir, d.generation).into(),
        reason: broken.to_string(),
        hint: "the store holds broken TLS material; run `pgbr rotate` to re-issue it".into(),
    })?;
    target.materialize(&d.deploy_dir, d.generation, &d.files, d.owner.as_deref())?;
    Ok(found)
}

/// Switches a cell whose generation dir [`write_cell`] wrote: links the
/// config, flips `current`, runs `activate` and the health check, and on
/// failure flips back. One cell at a time. `found` is what `current`
/// named when [`write_cell`] prepared the dir: the flip happens only if it
/// still does, and the flip back only if `current` still names the new
/// generation. `Err` means nothing was flipped; or, for a lost host
/// ([`Error::is_lost`]), that `current` may name either generation
/// (nothing can be reverted over a dead link).
pub fn switch_cell(
    target: &dyn Target,
    d: &CellDeploy,
    found: Option<u64>,
    reporter: &dyn Reporter,
) -> Result<CellOutcome, Error> {
    let step = |s: &str| {
        reporter.event(Event::Step {
            cell: d.cell.clone(),
            step: s.to_owned(),
        })
    };
    // The link names the stable `current/pgbackrest.conf`, so it can (and
    // must) be made before the flip: a failure here leaves the cell untouched.
    if let Some(link) = &d.config_link {
        target.link_config(link, &d.deploy_dir)?;
    }
    crate::failpoint::hit("before-flip");
    step("flip");
    target.flip(&d.deploy_dir, found, Some(d.generation))?;
    crate::failpoint::hit("after-flip");
    if d.activate.is_some() {
        step("activate");
    }
    let failure = match run_activate(target, d, "activate", Some(d.generation), d.previous) {
        Err(reason) => Some(("activate", reason)),
        Ok(()) => {
            if !matches!(d.health, HealthSpec::None) {
                step("health");
            }
            run_health(target, d).err().map(|r| ("health", r))
        }
    };
    let Some((failed_step, reason)) = failure else {
        return Ok(CellOutcome::Deployed);
    };
    // A lost host cannot be reverted either: stop as a killed run would
    // (the caller's journal keeps the cell in flight; the next apply sees
    // where `current` is and runs `activate` and the health check again).
    let reason = match reason {
        StepFailure::RunActivate { cause } | StepFailure::RunHealth { cause }
            if cause.is_lost() =>
        {
            return Err(cause)
        }
        other => other,
    };
    step("revert");
    let revert = target
        .flip(&d.deploy_dir, Some(d.generation), d.previous)
        .map_err(|cause| StepFailure::FlipBack { cause })
        .and_then(|()| run_activate(target, d, "revert", d.previous, Some(d.generation)));
    Ok(match revert {
        Ok(()) => CellOutcome::Reverted {
            step: failed_step.into(),
            reason,
        },
        Err(revert) => CellOutcome::RevertFailed {
            step: failed_step.into(),
            reason,
            revert,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Targets;
    use crate::progress::NullReporter;
    use crate::topology::example;
    use crate::topology::TargetSpec;

    fn files(ca: &CertAndKey, leaf: &CertAndKey, key: &str, key_mode: u32) -> Vec<FileContent> {
        let f = |path: &str, mode: u32, text: &str| FileContent {
            path: path.into(),
            mode,
            bytes: text.as_bytes().to_vec(),
        };
        vec![
            f("pgbackrest.conf", 0o640, "[global]\n"),
            f("tls/ca.crt", 0o644, &ca.cert_pem),
            f("tls/server.crt", 0o644, &leaf.cert_pem),
            f("tls/server.key", key_mode, key),
        ]
    }

    fn deploy(
        dir: &std::path::Path,
        generation: u64,
        previous: Option<u64>,
        files: Vec<FileContent>,
    ) -> Result<CellOutcome, Error> {
        let d = CellDeploy {
            cell: "zone1".into(),
            deploy_dir: dir.join("zone1").display().to_string(),
            owner: None,
            dirs: vec![],
            config_link: None,
            activate: None,
            health: HealthSpec::None,
            hook_timeout: HOOK_TIMEOUT,
            log_dir: None,
            generation,
            previous,
            files,
            adopt: false,
            store: "0123456789abcdef0123456789abcdef".into(),
            store_name: "test".into(),
        };
        let target = Targets::new().of(&TargetSpec::Local).unwrap();
        deploy_cell(target.as_ref(), &d, &NullReporter)
    }

    /// Broken TLS material never reaches `current`: a key of another
    /// certificate, a leaf of another CA, a key readable by others.
    #[test]
    fn broken_material_is_refused_before_the_flip() {
        let dir = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let tls = example::tls();
        let ca = pki::issue_ca(&tls, now).unwrap();
        let other_ca = pki::issue_ca(&tls, now).unwrap();
        let sans = vec!["localhost".to_owned()];
        let leaf = pki::issue_leaf(&ca, &tls, &sans, now).unwrap();
        let stranger = pki::issue_leaf(&other_ca, &tls, &sans, now).unwrap();
        assert!(matches!(
            deploy(
                dir.path(),
                1,
                None,
                files(&ca, &leaf, &leaf.key_pem.0, 0o600)
            )
            .unwrap(),
            CellOutcome::Deployed
        ));
        let current = dir.path().join("zone1/current");
        let cases = [
            (
                files(&ca, &leaf, &stranger.key_pem.0, 0o600),
                "does not belong",
            ),
            (
                files(&ca, &stranger, &stranger.key_pem.0, 0o600),
                "not signed by a CA",
            ),
            (
                files(&ca, &leaf, &leaf.key_pem.0, 0o644),
                "pgBackRest needs 0600",
            ),
        ];
        for (i, (broken, why)) in cases.into_iter().enumerate() {
            let err = deploy(dir.path(), 2 + i as u64, Some(1), broken).unwrap_err();
            assert!(err.to_string().contains(why), "{err}");
            assert_eq!(
                std::fs::read_link(&current).unwrap().to_str(),
                Some("generations/1")
            );
            assert!(!err.to_string().contains("PRIVATE KEY"));
        }
    }
}
