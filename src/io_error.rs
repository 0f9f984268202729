//! The one shape of a failed filesystem operation: what was being done,
//! on which path, and the system's report as its cause. Module errors wrap
//! it as their `Io` variant (transparently), so every such failure reads
//! `<action> `<path>`` followed by `caused by: <the system's report>`.

use std::path::{Path, PathBuf};

/// A filesystem operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} `{}`", path.display())]
pub struct IoError {
    /// What was being done (`read identity file`).
    pub action: String,
    /// Where.
    pub path: PathBuf,
    /// The system's report.
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    /// The failure of `action` on `path`, as a `map_err` argument.
    pub fn of(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> IoError {
        let (action, path) = (action.to_owned(), path.to_owned());
        move |source| IoError {
            action,
            path,
            source,
        }
    }
}
