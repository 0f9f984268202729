//! What became of each cell in an `apply`, `rotate` or `rollback`: the
//! value behind the `Cells:` line and the `--json` output
//! (docs/plan-json.md, "apply and rollback"). Pure: it is built from the
//! plan, the deploy report and the error that stopped the run, and never
//! holds key material (only cell names and error messages).

use super::execute::DeployReport;
use std::collections::BTreeMap;

/// A group of the `Cells:` line with more routine cells than this shows
/// its count only (an operator of 32 hosts reads `30 deployed`, not 30
/// names); the groups that need attention always name every cell.
pub const NAMED_UP_TO: usize = 8;

/// What became of one cell. The JSON names are stable (snake_case).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Now on the generation this run made.
    Deployed,
    /// Only how its host is reached changed: the generation this run made
    /// records it; nothing was deployed there (`plan::CONNECTION`).
    Recorded,
    /// `activate` or the health check failed; flipped back to its previous
    /// generation.
    Reverted,
    /// `activate` or the health check failed and flipping back failed too:
    /// it needs an operator.
    RevertFailed,
    /// Its write, or a check before its flip, failed: untouched.
    Failed,
    /// Its host was lost while it was being switched: on its old or its new
    /// generation, each complete; the next `apply` converges.
    Lost,
    /// Due to change, but the run stopped (or was refused) before its turn.
    NotStarted,
    /// Its host or deploy dir could not be reached: nothing was done there.
    Unreachable,
    /// Already as planned.
    Unchanged,
    /// Not among the cells of `--cells` or `--bootstrap`.
    LeftOut,
    /// Deployed by an earlier generation but no longer in the topology:
    /// left in place.
    Removed,
}

impl Outcome {
    /// Every outcome, in the order of the `Cells:` line.
    pub const ALL: [Outcome; 11] = [
        Outcome::Deployed,
        Outcome::Recorded,
        Outcome::Reverted,
        Outcome::RevertFailed,
        Outcome::Failed,
        Outcome::Lost,
        Outcome::NotStarted,
        Outcome::Unchanged,
        Outcome::Unreachable,
        Outcome::LeftOut,
        Outcome::Removed,
    ];

    /// The words of the `Cells:` line.
    fn words(self) -> &'static str {
        match self {
            Outcome::Deployed => "deployed",
            Outcome::Recorded => "reached another way, recorded",
            Outcome::Reverted => "reverted",
            Outcome::RevertFailed => "failed and not reverted",
            Outcome::Failed => "failed before its flip",
            Outcome::Lost => "lost mid-switch",
            Outcome::NotStarted => "not started",
            Outcome::Unchanged => "unchanged",
            Outcome::Unreachable => "unreachable",
            Outcome::LeftOut => "left out",
            Outcome::Removed => "no longer in the topology, left in place",
        }
    }

    /// The JSON name (`not_started`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Deployed => "deployed",
            Outcome::Recorded => "recorded",
            Outcome::Reverted => "reverted",
            Outcome::RevertFailed => "revert_failed",
            Outcome::Failed => "failed",
            Outcome::Lost => "lost",
            Outcome::NotStarted => "not_started",
            Outcome::Unchanged => "unchanged",
            Outcome::Unreachable => "unreachable",
            Outcome::LeftOut => "left_out",
            Outcome::Removed => "removed",
        }
    }

    /// Whether an operator has to look at the cell: such groups always name
    /// every cell.
    fn needs_attention(self) -> bool {
        matches!(
            self,
            Outcome::Reverted
                | Outcome::RevertFailed
                | Outcome::Failed
                | Outcome::Lost
                | Outcome::Unreachable
        )
    }
}

/// One cell of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CellResult {
    /// The cell.
    pub cell: String,
    /// What became of it.
    pub outcome: Outcome,
    /// Why it is reverted, failed, lost or unreachable (the error's whole
    /// chain on one line); `None` otherwise.
    pub error: Option<String>,
}

/// What became of every cell a run knew of, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    cells: BTreeMap<String, (Outcome, Option<String>)>,
}

impl Summary {
    /// No cell known yet.
    pub fn new() -> Summary {
        Summary::default()
    }

    /// Sets what became of `cell` (replacing what was set before).
    pub fn set(&mut self, cell: &str, outcome: Outcome, error: Option<String>) {
        self.cells.insert(cell.to_owned(), (outcome, error));
    }

    /// Sets the cells a deploy reached, over what the plan said: deployed,
    /// reverted, failed and not started. The cell that stopped the run gets
    /// `stop` (the error's chain, and whether its host was lost or could
    /// not be reached).
    pub fn record(&mut self, report: &DeployReport, stop: Option<&Stop>) {
        let groups = [
            (Outcome::Deployed, &report.deployed),
            (Outcome::Reverted, &report.reverted),
            (Outcome::RevertFailed, &report.revert_failed),
            (Outcome::Failed, &report.failed),
            (Outcome::NotStarted, &report.not_started),
        ];
        for (outcome, cells) in groups {
            for cell in cells {
                let (outcome, error) = match (outcome, stop) {
                    (Outcome::Deployed | Outcome::NotStarted, _) | (_, None) => (outcome, None),
                    (Outcome::Failed, Some(s)) if s.lost => (Outcome::Lost, Some(&s.error)),
                    (Outcome::Failed, Some(s)) if s.unreachable => {
                        (Outcome::Unreachable, Some(&s.error))
                    }
                    (_, Some(s)) => (outcome, Some(&s.error)),
                };
                self.set(cell, outcome, error.cloned());
            }
        }
    }

