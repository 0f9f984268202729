//! Store behaviour, on real embedded stores in temporary directories.

use super::backend::Keyspace;
use super::*;
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

#[path = "../../tests/support/pg_server.rs"]
pub(super) mod pg_server;

/// Where a backend-neutral test keeps its store: a temporary directory or
/// a fresh database on the shared test server.
pub(super) struct Fixture {
    _dir: Option<tempfile::TempDir>,
    pub location: Location,
}

impl Fixture {
    pub(super) fn sled() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::from(dir.path().join("state"));
        Fixture {
            _dir: Some(dir),
            location,
        }
    }

    pub(super) fn postgres() -> Fixture {
        Fixture {
            _dir: None,
            location: Location::new(pg_server::server().fresh_url()),
        }
    }

    pub(super) fn open(&self) -> Store {
        Store::open(&self.location).unwrap()
    }
}

/// Runs each named `fn(&Fixture)` on both backends, as `<backend>::<name>`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sled {
            $(#[test] fn $name() { super::$name(&super::Fixture::sled()) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(&super::Fixture::postgres()) })*
        }
    };
}
pub(super) use on_both_backends;

on_both_backends!(
    objects_round_trip_and_deduplicate,
    missing_object_is_reported,
    corrupted_object_is_detected,
    newer_format_version_is_refused,
    generations_are_numbered_from_one_without_gaps,
    a_refused_commit_writes_nothing,
    commits_survive_reopening,
    journal_round_trips_per_cell,
    state_digest_follows_latest_pki_and_journal_only,
);

/// A generation record numbered `number` naming `objects`: opaque bytes to
/// the store (manifests are `generations`' business).
pub(super) fn manifest(number: u64, objects: &[ObjectId]) -> GenerationRecord {
    let ids: Vec<[u8; 32]> = objects.iter().map(|id| id.0).collect();
    GenerationRecord {
        number,
        value: format::encode(&(number, ids), "test generation").unwrap(),
    }
}

/// The numbers of the generations kept.
pub(super) fn numbers(store: &Store) -> Vec<u64> {
    let records = store.generation_records().unwrap();
    records.iter().map(|r| r.number).collect()
}

fn commit_manifest(store: &Store, m: GenerationRecord) -> Result<(), Error> {
    store.commit(Commit {
        manifest: Some(m),
        ..Commit::default()
    })
}

fn digest(store: &Store) -> String {
    store
        .state_digest_with(store.latest_record().unwrap().as_ref())
        .unwrap()
}

fn pair(store: &Store, name: &str) -> StoredPair {
    StoredPair {
        cert: store.put_object(format!("{name} cert").as_bytes()).unwrap(),
        key: store.put_object(format!("{name} key").as_bytes()).unwrap(),
    }
}

