//! `pgbr status`.

use super::plan::make_plan;
use super::reporter;
use crate::apply::{
    entry_files, health::probe_tls, health_spec, read_releases, HealthSpec, Targets,
};
use crate::cli::StatusArgs;
use crate::clock::{rfc3339, Clock};
use crate::generations::CellEntry;
use crate::output::{errln, outln};
use crate::plan::{days_until, CellAction, Request};
use crate::render::Phase;
use crate::store::{Location, Store};
use crate::topology::{Health, PgbackrestVersion};
use crate::{exit_codes, topology, Error, Result};
use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;

/// One row of `pgbr status` (fields in the JSON's key order).
#[derive(serde::Serialize)]
struct StatusRow {
    blockers: Vec<String>,
    cell: String,
    days_left: Option<i64>,
    drift: Vec<String>,
    live_generation: Option<u64>,
    not_after: Option<String>,
    pending: Option<CellAction>,
    pgbackrest: Option<Installed>,
    phase: Option<Phase>,
    probe: Option<Probe>,
    renewal_due: Option<bool>,
    serial: Option<String>,
    unreachable: Option<String>,
}

/// The pgBackRest a cell's host runs (`status --probe`).
#[derive(serde::Serialize)]
struct Installed {
    error: Option<String>,
    expected: String,
    installed: Option<String>,
    matches: bool,
}

impl Installed {
    /// The line under the cell's row.
    fn line(&self) -> String {
        let expected = &self.expected;
        match (&self.installed, &self.error) {
            (Some(v), _) if self.matches => {
                format!("    pgBackRest: {v} installed (expected {expected})")
            }
            (Some(v), _) => format!(
                "    pgBackRest: {v} installed, but the topology expects {expected} (`[pgbackrest] version`)"
            ),
            (None, error) => format!(
                "    pgBackRest: unknown, expected {expected}: {}",
                error.as_deref().unwrap_or("?")
            ),
        }
    }
}

/// The result of `status --probe` for one cell.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Probe {
    /// The server answered the handshake.
    Answered {
        address: String,
        days_left: i64,
        expected_serial: String,
        ok: bool,
        presented_serial: String,
        protocol: String,
        server_version: Option<String>,
    },
    /// No handshake.
    Failed {
        #[serde(skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        error: String,
        ok: bool,
    },
}

impl Probe {
    /// Whether the probe passed.
    fn ok(&self) -> bool {
        match self {
            Probe::Answered { ok, .. } | Probe::Failed { ok, .. } => *ok,
        }
    }

    fn failed(address: Option<String>, error: impl Into<String>) -> Probe {
        Probe::Failed {
            address,
            error: error.into(),
            ok: false,
        }
    }

    /// The TLS probe of a cell's live entry.
    fn of(store: &Store, entry: &CellEntry, now: OffsetDateTime) -> Result<Probe> {
        let files = entry_files(store, entry)?;
        let mut e = entry.clone();
        e.settings.health = Health::Tls;
        let HealthSpec::Tls {
            addr,
            server_name,
            ca_pem,
            client,
            expect_serial,
        } = health_spec(&e, &files)
        else {
            return Ok(Probe::failed(None, "no TLS material"));
        };
        Ok(
            match probe_tls(
                &addr,
                &server_name,
                &ca_pem,
                &client,
                Duration::from_secs(5),
            ) {
                Ok(r) => Probe::Answered {
                    ok: r.presented.serial == expect_serial,
                    days_left: days_until(r.presented.not_after, now),
                    presented_serial: r.presented.serial,
                    expected_serial: expect_serial,
                    protocol: r.protocol,
                    server_version: server_version(r.greeting.as_deref()),
                    address: addr,
                },
                Err(err) => Probe::failed(Some(addr), crate::apply::error_chain(&err)),
            },
        )
    }

    /// The line under the cell's row; `expected`: the topology's pgBackRest.
    fn line(&self, expected: &str) -> String {
        match self {
            Probe::Answered {
                ok: true,
                presented_serial,
                days_left,
                protocol,
                server_version,
                ..
            } => format!(
                "    probe: ok, presents serial {presented_serial} ({days_left} days left, {protocol}, pgBackRest {}, expected {expected})",
                server_version.as_deref().unwrap_or("version not stated")
            ),
            Probe::Answered {
                presented_serial, ..
            } => format!("    probe: FAILED: presents serial {presented_serial}"),
            Probe::Failed { error, .. } => format!("    probe: FAILED: {error}"),
        }
    }
}

