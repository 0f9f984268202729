//! `pgbr plan`.

use super::reporter;
use crate::apply::{gather, Targets};
use crate::cli::PlanArgs;
use crate::clock::Clock;
use crate::output::{out, outln};
use crate::plan::{self, Inputs, Plan, Request, PLAN_HEADER};
use crate::progress::Reporter;
use crate::store::{Location, Store};
use crate::topology::{self, Topology};
use crate::{exit_codes, Error, Result};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Checks that the cells a request names exist.
pub(crate) fn check_request(topo: &Topology, request: &Request) -> Result<()> {
    let names = request.cells.iter().chain(request.bootstrap.iter());
    for name in names.chain(request.force_rotate.iter()) {
        if topo.cell(name).is_none() {
            return Err(Error::NoSuchCell {
                name: name.clone(),
                cells: topo.cells.iter().map(|c| c.name.to_string()).collect(),
            });
        }
    }
    if request.bootstrap.is_some() && !request.cells.is_empty() {
        return Err(Error::BootstrapWithCells);
    }
    Ok(())
}

/// Gathers the inputs for `topo` (progress to `reporter`) and computes
/// the plan.
pub(crate) fn make_plan<'t>(
    store: &'t Store,
    targets: &Targets,
    topo: &'t Topology,
    path: &Path,
    request: Request,
    clock: &Clock,
    reporter: &dyn Reporter,
) -> Result<(Inputs<'t>, Plan)> {
    check_request(topo, &request)?;
    let inputs = gather(
        store,
        targets,
        topo,
        &path.display().to_string(),
        request,
        clock.now,
        reporter,
    )?;
    let plan = plan::compute(&inputs);
    Ok((inputs, plan))
}

/// Writes a saved plan (header line, then JSON), mode 0600.
fn save(plan: &Plan, out: &Path) -> Result<()> {
    let text = format!(
        "{PLAN_HEADER}\n{}\n",
        serde_json::to_string_pretty(plan).expect("plan serializes")
    );
    let tmp = out.with_extension("pgbr-tmp");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|source| Error::SavePlan {
            path: out.to_owned(),
            source,
        })
}

/// `pgbr plan`.
pub fn plan(state: &Location, args: &crate::cli::PlanArgs) -> Result<u8> {
    let PlanArgs {
        topology,
        out,
        json,
        detailed_exitcode,
        now,
        cells,
        bootstrap,
    } = args;
    let clock = Clock::resolve(now.as_deref())?;
    let store = Store::open_or_empty(state)?;
    let request = Request {
        bootstrap: bootstrap.clone(),
        cells: cells.clone(),
        force_rotate: vec![],
        ca_step: None,
    };
    let topo = topology::load(topology)?;
    let (inputs, plan) = make_plan(
        &store,
        &Targets::new(),
        &topo,
        topology,
        request,
        &clock,
        reporter().as_ref(),
    )?;
    if *json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("plan serializes")
        );
    } else {
        out!("{}", plan::render(&plan));
    }
    // A plan of unseen cells is not a plan: listed, never saved.
    let unobserved = inputs.unobserved();
    if !unobserved.is_empty() {
        return Err(Error::Unobserved {
            cells: unobserved,
            hints: inputs.unobserved_hints(),
        });
    }
    if let Some(out) = out {
        save(&plan, out)?;
        if !json {
            outln!(
                "Saved the plan to `{}`; run `pgbr apply {}` to perform exactly it.",
                out.display(),
                out.display()
            );
        }
    }
    Ok(if *detailed_exitcode && plan.needs_attention() {
        exit_codes::CHANGES
    } else {
        exit_codes::SUCCESS
    })
}
