//! The `pgbr` binary: everything lives in the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    pgbr::run(std::env::args_os())
}
