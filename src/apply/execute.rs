//! Deploys a committed generation: the generation dirs of every cell that
//! changed in it are written first, several at once; then, in name order
//! and one cell at a time, journal → flip → activate → health → journal.
//! Stops at the first failing cell. Shared by apply, rotate and rollback.

use super::deploy::{
    file, switch_cell, write_cell, CellDeploy, CellOutcome, HealthSpec, HookTimeouts,
};
use super::parallel;
use super::target::{Error as ApplyError, FileContent, Targets};
use crate::generations::{CellEntry, Manifest};
use crate::layout;
use crate::pki::{CertAndKey, SecretPem};
use crate::progress::{Event, Reporter};
use crate::store::{CellJournal, Store};
use crate::topology::{Health, TargetSpec};
use crate::{Error, Result};
use std::collections::BTreeMap;

/// What became of the cells a generation deploys, each list in name
/// order. A run stops at the first cell that is not deployed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployReport {
    /// Cells now on the new generation.
    pub deployed: Vec<String>,
    /// The cell whose `activate` or health check failed, flipped back.
    pub reverted: Vec<String>,
    /// The cell whose flip back failed too: it needs an operator.
    pub revert_failed: Vec<String>,
    /// The cell whose write (or a check before its flip) failed: untouched.
    pub failed: Vec<String>,
    /// Cells after the one that stopped the run.
    pub not_started: Vec<String>,
}

/// The health check an entry asks for, with its TLS material from `files`.
pub fn health_spec(entry: &CellEntry, files: &[FileContent]) -> HealthSpec {
    let settings = &entry.settings;
    match &settings.health {
        Health::None => return HealthSpec::None,
        Health::Command(cmd) => return HealthSpec::Command(cmd.clone()),
        Health::Tls => {}
    }
    let server_name = settings
        .health_target
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']').to_owned())
        .unwrap_or_default();
    HealthSpec::Tls {
        addr: settings.health_target.clone(),
        server_name,
        ca_pem: file(files, layout::CA_BUNDLE)
            .unwrap_or_default()
            .to_owned(),
        client: CertAndKey {
            cert_pem: file(files, layout::SERVER_CERT)
                .unwrap_or_default()
                .to_owned(),
            key_pem: SecretPem(
                file(files, layout::SERVER_KEY)
                    .unwrap_or_default()
                    .to_owned(),
            ),
        },
        expect_serial: entry
            .cert
            .as_ref()
            .map(|c| c.serial.clone())
            .unwrap_or_default(),
    }
}

/// Loads the bytes of an entry's files from the store.
pub fn entry_files(store: &Store, entry: &CellEntry) -> Result<Vec<FileContent>> {
    entry
        .files
        .iter()
        .map(|f| {
            Ok(FileContent {
                path: f.path.clone(),
                mode: f.mode,
                bytes: store.get_object(&f.object)?,
            })
        })
        .collect()
}

/// How a generation is rolled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    /// Take over non-empty deploy dirs without a marker (`--adopt`).
    pub adopt: bool,
    /// Generation dirs written at once (`[ssh] parallel`).
    pub parallel: usize,
    /// How long each cell's hooks may run (`hook_timeout_seconds`).
    pub hook_timeouts: HookTimeouts,
}

/// A deploy that stopped: what became of each cell so far, and why
/// (boxed in the `Err`: the report is large).
#[derive(Debug)]
pub struct DeployStopped {
    /// The cells deployed, reverted, failed and not started.
    pub report: DeployReport,
    /// Why it stopped.
    pub error: Error,
}

impl From<Box<DeployStopped>> for Error {
    fn from(stopped: Box<DeployStopped>) -> Error {
        stopped.error
    }
}

/// Deploys the cells of `manifest` whose `dir_generation` is the manifest's
/// own number: first every generation dir is written, up to
/// `rollout.parallel` cells at once (nothing live changes); then, in name
/// order and one cell at a time, journal → flip → activate → health →
/// journal. A cell whose write failed stops the run at its turn, as a
/// failing activation does. `previous` gives each cell's live generation.
/// The journal is made durable once, at the end, however the run ends.
pub fn deploy_generation(
    store: &Store,
    targets: &Targets,
    manifest: &Manifest,
    previous: &BTreeMap<String, Option<u64>>,
    rollout: Rollout,
    reporter: &dyn Reporter,
) -> std::result::Result<DeployReport, Box<DeployStopped>> {
    let mut report = DeployReport::default();
    let result = deploy_cells(
        store,
        targets,
        manifest,
        previous,
        rollout,
        reporter,
        &mut report,
    );
    let synced = store.sync();
    match result.and(synced.map_err(Error::from)) {
        Ok(()) => Ok(report),
        Err(error) => Err(Box::new(DeployStopped { report, error })),
    }
}

