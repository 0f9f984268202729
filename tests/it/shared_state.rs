//! The state in PostgreSQL, shared by a team (SPEC §10): two operators on
//! one database, the lock and its holder, `kill -9` of a holder, dropped
//! connections, wrong passwords and certificates, `state copy`, `state
//! verify` and `state unlock`. Every run uses a fresh database on the
//! shared test server (tests/support/pg_server.rs).

use crate::harness::{three_cells, Output, Pgbr};
use crate::pg_server::{self, PASSWORD, PASSWORD_USER};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills a child on drop, so a failed test leaves no pgbr behind.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGCONT,
        );
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (bounded) until `url`'s lock row names a holder.
fn wait_for_holder(db: &str) {
    let server = pg_server::server();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .psql(db, "SELECT count(*) FROM pgbr.lock")
        .map(|n| n != "1")
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "no pgbr took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn db_of(url: &str) -> String {
    let path = url.rsplit_once('/').expect("a path").1;
    path.split('?').next().expect("a name").to_owned()
}

/// A second operator: another scratch dir (another cwd), the same state.
fn colleague(p: &Pgbr) -> Pgbr {
    let mut q = Pgbr::new();
    q.state_url = p.state_url.clone();
    q
}

fn generations(p: &Pgbr) -> serde_json::Value {
    serde_json::from_str(&p.run(&["generations", "--json"]).expect_code(0).stdout).unwrap()
}

#[test]
fn two_operators_see_the_same_generations() {
    let alice = Pgbr::on_postgres();
    let bob = colleague(&alice);
    let topo = three_cells(&alice, 5433, "");
    let t = topo.to_str().unwrap();
    alice.run(&["apply", t, "--yes"]).expect_code(0);
    assert_eq!(generations(&bob), generations(&alice));
    // Bob plans against what Alice applied: nothing to do.
    bob.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
    let edited = std::fs::read_to_string(&topo)
        .unwrap()
        .replace("retention_full = 7", "retention_full = 9");
    std::fs::write(&topo, edited).unwrap();
    bob.run(&["apply", t, "--yes"]).expect_code(0);
    let seen = generations(&alice);
    assert_eq!(seen.as_array().unwrap().len(), 2, "{seen}");
    assert_eq!(seen, generations(&bob));
}