    /// Marks every cell not yet known as [`Outcome::LeftOut`].
    pub fn left_out<'a>(&mut self, all: impl IntoIterator<Item = &'a str>) {
        for cell in all {
            if !self.cells.contains_key(cell) {
                self.set(cell, Outcome::LeftOut, None);
            }
        }
    }

    /// Every cell with its outcome, in name order.
    pub fn cells(&self) -> Vec<CellResult> {
        self.cells
            .iter()
            .map(|(cell, (outcome, error))| CellResult {
                cell: cell.clone(),
                outcome: *outcome,
                error: error.clone(),
            })
            .collect()
    }

    /// The cells with `outcome`, in name order.
    pub fn with(&self, outcome: Outcome) -> Vec<&str> {
        self.cells
            .iter()
            .filter(|(_, (o, _))| *o == outcome)
            .map(|(c, _)| c.as_str())
            .collect()
    }

    /// The `Cells:` line: each non-empty group with its count, and its
    /// names unless it is a routine group of more than [`NAMED_UP_TO`]
    /// cells, e.g. `Cells: 1 deployed (zone1), 1 reverted (zone2), 1 not
    /// started (zone3), 1 unchanged (zone4).` or `Cells: 30 deployed, 1
    /// unreachable (zone07), 1 left out (zone12).`
    pub fn line(&self) -> String {
        let parts: Vec<String> = Outcome::ALL
            .iter()
            .filter_map(|&outcome| {
                let cells = self.with(outcome);
                let n = cells.len();
                match n {
                    0 => None,
                    _ if n > NAMED_UP_TO && !outcome.needs_attention() => {
                        Some(format!("{n} {}", outcome.words()))
                    }
                    _ => Some(format!("{n} {} ({})", outcome.words(), cells.join(", "))),
                }
            })
            .collect();
        if parts.is_empty() {
            return "Cells: none.".to_owned();
        }
        format!("Cells: {}.", parts.join(", "))
    }

    /// The count of each outcome (every one, zeros included), by JSON name.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        Outcome::ALL
            .iter()
            .map(|&o| (o.as_str(), self.with(o).len()))
            .collect()
    }
}

/// The error that stopped a deploy, as [`Summary::record`] needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// The error's whole chain, on one line.
    pub error: String,
    /// The cell's host was lost mid-operation.
    pub lost: bool,
    /// The cell's host could not be reached or used at all.
    pub unreachable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("{prefix}{i:02}")).collect()
    }

    #[test]
    fn small_groups_are_named_in_the_line_order() {
        let mut s = Summary::new();
        s.set("zone4", Outcome::Unchanged, None);
        s.record(
            &DeployReport {
                deployed: vec!["zone1".into()],
                reverted: vec!["zone2".into()],
                not_started: vec!["zone3".into()],
                ..DeployReport::default()
            },
            Some(&Stop {
                error: "activate failed".into(),
                lost: false,
                unreachable: false,
            }),
        );
        s.left_out(["zone1", "zone5"]);
        assert_eq!(
            s.line(),
            "Cells: 1 deployed (zone1), 1 reverted (zone2), 1 not started (zone3), \
             1 unchanged (zone4), 1 left out (zone5)."
        );
        let reverted = &s.cells()[1];
        assert_eq!(reverted.error.as_deref(), Some("activate failed"));
        assert_eq!(s.cells()[0].error, None, "only the stopping cell has one");
    }

    #[test]
    fn large_routine_groups_are_counted_and_problems_always_named() {
        let mut s = Summary::new();
        let report = DeployReport {
            deployed: names("d", 20),
            failed: vec!["x01".into()],
            not_started: names("n", NAMED_UP_TO),
            ..DeployReport::default()
        };
        s.record(
            &report,
            Some(&Stop {
                error: "reach `ssh://x01`: ssh: connect to host x01 port 22: Connection refused"
                    .into(),
                lost: false,
                unreachable: true,
            }),
        );
        for cell in names("u", 12) {
            s.set(&cell, Outcome::Unreachable, Some("timed out".into()));
        }
        let line = s.line();
        assert!(
            line.starts_with("Cells: 20 deployed, 8 not started (n01, "),
            "{line}"
        );
        assert!(line.contains(", 13 unreachable (u01, u02, "), "{line}");
        assert!(line.ends_with("u12, x01)."), "{line}");
        assert_eq!(s.counts()["unreachable"], 13);
        assert_eq!(s.counts()["lost"], 0, "every outcome is counted");
    }

    #[test]
    fn a_lost_host_is_lost_not_failed() {
        let mut s = Summary::new();
        s.record(
            &DeployReport {
                deployed: vec!["c1".into()],
                failed: vec!["c2".into()],
                not_started: vec!["c3".into()],
                ..DeployReport::default()
            },
            Some(&Stop {
                error: "flip: the host was lost".into(),
                lost: true,
                unreachable: true,
            }),
        );
        assert_eq!(
            s.line(),
            "Cells: 1 deployed (c1), 1 lost mid-switch (c2), 1 not started (c3)."
        );
    }
}
