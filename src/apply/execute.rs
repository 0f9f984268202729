//! Deploys a committed generation: for every cell that changed in it, in
//! name order, journal → materialize → flip → activate → health → journal.
//! Stops at the first failing cell. Shared by apply, rotate and rollback.

use super::deploy::{deploy_cell, file, CellDeploy, CellOutcome, HealthSpec};
use super::target::{FileContent, Targets};
use crate::generations::{CellEntry, Manifest};
use crate::layout;
use crate::pki::{CertAndKey, SecretPem};
use crate::progress::{Event, Reporter};
use crate::store::{CellJournal, Store};
use crate::topology::Health;
use crate::{Error, Result};
use std::collections::BTreeMap;

/// The result of deploying a generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeployReport {
    /// Cells now on the new generation.
    pub deployed: Vec<String>,
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

/// Deploys the cells of `manifest` whose `dir_generation` is the manifest's
/// own number, in name order. `previous` gives each cell's live generation.
/// The journal is made durable once, at the end, however the run ends.
pub fn deploy_generation(
    store: &Store,
    targets: &Targets,
    manifest: &Manifest,
    previous: &BTreeMap<String, Option<u64>>,
    adopt: bool,
    reporter: &dyn Reporter,
) -> Result<DeployReport> {
    // Every deploy dir's marker names the store that deploys it.
    let store_id = store.ensure_id()?;
    let result = deploy_cells(
        store,
        (&store_id, &super::gather::store_label(store.name())),
        targets,
        manifest,
        previous,
        adopt,
        reporter,
    );
    let synced = store.sync();
    let report = result?;
    synced?;
    Ok(report)
}

fn deploy_cells(
    store: &Store,
    (store_id, store_name): (&str, &str),
    targets: &Targets,
    manifest: &Manifest,
    previous: &BTreeMap<String, Option<u64>>,
    adopt: bool,
    reporter: &dyn Reporter,
) -> Result<DeployReport> {
    let n = manifest.number;
    let work: Vec<(&String, &CellEntry)> = manifest
        .cells
        .iter()
        .filter(|(_, e)| e.dir_generation == n)
        .collect();
    reporter.event(Event::Start {
        what: format!("generation {n}"),
        total: work.len(),
    });
    let mut report = DeployReport::default();
    for (i, (cell, entry)) in work.iter().enumerate() {
        if i > 0 {
            crate::failpoint::hit("between-cells");
        }
        let prev = previous.get(*cell).copied().flatten();
        let files = entry_files(store, entry)?;
        let d = CellDeploy {
            cell: (*cell).clone(),
            deploy_dir: entry.deploy_dir.as_str().into(),
            owner: entry.settings.owner.clone(),
            dirs: entry.settings.dirs.clone(),
            config_link: entry.settings.config_link.clone(),
            activate: entry.settings.activate.clone(),
            health: health_spec(entry, &files),
            generation: n,
            previous: prev,
            files,
            adopt,
            store: store_id.to_owned(),
            store_name: store_name.to_owned(),
        };
        store.note_journal(
            cell,
            &CellJournal {
                live: prev,
                in_flight: Some(n),
            },
        )?;
        let outcome = targets
            .of(&entry.settings.target)
            .and_then(|target| deploy_cell(target.as_ref(), &d, reporter))
            .map_err(|source| {
                let err = Error::DeployCell {
                    cell: (*cell).clone(),
                    source,
                };
                let _ = store.note_journal(
                    cell,
                    &CellJournal {
                        live: prev,
                        in_flight: None,
                    },
                );
                err
            })?;
        let not_started: Vec<String> = work[i + 1..].iter().map(|(c, _)| (*c).clone()).collect();
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
                return Err(Error::CellReverted {
                    cell: (*cell).clone(),
                    step,
                    reason: reason.to_string(),
                    previous: prev,
                    deployed: report.deployed.into(),
                    not_started: not_started.into(),
                });
            }
            CellOutcome::RevertFailed {
                step,
                reason,
                revert,
            } => {
                reporter.event(Event::Finish);
                return Err(Error::RevertFailed {
                    cell: (*cell).clone(),
                    step,
                    reason: reason.to_string(),
                    revert: revert.to_string().into(),
                    deploy_dir: entry.deploy_dir.as_str().into(),
                    not_started: not_started.into(),
                });
            }
        }
    }
    reporter.event(Event::Finish);
    Ok(report)
}
