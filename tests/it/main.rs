//! pgbr's integration tests: one binary, one module per area, all driving
//! the real `pgbr` executable through [`harness::Pgbr`].
// Tests and benchmarks print to a terminal or a log: a closed pipe is
// not their concern (clippy.toml disallows the std printing macros in pgbr).
#![allow(clippy::disallowed_macros)]

mod faults;
mod fleet;
mod harness;
mod hooks;
mod hostile;
mod hosts;
#[path = "../support/pg_server.rs"]
mod pg_server;

mod binding;
mod careless;
mod crash;
mod environment;
mod fuzz;

mod remote;
mod remote_ssh;
mod render;
mod rotation;
mod sealing;
mod secrets;
mod shared_state;
mod state_dir;
mod targets;
mod tls_server;
mod topology_errors;
mod upgrade;
mod versions;
mod workflow;
