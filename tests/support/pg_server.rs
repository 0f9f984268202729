//! A real PostgreSQL 15 for tests, one per test binary, a fresh database
//! per test.
//!
//! The server runs as `postgres` (through `runuser`) from a temporary
//! directory on a free port, listening on 127.0.0.1 with TLS (a test CA and
//! a `localhost` certificate), `trust` for the superuser and
//! `scram-sha-256` for the role `pgbr_pw` (password `right-password`). A
//! guardian shell started with it waits on a pipe from this process; when
//! the test binary exits, however it exits, the pipe closes and the shell
//! stops the server (fast shutdown, bounded) and removes its directory. So
//! no test leaves a server behind, and one server serves every test.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const PGBIN: &str = "/usr/lib/postgresql/15/bin";
/// The role that must log in with a password.
pub const PASSWORD_USER: &str = "pgbr_pw";
/// Its password.
pub const PASSWORD: &str = "right-password";

/// The shared server.
pub struct PgServer {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// Its data directory.
    pub data: PathBuf,
    /// The test CA's certificate (PEM file) that signed the server's.
    pub ca_file: PathBuf,
    /// Held open for the life of the process: closing it stops the server.
    _guardian: Mutex<std::process::ChildStdin>,
    /// The guardian shell; it outlives this process on purpose (see above).
    _guardian_process: Mutex<std::process::Child>,
}

static SERVER: OnceLock<PgServer> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The server, started on first use.
pub fn server() -> &'static PgServer {
    SERVER.get_or_init(start)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn as_postgres(program: &str) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--", "timeout", "60", program]);
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A data directory under `root` ready to start: initdb as `postgres`, TLS
/// material, a free port, the test `pg_hba.conf`. Returns (data, port, CA).
fn prepare(root: &Path) -> (PathBuf, u16, PathBuf) {
    let data = root.join("data");
    let sock = root.join("sock");
    std::fs::create_dir_all(&sock).expect("socket dir");
    run(Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(root));
    run(Command::new("chmod").arg("755").arg(root));
    run(as_postgres(&format!("{PGBIN}/initdb"))
        .args(["-U", "postgres", "-A", "trust", "--no-sync", "-D"])
        .arg(&data));
    let (ca_pem, cert_pem, key_pem) = tls_material();
    let ca_file = root.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("write ca");
    std::fs::write(data.join("server.crt"), cert_pem).expect("write cert");
    std::fs::write(data.join("server.key"), key_pem).expect("write key");
    run(Command::new("chown")
        .arg("postgres:postgres")
        .arg(data.join("server.crt"))
        .arg(data.join("server.key")));
    run(Command::new("chmod")
        .arg("600")
        .arg(data.join("server.key")));
    let port = free_port();
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .expect("postgresql.conf");
    writeln!(
        conf,
        "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
         ssl = on\nfsync = off\nsynchronous_commit = on\nmax_connections = 200\n\
         shared_buffers = 32MB\nlog_min_messages = warning",
        sock.display()
    )
    .expect("write conf");
    std::fs::write(
        data.join("pg_hba.conf"),
        format!(
            "local all all trust\n\
             host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n\
             host all all 127.0.0.1/32 trust\n"
        ),
    )
    .expect("pg_hba.conf");
    (data, port, ca_file)
}

