//! Hostile input and faults, through the real binary: concurrent commands
//! on one store, stale locks, tampered store values, damaged plan files,
//! symlinks and foreign content in deploy dirs, hand-edited generations,
//! a full or read-only filesystem. Each refusal is checked to leave every
//! byte outside the state store as it was.

use crate::harness::three_cells;
use crate::harness::{edited, Output, Pgbr};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::current;
pub use crate::harness::deploy_dir;

/// Everything under `root` except `skip`: path -> (kind, content or link
/// target, mode, mtime).
pub fn snapshot(root: &Path, skip: &[&Path]) -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, skip: &[&Path], out: &mut BTreeMap<PathBuf, String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let path = e.unwrap().path();
            if skip.iter().any(|s| path.starts_with(s)) {
                continue;
            }
            let m = fs::symlink_metadata(&path).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("link {}", fs::read_link(&path).unwrap().display())
            } else if m.is_dir() {
                "dir".to_owned()
            } else {
                format!("file {}", blake3::hash(&fs::read(&path).unwrap()).to_hex())
            };
            out.insert(
                path.clone(),
                format!(
                    "{what} {:o} {}",
                    m.mode(),
                    m.mtime_nsec() + m.mtime() * 1_000_000_000
                ),
            );
            if m.is_dir() && !m.file_type().is_symlink() {
                walk(&path, skip, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, skip, &mut out);
    out
}

/// A snapshot of everything outside the state store.
fn outside_state(p: &Pgbr) -> BTreeMap<PathBuf, String> {
    snapshot(p.path(), &[&p.state()])
}

/// Asserts nothing outside the state store changed since `before`.
#[track_caller]
fn assert_unchanged(p: &Pgbr, before: &BTreeMap<PathBuf, String>) {
    let after = outside_state(p);
    let changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| format!("{}: {:?} -> {:?}", k.display(), before.get(k), after.get(k)))
        .collect();
    assert!(
        changed.is_empty(),
        "changed outside the state store:\n{}",
        changed.join("\n")
    );
}

