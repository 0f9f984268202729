//! Faults nothing used to report (issue 12): an activation cut short, a
//! rollback retried, `current` moved by hand, stale partial dirs.

use crate::harness::Pgbr;
use crate::hostile::deploy_dir;
use crate::workflow::three_cells;
use std::fs;
use std::path::PathBuf;

fn current(p: &Pgbr, cell: &str) -> String {
    fs::read_link(deploy_dir(p, cell).join("current"))
        .map(|t| t.display().to_string())
        .unwrap_or_default()
}

/// `activate` appends the cell's generation to `activated`; while `kill`
/// exists it first removes it and kills pgbr (as SIGKILL, OOM or Ctrl-C would).
fn killing_hook(p: &Pgbr) -> (PathBuf, PathBuf) {
    let kill = p.path().join("kill");
    let log = p.path().join("activated");
    let hook = format!(
        "activate = \"if [ -e {k} ]; then rm {k}; kill -9 $PPID; sleep 5; fi; echo $PGBR_CELL $PGBR_GENERATION >> {l}\"",
        k = kill.display(),
        l = log.display()
    );
    three_cells(p, 5433, &hook);
    (kill, log)
}

/// Killed after the flip, before `activate` finished: the cell is on its
/// new generation but never reloaded. `plan` says so (exit 2) and `apply`
/// runs `activate` again.
#[test]
fn an_interrupted_activation_is_pending_and_re_run() {
    let p = Pgbr::new();
    let (kill, log) = killing_hook(&p);
    let t = p.path().join("topo.toml");
    let t = t.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    fs::write(&kill, "").unwrap();
    let out = p.run(&["rotate", t, "--cells", "zone1", "--yes"]);
    assert_eq!(out.code, -1, "killed: {}\n{}", out.stdout, out.stderr);
    assert_eq!(
        current(&p, "zone1"),
        "generations/2",
        "flipped before the kill"
    );
    let out = p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stdout.contains("zone1") && out.stdout.contains("interrupted"),
        "{}",
        out.stdout
    );
    let status = p.run(&["status", t]);
    assert!(status.stdout.contains("interrupted"), "{}", status.stdout);
    let before = fs::read_to_string(&log).unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let after = fs::read_to_string(&log).unwrap();
    let new: Vec<&str> = after[before.len()..].lines().collect();
    assert_eq!(new, ["zone1 3"], "activate ran again for zone1 only");
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
}

/// `current` repointed by hand to another kept generation, or deleted, is
/// drift: the journal knows which generation was deployed last.
#[test]
fn current_moved_or_deleted_by_hand_is_drift() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    three_cells(&p, 5440, "");
    p.run(&["apply", t, "--yes"]).expect_code(0);
    assert_eq!(current(&p, "zone2"), "generations/2");
    let link = deploy_dir(&p, "zone2").join("current");
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("generations/1", &link).unwrap();
    let out = p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stdout.contains(
            "drift: `current` points at generation 1, but generation 2 was deployed last"
        ),
        "{}",
        out.stdout
    );
    fs::remove_file(&link).unwrap();
    let out = p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stdout.contains("drift: `current` is missing"),
        "{}",
        out.stdout
    );
    p.run(&["apply", t, "--yes"]).expect_code(0);
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
}
