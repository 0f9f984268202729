//! Plain progress lines on stderr, for logs and CI.

use super::{Event, Reporter};
use crate::output::errln;

/// Prints one line per cell step to stderr. A batch prints nothing: its
/// cells finish in any order, and a log must read the same every run (the
/// rolling steps that follow name each cell in order).
pub struct PlainReporter;

impl Reporter for PlainReporter {
    fn event(&self, event: Event) {
        match event {
            Event::Start { what, total } => errln!("{what}: {total} cell(s)"),
            Event::Step { cell, step } => errln!("{cell}: {step}"),
            Event::CellDone { cell, outcome } => errln!("{cell}: {outcome}"),
            Event::Warn(w) => errln!("warning: {w}"),
            Event::Batch { .. } | Event::Working { .. } | Event::Finish => {}
        }
    }
}
