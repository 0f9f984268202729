//! pgbr: Nix-style reproducible deployment of pgBackRest across a multi-cell
//! PostgreSQL cluster. The binary is a thin shell over [`run`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apply;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod disk;
pub mod error;
pub mod exit_codes;
pub mod failpoint;
pub mod generations;
pub mod harden;
pub mod io_error;
pub mod layout;
pub mod output;
pub mod pki;
pub mod plan;
pub mod progress;
pub mod render;
pub mod store;
pub mod topology;

pub use error::{Error, Result};

use std::process::ExitCode;

/// Parses `args` (including the program name) and runs the command.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser;
    if let Err(e) = harden::no_core_dumps() {
        output::errln!("warning: could not turn core dumps off: {e}");
    }
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit_codes::USAGE
            } else {
                exit_codes::SUCCESS
            });
        }
    };
    match commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            e.report(&mut std::io::stderr());
            ExitCode::from(e.exit_code())
        }
    }
}