#[test]
fn a_held_lock_names_its_holder_and_exits_3() {
    let p = Pgbr::on_postgres();
    let topo = three_cells(&p, 5433, "activate = \"sleep 3\"");
    let t = topo.to_str().unwrap().to_owned();
    let holder = Reap(p.spawn(&["apply", &t, "--yes"]));
    wait_for_holder(&db_of(p.state_url.as_ref().unwrap()));
    let q = colleague(&p);
    let out = q.run(&["plan", &t]).expect_code(3);
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    for part in [
        "state is locked by ".to_owned(),
        format!("@{host} pid {} (pgbr --state", holder.0.id()),
        "apply".to_owned(),
        format!("pgbr {}", env!("CARGO_PKG_VERSION")),
        "its session is alive (backend pid ".to_owned(),
        "hint: wait for the other pgbr to finish".to_owned(),
    ] {
        assert!(out.stderr.contains(&part), "{part:?} in\n{}", out.stderr);
    }
    let mut holder = holder;
    let status = holder.0.wait().unwrap();
    assert!(status.success());
    q.run(&["plan", &t, "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn kill_9_of_the_holder_leaves_a_consistent_store_and_a_free_lock() {
    let p = Pgbr::on_postgres();
    let topo = three_cells(&p, 5433, "activate = \"sleep 0.2\"");
    let t = topo.to_str().unwrap().to_owned();
    let seed = std::process::id() as u64;
    for trial in 0..4u64 {
        // Each trial changes the topology so that apply has work to do.
        let edited = std::fs::read_to_string(&topo).unwrap().replace(
            &format!("retention_full = {}", 7 + trial),
            &format!("retention_full = {}", 8 + trial),
        );
        std::fs::write(&topo, edited).unwrap();
        let mut child = Reap(p.spawn(&["apply", &t, "--yes"]));
        let delay = (seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(trial * 7919))
            % 900;
        std::thread::sleep(Duration::from_millis(50 + delay));
        let _ = child.0.kill();
        let _ = child.0.wait();
        // The lock went with the session; the store verifies; the next
        // command proceeds.
        p.run(&["state", "verify"]).expect_code(0);
        p.run(&["apply", &t, "--yes"]).expect_code(0);
        p.run(&["plan", &t, "--detailed-exitcode"]).expect_code(0);
    }
}

#[test]
fn a_dropped_connection_is_a_clear_error_and_commits_nothing_half() {
    let p = Pgbr::on_postgres();
    let db = db_of(p.state_url.as_ref().unwrap());
    let topo = three_cells(&p, 5433, "activate = \"sleep 1\"");
    let t = topo.to_str().unwrap().to_owned();
    let child = p.spawn(&["apply", &t, "--yes"]);
    wait_for_holder(&db);
    std::thread::sleep(Duration::from_millis(300));
    pg_server::server()
        .psql(
            "postgres",
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{db}' AND pid <> pg_backend_pid()"
            ),
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    if !out.status.success() {
        assert!(stderr.contains("error: failed to "), "{stderr}");
        assert!(stderr.contains("state"), "{stderr}");
    }
    p.run(&["state", "verify"]).expect_code(0);
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    p.run(&["plan", &t, "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_wrong_password_is_clear_and_never_printed() {
    let server = pg_server::server();
    let db = server.fresh_db();
    let mut p = Pgbr::new();
    let url = |pw: &str| {
        format!(
            "postgresql://{PASSWORD_USER}:{pw}@127.0.0.1:{}/{db}?sslmode=disable",
            server.port
        )
    };
    p.state_url = Some(url("wrong-secret"));
    let out = p.run(&["generations"]).expect_code(1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: failed to connect to state database `postgresql://{PASSWORD_USER}@127.0.0.1:"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("password authentication failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: check the host"),
        "{}",
        out.stderr
    );
    // From PGPASSWORD, too: never in any output.
    let from_env = format!(
        "postgresql://{PASSWORD_USER}@127.0.0.1:{}/{db}?sslmode=disable",
        server.port
    );
    p.state_url = Some(from_env.clone());
    let out = p
        .run_env(&["generations"], &[("PGPASSWORD", "env-secret")])
        .expect_code(1);
    assert!(!out.stderr.contains("env-secret"), "{}", out.stderr);
    // The right one works; no output of any command shows it.
    p.state_url = Some(url(PASSWORD));
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    let mut outputs: Vec<Output> = vec![
        p.run(&["apply", t, "--yes"]).expect_code(0),
        p.run(&["generations"]).expect_code(0),
        p.run(&["state", "verify"]).expect_code(0),
        p.run(&["state", "unlock"]).expect_code(0),
        p.run(&["status", t]),
    ];
    // A locked error names the store, without the password.
    let slow = three_cells(&p, 5433, "activate = \"sleep 2\"");
    let edited = std::fs::read_to_string(&slow)
        .unwrap()
        .replace("retention_full = 7", "retention_full = 8");
    std::fs::write(&slow, edited).unwrap();
    let mut holder = Reap(p.spawn(&["apply", t, "--yes"]));
    wait_for_holder(&db);
    outputs.push(p.run(&["plan", t]).expect_code(3));
    holder.0.wait().unwrap();
    for out in &outputs {
        for text in [&out.stdout, &out.stderr] {
            assert!(!text.contains(PASSWORD), "{text}");
            assert!(!text.contains("wrong-secret"), "{text}");
        }
    }
    assert!(outputs
        .last()
        .unwrap()
        .stderr
        .contains(&format!("`postgresql://{PASSWORD_USER}@127.0.0.1:")));
}

#[test]
fn tls_require_and_verify_full_work_and_a_foreign_ca_is_refused() {
    let server = pg_server::server();
    let db = server.fresh_db();
    let mut p = Pgbr::new();
    let base = format!("postgresql://postgres@localhost:{}/{db}", server.port);
    p.state_url = Some(format!("{base}?sslmode=require"));
    p.run(&["state", "verify"]).expect_code(0);
    p.state_url = Some(format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        server.ca_file.display()
    ));
    p.run(&["generations"]).expect_code(0);
    // The certificate names localhost and 127.0.0.1, not this name.
    p.state_url = Some(format!(
        "postgresql://postgres@127.0.0.2:{}/{db}?sslmode=verify-full&sslrootcert={}",
        server.port,
        server.ca_file.display()
    ));
    let out = p.run(&["generations"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    // A CA that did not sign the server's certificate.
    let foreign = p.write("foreign-ca.pem", &foreign_ca());
    p.state_url = Some(format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        foreign.display()
    ));
    let out = p.run(&["generations"]).expect_code(1);
    assert!(
        out.stderr
            .contains("error: failed to connect to state database"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("UnknownIssuer") || out.stderr.contains("certificate"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    // An sslrootcert that is not a certificate.
    let junk = p.write("junk.pem", "not a certificate");
    p.state_url = Some(format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        junk.display()
    ));
    let out = p.run(&["generations"]).expect_code(1);
    assert!(out.stderr.contains("sslrootcert"), "{}", out.stderr);
}

fn foreign_ca() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn state_copy_round_trips_sled_postgres_sled() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let edited = std::fs::read_to_string(&topo)
        .unwrap()
        .replace("retention_full = 7", "retention_full = 8");
    std::fs::write(&topo, edited).unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let url = pg_server::server().fresh_url();
    let back = p.path().join("state-back");
    let copy = |from: &std::ffi::OsStr, to: &std::ffi::OsStr| {
        p.run(&[
            "state",
            "copy",
            from.to_str().unwrap(),
            to.to_str().unwrap(),
        ])
    };
    let out = copy(p.state().as_os_str(), url.as_ref()).expect_code(0);
    assert!(
        out.stdout.contains("Copied 2 generations and "),
        "{}",
        out.stdout
    );
    copy(url.as_ref(), back.as_os_str()).expect_code(0);
    // Into a store that is not empty: refused.
    let out = copy(p.state().as_os_str(), url.as_ref()).expect_code(1);
    assert!(out.stderr.contains("it is not empty"), "{}", out.stderr);

    let open = |l: pgbr::store::Location| pgbr::store::Store::open(&l).unwrap();
    let (a, b, c) = (
        open(p.location()),
        open(pgbr::store::Location::new(url.clone())),
        open(pgbr::store::Location::from(back.clone())),
    );
    for other in [&b, &c] {
        // The same state, moved: deploy dirs bound to it stay bound.
        assert!(a.id().unwrap().is_some());
        assert_eq!(a.id().unwrap(), other.id().unwrap());
        assert_eq!(
            pgbr::generations::read_all(&a).unwrap(),
            pgbr::generations::read_all(other).unwrap()
        );
        assert_eq!(a.pki().unwrap(), other.pki().unwrap());
        assert_eq!(a.journal().unwrap(), other.journal().unwrap());
        assert_eq!(
            a.next_generation().unwrap(),
            other.next_generation().unwrap()
        );
        assert_eq!(
            pgbr::generations::state_digest(&a).unwrap(),
            pgbr::generations::state_digest(other).unwrap()
        );
        let mut ids = a.object_sizes().unwrap();
        let mut theirs = other.object_sizes().unwrap();
        ids.sort();
        theirs.sort();
        assert_eq!(ids, theirs);
        for (id, _) in &ids {
            assert_eq!(a.get_object(id).unwrap(), other.get_object(id).unwrap());
        }
    }
    drop((a, b, c));
    // A deployment applied from the copy is a no-op.
    let mut q = Pgbr::new();
    q.state_url = Some(url);
    q.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
    q.run(&["apply", t, "--yes"]).expect_code(0);
    assert_eq!(generations(&q).as_array().unwrap().len(), 2);
}

#[test]
fn unlock_ends_a_stuck_holder_only_when_told() {
    let p = Pgbr::on_postgres();
    let db = db_of(p.state_url.as_ref().unwrap());
    let topo = three_cells(&p, 5433, "activate = \"sleep 1\"");
    let t = topo.to_str().unwrap().to_owned();
    let holder = Reap(p.spawn(&["apply", &t, "--yes"]));
    wait_for_holder(&db);
    // Stuck, not gone: its process is alive, so unlock refuses.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder.0.id() as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    let out = p.run(&["state", "unlock"]).expect_code(1);
    assert!(
        out.stderr.contains("which may still be running"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: stop that pgbr first, or pass `--force`"),
        "{}",
        out.stderr
    );
    let out = p.run(&["state", "unlock", "--force"]).expect_code(0);
    assert!(
        out.stdout.starts_with("Ended the lock of "),
        "{}",
        out.stdout
    );
    p.run(&["state", "unlock"]).expect_code(0);
    drop(holder);
    p.run(&["state", "verify"]).expect_code(0);
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    p.run(&["plan", &t, "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_bad_state_url_is_named_without_its_password() {
    let mut p = Pgbr::new();
    p.state_url = Some("postgresql://u:hunter2@db:5432/x?sslmode=sometimes".into());
    let out = p.run(&["generations"]).expect_code(1);
    assert_eq!(
        out.stderr,
        "error: failed to parse state URL `postgresql://u@db:5432/x?sslmode=sometimes`: \
         sslmode `sometimes` is not one of `disable`, `prefer`, `require`, `verify-full`\n\
         hint: use `postgresql://user@host:port/dbname?sslmode=verify-full` (docs/store.md)\n"
    );
}

/// PgBouncer in front of the test server, killed on drop.
struct Pooler {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Pooler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pgbouncer(db: &str, mode: &str) -> Pooler {
    let server = pg_server::server();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("pgbouncer.ini");
    std::fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n").unwrap();
    std::fs::write(
        &config,
        format!(
            "[databases]\n{db} = host=127.0.0.1 port={} dbname={db}\n\
             [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
             unix_socket_dir =\nauth_type = trust\nauth_file = {users}\n\
             pool_mode = {mode}\nmax_client_conn = 20\ndefault_pool_size = 4\n\
             logfile = {log}\n",
            server.port,
            users = dir.path().join("users.txt").display(),
            log = dir.path().join("log").display(),
        ),
    )
    .unwrap();
    Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir.path())
        .status()
        .unwrap();
    let child = Command::new("pgbouncer")
        .args(["-u", "postgres"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pgbouncer (apt package pgbouncer)");
    let pooler = Pooler {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "pgbouncer did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    pooler
}

#[test]
fn a_transaction_pooler_is_refused_and_a_session_pooler_works() {
    let server = pg_server::server();
    for (mode, code) in [("transaction", 1), ("session", 0)] {
        let db = server.fresh_db();
        let pooler = pgbouncer(&db, mode);
        let mut p = Pgbr::new();
        p.state_url = Some(format!(
            "postgresql://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            pooler.port
        ));
        let out = p.run(&["state", "verify"]);
        assert_eq!(out.code, code, "{mode}: {}", out.stderr);
        if code == 1 {
            assert!(
                out.stderr.contains(
                    "the connection goes through a transaction-pooling pooler, \
                     which cannot hold a session lock"
                ),
                "{}",
                out.stderr
            );
            assert!(out.stderr.contains("pool_mode=session"), "{}", out.stderr);
        }
    }
}

/// A tmpfs of `size` mounted on a temp dir, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("pgbr-tmpfs-")
            .tempdir()
            .unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs on {:?}", dir.path());
        Tmpfs { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-l"])
            .arg(self.dir.path())
            .status();
    }
}

/// Nothing was committed half: `committed` whole generations (each
/// commit is one transaction), the head on the last of them, a store that
/// verifies, and no session holding the lock.
fn assert_nothing_half_committed(
    p: &Pgbr,
    server: &pg_server::PrivateServer,
    db: &str,
    committed: usize,
) {
    let seen = generations(p);
    assert_eq!(seen.as_array().unwrap().len(), committed, "{seen}");
    p.run(&["state", "verify"]).expect_code(0);
    assert_eq!(
        server.psql(db, "SELECT generation FROM pgbr.head").unwrap(),
        committed.to_string()
    );
    assert_eq!(
        server
            .psql(
                db,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            )
            .unwrap(),
        "0"
    );
}

#[test]
fn the_database_restarted_during_an_apply_is_a_clear_error_and_commits_nothing() {
    let server = pg_server::PrivateServer::start();
    server.psql("postgres", "CREATE DATABASE state").unwrap();
    let mut p = Pgbr::new();
    p.state_url = Some(server.url("state"));
    // The first cell's activate restarts the database while pgbr holds its
    // connections (the lock session and the data session); later runs
    // of the hook do nothing.
    let marker = p.path().join("restarted");
    let script = p.write(
        "restart.sh",
        &format!(
            "[ -e '{m}' ] && exit 0\ntouch '{m}'\n{}\n",
            server.restart_command(),
            m = marker.display()
        ),
    );
    let topo = three_cells(&p, 5433, &format!("activate = \"sh {}\"", script.display()));
    let t = topo.to_str().unwrap();
    let out = p.run(&["apply", t, "--yes"]);
    assert!(marker.exists(), "the hook ran");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "error: failed to access state database `postgresql://postgres@127.0.0.1:{}/state",
            server.port
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("the connection was lost (the server restarted"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: nothing was committed half (the server rolls back"),
        "{}",
        out.stderr
    );
    // The generation was committed whole before activation began; the
    // restart cut the rollout after the first cell.
    assert_nothing_half_committed(&p, &server, "state", 1);
    p.run(&["apply", t, "--yes"]).expect_code(0);
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_full_disk_on_the_database_is_a_clear_error_and_commits_nothing() {
    let disk = Tmpfs::mount("8m");
    let server = pg_server::PrivateServer::start();
    let space = disk.dir.path().join("ts");
    std::fs::create_dir(&space).unwrap();
    Command::new("chown")
        .arg("postgres:postgres")
        .arg(&space)
        .status()
        .unwrap();
    for sql in [
        format!("CREATE TABLESPACE tiny LOCATION '{}'", space.display()),
        "CREATE DATABASE state".to_owned(),
        "ALTER DATABASE state SET default_tablespace = tiny".to_owned(),
    ] {
        server.psql("postgres", &sql).unwrap();
    }
    let mut p = Pgbr::new();
    p.state_url = Some(
        server
            .url("state")
            .replace("postgres@", "postgres:db-secret@"),
    );
    // Creates schema `pgbr`, its tables in the tablespace on the tmpfs
    // (`state verify` opens the store as apply does; read-only commands
    // create no schema).
    p.run(&["state", "verify"]).expect_code(0);
    // Fill the rest of the tmpfs.
    let filler = disk.dir.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    let out = p.run(&["apply", t, "--yes"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(!out.stderr.contains("db-secret"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "error: failed to write to state database `postgresql://postgres@127.0.0.1:{}/state",
            server.port
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("the database server is out of disk space"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("could not extend file") || out.stderr.contains("No space left"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "hint: nothing was committed; free disk space on the database server \
             (the disk or tablespace that holds schema `pgbr`"
        ),
        "{}",
        out.stderr
    );
    assert_nothing_half_committed(&p, &server, "state", 0);
    std::fs::remove_file(&filler).unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
    assert_eq!(generations(&p).as_array().unwrap().len(), 1);
}

#[test]
fn the_next_command_after_a_killed_holder_waits_for_its_dying_lock() {
    let p = Pgbr::on_postgres();
    let topo = three_cells(&p, 5433, "activate = \"sleep 5\"");
    let t = topo.to_str().unwrap().to_owned();
    let mut holder = Reap(p.spawn(&["apply", &t, "--yes"]));
    wait_for_holder(&db_of(p.state_url.as_ref().unwrap()));
    let _ = holder.0.kill();
    let _ = holder.0.wait();
    // At once: the server may not have ended the killed client's session
    // yet; its lock is going away, so pgbr waits for it instead of failing.
    colleague(&p).run(&["plan", &t]).expect_code(0);
}
