//! A careless operator (issue 12, items 14, 15 and 22): an owner the
//! machine does not know, read-only commands where there is no state, and
//! an unprivileged user against root's store.

use crate::harness::{deploy_dir, three_cells, Pgbr};
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// An `owner` the machine does not know: `plan` shows it as a blocker of
/// that cell, and `apply` (with `--adopt` too) refuses before anything is
/// committed or written, naming the owner.
#[test]
fn an_unknown_owner_is_refused_before_anything_is_committed() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let mut text = fs::read_to_string(&topo).unwrap();
    text = text.replace(
        "[cells.zone2]\n",
        "[cells.zone2]\nowner = \"no-such-pgbr-user\"\n",
    );
    fs::write(&topo, text).unwrap();
    let t = topo.to_str().unwrap();
    p.run(&["check", t]).expect_code(0);
    let plan = p.run(&["plan", t]).expect_code(0);
    assert!(
        plan.stdout.contains(
            "resolve owner `no-such-pgbr-user`: there is no user `no-such-pgbr-user` on this machine"
        ),
        "{}",
        plan.stdout
    );
    for args in [
        &["apply", t, "--yes"][..],
        &["apply", t, "--yes", "--adopt"],
    ] {
        let out = p.run(args).expect_code(1);
        assert_eq!(
            out.stderr,
            "error: failed to deploy cell `zone2`\n\
             caused by: resolve owner `no-such-pgbr-user`: there is no user `no-such-pgbr-user` on this machine\n\
             hint: set `owner` to an existing `user` or `user:group`\n",
            "{args:?}"
        );
        let gens = p.run(&["generations", "--json"]).expect_code(0);
        assert_eq!(gens.stdout.trim(), "[]", "no generation committed");
        assert!(!deploy_dir(&p, "zone1").exists(), "nothing deployed");
    }
}

/// `generations`, `certs`, `status`, `gc`, `rollback`, `state unlock` and
/// `state copy` (its source) where no store
/// exists say so and create nothing; `plan` plans the first deployment without creating one.
#[test]
fn read_only_commands_create_no_store() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    let state = p.state().display().to_string();
    let dest = p.path().join("copy").display().to_string();
    let read_only: [&[&str]; 8] = [
        &["generations"],
        &["state", "unlock"],
        &["state", "copy", &state, &dest],
        &["certs"],
        &["status", t],
        &["gc", "--dry-run"],
        &["gc"],
        &["rollback", "--dry-run"],
    ];
    for args in read_only {
        let out = p.run(args).expect_code(1);
        assert!(
            out.stderr.starts_with(&format!(
                "error: failed to read state `{state}`: there is no state there\nhint: "
            )),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("`--state DIR`"), "{}", out.stderr);
        assert!(!p.state().exists(), "{args:?} created the store");
        assert!(!p.path().join("copy").exists(), "{args:?} created a store");
    }
    let plan = p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(plan.stdout.contains("+ zone1"), "{}", plan.stdout);
    assert!(!p.state().exists(), "plan created the store");
    let saved = p.path().join("first.plan");
    p.run(&["plan", t, "--out", saved.to_str().unwrap()])
        .expect_code(0);
    assert!(!p.state().exists());
    p.run(&["apply", saved.to_str().unwrap(), "--yes"])
        .expect_code(0);
    p.run(&["generations"]).expect_code(0);
}

/// Runs `pgbr --state STATE ARGS` as `nobody`.
fn as_nobody(state: &std::path::Path, args: &[&str]) -> crate::harness::Output {
    let out = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", env!("CARGO_BIN_EXE_pgbr"), "--state"])
        .arg(state)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    crate::harness::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An unprivileged user against root's store is told whose it is and what
/// to do, not a bare "Permission denied": an existing store (refused by
/// the state dir's owner check), and a store it cannot create in root's
/// directory.
#[test]
fn an_unprivileged_user_is_told_whose_store_it_is() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching to `nobody` needs root");
        return;
    }
    let p = Pgbr::new();
    fs::set_permissions(p.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let topo = three_cells(&p, 5433, "");
    fs::set_permissions(&topo, fs::Permissions::from_mode(0o644)).unwrap();
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let state = p.state();
    for args in [&["generations"][..], &["plan", t], &["apply", t, "--yes"]] {
        let out = as_nobody(&state, args).expect_code(1);
        assert!(
            out.stderr.contains("owned by `root`")
                && out
                    .stderr
                    .contains("hint: it holds private keys: run pgbr as `root`"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("Permission denied"), "{}", out.stderr);
    }
    // A store to be made in a directory only root may write.
    let roots = p.path().join("roots");
    fs::create_dir(&roots).unwrap();
    fs::set_permissions(&roots, fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_nobody(&roots.join("state"), &["apply", t, "--yes"]).expect_code(1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: failed to open state `{}/state`: `{}` belongs to `root`, and pgbr runs as `nobody`\n",
            roots.display(),
            roots.display()
        )) && out
            .stderr
            .contains("hint: run pgbr as `root` (e.g. `sudo -u root pgbr …`)"),
        "{}",
        out.stderr
    );
}

/// The same on PostgreSQL: a database without pgbr's schema has no state,
/// and read-only commands do not create the schema.
#[test]
fn read_only_commands_create_no_schema_in_postgresql() {
    let server = crate::pg_server::server();
    let db = server.fresh_db();
    let p = Pgbr {
        dir: tempfile::tempdir().unwrap(),
        state_url: Some(server.url(&db)),
    };
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    for args in [&["generations"][..], &["certs"], &["status", t]] {
        let out = p.run(args).expect_code(1);
        assert!(
            out.stderr.contains("there is no state there"),
            "{args:?}: {}",
            out.stderr
        );
    }
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    let schema = server
        .psql(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgbr'",
        )
        .unwrap();
    assert_eq!(schema.trim(), "0", "a read-only command made the schema");
    p.run(&["apply", t, "--yes"]).expect_code(0);
    p.run(&["generations"]).expect_code(0);
}
