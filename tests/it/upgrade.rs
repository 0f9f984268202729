//! Stores written by an older pgbr still open: the format-1 fixture (before
//! manifests recorded each cell's target) is read, rolled back, collected
//! and extended by today's pgbr.

use crate::harness::{two_cells, Pgbr};
use std::process::Command;

/// A scratch dir whose `state` is the format-1 fixture.
fn old_store() -> Pgbr {
    let p = Pgbr::new();
    let fixture = crate::harness::repo_root().join("tests/it/fixtures/store-v1.tar.gz");
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(p.path())
        .arg("state")
        .status()
        .expect("run tar");
    assert!(status.success(), "unpack {}", fixture.display());
    p
}

#[test]
fn a_format_1_store_opens_and_grows() {
    let p = old_store();
    let out = p.run(&["generations", "--json"]).expect_code(0);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let numbers: Vec<u64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(rows[1]["cause"], "rotation");
    assert_eq!(rows[1]["cells"]["a"]["dir_generation"], 2);

    let out = p
        .run(&["rollback", "--to", "1", "--dry-run", "--force"])
        .expect_code(0);
    assert!(
        out.stdout.contains("Rollback to generation 1"),
        "{}",
        out.stdout
    );
    p.run(&["gc", "--keep", "1", "--dry-run"]).expect_code(0);

    // A new generation is written in today's format next to the old ones.
    let topo = two_cells(
        &p,
        "host = \"localhost\"",
        "[tls]\nserver_port_base = 18432",
    );
    let topo = topo.to_str().unwrap();
    p.run(&["apply", topo, "--yes"]).expect_code(0);
    let out = p.run(&["generations", "--json"]).expect_code(0);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    assert_eq!(rows[2]["live_on"], serde_json::json!(["a", "b"]));
    p.run(&["gc", "--keep", "1"]).expect_code(0);
    p.run(&["plan", topo, "--detailed-exitcode"]).expect_code(0);
}
