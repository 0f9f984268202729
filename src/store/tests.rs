//! Store behaviour, on real embedded stores in temporary directories.

use super::backend::Keyspace;
use super::*;
use crate::generations::{Cause, CellEntry, FileEntry, Manifest};
use crate::render::Phase;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub(super) fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("state")).unwrap();
    (dir, store)
}

/// Opens the embedded store in `dir`.
pub(super) fn open(dir: &Path) -> Result<Store, Error> {
    Store::open(&Location::from(dir))
}

/// A manifest numbered `number` whose one cell holds `objects`.
pub(super) fn manifest(number: u64, objects: &[ObjectId]) -> Manifest {
    let files = objects
        .iter()
        .enumerate()
        .map(|(i, object)| FileEntry {
            path: format!("file{i}"),
            object: *object,
            mode: 0o644,
        })
        .collect();
    let cell = CellEntry {
        phase: Phase::Full,
        deploy_dir: "/zone1/pgbackrest".into(),
        dir_generation: number,
        files,
        cert: None,
        renew_before_days: 122,
        settings: crate::generations::Settings {
            owner: None,
            dirs: vec![],
            config_link: None,
            activate: None,
            health: crate::topology::Health::Tls,
            health_target: "localhost:8432".into(),
        },
    };
    Manifest {
        number,
        parent: number.checked_sub(1).filter(|n| *n > 0),
        created_at: 1_700_000_000,
        tool_version: "0.1.0".into(),
        topology_hash: "t".into(),
        cause: Cause::Apply,
        cells: BTreeMap::from([("zone1".to_owned(), cell)]),
    }
}

fn commit_manifest(store: &Store, m: Manifest) -> Result<(), Error> {
    store.commit(Commit {
        manifest: Some(m),
        ..Commit::default()
    })
}

fn pair(store: &Store, name: &str) -> StoredPair {
    StoredPair {
        cert: store.put_object(format!("{name} cert").as_bytes()).unwrap(),
        key: store.put_object(format!("{name} key").as_bytes()).unwrap(),
    }
}

#[test]
fn objects_round_trip_and_deduplicate() {
    let (_t, store) = open_temp();
    let content = b"[global]\nrepo1-path=/backup/repo\n".repeat(100);
    let id = store.put_object(&content).unwrap();
    assert_eq!(id, ObjectId::of(&content));
    assert_eq!(store.put_object(&content).unwrap(), id);
    assert!(store.has_object(&id).unwrap());
    assert_eq!(store.get_object(&id).unwrap(), content);
    let empty = store.put_object(b"").unwrap();
    assert_eq!(store.get_object(&empty).unwrap(), b"");
    let stats = store.stats().unwrap();
    assert_eq!((stats.objects, stats.raw_bytes), (2, content.len() as u64));
    assert!(stats.stored_bytes < content.len() as u64 / 4, "{stats:?}");
    assert!(stats.disk_bytes > 0);
}

#[test]
fn missing_object_is_reported() {
    let (_t, store) = open_temp();
    let id = ObjectId::of(b"never stored");
    assert!(!store.has_object(&id).unwrap());
    let err = store.get_object(&id).unwrap_err();
    assert!(
        err.to_string().contains(&format!("object {}", id.to_hex())),
        "{err}"
    );
}

