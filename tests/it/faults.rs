//! Faults nothing used to report (issue 12): an activation cut short, a
//! rollback retried, `current` moved by hand, stale partial dirs.

use crate::harness::{current, deploy_dir, edited, live, three_cells, Pgbr, ThreeCells};
use std::fs;
use std::path::PathBuf;

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
    let status = p.run(&["status", t]).expect_code(2);
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
    let topo = edited(&p);
    let t = topo.to_str().unwrap();
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

/// [`three_cells`] with zone2 and zone3 on these PostgreSQL ports.
fn two_changing(p: &Pgbr, zone2: u16, zone3: u16) -> String {
    let pg_ports = [5432, zone2, zone3];
    let t = ThreeCells {
        pg_ports,
        ..ThreeCells::default()
    }
    .write(p);
    t.to_str().unwrap().to_owned()
}

fn config(p: &Pgbr, cell: &str) -> String {
    live(p, cell, "pgbackrest.conf")
}

fn configs(p: &Pgbr) -> Vec<String> {
    ["zone1", "zone2", "zone3"]
        .iter()
        .map(|c| config(p, c))
        .collect()
}

/// Two rollbacks in a row go back two steps (the parent of the live
/// generation, stepping over `rollback of …`), never toggle.
#[test]
fn rollbacks_in_a_row_step_back() {
    let p = Pgbr::new();
    let t = two_changing(&p, 5433, 5434);
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    let first = configs(&p);
    two_changing(&p, 5440, 5441);
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    let second = configs(&p);
    two_changing(&p, 5450, 5451);
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    for (to, configs_then) in [(2, second), (1, first)] {
        let out = p.run(&["rollback", "--yes"]).expect_code(0);
        let says = format!("Rollback to generation {to}");
        assert!(out.stdout.contains(&says), "{}", out.stdout);
        assert_eq!(configs(&p), configs_then);
    }
    let out = p.run(&["rollback", "--yes"]).expect_code(1);
    assert!(
        out.stderr
            .contains("generation 1 has no earlier generation"),
        "{}",
        out.stderr
    );
}

/// A rollback killed mid-fleet and retried finishes the same rollback.
#[test]
fn a_retried_rollback_resumes() {
    let p = Pgbr::new();
    let t = two_changing(&p, 5433, 5434);
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    let first = configs(&p);
    two_changing(&p, 5440, 5441);
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    let out = p.run_env(
        &["rollback", "--yes"],
        &[("PGBR_FAILPOINT", "between-cells")],
    );
    assert_ne!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(config(&p, "zone1"), first[0], "zone1 rolled back");
    assert_ne!(config(&p, "zone2"), first[1], "zone2 not yet");
    let out = p.run(&["rollback", "--yes"]).expect_code(0);
    assert!(
        out.stdout.contains("Resuming the rollback to generation 1"),
        "{}",
        out.stdout
    );
    assert_eq!(configs(&p), first);
}

