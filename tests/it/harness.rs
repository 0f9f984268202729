//! A small builder: topology files in a temp dir, `pgbr` args in, status
//! and output out.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (for `modules/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What one `pgbr` run produced.
#[derive(Debug)]
pub struct Output {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A scratch directory with its own state store.
pub struct Pgbr {
    /// The scratch directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The state URL when the store is in PostgreSQL.
    pub state_url: Option<String>,
}

impl Pgbr {
    /// A fresh scratch directory; the state is an embedded store in it.
    pub fn new() -> Pgbr {
        Pgbr {
            dir: tempfile::tempdir().expect("temp dir"),
            state_url: None,
        }
    }
    /// A fresh scratch directory; the state is a fresh database on the
    /// shared test PostgreSQL.
    pub fn on_postgres() -> Pgbr {
        Pgbr {
            dir: tempfile::tempdir().expect("temp dir"),
            state_url: Some(crate::pg_server::server().fresh_url()),
        }
    }
    /// What `--state` says: the URL, or the embedded store's directory.
    pub fn state_arg(&self) -> std::ffi::OsString {
        match &self.state_url {
            Some(url) => url.into(),
            None => self.state().into(),
        }
    }
    /// The store's location, for opening it in-process.
    pub fn location(&self) -> pgbr::store::Location {
        pgbr::store::Location::new(self.state_arg())
    }
    /// The scratch directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// The embedded store's directory (used by [`Pgbr::run`] unless the
    /// state is in PostgreSQL).
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    /// Writes `rel` (creating parents) and returns its path.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        p
    }
    /// Runs `pgbr --state <scratch>/state ARGS` with no terminal.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }
    /// Like [`Pgbr::run`] with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_pgbr"))
            .arg("--state")
            .arg(self.state_arg())
            .args(args)
            .envs(env.iter().copied())
            .env_remove("PGBR_STATE")
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run pgbr");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs each named `fn(Pgbr)` once with an embedded store and once with
/// the state in PostgreSQL, as `on_sled::<name>` and `on_postgres::<name>`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sled {
            $(#[test] fn $name() { super::$name($crate::harness::Pgbr::new()) })*
        }
        mod on_postgres {
            $(#[test] fn $name() { super::$name($crate::harness::Pgbr::on_postgres()) })*
        }
    };
}
pub(crate) use on_both_backends;
