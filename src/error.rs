//! The top-level error: wraps each module's error and names every failure a
//! command refuses or meets. One `match` decides a process's exit code
//! ([`Error::exit_code`]), another its hint ([`Error::hint`]); [`Error::report`]
//! prints it as `error: …`, `caused by: …` lines and an optional `hint: …`.
//! (just: `src/error.rs`; nextest: `ExpectedError::process_exit_code`.)

use crate::exit_codes;
use std::error::Error as _;
use std::io::Write;
use std::path::PathBuf;

/// Any failure of a pgbr command. Messages read after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The topology is invalid.
    #[error(transparent)]
    Topology(#[from] crate::topology::Error),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// Certificate work failed.
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
    /// Reading or writing a deploy dir failed outside a cell's deploy.
    #[error(transparent)]
    Deploy(#[from] crate::apply::Error),
    /// The cells do not all run the pgBackRest release of the topology.
    #[error(transparent)]
    Release(#[from] crate::apply::ReleaseMismatch),

    /// `--now` is not an RFC 3339 time.
    #[error("parse `--now {text}`")]
    BadNow {
        /// What was given.
        text: String,
        /// The cause.
        #[source]
        source: time::error::Parse,
    },
    /// `apply`/`rotate --now` more than a day off the real clock, without
    /// `--allow-clock-skew`.
    #[error("use `--now`: it is {} days {} the real clock", days.abs(), if *days < 0 { "behind" } else { "ahead of" })]
    ClockSkew {
        /// Whole days from the real clock (negative: in the past).
        days: i64,
    },
    /// No terminal to ask for a confirmation on, and no `--yes`.
    #[error("{what}: no terminal to confirm on")]
    NoTerminal {
        /// What would have been confirmed.
        what: String,
        /// Whether the command also takes a saved plan.
        saved_plan: bool,
    },
    /// Reading the confirmation failed.
    #[error("read the answer")]
    ReadAnswer(#[source] std::io::Error),

    /// A cell named on the command line is not in the topology.
    #[error("select cell `{name}`: no such cell in the topology")]
    NoSuchCell {
        /// The name given.
        name: String,
        /// The topology's cells.
        cells: Vec<String>,
    },
    /// `render --cell` names a cell that is not in the topology.
    #[error("render cell `{name}`: no such cell in the topology")]
    NoSuchRenderCell {
        /// The name given.
        name: String,
        /// The topology's cells.
        cells: Vec<String>,
    },
    /// `--bootstrap` together with `--cells`.
    #[error("combine `--bootstrap` with `--cells`")]
    BootstrapWithCells,
    /// `render` to stdout of a topology with several cells.
    #[error("render: the topology has several cells")]
    RenderSeveralCells,
    /// Writing a rendered config failed.
    #[error("write `{}`", path.display())]
    WriteRendered {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// Saving a plan failed.
    #[error("save the plan to `{}`", path.display())]
    SavePlan {
        /// The plan file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The argument of `apply` cannot be read.
    #[error("read `{}`", path.display())]
    ReadApplyTarget {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file that starts like a saved plan does not parse.
    #[error("read the saved plan `{}`", path.display())]
    DamagedPlan {
        /// The plan file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A saved plan no longer matches the store or the deployed state.
    #[error("apply the saved plan: plan is stale ({why})")]
    StalePlan {
        /// What changed since the plan was made.
        why: String,
    },
    /// A saved plan was given with `--cells` or `--bootstrap`.
    #[error("apply a saved plan with `--cells` or `--bootstrap`")]
    SavedPlanWithSelection,
    /// Deploy dirs that could not be observed (a target failed): a plan of
    /// unseen cells is not a plan.
    #[error("observe {} cell(s): {}", cells.len(), cells.join("; "))]
    Unobserved {
        /// `cell: why`, in name order.
        cells: Vec<String>,
        /// What to do about each kind of failure among them (a refused
        /// login, a changed host key, …), once each.
        hints: Vec<String>,
    },
    /// Deploy dirs hold things pgbr did not put there.
    #[error("apply: {}", blockers.join("; "))]
    Blocked {
        /// `cell: problem`, one per blocker.
        blockers: Vec<String>,
    },

    /// The store holds no leaf for a key the plan keeps.
    #[error("find the leaf of `{key}` in the store")]
    LeafGone {
        /// The leaf's key.
        key: String,
    },
    /// A planned cell is no longer in the topology.
    #[error("find cell `{cell}` in the topology")]
    CellGone {
        /// The cell.
        cell: String,
    },
    /// A changed cell has no leaf in the plan (a bug).
    #[error("find the planned leaf for `{cell}`")]
    LeafNotPlanned {
        /// The cell.
        cell: String,
    },
    /// A stored certificate is not text.
    #[error("read {what} from the store: it is not UTF-8 PEM")]
    StoredCertNotPem {
        /// Which certificate.
        what: String,
    },
    /// The stored CA key is not text.
    #[error("read the CA key from the store: it is not PEM")]
    StoredCaKeyNotPem,

    /// Writing or checking a cell's files failed before its flip: the cell is
    /// untouched.
    #[error("deploy cell `{cell}`")]
    DeployCell {
        /// The cell.
        cell: String,
        /// The cause.
        #[source]
        source: crate::apply::Error,
    },
    /// `gc` could not observe or clean a cell's deploy dir.
    #[error("collect old generations of cell `{cell}`")]
    GcCell {
        /// The cell.
        cell: String,
        /// The cause.
        #[source]
        source: crate::apply::Error,
    },
    /// `activate` or the health check failed; the cell was flipped back.
    #[error(
        "activate cell `{cell}`: {step} failed, the cell is {}{}\n{reason}",
        back(*previous),
        not_started_text(not_started)
    )]
    CellReverted {
        /// The cell.
        cell: String,
        /// `activate` or `health`.
        step: String,
        /// What failed, with the hook's output tail.
        reason: String,
        /// The generation the cell is back on.
        previous: Option<u64>,
        /// The cells deployed before this one.
        deployed: Box<[String]>,
        /// The cells after it, not started.
        not_started: Box<[String]>,
    },
    /// `activate` or the health check failed and reverting failed too.
    #[error(
        "activate cell `{cell}`: {step} failed and reverting it failed too{}\n{reason}\nrevert: {revert}",
        not_started_text(not_started)
    )]
    RevertFailed {
        /// The cell.
        cell: String,
        /// `activate` or `health`.
        step: String,
        /// What failed.
        reason: String,
        /// Why the revert failed (boxed, like `deploy_dir`).
        revert: Box<str>,
        /// The cell's deploy dir (boxed: keeps `Error` small).
        deploy_dir: Box<str>,
        /// The cells after it, not started.
        not_started: Box<[String]>,
    },

    /// `rotate --ca --cells`.
    #[error("rotate the CA for some cells only")]
    CaRotationForSomeCells,
    /// `rotate --ca` before any CA exists.
    #[error("rotate the CA: there is no CA yet")]
    NoCa,
    /// `pgbr agent` (on a cell's host) could not read or answer a request.
    #[error("serve the operator's requests")]
    Agent(#[source] std::io::Error),
    /// `rollback` with no generations in the store.
    #[error("roll back: there are no generations yet")]
    NoGenerations,
    /// `rollback` without `--to` when the live generation (rollbacks
    /// stepped over) has no parent.
    #[error("roll back: generation {generation} has no earlier generation")]
    NoEarlierGeneration {
        /// The live generation.
        generation: u64,
    },
    /// `rollback --to N` of a generation the store does not have.
    #[error("roll back to generation {to}: the store does not have it")]
    GenerationGone {
        /// The generation asked for.
        to: u64,
        /// The generations the store has.
        kept: Vec<u64>,
    },
    /// The target generation's certificates are expired or due.
    #[error("roll back to generation {to}: its certificates are expired or due for renewal")]
    RollbackCertsDue {
        /// The generation asked for.
        to: u64,
    },
}

fn back(previous: Option<u64>) -> String {
    previous
        .map(|p| format!("back on generation {p}"))
        .unwrap_or_else(|| "left with no live generation".into())
}

fn not_started_text(not_started: &[String]) -> String {
    if not_started.is_empty() {
        String::new()
    } else {
        format!("; not started: {}", not_started.join(", "))
    }
}

/// The hint for a failure to write or check a deploy dir.
/// (Also the hints of [`Error::Unobserved`].)
pub(crate) fn deploy_hint(e: &crate::apply::Error) -> Option<String> {
    use crate::apply::target::Reach;
    use crate::apply::Error as A;
    match e {
        A::Refused { hint, .. } => Some(hint.clone()),
        A::Chown { .. } => Some(
            "run pgbr as root or as the deploy dir's owner, or set `owner` in the topology".into(),
        ),
        A::Owner { .. } => Some("set `owner` to an existing `user` or `user:group`".into()),
        A::Io(e) if e.source.kind() == std::io::ErrorKind::PermissionDenied => {
            Some("check the permissions of the deploy dir and its parents".into())
        }
        A::Unsupported { .. } => Some("set `target = \"local\"` for this cell".into()),
        A::Unreachable { why, .. } => Some(
            match why {
                Reach::Network => "check that the host is up and its sshd reachable (`ssh` to it by hand shows the same)",
                Reach::HostKey => "pgbr never accepts a host key by itself: check the host's key, then update `known_hosts` (`ssh-keygen -R HOST`, then `ssh HOST` once)",
                Reach::Login => "check the login user of `target` and the key ssh offers (ssh-agent, `IdentityFile` in `[ssh] config_file`)",
                Reach::Ssh => "fix `[ssh] config_file` or `[ssh] options` (ssh's words above say which)",
            }
            .into(),
        ),
        A::Lost { .. } => Some(
            "cells already switched stay on their new generation; once the host is back, run `pgbr apply` again to converge".into(),
        ),
        A::Agent { .. } => Some(
            "the host needs a POSIX sh and a writable home where pgbr keeps a copy of itself (`~/.cache/pgbr`); run the same pgbr on the host with `target = \"local\"` if it cannot".into(),
        ),
        A::Sudo { .. } => Some(
            "give the login user passwordless sudo (`NOPASSWD`) on the host, or log in as root and drop `[ssh] sudo`".into(),
        ),
        A::Platform { host, file, .. } => Some(format!(
            "build `pgbr-agent` from this pgbr's sources for `{host}` (`cargo build --release \
             --bin pgbr-agent --target <its target triple>`) and put it next to pgbr as `{file}`; \
             or run pgbr from a machine that is `{host}` too, or on the host itself with \
             `target = \"local\"`"
        )),
        _ => None,
    }
}

const STALE_HINT: &str = "the plan is stale: run `pgbr plan` again";

fn cell_list(cells: &[String]) -> String {
    format!("the cells are: {}", cells.join(", "))
}

impl Error {
    /// The process exit code for this error (docs/exit-codes.md).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Store(crate::store::Error::Locked { .. }) => exit_codes::LOCKED,
            Error::StalePlan { .. } => exit_codes::STALE_PLAN,
            Error::CellReverted { .. } => exit_codes::CELL_REVERTED,
            Error::RevertFailed { .. } => exit_codes::REVERT_FAILED,
            Error::Deploy(e) | Error::DeployCell { source: e, .. } if e.is_lost() => {
                exit_codes::HOST_LOST
            }
            _ => exit_codes::ERROR,
        }
    }

    /// What the operator can do about it.
    pub fn hint(&self) -> Option<String> {
        let text = match self {
            Error::Topology(_) => "fix the problems above and run `pgbr check` again",
            Error::Store(e) => return e.hint(),
            Error::Pki(crate::pki::Error::Generate {
                source: rcgen::Error::KeyGenerationUnavailable,
                ..
            }) => {
                "the system's random number generator failed; check that the \
                 machine has an entropy source (getrandom(2))"
            }
            Error::Pki(crate::pki::Error::CaStepNotLive { .. }) => {
                "run `pgbr apply` until `pgbr plan` shows no changes, then `pgbr rotate --ca` again"
            }
            Error::Pki(crate::pki::Error::OldCaLeaves { .. }) => {
                "run `pgbr apply` so that every cell has its new leaf, then `pgbr rotate --ca` again"
            }
            Error::Pki(crate::pki::Error::CaExpired { .. }) => {
                "run `pgbr rotate --ca` (three steps) to replace the CA; \
                 `pgbr plan` shows where it stands"
            }
            Error::Pki(_) => return None,
            Error::Deploy(e) => return deploy_hint(e),
            Error::Release(e) => return Some(format!(
                "install pgBackRest {} on every cell (or set `[pgbackrest] version` to the release they run); during a rolling upgrade, `--skip-version-check` deploys anyway",
                e.expected
            )),
            Error::BadNow { .. } => "give an RFC 3339 time such as `2027-06-01T00:00:00Z`",
            Error::ClockSkew { .. } => {
                "certificates issued then are expired or not valid yet on real servers at the \
                 real time; drop `--now`, or pass `--allow-clock-skew` for a drill or a test"
            }
            Error::NoTerminal {
                saved_plan: false, ..
            } => "pass `--yes` to proceed without a prompt (`--dry-run` shows what would change)",
            Error::NoTerminal { .. } => {
                "pass `--yes` to proceed without a prompt, or apply a plan saved with `pgbr plan --out`"
            }
            Error::ReadAnswer(_) => return None,
            Error::NoSuchCell { cells, .. } | Error::NoSuchRenderCell { cells, .. } => {
                return Some(cell_list(cells))
            }
            Error::BootstrapWithCells => "`--bootstrap C` deploys only C; drop `--cells`",
            Error::RenderSeveralCells => "name one with `--cell C`, or write all with `--out DIR`",
            Error::WriteRendered { .. } | Error::SavePlan { .. } => return None,
            Error::ReadApplyTarget { .. } => {
                "give a topology module, or a plan saved by `pgbr plan --out PLAN`"
            }
            Error::DamagedPlan { .. } => {
                "the file starts like a pgbr plan but is damaged; make a new one with `pgbr plan --out`"
            }
            Error::StalePlan { .. } => "run `pgbr plan --out PLAN` again and review the new plan",
            Error::SavedPlanWithSelection => {
                "a saved plan is applied exactly as made; make it with those flags instead"
            }
            Error::Blocked { .. } => {
                "check those paths; run with `--adopt` to take them over as they are"
            }
            Error::Unobserved { hints, .. } if !hints.is_empty() => {
                return Some(format!(
                    "nothing was changed; {}; then run again (`plan` and `apply` leave cells \
                     out with `--cells`)",
                    hints.join("; ")
                ))
            }
            Error::Unobserved { .. } => {
                "nothing was changed; fix what keeps pgbr from reading those deploy dirs and run \
                 again (`plan` and `apply` leave cells out with `--cells`)"
            }
            Error::LeafGone { .. } | Error::CellGone { .. } => STALE_HINT,
            Error::LeafNotPlanned { .. }
            | Error::StoredCertNotPem { .. }
            | Error::StoredCaKeyNotPem => return None,
            Error::DeployCell { source, .. } => {
                return Some(deploy_hint(source).unwrap_or_else(|| {
                    "fix the cause and run `pgbr apply` again".into()
                }))
            }
            Error::GcCell { source, .. } => {
                return Some(
                    deploy_hint(source)
                        .unwrap_or_else(|| "fix the cause and run `pgbr gc` again".into()),
                )
            }
            Error::CellReverted { step, deployed, .. } => {
                return Some(format!(
                    "fix the {step} problem, then run `pgbr apply` again to resume (deployed so far: {})",
                    if deployed.is_empty() { "none".to_owned() } else { deployed.join(", ") }
                ))
            }
            Error::RevertFailed { deploy_dir, .. } => {
                return Some(format!(
                    "the cell needs an operator: check `{deploy_dir}/current` and its pgBackRest server"
                ))
            }
            Error::Agent(_) => "this is pgbr's own agent on a cell's host; it is started by pgbr over SSH",
            Error::CaRotationForSomeCells => "a CA rotation covers every cell: drop `--cells`",
            Error::NoCa => "`pgbr apply` creates it",
            Error::NoGenerations => "run `pgbr apply` first",
            Error::NoEarlierGeneration { .. } => "name one with `--to N`; `pgbr generations` lists them",
            Error::GenerationGone { kept, .. } => {
                let kept: Vec<String> = kept.iter().map(u64::to_string).collect();
                return Some(format!(
                    "kept generations: {} (gc may have removed older ones)",
                    kept.join(", ")
                ));
            }
            Error::RollbackCertsDue { .. } => {
                "pass `--force` to deploy them anyway, or roll back to a newer generation"
            }
        };
        Some(text.to_owned())
    }

    /// Prints the error, its problems, its causes and its hint.
    pub fn report(&self, out: &mut dyn Write) {
        let _ = writeln!(out, "error: failed to {self}");
        if let Error::Topology(t) = self {
            for p in &t.problems {
                let _ = writeln!(out, "  {p}");
            }
        }
        // Transparent variants: the wrapped error's own source is the first cause.
        let mut cause = match self {
            Error::Topology(e) => e.source(),
            Error::Store(e) => e.source(),
            Error::Pki(e) => e.source(),
            Error::Deploy(e) => e.source(),
            _ => self.source(),
        };
        // Some libraries chain an error to one with the same text: say it once.
        let mut last = String::new();
        while let Some(c) = cause {
            let text = c.to_string();
            if text != last {
                let _ = writeln!(out, "caused by: {text}");
            }
            last = text;
            cause = c.source();
        }
        if let Some(h) = self.hint() {
            let _ = writeln!(out, "hint: {h}");
        }
    }
}

/// pgbr's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn report(e: &Error) -> String {
        let mut out = Vec::new();
        e.report(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn exit_codes_are_decided_by_the_variant() {
        let stale = Error::StalePlan {
            why: "the state store changed since".into(),
        };
        assert_eq!(stale.exit_code(), exit_codes::STALE_PLAN);
        assert_eq!(
            report(&stale),
            "error: failed to apply the saved plan: plan is stale (the state store changed since)\n\
             hint: run `pgbr plan --out PLAN` again and review the new plan\n"
        );
        assert_eq!(Error::NoGenerations.exit_code(), exit_codes::ERROR);
    }

    #[test]
    fn a_reverted_cell_names_where_it_is_and_what_did_not_start() {
        let e = Error::CellReverted {
            cell: "zone2".into(),
            step: "health".into(),
            reason: "exit status 1".into(),
            previous: Some(3),
            deployed: vec!["zone1".to_owned()].into(),
            not_started: vec!["zone3".to_owned()].into(),
        };
        assert_eq!(e.exit_code(), exit_codes::CELL_REVERTED);
        assert_eq!(
            report(&e),
            "error: failed to activate cell `zone2`: health failed, the cell is back on generation 3; not started: zone3\n\
             exit status 1\n\
             hint: fix the health problem, then run `pgbr apply` again to resume (deployed so far: zone1)\n"
        );
        let first = Error::CellReverted {
            cell: "zone1".into(),
            step: "activate".into(),
            reason: "boom".into(),
            previous: None,
            deployed: Box::default(),
            not_started: Box::default(),
        };
        assert!(report(&first).contains("the cell is left with no live generation\nboom\n"));
        assert!(report(&first).contains("(deployed so far: none)"));
    }

    #[test]
    fn a_failed_revert_needs_an_operator() {
        let e = Error::RevertFailed {
            cell: "zone1".into(),
            step: "activate".into(),
            reason: "exit status 3".into(),
            revert: "exit status 3".into(),
            deploy_dir: "/srv/pgbr/zone1".into(),
            not_started: Box::default(),
        };
        assert_eq!(e.exit_code(), exit_codes::REVERT_FAILED);
        assert_eq!(
            report(&e),
            "error: failed to activate cell `zone1`: activate failed and reverting it failed too\n\
             exit status 3\nrevert: exit status 3\n\
             hint: the cell needs an operator: check `/srv/pgbr/zone1/current` and its pgBackRest server\n"
        );
    }

    #[test]
    fn a_deploy_failure_keeps_the_cause_and_has_a_hint() {
        let e = Error::DeployCell {
            cell: "zone1".into(),
            source: crate::apply::Error::Io(crate::io_error::IoError {
                action: "write".into(),
                path: "/srv/x".into(),
                source: std::io::Error::other("disk full"),
            }),
        };
        assert_eq!(
            report(&e),
            "error: failed to deploy cell `zone1`\n\
             caused by: write `/srv/x`\n\
             caused by: disk full\n\
             hint: fix the cause and run `pgbr apply` again\n"
        );
    }

    /// A remote cell's failure names the cell once (the command's line),
    /// the address and ssh's words (the target's error), and what to do.
    #[test]
    fn a_remote_failure_names_its_cell_once() {
        use crate::apply::target::Reach;
        use crate::apply::Error as T;
        let target = || -> Box<str> { "ssh://deploy@10.0.0.3".into() };
        // The cells the host holds: the message leaves them to the caller.
        let cells = || -> Box<[String]> { vec!["zone3".to_owned(), "zone4".to_owned()].into() };
        let cases = [
            (
                T::Unreachable {
                    target: target(),
                    cells: cells(),
                    why: Reach::HostKey,
                    detail: "Host key verification failed.".into(),
                },
                "caused by: reach `ssh://deploy@10.0.0.3`: ssh does not trust the host's key: \
                 Host key verification failed.\n\
                 hint: pgbr never accepts a host key by itself",
            ),
            (
                T::Lost {
                    target: target(),
                    cells: cells(),
                    action: "flip `/srv/pg/pgbackrest`".into(),
                    detail: "Broken pipe".into(),
                },
                "caused by: flip `/srv/pg/pgbackrest` on `ssh://deploy@10.0.0.3`: \
                 the host was lost: Broken pipe\n\
                 hint: cells already switched",
            ),
            (
                T::Agent {
                    target: target(),
                    cells: cells(),
                    detail: "sh: 1: cannot create".into(),
                },
                "caused by: start pgbr's agent on `ssh://deploy@10.0.0.3`: sh: 1: cannot create\n\
                 hint: the host needs a POSIX sh",
            ),
            (
                T::Sudo {
                    target: target(),
                    cells: cells(),
                    detail: "sudo: a password is required".into(),
                },
                "caused by: run pgbr's agent through `sudo -n` on `ssh://deploy@10.0.0.3`: \
                 sudo: a password is required\n\
                 hint: give the login user passwordless sudo",
            ),
            (
                T::Platform {
                    target: target(),
                    cells: cells(),
                    host: "Linux aarch64".into(),
                    file: "pgbr-agent.linux-aarch64".into(),
                    why: "there is no `/usr/bin/pgbr-agent.linux-aarch64`".into(),
                },
                "caused by: run pgbr on `ssh://deploy@10.0.0.3`: the host is `Linux aarch64`, \
                 this pgbr is built for `linux x86_64`, and there is no \
                 `/usr/bin/pgbr-agent.linux-aarch64`\n\
                 hint: build `pgbr-agent` from this pgbr's sources for `Linux aarch64` \
                 (`cargo build --release --bin pgbr-agent --target <its target triple>`) and put \
                 it next to pgbr as `pgbr-agent.linux-aarch64`; or run pgbr from a machine",
            ),
        ];
        for (source, want) in cases {
            let text = report(&Error::DeployCell {
                cell: "zone3".into(),
                source,
            });
            assert!(
                text.starts_with("error: failed to deploy cell `zone3`\n"),
                "{text}"
            );
            // The platform pgbr names is the one it was built for.
            let ours = format!("`{} {}`", std::env::consts::OS, std::env::consts::ARCH);
            let want = want.replace("`linux x86_64`", &ours);
            assert!(text.contains(&want), "{text}");
            assert_eq!(text.matches("zone3").count(), 1, "{text}");
            assert!(!text.contains("zone4"), "{text}");
        }
        let gc = Error::GcCell {
            cell: "zone3".into(),
            source: T::Unreachable {
                target: target(),
                cells: cells(),
                why: Reach::Network,
                detail: "ssh: connect to host 10.0.0.3 port 22: Connection timed out".into(),
            },
        };
        assert_eq!(
            report(&gc),
            "error: failed to collect old generations of cell `zone3`\n\
             caused by: reach `ssh://deploy@10.0.0.3`: ssh: connect to host 10.0.0.3 port 22: \
             Connection timed out\n\
             hint: check that the host is up and its sshd reachable (`ssh` to it by hand shows \
             the same)\n"
        );
    }

    #[test]
    fn a_missing_generation_lists_the_kept_ones() {
        let e = Error::GenerationGone {
            to: 2,
            kept: vec![5, 6],
        };
        assert_eq!(
            report(&e),
            "error: failed to roll back to generation 2: the store does not have it\n\
             hint: kept generations: 5, 6 (gc may have removed older ones)\n"
        );
    }
}