fn objects_round_trip_and_deduplicate(f: &Fixture) {
    let store = f.open();
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

fn missing_object_is_reported(f: &Fixture) {
    let store = f.open();
    let id = ObjectId::of(b"never stored");
    assert!(!store.has_object(&id).unwrap());
    let err = store.get_object(&id).unwrap_err();
    assert!(
        err.to_string().contains(&format!("object {}", id.to_hex())),
        "{err}"
    );
}

fn corrupted_object_is_detected(f: &Fixture) {
    let store = f.open();
    let id = store.put_object(b"the real content").unwrap();
    // A well-formed value whose content is not what the id says.
    let forged = object::encode(&id, b"something else", store.name(), &store.keys).unwrap();
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

fn newer_format_version_is_refused(f: &Fixture) {
    let store = f.open();
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

fn generations_are_numbered_from_one_without_gaps(f: &Fixture) {
    let store = f.open();
    assert_eq!(store.latest_record().unwrap(), None);
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
    assert_eq!(numbers(&store), [1, 2]);
    assert_eq!(store.latest_record().unwrap(), Some(manifest(2, &[])));
    assert_eq!(store.generation_record(1).unwrap(), Some(manifest(1, &[])));
    assert_eq!(store.generation_record(3).unwrap(), None);

    // Numbers are never reused, even when gc dropped the latest manifest.
    store.sweep(&[2], &[]).unwrap();
    assert_eq!(store.latest_record().unwrap().map(|m| m.number), Some(1));
    assert_eq!(store.next_generation().unwrap(), 3);
    assert!(commit_manifest(&store, manifest(2, &[])).is_err());
    commit_manifest(&store, manifest(3, &[])).unwrap();
}

fn a_refused_commit_writes_nothing(f: &Fixture) {
    let store = f.open();
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
    assert_eq!(store.generation_records().unwrap().len(), 1);

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

fn commits_survive_reopening(f: &Fixture) {
    let id;
    {
        let store = f.open();
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
        let store = f.open();
        assert_eq!(store.latest_record().unwrap(), Some(manifest(1, &[id])));
        assert_eq!(store.get_object(&id).unwrap(), b"conf");
        assert!(store.plan_consumed("p").unwrap());
        assert_eq!(store.journal().unwrap()["zone1"].live, Some(1));
    }
}

fn journal_round_trips_per_cell(f: &Fixture) {
    let store = f.open();
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

fn state_digest_follows_latest_pki_and_journal_only(f: &Fixture) {
    let store = f.open();
    let empty = digest(&store);
    assert_eq!(empty.len(), 64);
    assert_eq!(digest(&store), empty);
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
    assert_eq!(digest(&store), empty);

    commit_manifest(&store, manifest(1, &[])).unwrap();
    let with_generation = digest(&store);
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
    let with_pki = digest(&store);
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
    let with_journal = digest(&store);
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
    assert_ne!(digest(&store), with_journal);
    store
        .set_journal(
            "zone1",
            &CellJournal {
                live: Some(1),
                in_flight: None,
            },
        )
        .unwrap();
    assert_eq!(digest(&store), with_journal);
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
    assert!(matches!(err, Error::Io(_)), "{err:?}");
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

/// The PostgreSQL store's own guarantees: fencing, a lost lock, a newer
/// schema, the holder named in "state is locked".
mod postgres_only {
    use super::*;
    use crate::store::backend::Transaction;

    fn db_of(f: &Fixture) -> String {
        let url = f.location.display();
        let tail = url.rsplit_once('/').unwrap().1;
        tail.split('?').next().unwrap().to_owned()
    }

    #[test]
    fn a_commit_fenced_out_by_a_newer_head_writes_nothing() {
        let f = Fixture::postgres();
        let store = f.open();
        commit_manifest(&store, manifest(1, &[])).unwrap();
        // Another writer (one that took the lock after ours was lost)
        // committed generation 2 since this one read the head.
        pg_server::server()
            .psql(&db_of(&f), "UPDATE pgbr.head SET generation = 2")
            .unwrap();
        let value = manifest(2, &[]).value;
        let err = store
            .backend
            .commit(Transaction {
                head: Some((1, 2)),
                puts: vec![(Keyspace::Generations, 2u64.to_be_bytes().to_vec(), value)],
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Fenced {
                    number: 2,
                    head: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .ends_with(": another pgbr committed generation 2 meanwhile"));
        assert_eq!(store.generation_record(2).unwrap(), None);
        // Through the store: numbered from the head, never reused.
        assert_eq!(store.next_generation().unwrap(), 3);
    }

    #[test]
    fn a_lost_lock_refuses_the_commit() {
        let f = Fixture::postgres();
        let store = f.open();
        let db = db_of(&f);
        // End the lock session (as a dropped connection would).
        pg_server::server()
            .psql(
                &db,
                // Waits (up to 5 s) until the backend has exited.
                "SELECT pg_terminate_backend(backend_pid, 5000) FROM pgbr.lock",
            )
            .unwrap();
        let err = commit_manifest(&store, manifest(1, &[])).unwrap_err();
        assert!(matches!(err, Error::LockLost { .. }), "{err:?}");
        assert!(err.to_string().contains("no longer holds the state lock"));
        assert_eq!(store.latest_record().unwrap(), None);
    }

    #[test]
    fn a_second_open_names_the_holder() {
        let f = Fixture::postgres();
        let _store = f.open();
        let err = Store::open(&f.location).unwrap_err();
        let Error::Locked { store, holder } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(store, &f.location.display());
        let pid = std::process::id();
        assert!(holder.contains(&format!(" pid {pid} (")), "{holder}");
        assert!(
            holder.contains("its session is alive (backend pid "),
            "{holder}"
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let f = Fixture::postgres();
        drop(f.open());
        pg_server::server()
            .psql(&db_of(&f), "UPDATE pgbr.format SET version = 99")
            .unwrap();
        let err = Store::open(&f.location).unwrap_err();
        assert!(
            matches!(err, Error::FormatVersion { found: 99, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn schema_param_keeps_stores_apart() {
        let f = Fixture::postgres();
        let other = Location::new(format!("{}&schema=team2", f.location.display()));
        let a = f.open();
        // A different schema is a different store with its own lock.
        let b = Store::open(&other).unwrap();
        a.put_object(b"only in a").unwrap();
        assert!(b.is_empty().unwrap());
    }
}
