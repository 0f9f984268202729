//! A small builder: topology files in a temp dir, `pgbr` args in, status
//! and output out (just's `tests/test.rs`), and the fixtures the test
//! modules share.
//!
//! [`Pgbr::test`] states one run in full: `.topology(..).args(..)
//! .stdout(..).stderr(..).status(..).run()` compares the whole output after
//! redacting what changes from run to run (nextest's snapshot redaction):
//! the scratch dir reads `[TMP]`, RFC 3339 times `[TIME]`, serials and
//! fingerprints `[HEX]`, store object ids `[ID]`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

/// Replaces what differs between runs by placeholders.
pub fn redact(text: &str, scratch: &Path) -> String {
    static TIME: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
            .unwrap()
    });
    static HEX: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\b[0-9a-f]{2}(:[0-9a-f]{2}){7,}\b").unwrap());
    // Days left depend on the second a leaf was issued in (364 or 365).
    static DAYS: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\bin \d+ days\b").unwrap());
    static ID: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\b[0-9a-f]{12,64}\b").unwrap());
    let text = text.replace(&scratch.display().to_string(), "[TMP]");
    let text = TIME.replace_all(&text, "[TIME]");
    let text = HEX.replace_all(&text, "[HEX]");
    let text = DAYS.replace_all(&text, "in [DAYS] days");
    ID.replace_all(&text, "[ID]").into_owned()
}

/// One `pgbr` run, stated in full.
#[must_use = "call .run()"]
pub struct Test<'p> {
    p: &'p Pgbr,
    args: Vec<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    status: i32,
}

impl Test<'_> {
    /// Writes `topo.toml`; `{root}` in `toml` is the scratch dir. In
    /// [`Test::args`], `{topo}` names this file.
    pub fn topology(self, toml: &str) -> Self {
        self.p.write(
            "topo.toml",
            &toml.replace("{root}", &self.p.path().display().to_string()),
        );
        self
    }
    /// The arguments after `pgbr --state <scratch>/state`.
    pub fn args(mut self, args: &[&str]) -> Self {
        let topo = self.p.path().join("topo.toml").display().to_string();
        self.args = args.iter().map(|a| a.replace("{topo}", &topo)).collect();
        self
    }
    /// The whole standard output, after [`redact`] (default: anything).
    pub fn stdout(mut self, text: &str) -> Self {
        self.stdout = Some(text.to_owned());
        self
    }
    /// The whole standard error, after [`redact`] (default: anything).
    pub fn stderr(mut self, text: &str) -> Self {
        self.stderr = Some(text.to_owned());
        self
    }
    /// The exit code (default 0).
    pub fn status(mut self, code: i32) -> Self {
        self.status = code;
        self
    }
    /// Runs and compares; returns the unredacted output.
    #[track_caller]
    pub fn run(self) -> Output {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let out = self.p.run(&args).expect_code(self.status);
        let (stdout, stderr) = (
            redact(&out.stdout, self.p.path()),
            redact(&out.stderr, self.p.path()),
        );
        if let Some(want) = &self.stdout {
            assert_eq!(&stdout, want, "stdout of `pgbr {}`", args.join(" "));
        }
        if let Some(want) = &self.stderr {
            assert_eq!(&stderr, want, "stderr of `pgbr {}`", args.join(" "));
        }
        out
    }
}

/// A 3-cell topology whose deploy dirs live in the scratch dir
/// ([`deploy_dir`]). `extra` is appended to `[defaults]` (e.g. hooks).
pub fn three_cells(p: &Pgbr, zone2_port: u16, extra: &str) -> PathBuf {
    ThreeCells {
        pg_ports: [5432, zone2_port, 5434],
        defaults: extra,
        ..ThreeCells::default()
    }
    .write(p)
}

/// [`three_cells`] applied (generation 1); returns the topology's path.
pub fn applied(p: &Pgbr) -> PathBuf {
    let topo = three_cells(p, 5433, "");
    let t = topo.to_str().expect("UTF-8 path");
    p.run(&["apply", t, "--yes"]).expect_code(0);
    topo
}

/// [`applied`], then zone2's port edited and applied (generation 2: every
/// config changes, as every cell's names zone2's port).
pub fn edited(p: &Pgbr) -> PathBuf {
    applied(p);
    let topo = three_cells(p, 5440, "");
    let t = topo.to_str().expect("UTF-8 path");
    p.run(&["apply", t, "--yes"]).expect_code(0);
    topo
}

