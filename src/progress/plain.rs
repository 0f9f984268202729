//! Plain progress lines on stderr, for logs and CI.

use super::{Event, Reporter};

/// Prints one line per cell step to stderr.
pub struct PlainReporter;

impl Reporter for PlainReporter {
    fn event(&self, event: Event) {
        match event {
            Event::Start { what, total } => eprintln!("{what}: {total} cell(s)"),
            Event::Step { cell, step } => eprintln!("{cell}: {step}"),
            Event::CellDone { cell, outcome } => eprintln!("{cell}: {outcome}"),
            Event::Warn(w) => eprintln!("warning: {w}"),
            Event::Finish => {}
        }
    }
}
