//! `pgbr apply` (a topology or a saved plan) and `pgbr rotate`.

use super::plan::{check_request, make_plan};
use super::report::{recorded, short_list, Human, Record};
use super::{confirm, reporter};
use crate::apply::{
    build_generation, check_releases, deploy_generation, gather, read_releases, CellRelease,
    HookTimeouts, Rollout, Targets,
};
use crate::cli::{ApplyArgs, RotateArgs};
use crate::clock::Clock;
use crate::generations::Cause;
use crate::pki::{self, CaRotationState};
use crate::plan::{self, CellAction, Plan, Request, PLAN_HEADER};
use crate::progress::{Event, Reporter};
use crate::store::{Location, Store};
use crate::topology::{self, Topology};
use crate::{exit_codes, generations, Error, Result};
use std::path::Path;

/// A saved plan, if `path` holds one (tells it by the header line).
fn read_saved_plan(path: &Path) -> Result<Option<Plan>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadApplyTarget {
        path: path.to_owned(),
        source,
    })?;
    let Some(body) = text.strip_prefix(PLAN_HEADER) else {
        return Ok(None);
    };
    serde_json::from_str(body)
        .map(Some)
        .map_err(|source| Error::DamagedPlan {
            path: path.to_owned(),
            source,
        })
}

fn stale(why: &str) -> Error {
    Error::StalePlan {
        why: why.to_owned(),
    }
}

/// How a plan is executed.
struct Run<'a> {
    clock: &'a Clock,
    cause: Cause,
    consumed: Option<String>,
    adopt: bool,
    /// Deploy even when the cells run another pgBackRest release.
    skip_version_check: bool,
    /// Where progress goes.
    reporter: &'a dyn Reporter,
    /// Where the text for people goes.
    human: Human,
}

/// Refuses a plan with cells whose deploy dir could not be observed
/// (after printing which cells that leaves where).
fn refuse_unobserved(
    inputs: &crate::plan::Inputs<'_>,
    record: &Record,
    human: Human,
) -> Result<()> {
    let unobserved = inputs.unobserved();
    if unobserved.is_empty() {
        return Ok(());
    }
    human.line(record.summary.line());
    Err(Error::Unobserved {
        cells: unobserved,
        hints: inputs.unobserved_hints(),
    })
}

/// Builds and deploys a plan's generation; prints the outcome.
fn execute(
    store: &Store,
    targets: &Targets,
    topo: &Topology,
    plan: &Plan,
    inputs: &crate::plan::Inputs<'_>,
    run: Run<'_>,
    record: &mut Record,
) -> Result<u8> {
    let Run {
        clock,
        cause,
        consumed,
        adopt,
        skip_version_check,
        reporter: rep,
        human,
    } = run;
    // An owner a cell's machine does not know: refused before anything is
    // committed, `--adopt` or not (it only takes over foreign deploy dirs).
    for c in plan
        .cells
        .iter()
        .filter(|c| c.action != CellAction::Unchanged)
    {
        let Some(cell) = topo.cell(&c.cell) else {
            continue;
        };
        if let Some(owner) = &cell.owner {
            targets
                .of(&cell.target)
                .and_then(|t| t.resolve_owner(owner))
                .map_err(|source| Error::DeployCell {
                    cell: c.cell.clone(),
                    source,
                })?;
        }
    }
    let blocked: Vec<String> = plan
        .cells
        .iter()
        .filter(|c| c.action != CellAction::Unchanged)
        .flat_map(|c| c.blockers.iter().map(move |b| format!("{}: {b}", c.cell)))
        .collect();
    if !blocked.is_empty() && !adopt {
        return Err(Error::Blocked { blockers: blocked });
    }
    if let Some(w) = clock.skew_warning() {
        rep.event(Event::Warn(w));
    }
    if plan.cells.iter().any(|c| c.action != CellAction::Unchanged) {
        let releases = cell_releases(targets, topo, &plan.request);
        if let Err(e) = check_releases(topo.pgbackrest.version, &releases) {
            if !skip_version_check {
                return Err(e.into());
            }
            rep.event(Event::Warn(format!(
                "--skip-version-check: deploying although {e}"
            )));
        }
    }
    let Some(built) = build_generation(store, topo, plan, inputs, clock.now, cause, consumed)?
    else {
        human.line("No changes. Nothing to apply.");
        return Ok(exit_codes::SUCCESS);
    };
    record.committed(plan, built.manifest.number);
    let rollout = Rollout {
        adopt,
        parallel: topo.ssh.parallel,
        hook_timeouts: HookTimeouts::of(topo),
    };
    // For a later `rollback`, which runs without the topology.
    store.set_hook_timeouts(&rollout.hook_timeouts.seconds())?;
    let report = record.deploy_ended(
        human,
        deploy_generation(
            store,
            targets,
            &built.manifest,
            &built.previous,
            rollout,
            rep,
        ),
    )?;
    human.line(format_args!(
        "Apply complete: generation {} ({} cell(s) deployed{}).",
        built.manifest.number,
        report.deployed.len(),
        short_list(&report.deployed)
            .map(|names| format!(": {names}"))
            .unwrap_or_default()
    ));
    human.line(record.summary.line());
    Ok(exit_codes::SUCCESS)
}