/// Without a terminal, rollback's hint names `--yes` only (it takes no
/// saved plan); a rollback with nothing to do does not announce a new
/// generation.
#[test]
fn rollback_says_only_what_applies() {
    let p = Pgbr::new();
    let t = two_changing(&p, 5433, 5434);
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    two_changing(&p, 5440, 5441);
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    let out = p.run(&["rollback"]).expect_code(1);
    assert!(out.stderr.contains("hint: pass `--yes`"), "{}", out.stderr);
    assert!(!out.stderr.contains("plan"), "{}", out.stderr);
    let out = p.run(&["rollback", "--to", "2"]).expect_code(0);
    assert!(
        out.stdout.contains("Nothing to roll back"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("as new generation"), "{}", out.stdout);
}

/// `apply --now` more than a day off the real clock would deploy
/// certificates that real servers see as expired or not valid yet: it
/// needs `--allow-clock-skew`, and refuses before anything is written.
#[test]
fn apply_with_a_skewed_clock_needs_allow_clock_skew() {
    let p = Pgbr::new();
    let t = three_cells(&p, 5433, "");
    let t = t.to_str().unwrap();
    // 400 days and an hour: the message counts whole days, and a slow run
    // must not turn 400 into 399.
    let ahead =
        (time::OffsetDateTime::now_utc() + time::Duration::days(400) + time::Duration::hours(1))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
    for args in [
        &["apply", t, "--yes", "--now", &ahead][..],
        &["rotate", t, "--yes", "--now", &ahead],
    ] {
        let out = p.run(args).expect_code(1);
        assert!(
            out.stderr.contains("400 days ahead of the real clock")
                && out.stderr.contains("--allow-clock-skew"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!p.path().join("cells").exists(), "nothing written");
    }
    let out = p
        .run(&["apply", t, "--yes", "--now", &ahead, "--allow-clock-skew"])
        .expect_code(0);
    assert!(out.stderr.contains("warning: `--now` is"), "{}", out.stderr);
    // Within a day is no skew.
    let near = (time::OffsetDateTime::now_utc() + time::Duration::hours(12))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    p.run(&["apply", t, "--yes", "--now", &near]).expect_code(0);
}

/// `certs` lists every certificate a kept generation still references
/// (not only the store's current PKI record), marks the live ones, labels
/// SANs DNS/IP, and gives `kind` and `cell` in JSON with RFC 3339 times.
#[test]
fn certs_lists_what_kept_generations_reference() {
    let p = Pgbr::new();
    let t = three_cells(&p, 5433, "");
    let t = t.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let old = pgbr::pki::inspect(
        &fs::read_to_string(deploy_dir(&p, "zone1").join("current/tls/server.crt")).unwrap(),
    )
    .unwrap()
    .serial;
    p.run(&["rotate", t, "--cells", "zone1", "--yes"])
        .expect_code(0);
    let json: serde_json::Value =
        serde_json::from_str(&p.run(&["certs", "--json"]).expect_code(0).stdout).unwrap();
    let rows = json.as_array().unwrap();
    let leaves: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["kind"] == "leaf" && r["cell"] == "zone1")
        .collect();
    assert_eq!(
        leaves.len(),
        2,
        "the rotated-out leaf is still kept: {json:#}"
    );
    let retired = leaves.iter().find(|r| r["serial"] == old.as_str()).unwrap();
    assert_eq!(retired["live"], false);
    assert_eq!(retired["generations"], serde_json::json!([1]));
    let fresh = leaves.iter().find(|r| r["serial"] != old.as_str()).unwrap();
    assert_eq!(fresh["live"], true);
    assert!(rows
        .iter()
        .any(|r| r["kind"] == "ca" && r["cell"].is_null() && r["live"] == true));
    assert!(rows.iter().all(|r| r.get("role").is_none()));
    let sans = fresh["sans"].as_array().unwrap();
    assert!(
        sans.contains(&serde_json::json!({"type": "DNS", "value": "localhost"})),
        "{sans:?}"
    );
    assert!(
        sans.contains(&serde_json::json!({"type": "IP", "value": "127.0.0.1"})),
        "{sans:?}"
    );
    let rfc3339 = |v: &serde_json::Value| {
        v.as_str().is_some_and(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
        })
    };
    assert!(
        rfc3339(&fresh["not_after"]) && rfc3339(&fresh["not_before"]),
        "{fresh}"
    );
    let text = p.run(&["certs"]).expect_code(0).stdout;
    assert!(
        text.contains("DNS:localhost") && text.contains("IP:127.0.0.1"),
        "{text}"
    );
    assert!(text.contains(&old), "{text}");
    // Every time in `generations --json` is RFC 3339 too.
    let gens: serde_json::Value =
        serde_json::from_str(&p.run(&["generations", "--json"]).expect_code(0).stdout).unwrap();
    let zone1 = &gens[0]["cells"]["zone1"];
    assert!(rfc3339(&zone1["not_after"]), "{zone1}");
}

/// A `.N.partial` dir left by a killed run (with a never-deployed key)
/// is reported by `plan` and `status`, and `gc` removes it (listing it in
/// `--dry-run`).
#[test]
fn stale_partial_dirs_are_reported_and_collected() {
    let p = Pgbr::new();
    let t = three_cells(&p, 5433, "");
    let t = t.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let partial = deploy_dir(&p, "zone2").join("generations/.7.partial");
    fs::create_dir_all(partial.join("tls")).unwrap();
    fs::write(partial.join("tls/server.key"), "not deployed").unwrap();
    let out = p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stdout.contains("generations/.7.partial"),
        "{}",
        out.stdout
    );
    let out = p.run(&["status", t]);
    assert!(
        out.stdout.contains("generations/.7.partial"),
        "{}",
        out.stdout
    );
    let out = p.run(&["gc", "--dry-run"]).expect_code(0);
    assert!(out.stdout.contains(".7.partial"), "{}", out.stdout);
    assert!(partial.exists(), "dry run");
    let out = p.run(&["gc"]).expect_code(0);
    assert!(out.stdout.contains(".7.partial"), "{}", out.stdout);
    assert!(!partial.exists(), "collected");
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
}
