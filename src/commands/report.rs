//! The end of an `apply`, `rotate` or `rollback`: the `Cells:` line for
//! people and, with `--json`, one JSON document on stdout for scripts
//! (schema in docs/plan-json.md). With `--json` everything written for
//! people (the plan, the diff, the `Cells:` line) goes to stderr, so that
//! stdout holds the document alone.

use crate::apply::{CellResult, DeployReport, DeployStopped, Outcome, Stop, Summary};
use crate::output::{err, errln, out, outln};
use crate::plan::{CellAction, Plan};
use crate::{Error, Result};
use std::collections::BTreeMap;

/// Where the text for people goes: stdout, or stderr when stdout carries
/// JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Human {
    to_stderr: bool,
}

impl Human {
    /// For a command run with `--json` or not.
    pub(crate) fn new(json: bool) -> Human {
        Human { to_stderr: json }
    }

    /// Writes `text` as it is.
    pub(crate) fn text(self, text: impl std::fmt::Display) {
        if self.to_stderr {
            err!("{text}");
        } else {
            out!("{text}");
        }
    }

    /// Writes `line` and a newline.
    pub(crate) fn line(self, line: impl std::fmt::Display) {
        if self.to_stderr {
            errln!("{line}");
        } else {
            outln!("{line}");
        }
    }
}

/// What a run did to its cells, gathered as it goes.
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// Every cell the run knew of.
    pub summary: Summary,
    /// The generation the run made (and deployed, as far as it went).
    pub generation: Option<u64>,
    /// `rollback`: the generation whose files it deploys.
    pub rollback_to: Option<u64>,
}

impl Record {
    /// What the plan says of each cell, before anything is deployed: cells
    /// to change are not started yet. `all` names every cell of the
    /// topology: those the plan leaves out are [`Outcome::LeftOut`].
    pub(crate) fn plan<'a>(&mut self, plan: &Plan, all: impl IntoIterator<Item = &'a str>) {
        for c in &plan.cells {
            let (outcome, error) = match c.action {
                CellAction::Create | CellAction::Update => (Outcome::NotStarted, None),
                CellAction::Unchanged => (Outcome::Unchanged, None),
                CellAction::Remove => (Outcome::Removed, None),
                CellAction::Unreachable => (Outcome::Unreachable, c.unreachable.clone()),
            };
            self.summary.set(&c.cell, outcome, error);
        }
        self.summary.left_out(all);
    }

    /// The run committed generation `number`: the cells of `plan` whose
    /// change it only records (how their host is reached) are done.
    pub(crate) fn committed(&mut self, plan: &Plan, number: u64) {
        self.generation = Some(number);
        for c in &plan.cells {
            if c.only_recorded() {
                self.summary.set(&c.cell, Outcome::Recorded, None);
            }
        }
    }

    /// How a deploy ended, over the plan's outcomes: its report when it
    /// finished; when it stopped early, the `Cells:` line for `human` and
    /// the error that stopped it.
    pub(crate) fn deploy_ended(
        &mut self,
        human: Human,
        ended: std::result::Result<DeployReport, Box<DeployStopped>>,
    ) -> Result<DeployReport> {
        match ended {
            Ok(report) => {
                self.deployed(&report, None);
                Ok(report)
            }
            Err(stopped) => {
                self.deployed(&stopped.report, Some(&stopped.error));
                human.line(self.summary.line());
                Err(stopped.error)
            }
        }
    }

    /// What a deploy did, over the plan's outcomes; `stopped`: the error
    /// that ended it early.
    fn deployed(&mut self, report: &DeployReport, stopped: Option<&Error>) {
        let stop = stopped.map(|e| {
            let target = match e {
                Error::Deploy(t) | Error::DeployCell { source: t, .. } => Some(t),
                _ => None,
            };
            Stop {
                error: crate::apply::error_chain(e),
                lost: target.is_some_and(|t| t.is_lost()),
                unreachable: target.is_some_and(|t| t.is_host_failure()),
            }
        });
        self.summary.record(report, stop.as_ref());
    }
}

/// The `--json` document of an `apply` or a `rollback` (docs/plan-json.md).
#[derive(Debug, serde::Serialize)]
struct Document<'a> {
    version: u32,
    command: &'a str,
    generation: Option<u64>,
    rollback_to: Option<u64>,
    exit_code: u8,
    error: Option<String>,
    cells: Vec<CellResult>,
    summary: BTreeMap<&'static str, usize>,
}

/// Prints the `--json` document of a run that ended with `result`.
/// Runs a deploying command with a fresh [`Record`]; with `json`, prints
/// what it recorded as `command`'s document, however it ended.
pub(crate) fn recorded(
    command: &str,
    json: bool,
    run: impl FnOnce(&mut Record) -> Result<u8>,
) -> Result<u8> {
    let mut record = Record::default();
    let result = run(&mut record);
    if json {
        print_json(command, &record, &result);
    }
    result
}

fn print_json(command: &str, record: &Record, result: &Result<u8>) {
    let (exit_code, error) = match result {
        Ok(code) => (*code, None),
        Err(e) => {
            let mut text = Vec::new();
            e.report(&mut text);
            let text = String::from_utf8_lossy(&text).trim_end().to_owned();
            (e.exit_code(), Some(text))
        }
    };
    let doc = Document {
        version: 1,
        command,
        generation: record.generation,
        rollback_to: record.rollback_to,
        exit_code,
        error,
        cells: record.summary.cells(),
        summary: record.summary.counts(),
    };
    outln!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("the summary serializes")
    );
}

/// `zone1, zone2`, or nothing past [`crate::apply::NAMED_UP_TO`] names.
pub(crate) fn short_list(cells: &[String]) -> Option<String> {
    (!cells.is_empty() && cells.len() <= crate::apply::NAMED_UP_TO).then(|| cells.join(", "))
}