/// Waits (bounded) until the server on `port` answers; `log` is shown if not.
fn wait_ready(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if psql_at(port, "postgres", "SELECT 1").is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start() -> PgServer {
    let root = tempfile::Builder::new()
        .prefix("pgbr-pg-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let (data, port, ca_file) = prepare(&root);
    // The guardian: starts the server, waits for this process's end (EOF
    // on its stdin), then stops the server and removes the directory.
    let script = r#"
        "$1/postgres" -D "$2" >"$3/log" 2>&1 &
        pid=$!
        cat >/dev/null
        kill -INT "$pid" 2>/dev/null
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
        kill -KILL "$pid" 2>/dev/null
        rm -rf "$3"
    "#;
    let mut guardian = Command::new("runuser")
        .args(["-u", "postgres", "--", "sh", "-c", script, "sh", PGBIN])
        .arg(&data)
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the PostgreSQL guardian");
    let stdin = guardian.stdin.take().expect("guardian stdin");
    let server = PgServer {
        port,
        data,
        ca_file,
        _guardian: Mutex::new(stdin),
        _guardian_process: Mutex::new(guardian),
    };
    wait_ready(port, &root.join("log"));
    server
        .psql(
            "postgres",
            &format!("CREATE ROLE {PASSWORD_USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'"),
        )
        .expect("create the password role");
    server
}

/// Runs `sql` in `db` on the server at `port` as the superuser.
fn psql_at(port: u16, db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new(format!("{PGBIN}/psql"))
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
        ])
        .args([
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A PostgreSQL 15 of one test's own, for tests that restart it or fill its
/// disk: same setup as the shared server, started with `pg_ctl`, stopped
/// by the postmaster's pid (fast shutdown, then SIGKILL, bounded) and its
/// directory removed on drop, also when the test fails.
pub struct PrivateServer {
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// Its data directory.
    pub data: PathBuf,
    root: tempfile::TempDir,
}

impl PrivateServer {
    /// Initializes and starts a server; waits (bounded) until it answers.
    pub fn start() -> PrivateServer {
        let root = tempfile::Builder::new()
            .prefix("pgbr-pg-private-")
            .tempdir()
            .expect("temp dir");
        let (data, port, _) = prepare(root.path());
        let server = PrivateServer { port, data, root };
        server.pg_ctl_start();
        server
    }

    fn log(&self) -> PathBuf {
        self.root.path().join("log")
    }

    fn pg_ctl_start(&self) {
        run(as_postgres(&format!("{PGBIN}/pg_ctl"))
            .args(["-w", "-t", "30", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(self.log())
            .arg("start")
            .stdout(Stdio::null()));
        wait_ready(self.port, &self.log());
    }

    /// A shell command that restarts this server (fast shutdown), for a
    /// hook; its output goes to the server log, so it holds no pipe open.
    pub fn restart_command(&self) -> String {
        format!(
            "runuser -u postgres -- timeout 60 {PGBIN}/pg_ctl -w -t 30 -m fast -D '{}' -l '{}' restart >/dev/null 2>&1",
            self.data.display(),
            self.log().display()
        )
    }

    /// The postmaster's pid, from `postmaster.pid`, while it runs.
    fn pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Stops the server by pid: SIGINT (fast shutdown), SIGKILL after 10 s.
    pub fn stop(&self) {
        use nix::sys::signal::{kill, Signal};
        let Some(pid) = self.pid().map(nix::unistd::Pid::from_raw) else {
            return;
        };
        let _ = kill(pid, Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while kill(pid, None).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = kill(pid, Signal::SIGKILL);
    }

    /// Runs `sql` in `db` as the superuser; stdout, or stderr as the error.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        psql_at(self.port, db, sql)
    }

    /// A state URL for database `db` as the superuser, without TLS.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl PgServer {
    /// Runs `sql` in `db` as the superuser; stdout, or stderr as the error.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        psql_at(self.port, db, sql)
    }

    /// A fresh, empty database; returns its name.
    pub fn fresh_db(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .expect("create database");
        name
    }

    /// A state URL for database `db` as the superuser, without TLS.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// A state URL for a fresh database.
    pub fn fresh_url(&self) -> String {
        let db = self.fresh_db();
        self.url(&db)
    }

    /// The data directory (for tests that look at raw pages).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

/// A test CA and a `localhost`/127.0.0.1 server certificate signed by it.
fn tls_material() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "pgbr test database CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    let cert = params.signed_by(&key, &issuer).expect("server cert");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}
