//! The operator's day, through the real binary: plan → apply → plan (no
//! changes) → edit → plan diff → apply → generations → rollback → gc →
//! drift → repair; bootstrap → full; concurrency; untouched cells.

pub use crate::harness::three_cells;
use crate::harness::{applied, current, deploy_dir, edited, live, Output, Pgbr};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn conf(p: &Pgbr, cell: &str) -> String {
    live(p, cell, "pgbackrest.conf")
}

fn apply(p: &Pgbr, topo: &Path) -> Output {
    p.run(&["apply", topo.to_str().unwrap(), "--yes"])
}

fn generation_count(p: &Pgbr) -> usize {
    let gens = p.run(&["generations", "--json"]).expect_code(0);
    let list: serde_json::Value = serde_json::from_str(&gens.stdout).unwrap();
    list.as_array().unwrap().len()
}

fn plan_then_apply_deploys_every_cell(p: Pgbr) {
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();

    let out = p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stdout
            .contains("Plan: 3 to create, 0 to update, 0 unchanged; 4 certificate(s) to issue."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("CA: create (ecdsa-p256, valid 3650 days)"),
        "{}",
        out.stdout
    );
    apply(&p, &topo).expect_code(0);
    for cell in ["zone1", "zone2", "zone3"] {
        assert_eq!(current(&p, cell), "generations/1");
        let key = deploy_dir(&p, cell).join("current/tls/server.key");
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let rendered = p.run(&["render", t, "--cell", cell]).expect_code(0).stdout;
        assert_eq!(
            conf(&p, cell),
            rendered,
            "deployed config is the rendered one"
        );
    }
}

/// The plan of three applied cells with nothing to do.
const NO_CHANGES: &str = "\
Plan for `[TMP]/topo.toml`

  CA: keep serial [HEX] (expires [TIME], in [DAYS] days)
  leaf zone1: keep serial [HEX] (expires [TIME], in [DAYS] days)
  leaf zone2: keep serial [HEX] (expires [TIME], in [DAYS] days)
  leaf zone3: keep serial [HEX] (expires [TIME], in [DAYS] days)

= zone1: unchanged (full)
= zone2: unchanged (full)
= zone3: unchanged (full)

No changes. 3 cell(s) up to date.
";

fn a_second_apply_changes_nothing(p: Pgbr) {
    applied(&p);
    p.test()
        .args(&["plan", "{topo}", "--detailed-exitcode"])
        .stdout(NO_CHANGES)
        .stderr("")
        .status(0)
        .run();
    p.test()
        .args(&["apply", "{topo}", "--yes"])
        .stdout(NO_CHANGES)
        .stderr("")
        .status(0)
        .run();
    assert_eq!(
        generation_count(&p),
        1,
        "a no-op apply creates no generation"
    );
}

fn rollback_to_a_generation_the_store_lacks_names_the_kept_ones(p: Pgbr) {
    applied(&p);
    p.test()
        .args(&["rollback", "--to", "9", "--yes"])
        .stdout("")
        .stderr(
            "error: failed to roll back to generation 9: the store does not have it\n\
             hint: kept generations: 1 (gc may have removed older ones)\n",
        )
        .status(1)
        .run();
    p.test()
        .args(&["gc", "--keep", "1", "--dry-run"])
        .stdout(
            "gc would remove 0 generation(s)\n\
             gc would remove 0 generation dir(s) (0 bytes) and 0 store object(s) (0 bytes); kept generations: 1\n",
        )
        .run();
}

fn an_edit_changes_every_config_and_no_certificate(p: Pgbr) {
    applied(&p);
    let cert1 = live(&p, "zone1", "tls/server.crt");
    // Edit zone2's port: every config changes (peers list it), no certificate does.
    let topo = three_cells(&p, 5440, "");
    let t = topo.to_str().unwrap();
    let out = p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(out.stdout.contains("-pg1-port=5433"), "{}", out.stdout);
    assert!(out.stdout.contains("+pg1-port=5440"), "{}", out.stdout);
    assert!(
        out.stdout.contains("0 certificate(s) to issue"),
        "{}",
        out.stdout
    );
    apply(&p, &topo).expect_code(0);
    assert_eq!(current(&p, "zone2"), "generations/2");
    assert!(conf(&p, "zone2").contains("pg1-port=5440"));
    assert_eq!(
        live(&p, "zone1", "tls/server.crt"),
        cert1,
        "re-rendering never changes certificates"
    );
    assert_eq!(generation_count(&p), 2);
}

