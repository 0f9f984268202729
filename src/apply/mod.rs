//! Apply: materialize generations on disk, flip, activate, health-check.
