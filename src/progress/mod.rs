//! Progress reporting: the core emits [`Event`]s to a [`Reporter`]; the CLI
//! picks a terminal (indicatif) or plain-lines reporter, tests record them.
//!
//! The core must not print progress itself nor import indicatif.

mod plain;
mod terminal;

pub use plain::PlainReporter;
pub use terminal::TerminalReporter;

use std::sync::Mutex;

/// Something that happened during a long operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A run over `total` cells begins.
    Start {
        /// What runs (`apply`, `rollback`).
        what: String,
        /// How many cells it will touch.
        total: usize,
    },
    /// One step of one cell (`write`, `flip`, `activate`, `health`, `revert`).
    Step {
        /// The cell.
        cell: String,
        /// The step.
        step: String,
    },
    /// A cell finished.
    CellDone {
        /// The cell.
        cell: String,
        /// What happened, for a human.
        outcome: String,
    },
    /// Work that runs on several cells at once (observing deploy dirs,
    /// writing generation dirs) begins, over `total` cells. Its cells
    /// report [`Event::Working`]; [`Event::Finish`] ends it.
    Batch {
        /// What is done to each cell (`observe`, `write`).
        what: String,
        /// How many cells.
        total: usize,
    },
    /// A cell of the batch started (`done: false`) or ended (`done:
    /// true`). Sent from worker threads, in no particular order.
    Working {
        /// The cell.
        cell: String,
        /// Whether its part is over.
        done: bool,
    },
    /// A warning for the operator.
    Warn(String),
    /// The run ended.
    Finish,
}

/// Receives progress events. `Sync`: a batch reports from several threads.
pub trait Reporter: Sync {
    /// Handles one event.
    fn event(&self, event: Event);
}

/// Discards every event.
pub struct NullReporter;

impl Reporter for NullReporter {
    fn event(&self, _event: Event) {}
}

/// Keeps every event (for tests).
#[derive(Default)]
pub struct RecordingReporter {
    /// The events so far.
    pub events: Mutex<Vec<Event>>,
}

impl Reporter for RecordingReporter {
    fn event(&self, event: Event) {
        self.events.lock().expect("not poisoned").push(event);
    }
}