fn rollback_deploys_the_old_bytes_as_a_new_generation(p: Pgbr) {
    let gen1_zone2 = {
        applied(&p);
        conf(&p, "zone2")
    };
    let topo = three_cells(&p, 5440, "");
    apply(&p, &topo).expect_code(0);

    // Rollback to 1: zone2 gets generation 1's exact bytes, as generation 3.
    let dry = p.run(&["rollback", "--dry-run"]).expect_code(0);
    assert!(
        dry.stdout.contains("-pg1-port=5440") && dry.stdout.contains("+pg1-port=5433"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        current(&p, "zone2"),
        "generations/2",
        "dry run changes nothing"
    );
    let out = p.run(&["rollback", "--yes"]).expect_code(0);
    assert!(out.stdout.contains("Rollback complete"), "{}", out.stdout);
    assert_eq!(current(&p, "zone2"), "generations/3");
    assert_eq!(conf(&p, "zone2"), gen1_zone2);
}

fn gc_keeps_the_live_generation(p: Pgbr) {
    edited(&p);
    p.run(&["rollback", "--yes"]).expect_code(0);
    let gen1_zone2 = conf(&p, "zone2");

    // gc with --keep 1 keeps the live generation 3 and drops 1 and 2.
    let dry = p.run(&["gc", "--keep", "1", "--dry-run"]).expect_code(0);
    assert!(
        dry.stdout.contains("would remove 2 generation(s): 1, 2"),
        "{}",
        dry.stdout
    );
    assert!(deploy_dir(&p, "zone2").join("generations/1").exists());
    p.run(&["gc", "--keep", "1"]).expect_code(0);
    assert!(!deploy_dir(&p, "zone2").join("generations/1").exists());
    assert!(!deploy_dir(&p, "zone2").join("generations/2").exists());
    assert_eq!(conf(&p, "zone2"), gen1_zone2);
}

fn drift_is_reported_and_repaired(p: Pgbr) {
    let topo = edited(&p);
    let t = topo.to_str().unwrap();
    p.run(&["rollback", "--yes"]).expect_code(0);

    // Drift: a hand edit is reported by plan and status, and apply repairs it.
    let live = deploy_dir(&p, "zone3").join("current/pgbackrest.conf");
    let before = fs::read_to_string(&live).unwrap();
    fs::write(&live, format!("{before}start-fast=n\n")).unwrap();
    let out = p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stdout.contains("drift: `pgbackrest.conf` was modified"),
        "{}",
        out.stdout
    );
    let st = p.run(&["status", t]).expect_code(2);
    assert!(
        st.stdout.contains("`pgbackrest.conf` was modified"),
        "{}",
        st.stdout
    );
    // apply repairs the edit and converges to the topology (which still
    // says 5440: the rollback returned to old bytes, not to an old topology).
    apply(&p, &topo).expect_code(0);
    let rendered = p
        .run(&["render", t, "--cell", "zone3"])
        .expect_code(0)
        .stdout;
    assert_eq!(fs::read_to_string(&live).unwrap(), rendered);
    assert!(!rendered.contains("start-fast=n"));
    let st = p.run(&["status", t]).expect_code(0);
    assert!(!st.stdout.contains("was modified"), "{}", st.stdout);
}

