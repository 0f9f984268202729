//! A fleet worked on several cells at once (issue 10): a cell whose deploy
//! dir cannot be observed fails only that cell's part of `plan`/`status`
//! (listed, exit 1) and stops `apply` before anything changes; `apply`
//! ends with which cells were deployed, reverted, not started, unchanged.

use crate::harness::{current, deploy_dir, three_cells, Pgbr};
use std::fs;

/// zone2's deploy dir becomes a path through a regular file: even root
/// cannot read it (`ENOTDIR`). Returns the undo.
fn cut_off_zone2(p: &Pgbr) -> impl FnOnce() + '_ {
    let cell = p.path().join("cells/zone2");
    let away = p.path().join("cells/zone2.away");
    fs::rename(&cell, &away).unwrap();
    fs::write(&cell, "not a directory\n").unwrap();
    move || {
        fs::remove_file(&cell).unwrap();
        fs::rename(&away, &cell).unwrap();
    }
}

const UNREACHABLE: &str = "inspect `[TMP]/cells/zone2/pgbackrest`: Not a directory (os error 20)";

#[test]
fn an_unreadable_deploy_dir_fails_only_its_cell() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let restore = cut_off_zone2(&p);

    p.test()
        .args(&["plan", "{topo}", "--detailed-exitcode"])
        .stdout(&format!(
            "\
Plan for `[TMP]/topo.toml`

  CA: keep serial [HEX] (expires [TIME], in [DAYS] days)
  leaf zone1: keep serial [HEX] (expires [TIME], in [DAYS] days)
  leaf zone2: keep serial [HEX] (expires [TIME], in [DAYS] days)
  leaf zone3: keep serial [HEX] (expires [TIME], in [DAYS] days)

= zone1: unchanged (full)
! zone2: unreachable, not planned: {UNREACHABLE}
= zone3: unchanged (full)

No changes. 2 cell(s) up to date; 1 cell(s) unreachable, not planned.
"
        ))
        .stderr(&format!(
            "\
error: failed to observe 1 cell(s): zone2: {UNREACHABLE}
hint: nothing was changed; fix what keeps pgbr from reading those deploy dirs and run again (`plan` and `apply` leave cells out with `--cells`)
"
        ))
        .status(1)
        .run();
    // A plan of unseen cells is not saved.
    let saved = p.path().join("saved.plan");
    let s = saved.to_str().unwrap();
    p.run(&["plan", t, "--out", s]).expect_code(1);
    assert!(!saved.exists());
    let json = p.run(&["plan", t, "--json"]).expect_code(1);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(plan["cells"][1]["action"], "unreachable");
    assert_eq!(plan["summary"]["unreachable"], 1);
    assert!(plan["cells"][1]["unreachable"]
        .as_str()
        .unwrap()
        .contains("Not a directory"));
    assert!(plan["cells"][0]["unreachable"].is_null());

    // status lists it in the same words, and exits 1.
    let out = p.run(&["status", t]).expect_code(1);
    let row = out.stdout.lines().find(|l| l.starts_with("zone2")).unwrap();
    assert!(
        row.contains("unreachable") && row.contains("Not a directory"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.lines().any(|l| l.starts_with("zone3")));
    let out = p.run(&["status", t, "--json"]).expect_code(1);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(rows[1]["unreachable"]
        .as_str()
        .unwrap()
        .contains("Not a directory"));
    assert!(rows[1]["live_generation"].is_null(), "not shown as found");
    assert_eq!(rows[2]["live_generation"], 1);

    // An edit touches every cell; apply changes none while one is unseen.
    three_cells(&p, 5440, "");
    let out = p.run(&["apply", t, "--yes"]).expect_code(1);
    assert!(
        out.stdout
            .ends_with("Cells: 2 not started (zone1, zone3), 1 unreachable (zone2).\n"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("failed to observe 1 cell(s): zone2"));
    assert_eq!(current(&p, "zone1"), "generations/1");
    assert_eq!(current(&p, "zone3"), "generations/1");
    let gens = p.run(&["generations", "--json"]).expect_code(0);
    let gens: serde_json::Value = serde_json::from_str(&gens.stdout).unwrap();
    assert_eq!(gens.as_array().unwrap().len(), 1, "no generation built");

    // `--cells` leaves it out: the others are planned and applied, and
    // zone2 keeps its recorded entry in the new generation.
    p.run(&["plan", t, "--cells", "zone1,zone3"]).expect_code(0);
    let out = p
        .run(&["apply", t, "--cells", "zone1,zone3", "--yes"])
        .expect_code(0);
    assert!(
        out.stdout
            .ends_with("Cells: 2 deployed (zone1, zone3), 1 left out (zone2).\n"),
        "{}",
        out.stdout
    );
    assert_eq!(current(&p, "zone1"), "generations/2");
    restore();
    assert_eq!(current(&p, "zone2"), "generations/1");
    let out = p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stdout.contains("~ zone2: update generation 1 (full)")
            && out.stdout.contains("= zone1: unchanged"),
        "{}",
        out.stdout
    );
    p.run(&["apply", t, "--yes"]).expect_code(0);
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
    assert!(deploy_dir(&p, "zone2").join("generations/3").exists());
}

