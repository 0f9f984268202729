//! Deploy dirs are bound to the store that deploys them (issue 12 item
//! 4): a fresh store, a stale copy of the state, or a second store applying
//! at the same time never takes over a fleet unnoticed.

use crate::harness::{current, deploy_dir, Pgbr};
use crate::workflow::three_cells;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CELLS: [&str; 3] = ["zone1", "zone2", "zone3"];

/// `pgbr --state <state> ARGS` from the scratch dir.
fn run_with(p: &Pgbr, state: &Path, args: &[&str]) -> crate::harness::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_pgbr"))
        .arg("--state")
        .arg(state)
        .args(args)
        .env_remove("PGBR_STATE")
        .current_dir(p.path())
        .stdin(Stdio::null())
        .output()
        .expect("run pgbr");
    crate::harness::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn marker(p: &Pgbr, cell: &str) -> String {
    fs::read_to_string(deploy_dir(p, cell).join(".pgbr-deploy")).unwrap()
}

fn store_line(p: &Pgbr, cell: &str) -> String {
    marker(p, cell)
        .lines()
        .find(|l| l.starts_with("store="))
        .unwrap_or_default()
        .to_owned()
}

fn generation_count(p: &Pgbr, state: &Path) -> usize {
    let out = run_with(p, state, &["generations", "--json"]).expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v.as_array().map(Vec::len).unwrap_or(0)
}

/// Edits the topology so that every cell's config changes.
fn edit(topo: &Path, retention: u32) {
    let text = fs::read_to_string(topo).unwrap();
    let text = regex::Regex::new(r"retention_full = \d+")
        .unwrap()
        .replace(&text, format!("retention_full = {retention}").as_str())
        .into_owned();
    fs::write(topo, text).unwrap();
}

/// A fresh store (the default `./state` run from another directory) meets
/// a fleet another store deploys: `plan` shows every cell blocked, naming
/// both stores; `apply` commits nothing and touches nothing, however often
/// it is retried; `--adopt` takes the fleet over on purpose, and then the
/// first store is refused.
#[test]
fn a_fresh_store_does_not_take_over_a_fleet() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let first = store_line(&p, "zone1");
    assert!(first.len() > "store=".len(), "{}", marker(&p, "zone1"));
    let fresh = p.path().join("elsewhere/state");

    let out = run_with(&p, &fresh, &["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stdout.contains("is deployed by store")
            && out.stdout.contains(&first["store=".len()..])
            && out.stdout.contains("elsewhere/state"),
        "{}",
        out.stdout
    );
    for _ in 0..2 {
        let out = run_with(&p, &fresh, &["apply", t, "--yes"]).expect_code(1);
        assert!(
            out.stderr.contains("is deployed by store") && out.stderr.contains("--adopt"),
            "{}",
            out.stderr
        );
        assert_eq!(generation_count(&p, &fresh), 0, "nothing committed");
        for cell in CELLS {
            assert_eq!(current(&p, cell), "generations/1", "{cell}");
            assert_eq!(store_line(&p, cell), first, "{cell}");
        }
    }
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);

    // Taken over on purpose: the markers name the new store, and the first
    // store is now the one refused.
    run_with(&p, &fresh, &["apply", t, "--yes", "--adopt"]).expect_code(0);
    let second = store_line(&p, "zone1");
    assert_ne!(second, first);
    run_with(&p, &fresh, &["plan", t, "--detailed-exitcode"]).expect_code(0);
    let out = p.run(&["apply", t, "--yes"]).expect_code(1);
    assert!(
        out.stderr.contains("is deployed by store"),
        "{}",
        out.stderr
    );
}

