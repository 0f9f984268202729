//! A careless environment (issue 12): a failing probe is an exit code, a
//! closed pipe is no crash, a crash leaves no core with keys in it.

use crate::harness::Pgbr;
use crate::workflow::three_cells;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// `pgbr --state <scratch>/state ARGS` with stdout a pipe whose reader has
/// already gone (as after `| head` read its lines); returns (exit code or
/// signal, stderr).
fn run_into_closed_pipe(p: &Pgbr, args: &[&str]) -> (Option<i32>, Option<i32>, String) {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    let out = Command::new(env!("CARGO_BIN_EXE_pgbr"))
        .arg("--state")
        .arg(p.state())
        .args(args)
        .current_dir(p.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .expect("run pgbr");
    (
        out.status.code(),
        out.status.signal(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn status_probe_exits_non_zero_when_a_probe_fails() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    // No TLS server runs: every probe fails.
    let out = p.run(&["status", t, "--probe"]).expect_code(7);
    assert!(out.stdout.contains("probe: FAILED"), "{}", out.stdout);
    let out = p.run(&["status", t, "--probe", "--json"]).expect_code(7);
    assert!(out.stdout.contains("\"ok\": false"), "{}", out.stdout);
    assert!(
        out.stderr.contains("3 of 3 TLS probe(s) failed"),
        "{}",
        out.stderr
    );
    // Without --probe, status reports and exits 0.
    p.run(&["status", t]).expect_code(0);
}

#[test]
fn a_closed_pipe_neither_panics_nor_stops_work() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    // The reader left before the plan was printed: every cell is still
    // deployed, and pgbr exits as if it had been read.
    let (code, signal, stderr) = run_into_closed_pipe(&p, &["apply", t, "--yes"]);
    assert_eq!((code, signal), (Some(0), None), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for cell in ["zone1", "zone2", "zone3"] {
        let current = crate::hostile::deploy_dir(&p, cell).join("current");
        assert!(current.exists(), "{cell} not deployed: {stderr}");
    }
    for args in [
        &["generations"][..],
        &["generations", "--json"],
        &["plan", t],
        &["status", t],
        &["certs"],
        &["check", t],
    ] {
        let (code, signal, stderr) = run_into_closed_pipe(&p, args);
        assert_eq!((code, signal), (Some(0), None), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
    // `rotate --ca` writes its plan first, then commits and deploys.
    let (code, signal, stderr) = run_into_closed_pipe(&p, &["rotate", t, "--ca", "--yes"]);
    assert_eq!((code, signal), (Some(0), None), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_crash_writes_no_core_dump() {
    // core_pattern `core` (this machine, Debian's default) writes ./core
    // when the limit allows it; a pipe to a collector would get the dump
    // just the same. pgbr turns both off (RLIMIT_CORE 0, not dumpable).
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -c unlimited && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_pgbr"))
        .arg("--state")
        .arg(p.state())
        .args(["apply", topo.to_str().unwrap(), "--yes"])
        .env("PGBR_FAILPOINT", "after-commit")
        .current_dir(p.path())
        .stdin(Stdio::null())
        .output()
        .expect("run pgbr");
    // The failpoint aborted it (SIGABRT) after the CA key was made.
    assert_eq!(out.status.signal(), Some(6), "{out:?}");
    assert!(!out.status.core_dumped(), "pgbr dumped core");
    let cores: Vec<_> = std::fs::read_dir(p.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("core"))
        .collect();
    assert!(cores.is_empty(), "{cores:?}");
}