/// Cells on this machine (`{root}`, see [`write_topo`]) with `defaults`
/// added to `[defaults]`, then `cells`.
fn local_cells(defaults: &str, cells: &str) -> String {
    format!(
        r#"
stanza = "multigres"

[repo]
path = "/backup/repo"
retention_full = 7

[tls]
server_port_base = 18432
server_address = "127.0.0.1"

[defaults]
host = "localhost"
pg_path = "/{{cell}}/pg_data"
pg_socket_path = "/{{cell}}/pg_sockets"
deploy_dir = "{{root}}/cells/{{cell}}/pgbackrest"
{defaults}
{cells}"#
    )
}

/// Four cells with `activate` set per cell.
fn four_cells(zone1: &str, zone2: &str, zone3: &str) -> String {
    local_cells(
        "",
        &format!(
            r#"
[cells.zone1]
pg_port = 5432
activate = "{zone1}"

[cells.zone2]
pg_port = 5433
activate = "{zone2}"

[cells.zone3]
pg_port = 5434
activate = "{zone3}"

[cells.zone4]
pg_port = 5435
activate = "true"
"#
        ),
    )
}

const KEEP: &str = "  CA: keep serial [HEX] (expires [TIME], in [DAYS] days)
  leaf zone1: keep serial [HEX] (expires [TIME], in [DAYS] days)
  leaf zone2: keep serial [HEX] (expires [TIME], in [DAYS] days)
  leaf zone3: keep serial [HEX] (expires [TIME], in [DAYS] days)
  leaf zone4: keep serial [HEX] (expires [TIME], in [DAYS] days)
";

/// The last line of `apply` says what became of every cell, and the plain
/// progress lines come in the rolling order, whatever order the
/// generation dirs were written in.
#[test]
fn apply_ends_with_what_became_of_each_cell() {
    let p = Pgbr::new();
    p.test()
        .topology(&four_cells("true", "true", "true"))
        .args(&["apply", "{topo}", "--yes"])
        .run();
    p.test()
        .topology(&four_cells("true; true", "test $PGBR_GENERATION != 2", "true; true"))
        .args(&["apply", "{topo}", "--yes"])
        .stdout(&format!(
            "\
Plan for `[TMP]/topo.toml`

{KEEP}
~ zone1: update generation 1 (full)
    ~ settings: activate (same files, re-activated)
~ zone2: update generation 1 (full)
    ~ settings: activate (same files, re-activated)
~ zone3: update generation 1 (full)
    ~ settings: activate (same files, re-activated)
= zone4: unchanged (full)

Plan: 0 to create, 3 to update, 1 unchanged; 0 certificate(s) to issue.
Cells: 1 deployed (zone1), 1 reverted (zone2), 1 not started (zone3), 1 unchanged (zone4).
"
        ))
        .stderr(
            "\
generation 2: 3 cell(s)
zone1: write
zone1: flip
zone1: activate
zone1: generation 2 live
zone2: write
zone2: flip
zone2: activate
zone2: revert
error: failed to activate cell `zone2`: activate failed, the cell is back on generation 1; not started: zone3
`activate` exited with status 1
(the whole output is in `[TMP]/cells/zone2/pgbackrest/log/pgbr-activate.log`)
hint: fix the activate problem, then run `pgbr apply` again to resume (deployed so far: zone1)
",
        )
        .status(5)
        .run();
    assert_eq!(current(&p, "zone3"), "generations/1", "not started");
    p.test()
        .topology(&four_cells("true; true", "true; true", "true; true"))
        .args(&["apply", "{topo}", "--yes"])
        .stdout(&format!(
            "\
Plan for `[TMP]/topo.toml`

{KEEP}
= zone1: unchanged (full)
~ zone2: update generation 1 (full)
    ~ settings: activate (same files, re-activated)
~ zone3: update generation 1 (full)
    ~ settings: activate (same files, re-activated)
= zone4: unchanged (full)

Plan: 0 to create, 2 to update, 2 unchanged; 0 certificate(s) to issue.
Apply complete: generation 3 (2 cell(s) deployed: zone2, zone3).
Cells: 2 deployed (zone2, zone3), 2 unchanged (zone1, zone4).
"
        ))
        .stderr(
            "\
generation 3: 2 cell(s)
zone2: write
zone2: flip
zone2: activate
zone2: generation 3 live
zone3: write
zone3: flip
zone3: activate
zone3: generation 3 live
",
        )
        .run();
}