/// The pgBackRest release of every cell the request covers (all cells, or
/// those of `--cells`/`--bootstrap`: the others' hosts may not exist yet).
fn cell_releases(targets: &Targets, topo: &Topology, request: &Request) -> Vec<CellRelease> {
    let covered = |name: &str| match (&request.bootstrap, request.cells.is_empty()) {
        (Some(b), _) => b == name,
        (None, false) => request.cells.iter().any(|c| c == name),
        (None, true) => true,
    };
    read_releases(
        targets,
        topo.cells.iter().filter(|c| covered(c.name.as_str())),
        &topo.pgbackrest,
        topo.ssh.parallel,
    )
}

/// `pgbr apply`.
pub fn apply(state: &Location, identity: Option<&Path>, args: &ApplyArgs) -> Result<u8> {
    recorded("apply", args.json, |record| {
        apply_with(state, identity, args, record)
    })
}

fn apply_with(
    state: &Location,
    identity: Option<&Path>,
    args: &ApplyArgs,
    record: &mut Record,
) -> Result<u8> {
    let human = Human::new(args.json);
    let clock = Clock::resolve(args.now.as_deref())?;
    clock.check_skew(args.allow_clock_skew)?;
    let saved = read_saved_plan(&args.target)?;
    let mut store = Store::open(state)?;
    store.set_identity(identity);
    match saved {
        Some(saved) => {
            if !args.cells.is_empty() || args.bootstrap.is_some() {
                return Err(Error::SavedPlanWithSelection);
            }
            if store.plan_consumed(&saved.id)? {
                return Err(stale("it was applied already"));
            }
            let topo_path = Path::new(&saved.topology);
            let topo = topology::load(topo_path)?;
            if topo.hash() != saved.topology_hash {
                return Err(stale(&format!(
                    "the topology `{}` changed since",
                    saved.topology
                )));
            }
            if generations::state_digest(&store)? != saved.store_digest {
                return Err(stale("the state store changed since"));
            }
            check_request(&topo, &saved.request)?;
            let targets = Targets::new();
            let rep = reporter();
            let inputs = gather(
                &store,
                &targets,
                &topo,
                &saved.topology,
                saved.request.clone(),
                clock.now,
                rep.as_ref(),
            )?;
            record.plan(&saved, topo.cells.iter().map(|c| c.name.as_str()));
            refuse_unobserved(&inputs, record, human)?;
            if plan::disk_digest(&inputs) != saved.disk_digest {
                return Err(stale("a deploy dir changed since"));
            }
            let cause = cause_of(&saved.request);
            execute(
                &store,
                &targets,
                &topo,
                &saved,
                &inputs,
                Run {
                    clock: &clock,
                    cause,
                    consumed: Some(saved.id.clone()),
                    adopt: args.adopt,
                    skip_version_check: args.skip_version_check,
                    reporter: rep.as_ref(),
                    human,
                },
                record,
            )
        }
        None => {
            let request = Request {
                bootstrap: args.bootstrap.clone(),
                cells: args.cells.clone(),
                force_rotate: vec![],
                ca_step: None,
            };
            let cause = cause_of(&request);
            apply_topology(
                &store,
                &args.target,
                request,
                &clock,
                cause,
                args.yes,
                Deploy {
                    adopt: args.adopt,
                    skip_version_check: args.skip_version_check,
                    human,
                    record,
                },
            )
        }
    }
}

fn cause_of(request: &Request) -> Cause {
    match (
        &request.bootstrap,
        request.ca_step,
        request.force_rotate.is_empty(),
    ) {
        (Some(c), _, _) => Cause::Bootstrap(c.clone()),
        (None, Some(step), _) => Cause::CaRotation(step),
        (None, None, false) => Cause::Rotation,
        (None, None, true) => Cause::Apply,
    }
}

/// How cells are deployed: what `apply` may take over or overlook.
struct Deploy<'r> {
    adopt: bool,
    skip_version_check: bool,
    /// Where the text for people goes.
    human: Human,
    /// What became of the cells, as the run goes.
    record: &'r mut Record,
}