/// Waits until the store's lock note names `pid`.
fn wait_for_lock(p: &Pgbr, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = format!("{pid}\n");
    while Instant::now() < deadline {
        if fs::read_to_string(p.state().join("lock")).is_ok_and(|n| n.starts_with(&want)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("pid {pid} never took the lock");
}

#[test]
fn concurrent_commands_fail_fast_naming_the_holder() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    // Generation 2's activation of zone1 sleeps: the holder provably runs.
    three_cells(
        &p,
        5440,
        "activate = \"test $PGBR_CELL != zone1 || sleep 2\"",
    );
    let mut holder = p.spawn(&["apply", t, "--yes"]);
    wait_for_lock(&p, holder.id());
    let state = p.state().display().to_string();
    for args in [
        &["apply", t, "--yes"][..],
        &["rollback", "--yes"],
        &["gc"],
        &["plan", t],
    ] {
        let start = Instant::now();
        let out = p.run(args).expect_code(3);
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{args:?} waited {:?}",
            start.elapsed()
        );
        assert!(
            out.stderr.contains(&format!("`{state}`"))
                && out.stderr.contains("state is locked")
                && out
                    .stderr
                    .contains(&format!("pid {} (pgbr --state {state} apply", holder.id())),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert!(
        holder.try_wait().unwrap().is_none(),
        "the holder still runs"
    );
    let out = holder.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gens: serde_json::Value =
        serde_json::from_str(&p.run(&["generations", "--json"]).expect_code(0).stdout).unwrap();
    assert_eq!(gens.as_array().unwrap().len(), 2);
}

#[test]
fn a_killed_holder_leaves_no_lock_behind() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "activate = \"sleep 2\"");
    let t = topo.to_str().unwrap();
    let mut holder = p.spawn(&["apply", t, "--yes"]);
    wait_for_lock(&p, holder.id());
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    // No wait for a timeout: the kernel dropped the flock with the process.
    three_cells(&p, 5433, "");
    let start = Instant::now();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn tampered_store_objects_are_refused() {
    let p = Pgbr::new();
    let topo = edited(&p);
    let t = topo.to_str().unwrap();
    // Tamper as an attacker with write access to the state would: every
    // object's value is replaced by another valid object's value, so each
    // still decodes, to the wrong content.
    {
        // Opened as the store opens it (sled refuses another compression setting).
        let db = sled::Config::new()
            .path(p.state().join("db"))
            .use_compression(true)
            .open()
            .unwrap();
        let objects = db.open_tree("objects").unwrap();
        let entries: Vec<_> = objects.iter().map(|e| e.unwrap()).collect();
        assert!(entries.len() > 4);
        for (i, (key, _)) in entries.iter().enumerate() {
            let other = &entries[(i + 1) % entries.len()].1;
            objects.insert(key, other.clone()).unwrap();
        }
        db.flush().unwrap();
    }
    let before = outside_state(&p);
    let out = p.run(&["rollback", "--to", "1", "--yes"]).expect_code(1);
    assert!(
        out.stderr.contains("from state `") && out.stderr.contains("content hash mismatch"),
        "{}",
        out.stderr
    );
    assert_unchanged(&p, &before);
    // Drift repair needs the objects too.
    fs::remove_file(deploy_dir(&p, "zone1").join("current/tls/ca.crt")).unwrap();
    let before = outside_state(&p);
    let out = p.run(&["apply", t, "--yes"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("content hash mismatch"),
        "{}",
        out.stderr
    );
    assert_unchanged(&p, &before);
    assert_eq!(current(&p, "zone1"), "generations/2");
}

#[test]
fn damaged_saved_plans_are_refused() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let plan = p.path().join("plan.out");
    let pf = plan.to_str().unwrap();
    p.run(&["plan", topo.to_str().unwrap(), "--out", pf])
        .expect_code(0);
    let text = fs::read(&plan).unwrap();
    // Truncated: starts like a plan, the rest is cut.
    fs::write(&plan, &text[..text.len() / 2]).unwrap();
    let before = outside_state(&p);
    let out = p.run(&["apply", pf]).expect_code(1);
    assert!(
        out.stderr.contains("read the saved plan") && out.stderr.contains("damaged"),
        "{}",
        out.stderr
    );
    assert_unchanged(&p, &before);
    // Garbage: not a plan, not TOML.
    fs::write(&plan, [0xffu8, 0, 0x7f, b'[', b'\n', 0xc3]).unwrap();
    let before = outside_state(&p);
    let out = p.run(&["apply", pf, "--yes"]).expect_code(1);
    assert!(out.stderr.contains(pf), "{}", out.stderr);
    assert_unchanged(&p, &before);
    assert!(!p.path().join("cells").exists());
}

#[test]
fn a_deploy_dir_that_is_a_symlink_is_refused() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let elsewhere = p.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::create_dir_all(deploy_dir(&p, "zone1").parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, deploy_dir(&p, "zone1")).unwrap();
    let before = outside_state(&p);
    let out = p.run(&["apply", topo.to_str().unwrap(), "--yes"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("it is a symlink") && out.stderr.contains("zone1/pgbackrest"),
        "{}",
        out.stderr
    );
    assert_unchanged(&p, &before);
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn a_current_link_pointing_outside_is_refused() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let link = deploy_dir(&p, "zone2").join("current");
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("/etc", &link).unwrap();
    let etc_before = snapshot(Path::new("/etc"), &[]).len();
    three_cells(&p, 5440, "");
    let before = outside_state(&p);
    // One cell's bad link fails that cell only: plan and status show the
    // whole fleet with the problem on zone2; gc, which would delete, refuses.
    for (args, code) in [(&["plan", t][..], 0), (&["status", t], 2)] {
        let out = p.run(args);
        assert_eq!(out.code, code, "{args:?}: {}\n{}", out.stdout, out.stderr);
        assert!(
            out.stdout
                .contains("it points at `/etc`, outside `generations/<N>`"),
            "{args:?}: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains("zone1") && out.stdout.contains("zone3"),
            "{}",
            out.stdout
        );
    }
    let out = p.run(&["gc", "--keep", "0"]);
    assert_eq!(out.code, 1, "gc: {}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("it points at `/etc`, outside `generations/<N>`"),
        "{}",
        out.stderr
    );
    assert_unchanged(&p, &before);
    let out = p.run(&["apply", t, "--yes"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("it points at `/etc`"), "{}", out.stderr);
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("/etc"));
    assert!(!Path::new("/etc/generations").exists() && !Path::new("/etc/tls").exists());
    assert_eq!(snapshot(Path::new("/etc"), &[]).len(), etc_before);
}

#[test]
fn extra_or_missing_files_in_a_generation_are_drift_and_repaired() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    fs::write(deploy_dir(&p, "zone1").join("current/extra.conf"), "x=y\n").unwrap();
    fs::remove_file(deploy_dir(&p, "zone3").join("current/tls/ca.crt")).unwrap();
    let out = p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stdout.contains("extra.conf") && out.stdout.contains("tls/ca.crt"),
        "{}",
        out.stdout
    );
    let st: serde_json::Value =
        serde_json::from_str(&p.run(&["status", t, "--json"]).expect_code(2).stdout).unwrap();
    let drift: Vec<_> = st
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["drift"].as_array().unwrap().len())
        .collect();
    assert_eq!(drift, [1, 0, 1], "{st}");
    p.run(&["apply", t, "--yes"]).expect_code(0);
    assert_eq!(current(&p, "zone1"), "generations/2");
    assert_eq!(current(&p, "zone2"), "generations/1", "untouched");
    assert_eq!(current(&p, "zone3"), "generations/2");
    assert!(!deploy_dir(&p, "zone1").join("current/extra.conf").exists());
    assert!(deploy_dir(&p, "zone3").join("current/tls/ca.crt").exists());
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn path_like_cell_names_are_rejected() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let text = fs::read_to_string(&topo).unwrap();
    for name in ["\"../x\"", "\"a/b\"", "\".hidden\"", "\"..\""] {
        fs::write(
            &topo,
            text.replace("[cells.zone3]", &format!("[cells.{name}]")),
        )
        .unwrap();
        let before = outside_state(&p);
        let out = p
            .run(&["apply", topo.to_str().unwrap(), "--yes"])
            .expect_code(1);
        assert!(
            out.stderr.contains("expected a cell name"),
            "{name}: {}",
            out.stderr
        );
        assert_unchanged(&p, &before);
    }
}

