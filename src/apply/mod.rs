//! Apply: materialize generations on disk, flip, activate, health-check.

pub mod health;
