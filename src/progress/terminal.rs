//! indicatif progress for interactive terminals: a bar over the cells of a
//! run with the current step as its message, and during a batch (cells
//! observed or written at once) one spinner line per cell in progress.

use super::{Event, Reporter};
use crate::output::errln;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// A bar over the cells of a run, with the current step as its message.
#[derive(Default)]
pub struct TerminalReporter {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    bar: Option<ProgressBar>,
    /// During a batch: the bars, what each cell undergoes, and its cells'
    /// spinners.
    batch: Option<Batch>,
}

struct Batch {
    multi: MultiProgress,
    what: String,
    cells: BTreeMap<String, ProgressBar>,
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
        .expect("valid template")
        .progress_chars("=> ")
}

impl State {
    fn finish(&mut self) {
        if let Some(batch) = self.batch.take() {
            for spinner in batch.cells.values() {
                spinner.finish_and_clear();
            }
            let _ = batch.multi.clear();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    fn println(&self, line: String) {
        match (&self.batch, &self.bar) {
            (Some(batch), _) => {
                let _ = batch.multi.println(line);
            }
            (None, Some(b)) => b.println(line),
            (None, None) => errln!("{line}"),
        }
    }
}

impl Reporter for TerminalReporter {
    fn event(&self, event: Event) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Start { what, total } => {
                state.finish();
                let b = ProgressBar::new(total as u64);
                b.set_style(bar_style());
                b.set_prefix(what);
                state.bar = Some(b);
            }
            Event::Batch { what, total } => {
                state.finish();
                let multi = MultiProgress::new();
                let b = multi.add(ProgressBar::new(total as u64));
                b.set_style(bar_style());
                b.set_prefix(what.clone());
                state.bar = Some(b);
                state.batch = Some(Batch {
                    multi,
                    what,
                    cells: BTreeMap::new(),
                });
            }
            Event::Working { cell, done } => {
                let State { bar, batch } = &mut *state;
                let Some(batch) = batch else { return };
                if done {
                    if let Some(spinner) = batch.cells.remove(&cell) {
                        spinner.finish_and_clear();
                        batch.multi.remove(&spinner);
                    }
                    if let Some(b) = bar {
                        b.inc(1);
                    }
                } else {
                    let spinner = batch.multi.add(ProgressBar::new_spinner());
                    spinner.set_style(
                        ProgressStyle::with_template("  {spinner} {msg}").expect("valid template"),
                    );
                    spinner.set_message(format!("{cell}: {}", batch.what));
                    spinner.enable_steady_tick(Duration::from_millis(120));
                    batch.cells.insert(cell, spinner);
                }
            }
            Event::Step { cell, step } => match state.bar.as_ref() {
                Some(b) => b.set_message(format!("{cell}: {step}")),
                None => errln!("{cell}: {step}"),
            },
            Event::CellDone { cell, outcome } => {
                state.println(format!("{cell}: {outcome}"));
                if let Some(b) = state.bar.as_ref() {
                    b.inc(1);
                }
            }
            Event::Warn(w) => state.println(format!("warning: {w}")),
            Event::Finish => state.finish(),
        }
    }
}
