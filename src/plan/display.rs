//! The human view of a plan: per cell `+`/`~`/`=`/`-`, file changes, the
//! config diff, certificate actions by serial, fingerprint and expiry
//! (never key material), and a one-line summary.

use super::model::*;
use crate::layout;
use std::fmt::Write;

fn leaf_line(leaf: &LeafPlan) -> String {
    let who = match &leaf.key {
        LeafKey::Shared => "shared leaf".to_owned(),
        LeafKey::Cell(name) => format!("leaf {name}"),
    };
    match &leaf.action {
        LeafAction::Keep {
            serial,
            not_after,
            days_left,
            ..
        } => format!("{who}: keep serial {serial} (expires {not_after}, in {days_left} days)"),
        LeafAction::Issue {
            reason, replaces, ..
        } => match replaces {
            Some(s) => format!("{who}: renew now, replacing serial {s} ({reason})"),
            None => format!("{who}: issue ({reason})"),
        },
    }
}

/// Renders `plan` for a terminal or a log.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Plan for `{}`", plan.topology);
    let _ = writeln!(out);
    match &plan.ca {
        CaAction::Create {
            key_algorithm,
            validity_days,
        } => {
            let _ = writeln!(
                out,
                "  CA: create ({key_algorithm}, valid {validity_days} days)"
            );
        }
        CaAction::Keep {
            serial,
            not_after,
            days_left,
            ..
        } => {
            let _ = writeln!(
                out,
                "  CA: keep serial {serial} (expires {not_after}, in {days_left} days)"
            );
        }
        CaAction::Rotate { description, .. } => {
            let _ = writeln!(out, "  CA: rotate, {description}");
        }
    }
    if let Some(note) = &plan.ca_rotation {
        let _ = writeln!(out, "  {note}");
    }
    if let Some(problem) = &plan.ca_problem {
        let _ = writeln!(out, "  ! {problem}");
    }
    for leaf in &plan.leaves {
        let _ = writeln!(out, "  {}", leaf_line(leaf));
    }
    let _ = writeln!(out);
    for cell in &plan.cells {
        let phase = match (cell.previous_phase, cell.action) {
            (Some(p), _) if p != cell.phase => format!("{p} -> {}", cell.phase),
            _ => cell.phase.to_string(),
        };
        let what = match cell.action {
            CellAction::Create => format!("create ({phase})"),
            CellAction::Update => format!(
                "update generation {} ({phase})",
                cell.live_generation.unwrap_or_default()
            ),
            CellAction::Unchanged => format!("unchanged ({phase})"),
            CellAction::Remove => {
                "removed from the topology; its deploy dir is left in place".into()
            }
            CellAction::Unreachable => format!(
                "unreachable, not planned: {}",
                cell.unreachable.as_deref().unwrap_or("?")
            ),
        };
        let _ = writeln!(out, "{} {}: {what}", cell.action.sign(), cell.cell);
        for b in &cell.blockers {
            let _ = writeln!(out, "    ! {b}");
        }
        for d in &cell.drift {
            let _ = writeln!(out, "    drift: {d}");
        }
        if !cell.settings_changed.is_empty() {
            let same_files = cell.files.iter().all(|f| f.change == FileChange::Unchanged);
            let _ = writeln!(
                out,
                "    ~ settings: {}{}",
                cell.settings_changed.join(", "),
                if cell.only_recorded() {
                    " (how its host is reached: recorded, nothing redeployed)"
                } else if same_files {
                    " (same files, re-activated)"
                } else {
                    ""
                }
            );
        }
        if cell.action == CellAction::Unchanged {
            continue;
        }
        for f in &cell.files {
            let sign = match f.change {
                FileChange::Add => '+',
                FileChange::Modify => '~',
                FileChange::Remove => '-',
                FileChange::Unchanged => continue,
            };
            let note = match f.path.as_str() {
                layout::SERVER_KEY => " (private key, not shown)".to_owned(),
                layout::SERVER_CERT => plan
                    .leaf_for(&cell.cell)
                    .map(|l| match &l.action {
                        LeafAction::Issue { .. } => " (new leaf, issued at apply)".to_owned(),
                        LeafAction::Keep { serial, .. } => format!(" (serial {serial})"),
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let note = match (f.path.as_str(), cell.action) {
                (layout::CONFIG, CellAction::Create) => {
                    format!(
                        " (new; `pgbr render TOPOLOGY --cell {}` prints it)",
                        cell.cell
                    )
                }
                _ => note,
            };
            let _ = writeln!(out, "    {sign} {} {}{note}", f.path, f.mode);
        }
        if let Some(diff) = &cell.config_diff {
            for line in diff.lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", summary_line(plan));
    out
}

/// The one-line summary.
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let line = changes_line(plan);
    if s.unreachable == 0 {
        return line;
    }
    format!(
        "{}; {} cell(s) unreachable, not planned.",
        line.trim_end_matches('.'),
        s.unreachable
    )
}

fn changes_line(plan: &Plan) -> String {
    let s = &plan.summary;
    if !plan.has_changes() {
        return format!("No changes. {} cell(s) up to date.", s.unchanged);
    }
    let mut line = format!("Plan: {} to create, {} to update", s.create, s.update);
    let recorded = plan.cells.iter().filter(|c| c.only_recorded()).count();
    if recorded > 0 {
        let _ = write!(line, " ({recorded} only recorded)");
    }
    let _ = write!(line, ", {} unchanged", s.unchanged);
    if s.remove > 0 {
        let _ = write!(line, ", {} to remove", s.remove);
    }
    let _ = write!(line, "; {} certificate(s) to issue", s.certificates);
    if s.drift > 0 {
        let _ = write!(line, "; drift on {} cell(s)", s.drift);
    }
    line.push('.');
    line
}
