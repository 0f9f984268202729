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
    // Each cell named once (by the line, not again by the target's error),
    // with its address, ssh's words and what to do about that failure.
    let reach = "reach `ssh://root@127.0.0.1:1`: \
                 ssh: connect to host 127.0.0.1 port 1: Connection refused";
    p.test()
        .args(&["apply", "{topo}", "--yes"])
        .stderr(&format!(
            "\
error: failed to observe 2 cell(s): a: {reach}; b: {reach}
hint: nothing was changed; check that the host is up and its sshd reachable (`ssh` to it by \
hand shows the same); then run again (`plan` and `apply` leave cells out with `--cells`)
"
        ))
        .status(1)
        .run();
    let out = p.run(&["plan", topo]).expect_code(1);
    assert!(
        out.stdout
            .contains(&format!("\n! a: unreachable, not planned: {reach}\n")),
        "{}",
        out.stdout
    );
    assert!(!p.path().join("a").exists());
    p.run(&["generations"]).expect_code(0);
}

/// `pgbr-agent` answers `--build-id` with this build's id (what pgbr asks
/// before it copies it to a host), `--version` of both binaries names it,
/// and anything else `pgbr-agent` is given by hand gets its usage and
/// exit 64, without serving.
#[test]
fn pgbr_agent_names_its_build_and_refuses_other_arguments() {
    let agent = env!("CARGO_BIN_EXE_pgbr-agent");
    let out = std::process::Command::new(agent)
        .arg("--build-id")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        pgbr::apply::target::agent::BUILD_ID
    );
    // `--version` of both binaries names the build.
    let build = format!("(build {})\n", pgbr::apply::target::agent::BUILD_ID);
    for (bin, name) in [(agent, "pgbr-agent"), (env!("CARGO_BIN_EXE_pgbr"), "pgbr")] {
        let out = std::process::Command::new(bin)
            .arg("--version")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said == format!("{name} {} {build}", env!("CARGO_PKG_VERSION")),
            "{out:?}"
        );
    }
    let out = std::process::Command::new(agent)
        .args(["agent", "--yes"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("usage: pgbr-agent [--build-id | --version]")
            && stderr.contains("not meant to be run by hand"),
        "{stderr}"
    );
}
