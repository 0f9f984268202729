//! The `target` key and `[ssh]` table: validated, recorded, and (until the
//! SSH target lands) refused clearly before anything is written.

use crate::harness::{two_cells, Pgbr};

#[test]
fn an_ssh_target_is_refused_before_anything_is_written() {
    let p = Pgbr::new();
    let topo = two_cells(
        &p,
        "host = \"10.0.0.{index}\"\ntarget = \"ssh://root@{host}\"",
        "[ssh]\noptions = [\"ConnectTimeout=1\"]",
    );
    let topo = topo.to_str().unwrap();
    p.run(&["check", topo]).expect_code(0);
    let out = p.run(&["apply", topo, "--yes"]).expect_code(1);
    assert!(
        out.stderr
            .contains("error: failed to deploy to `ssh://root@10.0.0.0`: this pgbr cannot deploy to `root@10.0.0.0` over SSH"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: set `target = \"local\"`"),
        "{}",
        out.stderr
    );
    assert!(!p.path().join("a").exists());
    p.run(&["generations"]).expect_code(0);
}
