//! The `target` key and `[ssh]` table: validated, recorded, and an SSH
//! target that cannot be reached is refused before anything is written
//! (the real hosts are in `remote_ssh.rs`).

use crate::harness::{two_cells, Pgbr};

#[test]
fn an_unreachable_ssh_target_is_refused_before_anything_is_written() {
    let p = Pgbr::new();
    // Nothing listens on port 1 here: refused at once, no traffic leaves.
    let topo = two_cells(
        &p,
        "host = \"127.0.0.1\"\ntarget = \"ssh://root@{host}:1\"",
        "[ssh]\noptions = [\"ConnectTimeout=1\"]",
    );
    let topo = topo.to_str().unwrap();
    p.run(&["check", topo]).expect_code(0);
    let out = p.run(&["apply", topo, "--yes"]).expect_code(1);
    for words in [
        "error: failed to observe 2 cell(s): a: reach `ssh://root@127.0.0.1:1`",
        "ssh: connect to host 127.0.0.1 port 1: Connection refused",
        "hint: nothing was changed",
    ] {
        assert!(out.stderr.contains(words), "no `{words}`:\n{}", out.stderr);
    }
    assert!(!p.path().join("a").exists());
    p.run(&["generations"]).expect_code(0);
}