fn apply_topology(
    store: &Store,
    path: &Path,
    request: Request,
    clock: &Clock,
    cause: Cause,
    yes: bool,
    deploy: Deploy<'_>,
) -> Result<u8> {
    let human = deploy.human;
    let record = deploy.record;
    let topo = topology::load(path)?;
    let targets = Targets::new();
    let rep = reporter();
    let (inputs, plan) = make_plan(store, &targets, &topo, path, request, clock, rep.as_ref())?;
    human.text(plan::render(&plan));
    record.plan(&plan, topo.cells.iter().map(|c| c.name.as_str()));
    refuse_unobserved(&inputs, record, human)?;
    if !plan.has_changes() {
        return Ok(exit_codes::SUCCESS);
    }
    if !confirm("apply these changes", yes)? {
        human.line("Apply cancelled.");
        return Ok(exit_codes::ERROR);
    }
    execute(
        store,
        &targets,
        &topo,
        &plan,
        &inputs,
        Run {
            clock,
            cause,
            consumed: None,
            adopt: deploy.adopt,
            skip_version_check: deploy.skip_version_check,
            reporter: rep.as_ref(),
            human,
        },
        record,
    )
}

/// `pgbr rotate`.
pub fn rotate(state: &Location, identity: Option<&Path>, args: &RotateArgs) -> Result<u8> {
    recorded("rotate", args.json, |record| {
        rotate_with(state, identity, args, record)
    })
}

fn rotate_with(
    state: &Location,
    identity: Option<&Path>,
    args: &RotateArgs,
    record: &mut Record,
) -> Result<u8> {
    let clock = Clock::resolve(args.now.as_deref())?;
    clock.check_skew(args.allow_clock_skew)?;
    let mut store = Store::open(state)?;
    store.set_identity(identity);
    if args.ca {
        return rotate_ca(&store, args, &clock, record);
    }
    let topo = topology::load(&args.topology)?;
    let force: Vec<String> = if args.cells.is_empty() {
        topo.cells.iter().map(|c| c.name.to_string()).collect()
    } else {
        args.cells.clone()
    };
    let request = Request {
        cells: args.cells.clone(),
        force_rotate: force,
        ..Request::default()
    };
    apply_topology(
        &store,
        &args.topology,
        request,
        &clock,
        Cause::Rotation,
        args.yes,
        Deploy {
            adopt: false,
            skip_version_check: false,
            human: Human::new(args.json),
            record,
        },
    )
}

/// `pgbr rotate --ca`: performs the next of the three steps, when
/// [`pki::next_ca_step`] allows it.
fn rotate_ca(store: &Store, args: &RotateArgs, clock: &Clock, record: &mut Record) -> Result<u8> {
    if !args.cells.is_empty() {
        return Err(Error::CaRotationForSomeCells);
    }
    let pki_record = store.pki()?;
    if pki_record.ca.is_none() {
        return Err(Error::NoCa);
    }
    let topo = topology::load(&args.topology)?;
    let (inputs, probe) = make_plan(
        store,
        &Targets::new(),
        &topo,
        &args.topology,
        Request::default(),
        clock,
        reporter().as_ref(),
    )?;
    let unobserved = inputs.unobserved();
    if !unobserved.is_empty() {
        // Which cells are behind is unknown: no CA step can be chosen.
        return Err(Error::Unobserved {
            cells: unobserved,
            hints: inputs.unobserved_hints(),
        });
    }
    let ca = inputs.ca.as_ref().expect("checked above");
    let live_leaves = inputs
        .cells
        .iter()
        .filter_map(|(name, c)| c.live.as_ref().map(|(_, entry)| (name, entry)))
        .map(|(name, entry)| {
            let cert = entry
                .files
                .iter()
                .find(|f| f.path == crate::layout::SERVER_CERT);
            let pem = cert.and_then(|f| store.get_object(&f.object).ok());
            let pem = pem.map(|b| String::from_utf8_lossy(&b).into_owned());
            (name.clone(), pem)
        })
        .collect();
    let step = pki::next_ca_step(&CaRotationState {
        step_done: pki_record.ca_rotation_step,
        ca_pem: &ca.pem,
        behind: probe
            .cells
            .iter()
            .filter(|c| c.action != CellAction::Unchanged)
            .map(|c| c.cell.clone())
            .collect(),
        live_leaves,
    })?;
    let request = Request {
        ca_step: Some(step),
        ..Request::default()
    };
    apply_topology(
        store,
        &args.topology,
        request,
        clock,
        Cause::CaRotation(step),
        args.yes,
        Deploy {
            adopt: false,
            skip_version_check: false,
            human: Human::new(args.json),
            record,
        },
    )
}