/// `apply --json` and `rollback --json`: stdout holds one JSON document
/// (what became of each cell, why the run stopped), the text for people
/// goes to stderr; `rollback` ends with the same `Cells:` line as `apply`.
#[test]
fn apply_and_rollback_say_what_became_of_each_cell_in_json() {
    let p = Pgbr::new();
    let topo = write_topo(&p, &four_cells("true", "true", "true"));
    let t = topo.to_str().unwrap();
    let out = p.run(&["apply", t, "--yes", "--json"]).expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["command"], "apply");
    assert_eq!(doc["generation"], 1);
    assert_eq!(doc["exit_code"], 0);
    assert!(doc["error"].is_null() && doc["rollback_to"].is_null());
    assert_eq!(doc["summary"]["deployed"], 4);
    assert_eq!(doc["cells"][0]["cell"], "zone1");
    assert_eq!(doc["cells"][0]["outcome"], "deployed");
    assert!(out.stderr.contains("Plan for `"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Cells: 4 deployed (zone1, zone2, zone3, zone4).\n"),
        "{}",
        out.stderr
    );

    // zone2's activate fails: reverted, zone3 not started, zone4 left out.
    // (retention: new files, so that a rollback has something to return.)
    write_topo(
        &p,
        &four_cells("true; true", "test $PGBR_GENERATION != 2", "true; true")
            .replace("retention_full = 7", "retention_full = 8"),
    );
    let out = p
        .run(&[
            "apply",
            t,
            "--yes",
            "--json",
            "--cells",
            "zone1,zone2,zone3",
        ])
        .expect_code(5);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let outcome = |i: usize| doc["cells"][i]["outcome"].as_str().unwrap().to_owned();
    assert_eq!(
        (0..4).map(outcome).collect::<Vec<_>>(),
        ["deployed", "reverted", "not_started", "left_out"]
    );
    assert_eq!(doc["generation"], 2);
    assert_eq!(doc["exit_code"], 5);
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.starts_with("error: failed to activate cell `zone2`") && error.contains("hint: "),
        "{error}"
    );
    let why = doc["cells"][1]["error"].as_str().unwrap();
    assert!(why.contains("`activate` exited with status 1"), "{why}");
    assert!(doc["cells"][0]["error"].is_null());
    assert_eq!(doc["summary"]["reverted"], 1);
    assert_eq!(doc["summary"]["left_out"], 1);
    assert!(
        out.stderr.contains(
            "Cells: 1 deployed (zone1), 1 reverted (zone2), 1 not started (zone3), 1 left out (zone4).\n"
        ),
        "{}",
        out.stderr
    );

    // rollback: the same line on stdout, the same document with --json.
    let out = p.run(&["rollback", "--yes"]).expect_code(0);
    assert!(
        out.stdout.ends_with(
            "Rollback complete: generation 3 holds generation 1's files (1 cell(s) deployed).\n\
             Cells: 1 deployed (zone1), 3 unchanged (zone2, zone3, zone4).\n"
        ),
        "{}",
        out.stdout
    );
    let out = p
        .run(&["rollback", "--to", "2", "--yes", "--json"])
        .expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["command"], "rollback");
    assert_eq!(doc["rollback_to"], 2);
    assert_eq!(doc["generation"], 4);
    assert_eq!(doc["summary"]["deployed"], 3);
    assert_eq!(doc["summary"]["unchanged"], 1);
    assert!(
        out.stderr.contains("Rollback to generation 2"),
        "{}",
        out.stderr
    );
    // An error before any cell is known is a document too.
    let out = p.run(&["rollback", "--to", "99", "--json"]).expect_code(1);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["cells"], serde_json::json!([]));
    assert!(doc["error"].as_str().unwrap().contains("generation 99"));
}

