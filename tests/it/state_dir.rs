//! A state directory someone else prepared, and a careless umask (issue
//! 12 items 10 and 11): pgbr trusts no state dir it does not own, follows
//! no planted symlink, and creates every directory with a stated mode.

use crate::harness::{deploy_dir, Pgbr};
use crate::workflow::three_cells;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn nobody() -> nix::unistd::User {
    nix::unistd::User::from_name("nobody").unwrap().unwrap()
}

fn chown_nobody(path: &Path) {
    let u = nobody();
    std::os::unix::fs::lchown(path, Some(u.uid.as_raw()), Some(u.gid.as_raw())).unwrap();
}

/// Every entry under `dir` (itself included), depth first.
fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    out.push(dir.to_owned());
    if fs::symlink_metadata(dir).unwrap().is_dir() {
        for e in fs::read_dir(dir).unwrap() {
            walk(&e.unwrap().path(), out);
        }
    }
}

/// A `lock` symlink planted in the state dir is not followed: its target
/// (a file root cares about) keeps its bytes.
#[test]
fn a_planted_lock_symlink_is_not_followed() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let victim = p.write("victim", "precious\n");
    fs::create_dir(p.state()).unwrap();
    fs::set_permissions(p.state(), fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&victim, p.state().join("lock")).unwrap();
    let out = p
        .run(&["apply", topo.to_str().unwrap(), "--yes"])
        .expect_code(1);
    assert!(
        out.stderr.contains("symlink") && out.stderr.contains("lock"),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(!deploy_dir(&p, "zone1").exists(), "nothing deployed");
}

/// A state dir (or its `db/`) that another user owns, or that others may
/// write, is refused before a key goes into it.
#[test]
fn a_state_dir_of_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: giving a directory to `nobody` needs root");
        return;
    }
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();

    // The whole state dir prepared by `nobody`.
    fs::create_dir(p.state()).unwrap();
    fs::set_permissions(p.state(), fs::Permissions::from_mode(0o700)).unwrap();
    chown_nobody(&p.state());
    let out = p.run(&["apply", t, "--yes"]).expect_code(1);
    assert!(
        out.stderr.contains("owned by `nobody`") && out.stderr.contains("hint:"),
        "{}",
        out.stderr
    );
    assert!(!p.state().join("db").exists(), "no key went into it");
    fs::remove_dir_all(p.state()).unwrap();

    // Ours, but others may write it.
    fs::create_dir(p.state()).unwrap();
    fs::set_permissions(p.state(), fs::Permissions::from_mode(0o777)).unwrap();
    let out = p.run(&["apply", t, "--yes"]).expect_code(1);
    assert!(out.stderr.contains("writable by others"), "{}", out.stderr);
    assert!(!p.state().join("db").exists(), "no key went into it");
    fs::remove_dir_all(p.state()).unwrap();

    // Ours, with a `db/` that `nobody` planted.
    fs::create_dir(p.state()).unwrap();
    fs::create_dir(p.state().join("db")).unwrap();
    chown_nobody(&p.state().join("db"));
    let out = p.run(&["apply", t, "--yes"]).expect_code(1);
    assert!(out.stderr.contains("owned by `nobody`"), "{}", out.stderr);
    assert_eq!(fs::read_dir(p.state().join("db")).unwrap().count(), 0);
    assert!(!deploy_dir(&p, "zone1").exists(), "nothing deployed");
}

/// `db/` is 0700 and every file in it 0600, whatever the umask.
#[test]
fn the_database_is_private() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    p.run(&["apply", topo.to_str().unwrap(), "--yes"])
        .expect_code(0);
    let mut all = vec![];
    walk(&p.state(), &mut all);
    for path in all {
        let m = fs::symlink_metadata(&path).unwrap();
        let want = if m.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), want, "{}", path.display());
    }
}

/// Under umask 000 no directory pgbr creates is writable by others: the
/// state dir's parents, `db/`, `config_link` parents, deploy dirs,
/// `render --out` dirs.
#[test]
fn umask_000_leaves_no_world_writable_directory() {
    let p = Pgbr::new();
    let extra = format!(
        "config_link = \"{}/etc/{{cell}}/conf/pgbackrest.conf\"",
        p.path().display()
    );
    let topo = three_cells(&p, 5433, &extra);
    let state = p.path().join("deep/er/state");
    let run = |args: &[&str]| {
        let out = Command::new("sh")
            .arg("-c")
            .arg("umask 000 && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_pgbr"))
            .arg("--state")
            .arg(&state)
            .args(args)
            .env_remove("PGBR_STATE")
            .current_dir(p.path())
            .stdin(Stdio::null())
            .output()
            .expect("run pgbr");
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    let t = topo.to_str().unwrap();
    let out_dir = p.path().join("rendered/here");
    run(&["apply", t, "--yes"]);
    run(&["render", t, "--out", out_dir.to_str().unwrap()]);
    let mut all = vec![];
    for top in ["deep", "etc", "cells", "rendered"] {
        walk(&p.path().join(top), &mut all);
    }
    let loose: Vec<String> = all
        .iter()
        .filter(|path| {
            let m = fs::symlink_metadata(path).unwrap();
            !m.file_type().is_symlink() && m.mode() & 0o022 != 0
        })
        .map(|path| format!("{} {:o}", path.display(), mode(path)))
        .collect();
    assert!(loose.is_empty(), "writable by others: {loose:#?}");
    for private in [state.clone(), state.join("db")] {
        assert_eq!(mode(&private), 0o700, "{}", private.display());
    }
}