fn deploy_cells(
    store: &Store,
    targets: &Targets,
    manifest: &Manifest,
    previous: &BTreeMap<String, Option<u64>>,
    rollout: Rollout,
    reporter: &dyn Reporter,
    report: &mut DeployReport,
) -> Result<()> {
    let n = manifest.number;
    // Every deploy dir's marker names the store that deploys it.
    let store_id = store.ensure_id()?;
    let store_name = super::gather::store_label(store.name());
    let work: Vec<(&String, &CellEntry)> = manifest
        .cells
        .iter()
        .filter(|(_, e)| e.dir_generation == n)
        .collect();
    report.not_started = work.iter().map(|(c, _)| (*c).clone()).collect();
    let mut deploys = Vec::new();
    for (cell, entry) in &work {
        let files = entry_files(store, entry)?;
        deploys.push(CellDeploy {
            cell: (*cell).clone(),
            deploy_dir: entry.deploy_dir.as_str().into(),
            owner: entry.settings.owner.clone(),
            dirs: entry.settings.dirs.clone(),
            config_link: entry.settings.config_link.clone(),
            activate: entry.settings.activate.clone(),
            health: health_spec(entry, &files),
            hook_timeout: rollout.hook_timeouts.get(cell),
            log_dir: entry.settings.log_dir().map(str::to_owned),
            generation: n,
            previous: previous.get(*cell).copied().flatten(),
            files,
            adopt: rollout.adopt,
            store: store_id.clone(),
            store_name: store_name.clone(),
        });
    }
    let written = write_all(targets, &work, &deploys, rollout.parallel, reporter);

    reporter.event(Event::Start {
        what: format!("generation {n}"),
        total: work.len(),
    });
    for (i, (((cell, entry), d), written)) in work.iter().zip(&deploys).zip(written).enumerate() {
        if i > 0 {
            crate::failpoint::hit("between-cells");
        }
        report.not_started.remove(0);
        let prev = d.previous;
        reporter.event(Event::Step {
            cell: (*cell).clone(),
            step: "write".to_owned(),
        });
        let mut deploy_failed = |source| {
            report.failed.push((*cell).clone());
            reporter.event(Event::Finish);
            Error::DeployCell {
                cell: (*cell).clone(),
                source,
            }
        };
        let found = match written {
            Ok(found) => found,
            Err(source) => return Err(deploy_failed(source)),
        };
        store.note_journal(
            cell,
            &CellJournal {
                live: prev,
                in_flight: Some(n),
            },
        )?;
        let outcome = match targets
            .of(&entry.settings.target)
            .and_then(|target| switch_cell(target.as_ref(), d, found, reporter))
        {
            Ok(outcome) => outcome,
            Err(source) => {
                // A lost host may have flipped: the journal keeps the cell
                // in flight, as a killed run leaves it.
                if !source.is_lost() {
                    let _ = store.note_journal(
                        cell,
                        &CellJournal {
                            live: prev,
                            in_flight: None,
                        },
                    );
                }
                return Err(deploy_failed(source));
            }
        };
        match outcome {
            CellOutcome::Deployed => {
                store.note_journal(
                    cell,
                    &CellJournal {
                        live: Some(n),
                        in_flight: None,
                    },
                )?;
                reporter.event(Event::CellDone {
                    cell: (*cell).clone(),
                    outcome: format!("generation {n} live"),
                });
                report.deployed.push((*cell).clone());
            }
            CellOutcome::Reverted { step, reason } => {
                store.note_journal(
                    cell,
                    &CellJournal {
                        live: prev,
                        in_flight: None,
                    },
                )?;
                reporter.event(Event::Finish);
                report.reverted.push((*cell).clone());
                return Err(Error::CellReverted {
                    cell: (*cell).clone(),
                    step,
                    reason: reason.to_string(),
                    previous: prev,
                    deployed: report.deployed.clone().into(),
                    not_started: report.not_started.clone().into(),
                });
            }
            CellOutcome::RevertFailed {
                step,
                reason,
                revert,
            } => {
                reporter.event(Event::Finish);
                report.revert_failed.push((*cell).clone());
                return Err(Error::RevertFailed {
                    cell: (*cell).clone(),
                    step,
                    reason: reason.to_string(),
                    revert: revert.to_string().into(),
                    // On its host, for a remote cell (`ssh://host/path`).
                    deploy_dir: match &entry.settings.target {
                        TargetSpec::Local => entry.deploy_dir.as_str().into(),
                        remote => format!("{remote}{}", entry.deploy_dir).into(),
                    },
                    not_started: report.not_started.clone().into(),
                });
            }
        }
    }
    reporter.event(Event::Finish);
    Ok(())
}

/// Writes every cell's generation dir, up to `parallel` at once; the
/// results in the cells' order.
fn write_all(
    targets: &Targets,
    work: &[(&String, &CellEntry)],
    deploys: &[CellDeploy],
    parallel: usize,
    reporter: &dyn Reporter,
) -> Vec<std::result::Result<Option<u64>, ApplyError>> {
    reporter.event(Event::Batch {
        what: "write".into(),
        total: deploys.len(),
    });
    let jobs: Vec<(&CellEntry, &CellDeploy)> = work.iter().map(|(_, e)| *e).zip(deploys).collect();
    let written = parallel::each(&jobs, parallel, |(entry, d)| {
        reporter.event(Event::Working {
            cell: d.cell.clone(),
            done: false,
        });
        let result = targets
            .of(&entry.settings.target)
            .and_then(|target| write_cell(target.as_ref(), d));
        reporter.event(Event::Working {
            cell: d.cell.clone(),
            done: true,
        });
        result
    });
    reporter.event(Event::Finish);
    written
}
