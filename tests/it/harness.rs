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
}

impl Pgbr {
    /// A fresh scratch directory.
    pub fn new() -> Pgbr {
        Pgbr {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    /// The scratch directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// The state store used by [`Pgbr::run`].
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
            .arg(self.state())
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