/// The topology of [`three_cells`] (`zone1`..`zone3`, stanza
/// `multigres`, deploy dirs in the scratch dir), its variable parts named.
pub struct ThreeCells<'a> {
    /// Every cell's `host` (default `localhost`).
    pub host: &'a str,
    /// `[tls] server_port_base` (default 18432).
    pub tls_base: u16,
    /// Each cell's `pg_port` (default 5432..5434). Every cell's config
    /// names every cell's port: changing one changes every config.
    pub pg_ports: [u16; 3],
    /// Appended to `[defaults]` (e.g. hooks).
    pub defaults: &'a str,
}

impl Default for ThreeCells<'_> {
    fn default() -> Self {
        ThreeCells {
            host: "localhost",
            tls_base: 18432,
            pg_ports: [5432, 5433, 5434],
            defaults: "",
        }
    }
}

impl ThreeCells<'_> {
    /// Writes it as `topo.toml` and returns its path.
    pub fn write(&self, p: &Pgbr) -> PathBuf {
        let root = p.path().join("cells");
        let [zone1, zone2, zone3] = self.pg_ports;
        p.write(
            "topo.toml",
            &format!(
                r#"
stanza = "multigres"

[repo]
path = "/backup/repo"
retention_full = 7

[tls]
server_port_base = {tls_base}
server_address = "127.0.0.1"

[defaults]
host = "{host}"
pg_path = "/{{cell}}/pg_data"
pg_socket_path = "/{{cell}}/pg_sockets"
deploy_dir = "{root}/{{cell}}/pgbackrest"
{defaults}

[cells.zone1]
pg_port = {zone1}

[cells.zone2]
pg_port = {zone2}

[cells.zone3]
pg_port = {zone3}
"#,
                root = root.display(),
                host = self.host,
                tls_base = self.tls_base,
                defaults = self.defaults,
            ),
        )
    }
}

/// A 2-cell topology on `modules/defaults.toml`: cells `a` (PostgreSQL
/// port 5432) and `b` (5433), deploy dirs `<scratch>/<cell>/pgbackrest`,
/// no health check. `defaults` is appended to `[defaults]`; `tables`
/// (e.g. `[tls]`, `[ssh]`) stands before the cells.
pub fn two_cells(p: &Pgbr, defaults: &str, tables: &str) -> PathBuf {
    let root = p.path().display().to_string();
    p.write(
        "topo.toml",
        &format!(
            r#"imports = ["{repo}/modules/defaults.toml"]
stanza = "main"
[repo]
path = "{root}/repo"
retention_full = 2
[defaults]
pg_path = "{root}/{{cell}}/pg_data"
deploy_dir = "{root}/{{cell}}/pgbackrest"
health = "none"
{defaults}
{tables}
[cells.a]
pg_port = 5432
[cells.b]
pg_port = 5433
"#,
            repo = repo_root().display()
        ),
    )
}

/// Where the fixtures deploy `cell`: `<scratch>/cells/<cell>/pgbackrest`.
pub fn deploy_dir(p: &Pgbr, cell: &str) -> PathBuf {
    p.path().join("cells").join(cell).join("pgbackrest")
}

/// What `cell`'s `current` link points at (`generations/N`), or "" when
/// there is none.
pub fn current(p: &Pgbr, cell: &str) -> String {
    std::fs::read_link(deploy_dir(p, cell).join("current"))
        .map(|t| t.display().to_string())
        .unwrap_or_default()
}

/// A live file of `cell` (`current/<rel>`), or "" when it is missing.
pub fn live(p: &Pgbr, cell: &str, rel: &str) -> String {
    std::fs::read_to_string(deploy_dir(p, cell).join("current").join(rel)).unwrap_or_default()
}

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
    /// A run to state in full ([`Test`]).
    pub fn test(&self) -> Test<'_> {
        Test {
            p: self,
            args: vec![],
            stdout: None,
            stderr: None,
            status: 0,
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
    /// Starts `pgbr --state <state> ARGS` with no terminal and piped
    /// output, without waiting.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_pgbr"))
            .arg("--state")
            .arg(self.state_arg())
            .args(args)
            .env_remove("PGBR_STATE")
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn pgbr")
    }
    /// Runs `pgbr --state <scratch>/state ARGS` with no terminal.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }
    /// Like [`Pgbr::run`] with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.run_bin(Path::new(env!("CARGO_BIN_EXE_pgbr")), args, env)
    }
    /// Like [`Pgbr::run_env`] with the pgbr binary at `bin`.
    pub fn run_bin(&self, bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = Command::new(bin)
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