#[test]
fn a_foreign_deploy_dir_needs_adopt() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    let dd = deploy_dir(&p, "zone2");
    fs::create_dir_all(&dd).unwrap();
    fs::write(dd.join("pgbackrest.conf"), "[global]\nrepo1-path=/mine\n").unwrap();
    let before = outside_state(&p);
    let out = p.run(&["apply", t, "--yes"]).expect_code(1);
    assert!(
        out.stderr
            .contains("is not empty and holds no pgbr deployment")
            && out.stderr.contains("--adopt"),
        "{}",
        out.stderr
    );
    assert_unchanged(&p, &before);
    let gens = p.run(&["generations", "--json"]).expect_code(0);
    assert_eq!(gens.stdout.trim(), "[]", "nothing committed either");
    p.run(&["apply", t, "--yes", "--adopt"]).expect_code(0);
    assert_eq!(current(&p, "zone2"), "generations/1");
    assert_eq!(
        fs::read_to_string(dd.join("pgbackrest.conf")).unwrap(),
        "[global]\nrepo1-path=/mine\n",
        "adopting keeps what was there"
    );
}

/// A mount that is undone on drop.
struct Mount(PathBuf);

impl Mount {
    fn new(args: &[&str], at: &Path) -> Option<Mount> {
        let ok = Command::new("mount")
            .args(args)
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_owned()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn after_failed_write(p: &Pgbr, out: &Output, cell: &str, errno_text: &str) {
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!("deploy cell `{cell}`")) && out.stderr.contains(errno_text),
        "{}",
        out.stderr
    );
    assert_eq!(
        current(p, cell),
        "generations/1",
        "the old generation stays live"
    );
    let conf = fs::read_to_string(deploy_dir(p, cell).join("current/pgbackrest.conf")).unwrap();
    assert!(!conf.contains("5440"), "{conf}");
    p.run(&["generations", "--json"]).expect_code(0);
}

#[test]
fn a_full_filesystem_leaves_the_old_generation_live() {
    let p = Pgbr::new();
    let mnt = p.path().join("cells/zone2");
    fs::create_dir_all(&mnt).unwrap();
    let Some(_m) = Mount::new(&["-t", "tmpfs", "-o", "size=64k", "tmpfs"], &mnt) else {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    // Fill the filesystem.
    let filler = mnt.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    let _ = f.sync_all();
    drop(f);
    three_cells(&p, 5440, "");
    let out = p.run(&["apply", t, "--yes"]);
    after_failed_write(&p, &out, "zone2", "No space left on device");
    assert!(
        out.stderr.contains("hint:"),
        "an operator is told what to do: {}",
        out.stderr
    );
    let gens = deploy_dir(&p, "zone2").join("generations");
    let left: Vec<_> = fs::read_dir(&gens)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["1"], "no half-written generation left behind");
    fs::remove_file(&filler).unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
}

#[test]
fn a_read_only_deploy_dir_leaves_the_old_generation_live() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let dd = deploy_dir(&p, "zone2");
    let src = dd.to_str().unwrap();
    let Some(m) = Mount::new(&["--bind", "-o", "ro", src], &dd) else {
        eprintln!("skipped: cannot bind-mount here (not root?)");
        return;
    };
    // Some kernels ignore `ro` on the first bind: remount to be sure.
    let _ = Command::new("mount")
        .args(["-o", "remount,bind,ro"])
        .arg(&dd)
        .status();
    three_cells(&p, 5440, "");
    let out = p.run(&["apply", t, "--yes"]);
    after_failed_write(&p, &out, "zone2", "Read-only file system");
    assert_eq!(current(&p, "zone1"), "generations/2");
    assert_eq!(current(&p, "zone3"), "generations/1", "not started");
    drop(m);
    p.run(&["apply", t, "--yes"]).expect_code(0);
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(0);
}