fn bootstrap_then_full(p: Pgbr) {
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    let out = p
        .run(&["apply", t, "--bootstrap", "zone1", "--yes"])
        .expect_code(0);
    assert!(out.stdout.contains("create (bootstrap)"), "{}", out.stdout);
    let c = conf(&p, "zone1");
    assert!(c.contains("pg1-path=/zone1/pg_data"));
    assert!(!c.contains("pg2-"), "bootstrap config has no peers:\n{c}");
    assert!(!deploy_dir(&p, "zone2").exists(), "other cells untouched");

    let out = p.run(&["plan", t]).expect_code(0);
    assert!(
        out.stdout
            .contains("zone1: update generation 1 (bootstrap -> full)"),
        "{}",
        out.stdout
    );
    apply(&p, &topo).expect_code(0);
    let c = conf(&p, "zone1");
    assert!(
        c.contains("pg2-host=localhost") && c.contains("pg3-host=localhost"),
        "{c}"
    );
    let gens: serde_json::Value =
        serde_json::from_str(&p.run(&["generations", "--json"]).expect_code(0).stdout).unwrap();
    assert_eq!(gens[0]["cells"]["zone1"]["phase"], "bootstrap");
    assert_eq!(gens[1]["cells"]["zone1"]["phase"], "full");
    assert_eq!(gens[1]["cells"]["zone2"]["phase"], "full");
}

fn unchanged_cells_are_not_touched(p: Pgbr) {
    let log = p.path().join("activations.log");
    let hook = format!(
        "activate = \"echo $PGBR_CELL $PGBR_PREVIOUS_GENERATION $PGBR_GENERATION >> {}\"",
        log.display()
    );
    let topo = three_cells(&p, 5433, &hook);
    let t = topo.to_str().unwrap();
    apply(&p, &topo).expect_code(0);
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "zone1 1\nzone2 1\nzone3 1\n"
    );
    // Only zone1's leaf is re-issued: only zone1 moves.
    p.run(&["rotate", t, "--cells", "zone1", "--yes"])
        .expect_code(0);
    assert_eq!(current(&p, "zone1"), "generations/2");
    assert_eq!(current(&p, "zone2"), "generations/1");
    assert!(!deploy_dir(&p, "zone2").join("generations/2").exists());
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "zone1 1\nzone2 1\nzone3 1\nzone1 1 2\n"
    );
}

fn failing_activation_reverts_the_cell_and_stops(p: Pgbr) {
    // Activation of generation 2 fails on zone2 only; its revert (back to 1) works.
    let hook = "activate = \"test $PGBR_CELL$PGBR_GENERATION != zone22 || { echo boom; exit 3; }\"";
    let topo = three_cells(&p, 5433, hook);
    let t = topo.to_str().unwrap();
    apply(&p, &topo).expect_code(0);
    let topo = three_cells(&p, 5440, hook);
    let out = apply(&p, &topo).expect_code(5);
    assert!(out.stderr.contains("activate cell `zone2`: activate failed, the cell is back on generation 1; not started: zone3"), "{}", out.stderr);
    assert!(out.stderr.contains("boom"), "{}", out.stderr);
    assert_eq!(current(&p, "zone1"), "generations/2");
    assert_eq!(current(&p, "zone2"), "generations/1");
    assert_eq!(current(&p, "zone3"), "generations/1");
    // The next apply resumes with the cells still behind (as generation 3).
    let out = p.run(&["plan", t]).expect_code(0);
    assert!(out.stdout.contains("= zone1: unchanged"), "{}", out.stdout);
    apply(&p, &topo).expect_code(0);
    assert!(conf(&p, "zone2").contains("pg1-port=5440"));
    assert!(
        conf(&p, "zone3").contains("pg3-port=5440") || conf(&p, "zone3").contains("pg2-port=5440")
    );
}