#[test]
fn corrupted_object_is_detected() {
    let (_t, store) = open_temp();
    let id = store.put_object(b"the real content").unwrap();
    // A well-formed value whose content is not what the id says.
    let forged = object::encode(&id, b"something else", store.name()).unwrap();
    let objects = Keyspace::Objects;
    store.backend.put(objects, &id.0, &forged).unwrap();
    let err = store.get_object(&id).unwrap_err();
    let Error::Corrupt { what, reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(what, &format!("object {}", id.to_hex()));
    assert_eq!(reason, "content hash mismatch");
    // Bytes that do not even decode.
    let garbage = b"\x01\x00\x00\x05ab";
    store.backend.put(objects, &id.0, garbage).unwrap();
    assert!(matches!(store.get_object(&id), Err(Error::Corrupt { .. })));
}

#[test]
fn newer_format_version_is_refused() {
    let (_t, store) = open_temp();
    let newer = [0xff, 0xff, 0];
    store.backend.put(Keyspace::Meta, b"pki", &newer).unwrap();
    let err = store.pki().unwrap_err();
    assert!(
        matches!(err, Error::FormatVersion { found: 0xffff, .. }),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("read pki record: format version 65535 is newer"));
}

#[test]
fn generations_are_numbered_from_one_without_gaps() {
    let (_t, store) = open_temp();
    assert_eq!(store.latest().unwrap(), None);
    assert_eq!(store.next_generation().unwrap(), 1);
    let err = commit_manifest(&store, manifest(2, &[])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::GenerationNumber {
                number: 2,
                latest: 0
            }
        ),
        "{err:?}"
    );
    commit_manifest(&store, manifest(1, &[])).unwrap();
    for wrong in [1, 3] {
        let err = commit_manifest(&store, manifest(wrong, &[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("commit generation {wrong}: the latest generation is 1")
        );
    }
    commit_manifest(&store, manifest(2, &[])).unwrap();
    let numbers: Vec<u64> = store
        .generations()
        .unwrap()
        .iter()
        .map(|m| m.number)
        .collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(store.latest().unwrap(), Some(manifest(2, &[])));
    assert_eq!(store.generation(1).unwrap(), Some(manifest(1, &[])));
    assert_eq!(store.generation(3).unwrap(), None);

    // Numbers are never reused, even when gc dropped the latest manifest.
    store.sweep(&[2], &[]).unwrap();
    assert_eq!(store.latest().unwrap().map(|m| m.number), Some(1));
    assert_eq!(store.next_generation().unwrap(), 3);
    assert!(commit_manifest(&store, manifest(2, &[])).is_err());
    commit_manifest(&store, manifest(3, &[])).unwrap();
}

#[test]
fn a_refused_commit_writes_nothing() {
    let (_t, store) = open_temp();
    let before = PkiRecord {
        ca: Some(pair(&store, "ca")),
        ..PkiRecord::default()
    };
    store
        .commit(Commit {
            manifest: Some(manifest(1, &[])),
            pki: Some(before.clone()),
            consumed_plan: None,
        })
        .unwrap();
    let after = PkiRecord {
        ca: Some(pair(&store, "new ca")),
        ..PkiRecord::default()
    };
    let err = store
        .commit(Commit {
            manifest: Some(manifest(5, &[])),
            pki: Some(after.clone()),
            consumed_plan: Some("plan-1".into()),
        })
        .unwrap_err();
    assert!(matches!(err, Error::GenerationNumber { .. }));
    assert_eq!(store.pki().unwrap(), before);
    assert!(!store.plan_consumed("plan-1").unwrap());
    assert_eq!(store.generations().unwrap().len(), 1);

    store
        .commit(Commit {
            manifest: Some(manifest(2, &[])),
            pki: Some(after.clone()),
            consumed_plan: Some("plan-1".into()),
        })
        .unwrap();
    assert_eq!(store.pki().unwrap(), after);
    assert!(store.plan_consumed("plan-1").unwrap());
    assert!(!store.plan_consumed("plan-2").unwrap());
}

#[test]
fn commits_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let id;
    {
        let store = open(&path).unwrap();
        id = store.put_object(b"conf").unwrap();
        store
            .commit(Commit {
                manifest: Some(manifest(1, &[id])),
                pki: None,
                consumed_plan: Some("p".into()),
            })
            .unwrap();
        store
            .set_journal(
                "zone1",
                &CellJournal {
                    live: Some(1),
                    in_flight: None,
                },
            )
            .unwrap();
    }
    for _ in 0..3 {
        let store = open(&path).unwrap();
        assert_eq!(store.latest().unwrap(), Some(manifest(1, &[id])));
        assert_eq!(store.get_object(&id).unwrap(), b"conf");
        assert!(store.plan_consumed("p").unwrap());
        assert_eq!(store.journal().unwrap()["zone1"].live, Some(1));
    }
}

#[test]
fn journal_round_trips_per_cell() {
    let (_t, store) = open_temp();
    assert!(store.journal().unwrap().is_empty());
    let flying = CellJournal {
        live: Some(1),
        in_flight: Some(2),
    };
    let landed = CellJournal {
        live: Some(2),
        in_flight: None,
    };
    store.set_journal("zone1", &flying).unwrap();
    store.set_journal("zone2", &landed).unwrap();
    store.set_journal("zone1", &landed).unwrap();
    let journal = store.journal().unwrap();
    assert_eq!(
        journal,
        BTreeMap::from([
            ("zone1".to_owned(), landed.clone()),
            ("zone2".to_owned(), landed)
        ])
    );
}

#[test]
fn state_digest_follows_latest_pki_and_journal_only() {
    let (_t, store) = open_temp();
    let empty = store.state_digest().unwrap();
    assert_eq!(empty.len(), 64);
    assert_eq!(store.state_digest().unwrap(), empty);
    // Not part of the state a plan is made against.
    store.put_object(b"orphan").unwrap();
    store
        .commit(Commit {
            consumed_plan: Some("p".into()),
            ..Commit::default()
        })
        .unwrap();
    // An empty PKI record is the same as none.
    store
        .commit(Commit {
            pki: Some(PkiRecord::default()),
            ..Commit::default()
        })
        .unwrap();
    assert_eq!(store.state_digest().unwrap(), empty);

    commit_manifest(&store, manifest(1, &[])).unwrap();
    let with_generation = store.state_digest().unwrap();
    assert_ne!(with_generation, empty);

    let pki = PkiRecord {
        ca: Some(pair(&store, "ca")),
        ..PkiRecord::default()
    };
    store
        .commit(Commit {
            pki: Some(pki),
            ..Commit::default()
        })
        .unwrap();
    let with_pki = store.state_digest().unwrap();
    assert_ne!(with_pki, with_generation);

    store
        .set_journal(
            "zone1",
            &CellJournal {
                live: Some(1),
                in_flight: None,
            },
        )
        .unwrap();
    let with_journal = store.state_digest().unwrap();
    assert_ne!(with_journal, with_pki);
    store
        .set_journal(
            "zone1",
            &CellJournal {
                live: Some(1),
                in_flight: Some(2),
            },
        )
        .unwrap();
    assert_ne!(store.state_digest().unwrap(), with_journal);
    store
        .set_journal(
            "zone1",
            &CellJournal {
                live: Some(1),
                in_flight: None,
            },
        )
        .unwrap();
    assert_eq!(store.state_digest().unwrap(), with_journal);
}

#[test]
fn store_dir_is_created_private_and_tightened() {
    let temp = tempfile::tempdir().unwrap();
    let nested = temp.path().join("a/b/state");
    drop(open(&nested).unwrap());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&nested), 0o700);
    assert_eq!(mode(&nested.join("lock")), 0o600);

    let loose = temp.path().join("loose");
    std::fs::create_dir(&loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(open(&loose).unwrap());
    assert_eq!(mode(&loose), 0o700);
}

