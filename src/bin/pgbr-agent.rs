//! `pgbr-agent`: only the host side of a remote target, `pgbr agent`
//! without the rest of pgbr (a tenth of its size), so that a host's first
//! contact with a build copies 1.7 MB instead of 13.5. `pgbr` copies it to
//! the hosts when it lies next to `pgbr` and is of the same build
//! (`--build-id`); otherwise it copies itself and runs `pgbr agent`.
//! Everything lives in the library (`apply/target/agent.rs`).
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

/// Prints `line` on stdout (a closed pipe is the reader's business).
fn say(line: &str) -> ExitCode {
    let _ = writeln!(std::io::stdout(), "{line}");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    match args.iter().map(|a| a.to_str()).collect::<Vec<_>>()[..] {
        [] => {}
        [Some("--build-id")] => {
            // The whole tag stays in the file, where pgbr reads it.
            let tag = std::hint::black_box(pgbr::apply::target::agent::BUILD_TAG);
            return say(tag.trim_start_matches("pgbr-build-id="));
        }
        [Some("--version")] => {
            return say(concat!(
                "pgbr-agent ",
                env!("CARGO_PKG_VERSION"),
                " (build ",
                env!("PGBR_BUILD_ID"),
                ")"
            ))
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "usage: pgbr-agent [--build-id | --version]\n\n\
                 pgbr's agent on a cell's host: `pgbr` starts it over SSH and \
                 speaks to it on stdin/stdout; it is not meant to be run by hand."
            );
            return ExitCode::from(pgbr::exit_codes::USAGE);
        }
    }
    if let Err(e) = pgbr::harden::no_core_dumps() {
        let _ = writeln!(
            std::io::stderr(),
            "warning: could not turn core dumps off: {e}"
        );
    }
    match pgbr::apply::target::agent::serve_stdio() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = pgbr::Error::Agent(e);
            e.report(&mut std::io::stderr());
            ExitCode::from(e.exit_code())
        }
    }
}