/// `pgbr status`.
pub fn status(state: &Location, identity: Option<&Path>, args: &StatusArgs) -> Result<u8> {
    let clock = Clock::resolve(args.now.as_deref())?;
    let mut store = Store::open_existing(state)?;
    store.set_identity(identity);
    if args.probe {
        // The probe is a TLS client with each cell's own key.
        store.require_keys("the private keys `status --probe` connects with")?;
    }
    let topo = topology::load(&args.topology)?;
    let targets = Targets::new();
    let (inputs, plan) = make_plan(
        &store,
        &targets,
        &topo,
        &args.topology,
        Request::default(),
        &clock,
        reporter().as_ref(),
    )?;
    // What each host runs, next to what the topology expects.
    let releases = if args.probe {
        read_releases(
            &targets,
            topo.cells.iter(),
            &topo.pgbackrest,
            topo.ssh.parallel,
        )
    } else {
        Vec::new()
    };
    let expected = topo.pgbackrest.version.to_string();
    let mut rows = Vec::new();
    for cell in &topo.cells {
        let name = cell.name.as_str();
        let now_state = &inputs.cells[name];
        let cp = plan.cells.iter().find(|c| c.cell == name);
        // An unobserved cell's `live` is only what the store last
        // recorded: probed, but not shown as found.
        let recorded = now_state.live.as_ref();
        let live = recorded.filter(|_| now_state.unobserved.is_none());
        let cert = live.and_then(|(_, e)| e.cert.clone());
        let not_after = cert
            .as_ref()
            .and_then(|c| OffsetDateTime::from_unix_timestamp(c.not_after).ok());
        let days_left = cert
            .as_ref()
            .map(|_| days_until(not_after.unwrap_or(OffsetDateTime::UNIX_EPOCH), clock.now));
        let probe = match (args.probe, recorded) {
            (false, _) => None,
            (true, Some((_, entry))) => Some(Probe::of(&store, entry, clock.now)?),
            (true, None) => Some(Probe::failed(None, "not deployed")),
        };
        let pgbackrest = releases.iter().find(|r| r.cell == name).map(|r| Installed {
            error: r.found.as_ref().err().cloned(),
            expected: expected.clone(),
            installed: r.found.as_ref().ok().cloned(),
            matches: r
                .found
                .as_ref()
                .is_ok_and(|f| PgbackrestVersion::parse(f) == Some(topo.pgbackrest.version)),
        });
        rows.push(StatusRow {
            cell: name.to_owned(),
            days_left,
            blockers: cp.map(|c| c.blockers.clone()).unwrap_or_default(),
            drift: cp.map(|c| c.drift.clone()).unwrap_or_default(),
            live_generation: live.map(|l| l.0),
            not_after: not_after.map(rfc3339),
            pending: cp.map(|c| c.action),
            pgbackrest,
            phase: live.map(|l| l.1.phase),
            probe,
            renewal_due: days_left.map(|d| d < i64::from(topo.tls.renew_before_days)),
            serial: cert.map(|c| c.serial),
            unreachable: now_state.unobserved.clone(),
        });
    }
    let failed = rows
        .iter()
        .filter(|r| r.probe.as_ref().is_some_and(|p| !p.ok()))
        .count();
    // Monitoring reads the exit code; the operator reads the last line. A
    // cell that could not be observed makes the report incomplete: that is
    // an error (1). Then a failed probe outranks pending work: a server is
    // broken now.
    let unobserved = inputs.unobserved();
    let finish = || {
        if failed > 0 {
            errln!("{failed} of {} TLS probe(s) failed", rows.len());
        }
        if !unobserved.is_empty() {
            return Err(Error::Unobserved {
                cells: unobserved.clone(),
                hints: inputs.unobserved_hints(),
            });
        }
        if failed > 0 {
            return Ok(exit_codes::PROBE_FAILED);
        }
        if plan.needs_attention() {
            // As `plan --detailed-exitcode`: drift, an interrupted deploy,
            // a certificate to renew, a change not applied yet.
            return Ok(exit_codes::CHANGES);
        }
        Ok(exit_codes::SUCCESS)
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return finish();
    }
    outln!(
        "{:<16} {:>4}  {:<9}  {:<9}  {:<47}  {:>9}  DRIFT",
        "CELL",
        "GEN",
        "PHASE",
        "PENDING",
        "SERIAL",
        "DAYS LEFT"
    );
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for r in &rows {
        outln!(
            "{:<16} {:>4}  {:<9}  {:<9}  {:<47}  {:>9}  {}",
            r.cell,
            dash(r.live_generation.map(|g| g.to_string())),
            dash(r.phase.map(|p| p.as_str().to_owned())),
            dash(r.pending.map(|a| a.as_str().to_owned())),
            dash(r.serial.clone()),
            dash(r.days_left.map(|d| d.to_string())),
            if let Some(why) = &r.unreachable {
                format!("unreachable: {why}")
            } else if r.drift.is_empty() && r.blockers.is_empty() {
                "none".to_owned()
            } else {
                let blocked = r.blockers.iter().map(|b| format!("blocked: {b}"));
                r.drift
                    .iter()
                    .cloned()
                    .chain(blocked)
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        );
        if let Some(b) = &r.pgbackrest {
            outln!("{}", b.line());
        }
        if let Some(p) = &r.probe {
            outln!("{}", p.line(&expected));
        }
    }
    finish()
}

/// The version in a pgBackRest server's greeting line, if it states one.
fn server_version(greeting: Option<&str>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(greeting?).ok()?;
    v["version"].as_str().map(str::to_owned)
}