#[test]
fn a_file_in_place_of_the_dir_is_an_io_error() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("state");
    std::fs::write(&file, "not a store").unwrap();
    let err = open(&file).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("open state directory `{}`", file.display())
    );
}

#[test]
fn a_second_open_in_process_is_locked() {
    let (_t, store) = open_temp();
    let err = open(Path::new(store.name())).unwrap_err();
    let expected = format!(
        "open state `{}`: state is locked by pid {} (",
        store.name(),
        std::process::id()
    );
    assert!(err.to_string().starts_with(&expected), "{err}");
}

/// Child side of the cross-process lock test: holds the store until killed.
/// Does nothing unless started by `a_second_process_is_locked_out_until_the_holder_dies`.
#[test]
#[allow(clippy::disallowed_macros)] // the parent reads this line from a pipe it holds open
fn lock_holder_child() {
    let Some(dir) = std::env::var_os("PGBR_STORE_LOCK_CHILD") else {
        return;
    };
    let _store = open(Path::new(&dir)).unwrap();
    println!("pgbr-store-lock-held");
    // Killed by the parent long before; the bound only keeps a failed
    // parent from leaving this process behind.
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn a_second_process_is_locked_out_until_the_holder_dies() {
    use std::io::BufRead;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("state");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "store::tests::lock_holder_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PGBR_STORE_LOCK_CHILD", &dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let ready = stdout
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("pgbr-store-lock-held"));
    assert!(ready, "the child never reported that it holds the store");

    let started = std::time::Instant::now();
    let err = open(&dir).unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "open waited for the lock"
    );
    let Error::Locked { holder, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        holder.starts_with(&format!("pid {} (", child.id())),
        "{holder}"
    );
    assert!(holder.contains("lock_holder_child"), "{holder}");

    // SIGKILL: no destructor runs, the kernel alone releases the lock.
    child.kill().unwrap();
    child.wait().unwrap();
    let store = open(&dir).unwrap();
    store.put_object(b"after the holder died").unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
    #[test]
    fn any_bytes_round_trip(content in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
        let (_t, store) = open_temp();
        let id = store.put_object(&content).unwrap();
        proptest::prop_assert_eq!(store.get_object(&id).unwrap(), content);
    }
}
