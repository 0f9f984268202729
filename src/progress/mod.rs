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
    /// A warning for the operator.
    Warn(String),
    /// The run ended.
    Finish,
}

/// Receives progress events.
pub trait Reporter {
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