/// A stale copy of the state (same identity, older generations) is
/// refused where the real store moved on: it neither flips a cell back nor
/// rewrites a generation dir whose number collides.
#[test]
fn a_stale_copy_of_the_state_is_refused() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let stale = p.path().join("stale");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(p.state())
        .arg(&stale)
        .status()
        .unwrap();
    assert!(cp.success());
    edit(&topo, 8);
    p.run(&["apply", t, "--yes", "--cells", "zone1"])
        .expect_code(0);
    assert_eq!(current(&p, "zone1"), "generations/2");
    let gen2 = deploy_dir(&p, "zone1").join("generations/2/pgbackrest.conf");
    let real = fs::read_to_string(&gen2).unwrap();

    // The copy makes a different generation 2 of its own.
    edit(&topo, 9);
    let out = run_with(&p, &stale, &["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stdout.contains("generation 2") && out.stdout.contains("another copy"),
        "{}",
        out.stdout
    );
    let out = run_with(&p, &stale, &["apply", t, "--yes"]).expect_code(1);
    assert!(out.stderr.contains("zone1"), "{}", out.stderr);
    assert_eq!(generation_count(&p, &stale), 1, "nothing committed");
    assert_eq!(current(&p, "zone1"), "generations/2");
    assert_eq!(fs::read_to_string(&gen2).unwrap(), real);
    for cell in ["zone2", "zone3"] {
        assert_eq!(current(&p, cell), "generations/1", "{cell}");
    }
    // Nor does the copy's gc collect what it did not make.
    let out = run_with(&p, &stale, &["gc", "--keep", "0"]).expect_code(0);
    assert!(out.stdout.contains("gc leaves"), "{}", out.stdout);
    assert!(gen2.exists());
    assert!(deploy_dir(&p, "zone1").join("generations/1").exists());
}

/// Two stores applying to one fleet at once: exactly one deploys it; the
/// other fails naming a deploy dir, and fails fast, while the first still
/// runs (the deploy dir's lock, not only the marker).
#[test]
fn two_stores_applying_at_once_cannot_both_write_a_cell() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "activate = \"sleep 5\"");
    let t = topo.to_str().unwrap();
    let other = p.path().join("other-state");
    let mut first = Reap(spawn(&p, &p.state(), &["apply", t, "--yes"]));
    let marker = deploy_dir(&p, "zone1").join(".pgbr-deploy");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the first apply never started");
        assert!(first.0.try_wait().unwrap().is_none(), "first apply ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Without --adopt the marker refuses it before anything is committed.
    let out = run_with(&p, &other, &["apply", t, "--yes"]).expect_code(1);
    assert!(out.stderr.contains("zone1/pgbackrest"), "{}", out.stderr);
    // With --adopt it still cannot write a dir the first one is deploying.
    let out = run_with(&p, &other, &["apply", t, "--yes", "--adopt"]).expect_code(1);
    assert!(
        out.stderr.contains("zone1/pgbackrest")
            && out
                .stderr
                .contains("another pgbr is deploying it right now"),
        "{}",
        out.stderr
    );
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the second failed while the first still ran"
    );
    let status = first.0.wait().unwrap();
    assert!(status.success(), "the first apply deploys the fleet");
    for cell in CELLS {
        assert_eq!(current(&p, cell), "generations/1", "{cell}");
    }
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
}

/// Markers written before deploy dirs were bound (`cell=` only) are bound
/// by the next deploy of the store that deployed them; another store is
/// refused meanwhile (their `current` is no generation it made).
#[test]
fn old_markers_are_bound_by_the_store_that_deployed_them() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let bound = store_line(&p, "zone1");
    for cell in CELLS {
        fs::write(
            deploy_dir(&p, cell).join(".pgbr-deploy"),
            format!("# deployed by pgbr; do not remove\ncell={cell}\n"),
        )
        .unwrap();
    }
    let fresh = p.path().join("fresh");
    let out = run_with(&p, &fresh, &["apply", t, "--yes"]).expect_code(1);
    assert!(
        out.stderr.contains("did not deploy there"),
        "{}",
        out.stderr
    );
    assert_eq!(generation_count(&p, &fresh), 0);
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
    edit(&topo, 8);
    p.run(&["apply", t, "--yes"]).expect_code(0);
    for cell in CELLS {
        assert_eq!(store_line(&p, cell), bound, "{cell}");
        assert_eq!(current(&p, cell), "generations/2", "{cell}");
    }
}

fn spawn(p: &Pgbr, state: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pgbr"))
        .arg("--state")
        .arg(state)
        .args(args)
        .env_remove("PGBR_STATE")
        .current_dir(p.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills and reaps a pgbr left running by a failed assertion.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
