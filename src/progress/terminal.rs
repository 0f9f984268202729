//! An indicatif progress bar for interactive terminals.

use super::{Event, Reporter};
use crate::output::errln;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

/// A bar over the cells of a run, with the current step as its message.
#[derive(Default)]
pub struct TerminalReporter {
    bar: Mutex<Option<ProgressBar>>,
}

impl Reporter for TerminalReporter {
    fn event(&self, event: Event) {
        let mut bar = self.bar.lock().expect("not poisoned");
        match event {
            Event::Start { what, total } => {
                let b = ProgressBar::new(total as u64);
                b.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                b.set_prefix(what);
                *bar = Some(b);
            }
            Event::Step { cell, step } => match bar.as_ref() {
                Some(b) => b.set_message(format!("{cell}: {step}")),
                None => errln!("{cell}: {step}"),
            },
            Event::CellDone { cell, outcome } => match bar.as_ref() {
                Some(b) => {
                    b.println(format!("{cell}: {outcome}"));
                    b.inc(1);
                }
                None => errln!("{cell}: {outcome}"),
            },
            Event::Warn(w) => match bar.as_ref() {
                Some(b) => b.println(format!("warning: {w}")),
                None => errln!("warning: {w}"),
            },
            Event::Finish => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
        }
    }
}