fn concurrent_applies_one_wins(p: Pgbr) {
    let topo = three_cells(&p, 5433, "activate = \"sleep 0.3\"");
    let t = topo.to_str().unwrap().to_owned();
    let state = p.state_arg();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pgbr"))
            .arg("--state")
            .arg(&state)
            .args(["apply", &t, "--yes"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap(), b.join().unwrap())
    });
    let codes = [a.status.code(), b.status.code()];
    let ok = codes.iter().filter(|c| **c == Some(0)).count();
    let locked: Vec<_> = [&a, &b]
        .into_iter()
        .filter(|o| o.status.code() == Some(3))
        .collect();
    // Either one wins and the other is locked out, or they ran one after the other.
    assert!(ok == 2 || (ok == 1 && locked.len() == 1), "{codes:?}");
    for o in locked {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("state is locked"), "{err}");
    }
    let gens: serde_json::Value =
        serde_json::from_str(&p.run(&["generations", "--json"]).expect_code(0).stdout).unwrap();
    assert_eq!(gens.as_array().unwrap().len(), 1);
    p.run(&["plan", topo.to_str().unwrap(), "--detailed-exitcode"])
        .expect_code(0);
}

fn saved_plan_applies_once_and_goes_stale(p: Pgbr) {
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    let plan_file = p.path().join("plan.out");
    let pf = plan_file.to_str().unwrap();
    p.run(&["plan", t, "--out", pf]).expect_code(0);
    let text = fs::read_to_string(&plan_file).unwrap();
    assert!(text.starts_with("# pgbr plan v1\n"));
    assert!(!text.contains("PRIVATE KEY"));
    p.run(&["apply", pf]).expect_code(0);
    let out = p.run(&["apply", pf]).expect_code(4);
    assert!(
        out.stderr
            .contains("plan is stale (it was applied already)"),
        "{}",
        out.stderr
    );

    // A plan made, then the store changes under it: stale.
    three_cells(&p, 5440, "");
    p.run(&["plan", t, "--out", pf]).expect_code(0);
    three_cells(&p, 5441, "");
    let out = p.run(&["apply", pf]).expect_code(4);
    assert!(out.stderr.contains("the topology"), "{}", out.stderr);
}

#[test]
fn apply_without_terminal_needs_yes() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let out = p.run(&["apply", topo.to_str().unwrap()]).expect_code(1);
    assert!(
        out.stderr.contains("no terminal to confirm on"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: pass `--yes`"), "{}", out.stderr);
    assert!(!deploy_dir(&p, "zone1").exists());
}

#[test]
fn config_link_points_at_the_live_config() {
    let p = Pgbr::new();
    let links = p.path().join("etc");
    let topo = three_cells(
        &p,
        5433,
        &format!("config_link = \"{}/{{cell}}.conf\"", links.display()),
    );
    apply(&p, &topo).expect_code(0);
    for cell in ["zone1", "zone2", "zone3"] {
        let link = links.join(format!("{cell}.conf"));
        assert_eq!(
            fs::read_link(&link).unwrap(),
            deploy_dir(&p, cell).join("current/pgbackrest.conf")
        );
        assert_eq!(fs::read_to_string(&link).unwrap(), conf(&p, cell));
    }
    // A regular file where a link should go is not overwritten.
    fs::remove_file(links.join("zone2.conf")).unwrap();
    fs::write(links.join("zone2.conf"), "mine").unwrap();
    let out = apply(
        &p,
        &three_cells(
            &p,
            5440,
            &format!("config_link = \"{}/{{cell}}.conf\"", links.display()),
        ),
    )
    .expect_code(1);
    assert!(
        out.stderr
            .contains("`config_link` names an existing file that is not a symlink"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fs::read_to_string(links.join("zone2.conf")).unwrap(),
        "mine"
    );
    // zone1 went ahead; zone2 was refused before its flip; zone3 not started.
    assert_eq!(current(&p, "zone1"), "generations/2");
    assert_eq!(current(&p, "zone2"), "generations/1");
    assert_eq!(current(&p, "zone3"), "generations/1");
}

/// Errors an operator can cause in the commands: each says what failed,
/// where, and what to do.
#[test]
fn command_errors_say_what_and_what_to_do() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["plan", t, "--now", "yesterday"],
            "error: failed to parse `--now yesterday`\ncaused by: the 'year' component could not be parsed\nhint: give an RFC 3339 time such as `2027-06-01T00:00:00Z`\n",
        ),
        (
            &["plan", t, "--cells", "zone9"],
            "error: failed to select cell `zone9`: no such cell in the topology\nhint: the cells are: zone1, zone2, zone3\n",
        ),
        (
            &["apply", t, "--bootstrap", "zone1", "--cells", "zone2", "--yes"],
            "error: failed to combine `--bootstrap` with `--cells`\nhint: `--bootstrap C` deploys only C; drop `--cells`\n",
        ),
        (
            &["rollback", "--yes"],
            "error: failed to roll back: there are no generations yet\nhint: run `pgbr apply` first\n",
        ),
        (
            &["rotate", t, "--ca", "--yes"],
            "error: failed to rotate the CA: there is no CA yet\nhint: `pgbr apply` creates it\n",
        ),
        (
            &["apply", "missing.toml", "--yes"],
            "error: failed to read `missing.toml`\ncaused by: No such file or directory (os error 2)\nhint: give a topology module, or a plan saved by `pgbr plan --out PLAN`\n",
        ),
    ];
    for (args, stderr) in cases {
        let out = p.run(args).expect_code(1);
        assert_eq!(out.stderr, *stderr, "pgbr {args:?}");
    }
    apply(&p, &topo).expect_code(0);
    let after: &[(&[&str], &str)] = &[
        (
            &["rollback", "--yes"],
            "error: failed to roll back: generation 1 has no earlier generation\nhint: name one with `--to N`; `pgbr generations` lists them\n",
        ),
        (
            &["rollback", "--to", "7", "--yes"],
            "error: failed to roll back to generation 7: the store does not have it\nhint: kept generations: 1 (gc may have removed older ones)\n",
        ),
        (
            &["rotate", t, "--ca", "--cells", "zone1", "--yes"],
            "error: failed to rotate the CA for some cells only\nhint: a CA rotation covers every cell: drop `--cells`\n",
        ),
    ];
    for (args, stderr) in after {
        let out = p.run(args).expect_code(1);
        assert_eq!(out.stderr, *stderr, "pgbr {args:?}");
    }
}

