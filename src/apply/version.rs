//! The pgBackRest release each cell's host actually runs, read with
//! `<bin> version` through the cell's [`Target`], and the rule that every
//! cell runs the release the topology names.
//!
//! pgBackRest peers of different releases refuse each other ("expected value
//! '2.45' for greeting key 'version' but got '2.55.1'"; 2.55.0 release notes:
//! "Clarify requirement for local/remote pgBackRest versions to match."), so
//! the release strings of all cells must be equal, and their minor must be
//! the one whose options pgbr checked. Reading is IO through the target;
//! deciding is a pure function of what was read.

use super::target::{HookRun, Targets};
use crate::topology::Cell;
use crate::topology::{Pgbackrest, PgbackrestVersion};
use std::time::Duration;

/// How long `pgbackrest version` may take on one host.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What one cell's host said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellRelease {
    /// The cell.
    pub cell: String,
    /// The release it runs (`2.55.1`), or why it could not be read.
    pub found: Result<String, String>,
}

/// The cells do not all run the pgBackRest release of the topology.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("deploy: {why} (expected {expected}): {}", cells.join("; "))]
pub struct ReleaseMismatch {
    /// What is wrong.
    pub why: String,
    /// `[pgbackrest] version`.
    pub expected: String,
    /// Every cell's release, or why it is unknown.
    pub cells: Vec<String>,
}

/// Runs `<bin> version` on the target of each cell, on up to `parallel`
/// targets at once; the results in the order of `cells`.
pub fn read_releases<'a>(
    targets: &Targets,
    cells: impl IntoIterator<Item = &'a Cell>,
    pgbackrest: &Pgbackrest,
    parallel: usize,
) -> Vec<CellRelease> {
    let bin = &pgbackrest.bin;
    let command = format!("exec {} version", shell_quote(bin));
    let cells: Vec<&Cell> = cells.into_iter().collect();
    super::parallel::each(&cells, parallel, |c| {
        let cell = c.name.as_str();
        // PGBR_CELL as for `activate`: says which cell a shared host serves.
        let mut env = vec![("PGBR_CELL".to_owned(), cell.to_owned())];
        // From 2.59 pgBackRest refuses to run as root except `restore`
        // (2.59.0 release notes, IMPORTANT NOTE); pgbr often runs as
        // root, and reading the release is harmless. Releases before
        // 2.59 do not know the option, so it is set only for those after.
        if pgbackrest.version.refuses_root() {
            env.push(("PGBACKREST_ALLOW_ROOT".to_owned(), "y".to_owned()));
        }
        let ran = targets.of(&c.target).and_then(|target| {
            target.run_hook(&HookRun {
                command: command.clone(),
                env: env.clone(),
                timeout: TIMEOUT,
                log: None,
            })
        });
        let found = match ran {
            Err(e) => Err(super::error_chain(&e)),
            Ok(out) if out.timed_out => Err(format!("`{command}` timed out")),
            Ok(out) => match (out.code, release_in(&out.tail)) {
                (Some(0), Some(release)) => Ok(release),
                (Some(0), None) => Err(format!(
                    "`{bin} version` printed no release: {}",
                    out.tail.trim()
                )),
                (code, _) => Err(format!(
                    "`{bin} version` exited {}: {}",
                    code.map_or("by a signal".into(), |c| c.to_string()),
                    out.tail.trim()
                )),
            },
        };
        CellRelease {
            cell: cell.to_owned(),
            found,
        }
    })
}

/// `2.55.1` from `pgBackRest 2.55.1` (the output of `pgbackrest version`).
pub fn release_in(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let release = line.trim().strip_prefix("pgBackRest ")?;
        PgbackrestVersion::parse_any(release).map(|_| release.to_owned())
    })
}

/// Whether the cells run `expected`, all the same release; `Err` lists
/// every cell's release (or why it is unknown).
pub fn check_releases(
    expected: PgbackrestVersion,
    found: &[CellRelease],
) -> Result<(), ReleaseMismatch> {
    let minor_ok = |r: &str| PgbackrestVersion::parse(r).is_some_and(|v| v == expected);
    let first = found.iter().find_map(|c| c.found.as_ref().ok());
    let all_same = found
        .iter()
        .all(|c| c.found.as_ref().ok() == first && first.is_some());
    let all_expected = found
        .iter()
        .all(|c| c.found.as_ref().is_ok_and(|r| minor_ok(r)));
    if all_same && all_expected {
        return Ok(());
    }
    let why = if found.iter().any(|c| c.found.is_err()) {
        "cannot read every cell's pgBackRest release"
    } else if all_expected {
        "cells run different pgBackRest releases, which refuse each other"
    } else {
        "cells do not run the pgBackRest release of `[pgbackrest] version`"
    };
    Err(ReleaseMismatch {
        why: why.into(),
        expected: expected.to_string(),
        cells: found
            .iter()
            .map(|c| match &c.found {
                Ok(r) => format!("{} runs {r}", c.cell),
                Err(e) => format!("{}: {e}", c.cell),
            })
            .collect(),
    })
}

/// `s` as one word for `/bin/sh`.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(name: &str, found: Result<&str, &str>) -> CellRelease {
        CellRelease {
            cell: name.into(),
            found: found.map(Into::into).map_err(Into::into),
        }
    }

    #[test]
    fn the_release_is_read_from_the_version_line() {
        assert_eq!(release_in("pgBackRest 2.45\n").as_deref(), Some("2.45"));
        assert_eq!(
            release_in("WARN: something\npgBackRest 2.55.1\n").as_deref(),
            Some("2.55.1")
        );
        assert_eq!(release_in("pgBackRest 2.59dev\n"), None);
        assert_eq!(release_in("sh: pgbackrest: not found\n"), None);
    }

    #[test]
    fn every_cell_must_run_the_same_expected_release() {
        let v55 = PgbackrestVersion::parse("2.55").unwrap();
        let same = [cell("a", Ok("2.55.1")), cell("b", Ok("2.55.1"))];
        assert!(check_releases(v55, &same).is_ok());
        let patch = [cell("a", Ok("2.55.0")), cell("b", Ok("2.55.1"))];
        let e = check_releases(v55, &patch).unwrap_err().to_string();
        assert_eq!(
            e,
            "deploy: cells run different pgBackRest releases, which refuse each other (expected 2.55): a runs 2.55.0; b runs 2.55.1"
        );
        let v45 = PgbackrestVersion::OLDEST;
        let e = check_releases(v45, &same).unwrap_err().to_string();
        assert!(e.contains("do not run the pgBackRest release"), "{e}");
        let missing = [
            cell("a", Ok("2.45")),
            cell("b", Err("`pgbackrest version` exited 127: not found")),
        ];
        let e = check_releases(v45, &missing).unwrap_err().to_string();
        assert!(
            e.ends_with("a runs 2.45; b: `pgbackrest version` exited 127: not found"),
            "{e}"
        );
    }

    #[test]
    fn program_names_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("pgbackrest"), "pgbackrest");
        assert_eq!(shell_quote("/opt/pg br/it's"), r"'/opt/pg br/it'\''s'");
    }
}