/// `rotate --json`, leaves and CA alike: the same document as `apply
/// --json` on stdout, the plan and the `Cells:` line on stderr.
#[test]
fn rotate_says_what_became_of_each_cell_in_json() {
    let p = Pgbr::new();
    let topo = write_topo(&p, &four_cells("true", "true", "true"));
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let out = p
        .run(&["rotate", t, "--cells", "zone2", "--yes", "--json"])
        .expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["command"], "rotate");
    assert_eq!(doc["generation"], 2);
    assert_eq!(doc["exit_code"], 0);
    let outcomes: Vec<&str> = (0..4)
        .map(|i| doc["cells"][i]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["left_out", "deployed", "left_out", "left_out"]);
    for words in ["Plan for `", "Cells: 1 deployed (zone2), 3 left out"] {
        assert!(out.stderr.contains(words), "no `{words}`:\n{}", out.stderr);
    }
    let out = p
        .run(&["rotate", t, "--ca", "--yes", "--json"])
        .expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["command"], "rotate");
    assert_eq!(doc["generation"], 3);
    assert_eq!(doc["summary"]["deployed"], 4);
    // An error is a document too.
    let out = p
        .run(&["rotate", t, "--ca", "--cells", "zone1", "--json"])
        .expect_code(1);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["cells"], serde_json::json!([]));
    assert!(doc["error"].as_str().unwrap().contains("drop `--cells`"));
}

/// A fleet too large to list: routine groups are counted, the cells that
/// need an operator are always named.
#[test]
fn a_large_fleet_summary_names_only_what_needs_attention() {
    let p = Pgbr::new();
    let cells: String = (1..=12)
        .map(|i| format!("[cells.c{i:02}]\npg_port = {}\n", 5500 + i))
        .collect();
    let topo = |activate: &str| local_cells(&format!("activate = \"{activate}\""), &cells);
    let path = write_topo(&p, &topo("true"));
    let t = path.to_str().unwrap();
    let out = p.run(&["apply", t, "--yes"]).expect_code(0);
    assert!(
        out.stdout.ends_with(
            "Apply complete: generation 1 (12 cell(s) deployed).\nCells: 12 deployed.\n"
        ),
        "{}",
        out.stdout
    );
    write_topo(&p, &topo("test $PGBR_CELL$PGBR_GENERATION != c102"));
    let out = p.run(&["apply", t, "--yes"]).expect_code(5);
    assert!(
        out.stdout
            .ends_with("Cells: 9 deployed, 1 reverted (c10), 2 not started (c11, c12).\n"),
        "{}",
        out.stdout
    );
}

/// A rollback to a generation without a cell leaves that cell as it is,
/// and its `Cells:` line says so.
#[test]
fn rollback_names_the_cells_it_leaves_alone() {
    let p = Pgbr::new();
    let four = four_cells("true", "true", "true");
    let t = write_topo(&p, &four);
    let t = t.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    write_topo(
        &p,
        &format!("{four}\n[cells.zone5]\npg_port = 5436\nactivate = \"true\"\n"),
    );
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let out = p.run(&["rollback", "--yes"]).expect_code(0);
    assert!(
        out.stdout
            .ends_with("Cells: 4 deployed (zone1, zone2, zone3, zone4), 1 left out (zone5).\n"),
        "{}",
        out.stdout
    );
    assert_eq!(current(&p, "zone5"), "generations/2");
}

/// Writes `topo.toml`, `{root}` being the scratch dir.
fn write_topo(p: &Pgbr, toml: &str) -> std::path::PathBuf {
    p.write(
        "topo.toml",
        &toml.replace("{root}", &p.path().display().to_string()),
    )
}
