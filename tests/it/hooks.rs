//! Hooks as hostile input (issue 12, items 5 and 6): a hook that signals
//! its process group, one that outlives its timeout with children, one that
//! prints without end or prints bytes that are not UTF-8, and what a killed
//! run leaves behind.

use crate::harness::{current, deploy_dir, three_cells, Pgbr};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// `activate` runs `body` once, while `<scratch>/trigger` exists (it is
/// removed first, so the revert's `activate` succeeds). The first apply
/// deploys generation 1 without triggering it; the returned closure makes
/// a change (zone2's port) and arms the trigger.
fn armed_hook<'p>(p: &'p Pgbr, body: &str, extra: &str) -> impl Fn() -> String + 'p {
    let trigger = p.path().join("trigger");
    let hook = format!(
        "{extra}\nactivate = '''if [ -e {t} ]; then rm {t}; {body}; fi'''",
        t = trigger.display()
    );
    let topo = three_cells(p, 5433, &hook);
    let t = topo.display().to_string();
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    move || {
        three_cells(p, 5440, &hook);
        fs::write(&trigger, "").unwrap();
        t.clone()
    }
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit_once(") ").map(|(_, r)| r.as_bytes()[0]);
            !matches!(state, Some(b'Z' | b'X'))
        })
        .unwrap_or(false)
}

/// A hook's `kill 0` signals its own process group: pgbr survives it,
/// reverts the cell and reports the hook killed.
#[test]
fn a_hook_signalling_its_process_group_does_not_kill_pgbr() {
    let p = Pgbr::new();
    let arm = armed_hook(&p, "kill 0; sleep 5", "");
    let t = arm();
    let out = p.run(&["apply", &t, "--yes"]).expect_code(5);
    assert!(
        out.stderr.contains("`activate` was killed by a signal"),
        "{}",
        out.stderr
    );
    assert_eq!(current(&p, "zone1"), "generations/1", "reverted");
}

/// `hook_timeout_seconds` bounds a hook; on timeout the whole group dies,
/// including what the hook started in the background.
#[test]
fn a_timed_out_hook_dies_with_its_children() {
    let p = Pgbr::new();
    let pid_file = p.path().join("child.pid");
    let arm = armed_hook(
        &p,
        &format!("sleep 300 & echo $! > {}; wait", pid_file.display()),
        "hook_timeout_seconds = 1",
    );
    let t = arm();
    let started = Instant::now();
    let out = p.run(&["apply", &t, "--yes"]).expect_code(5);
    assert!(
        out.stderr.contains("`activate` did not finish within 1s"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(pid),
        "the hook's `sleep` ({pid}) outlived the timeout"
    );
}

/// Megabytes of output with a byte that is not UTF-8: the error shows a
/// bounded, lossily decoded tail (the lines after the bad byte included)
/// and names the log under the cell's log dir, which holds all of it;
/// nothing is written to `TMPDIR`.
#[test]
fn hook_output_is_bounded_lossy_and_logged_in_the_log_dir() {
    let p = Pgbr::new();
    let tmp = p.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let arm = armed_hook(
        &p,
        "head -c 5000000 /dev/zero | tr '\\0' x; printf '\\n\\377 bad\\n'; \
         for i in 1 2 3; do echo after $i; done; exit 3",
        "",
    );
    let t = arm();
    let out = p.run_env(
        &["apply", &t, "--yes"],
        &[("TMPDIR", tmp.to_str().unwrap())],
    );
    let out = out.expect_code(5);
    assert!(out.stderr.len() < 16 * 1024, "{} bytes", out.stderr.len());
    assert!(
        out.stderr
            .contains("\u{FFFD} bad\nafter 1\nafter 2\nafter 3"),
        "{}",
        out.stderr
    );
    let log = deploy_dir(&p, "zone1").join("log/pgbr-activate.log");
    assert!(
        out.stderr
            .contains(&format!("(the whole output is in `{}`)", log.display())),
        "{}",
        out.stderr
    );
    assert!(fs::metadata(&log).unwrap().len() > 5_000_000);
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "nothing in TMPDIR");
}

/// A hook that kills pgbr (as SIGKILL or the OOM killer would) leaves no
/// output file in `TMPDIR`.
#[test]
fn a_killed_run_leaves_nothing_in_tmpdir() {
    let p = Pgbr::new();
    let tmp = p.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let arm = armed_hook(&p, "echo bye; kill -9 $PPID; sleep 5", "");
    let t = arm();
    let out = p.run_env(
        &["apply", &t, "--yes"],
        &[("TMPDIR", tmp.to_str().unwrap())],
    );
    assert_eq!(out.code, -1, "killed: {}", out.stderr);
    let left: Vec<_> = fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    assert!(Path::new(&deploy_dir(&p, "zone1").join("log/pgbr-activate.log")).exists());
}

/// A bad `hook_timeout_seconds` is a validation error naming file and key.
#[test]
fn a_bad_hook_timeout_is_reported_with_its_key() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "hook_timeout_seconds = 0");
    let mut text = fs::read_to_string(&topo).unwrap();
    text.push_str("hook_timeout_seconds = \"2m\"\n");
    fs::write(&topo, text).unwrap();
    let out = p.run(&["check", topo.to_str().unwrap()]).expect_code(1);
    let file = topo.display();
    for want in [
        format!("{file}: defaults.hook_timeout_seconds: expected an integer 1-86400, found `0`"),
        format!(
            "{file}: cells.zone3.hook_timeout_seconds: expected an integer 1-86400, found `\"2m\"`"
        ),
    ] {
        assert!(out.stderr.contains(&want), "{want}\n{}", out.stderr);
    }
}

/// `rollback` runs without the topology, yet bounds its hooks by the
/// `hook_timeout_seconds` of the last apply (the store records them), not
/// by the default 120 s.
#[test]
fn rollback_uses_the_hook_timeout_of_the_last_apply() {
    let p = Pgbr::new();
    let arm = armed_hook(&p, "sleep 300", "hook_timeout_seconds = 1");
    let t = arm();
    // Generation 2 deploys before the trigger is armed again.
    fs::remove_file(p.path().join("trigger")).unwrap();
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    fs::write(p.path().join("trigger"), "").unwrap();
    let started = Instant::now();
    let out = p.run(&["rollback", "--yes"]).expect_code(5);
    assert!(
        out.stderr.contains("`activate` did not finish within 1s"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}