/// Without `owner`, an unprivileged operator owns what pgbr creates: it
/// must not try to hand files to the owner of a parent such as `/tmp`.
/// Runs pgbr as `nobody` (needs root to switch; says so and skips otherwise).
#[test]
fn an_unprivileged_user_applies_into_a_shared_tmp_dir() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching to `nobody` needs root");
        return;
    }
    let p = Pgbr::new();
    // A world-writable sticky dir owned by root, like /tmp.
    let shared = p.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(p.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let topo = p.write(
        "shared/topo.toml",
        &format!(
            "stanza = \"s\"\n[repo]\npath = \"/r\"\nretention_full = 1\n[tls]\nserver_port_base = 18432\n\
             server_address = \"127.0.0.1\"\n[cells.zone1]\nhost = \"localhost\"\npg_path = \"/p\"\n\
             deploy_dir = \"{}/demo/zone1\"\n",
            shared.display()
        ),
    );
    fs::set_permissions(&topo, fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_pgbr"), "--state"])
        .arg(shared.join("state"))
        .args(["apply", topo.to_str().unwrap(), "--yes"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    use std::os::unix::fs::MetadataExt;
    for rel in ["demo/zone1", "demo/zone1/current/tls/server.key", "state"] {
        let m = fs::metadata(shared.join(rel)).unwrap();
        assert_eq!(m.uid(), nobody, "{rel} owned by nobody");
    }
}

crate::harness::on_both_backends!(
    plan_then_apply_deploys_every_cell,
    a_second_apply_changes_nothing,
    rollback_to_a_generation_the_store_lacks_names_the_kept_ones,
    an_edit_changes_every_config_and_no_certificate,
    rollback_deploys_the_old_bytes_as_a_new_generation,
    gc_keeps_the_live_generation,
    drift_is_reported_and_repaired,
    bootstrap_then_full,
    unchanged_cells_are_not_touched,
    failing_activation_reverts_the_cell_and_stops,
    concurrent_applies_one_wins,
    saved_plan_applies_once_and_goes_stale,
);
