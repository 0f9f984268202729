//! The top-level error: wraps each module's error, maps it to an exit code
//! and prints it as `error: …`, `caused by: …` lines and an optional `hint: …`.

use crate::exit_codes;
use std::error::Error as _;
use std::io::Write;

/// Any failure of a pgbr command.
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
    /// Deploying failed.
    #[error(transparent)]
    Deploy(#[from] crate::apply::Error),
    /// A command was refused or failed, with an optional hint.
    #[error("{message}")]
    Command {
        /// The message (a fragment that reads after "failed to").
        message: String,
        /// What to do about it.
        hint: Option<String>,
        /// The exit code.
        code: u8,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// A refused or failed command (exit 1).
    pub fn msg(message: impl Into<String>) -> Error {
        Error::Command {
            message: message.into(),
            hint: None,
            code: exit_codes::ERROR,
            source: None,
        }
    }
    /// Adds a hint.
    pub fn hint(mut self, text: impl Into<String>) -> Error {
        if let Error::Command { hint, .. } = &mut self {
            *hint = Some(text.into());
        }
        self
    }
    /// Sets the exit code.
    pub fn code(mut self, exit: u8) -> Error {
        if let Error::Command { code, .. } = &mut self {
            *code = exit;
        }
        self
    }
    /// Adds a cause.
    pub fn source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Error {
        if let Error::Command { source, .. } = &mut self {
            *source = Some(Box::new(cause));
        }
        self
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Store(crate::store::Error::Locked { .. }) => exit_codes::LOCKED,
            Error::Command { code, .. } => *code,
            _ => exit_codes::ERROR,
        }
    }

    /// What the operator can do about it.
    pub fn hint_text(&self) -> Option<String> {
        match self {
            Error::Command { hint, .. } => hint.clone(),
            Error::Store(e) => e.hint(),
            Error::Topology(_) => Some("fix the problems above and run `pgbr check` again".into()),
            Error::Deploy(e) => e.hint(),
            Error::Pki(e) => e.hint().map(Into::into),
        }
    }

    /// Prints the error, its problems, its causes and its hint.
    pub fn report(&self, out: &mut dyn Write) {
        let _ = writeln!(out, "error: failed to {self}");
        if let Error::Topology(t) = self {
            for p in &t.problems {
                let _ = writeln!(out, "  {p}");
            }
        }
        let mut cause = self.source();
        // Transparent variants: the wrapped error's own source is the first cause.
        match self {
            Error::Topology(e) => cause = e.source(),
            Error::Store(e) => cause = e.source(),
            Error::Pki(e) => cause = e.source(),
            Error::Deploy(e) => cause = e.source(),
            Error::Command { .. } => {}
        }
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
        if let Some(h) = self.hint_text() {
            let _ = writeln!(out, "hint: {h}");
        }
    }
}

/// pgbr's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
