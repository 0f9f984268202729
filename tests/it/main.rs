//! pgbr's integration tests: one binary, one module per area, all driving
//! the real `pgbr` executable through [`harness::Pgbr`].

mod faults;
mod harness;
mod hostile;
mod hosts;
#[path = "../support/pg_server.rs"]
mod pg_server;

mod crash;
mod fuzz;

mod remote;
mod render;
mod rotation;
mod sealing;
mod secrets;
mod shared_state;
mod targets;
mod tls_server;
mod topology_errors;
mod upgrade;
mod versions;
mod workflow;
