//! Sealed keys (SPEC §11), through the real binary: after `state seal` no
//! private key byte is left in the store's files, however deep sled and
//! the object encoding bury it; commands that need a key need an identity
//! and say which recipients can open the store; `state rekey` leaves a
//! removed recipient nothing to open.

use crate::harness::{Output, Pgbr};
use crate::pg_server;
use crate::workflow::three_cells;
use age::secrecy::ExposeSecret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use std::io::Read;
use std::path::{Path, PathBuf};

/// An age identity written to `<scratch>/<name>.key`, as age-keygen
/// writes one, and its recipient.
fn identity(p: &Pgbr, name: &str) -> (PathBuf, String, age::x25519::Identity) {
    let key = age::x25519::Identity::generate();
    let public = key.to_public().to_string();
    let text = format!(
        "# public key: {public}\n{}\n",
        key.to_string().expose_secret()
    );
    (p.write(&format!("{name}.key"), &text), public, key)
}

/// Every file under `dir`, read whole.
fn files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// `data` and every zstd frame found anywhere in it, decompressed, and the
/// frames in those, three levels deep: sled compresses its log records and
/// pgbr each object, so a key's bytes sit two frames down.
fn layers(data: &[u8], depth: u32, out: &mut Vec<Vec<u8>>) {
    out.push(data.to_vec());
    if depth == 0 {
        return;
    }
    let mut at = 0;
    while let Some(i) = find(&data[at..], &ZSTD_MAGIC) {
        let start = at + i;
        let mut plain = Vec::new();
        if let Ok(d) = zstd::stream::read::Decoder::with_buffer(&data[start..]) {
            // A damaged or cut frame still yields what it decoded.
            let _ = d.single_frame().take(64 << 20).read_to_end(&mut plain);
        }
        if !plain.is_empty() {
            layers(&plain, depth - 1, out);
        }
        at = start + 1;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Every layer of every file of the store.
fn store_layers(state: &Path) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    files(state, &mut all);
    let mut out = Vec::new();
    for (_, data) in all {
        layers(&data, 3, &mut out);
    }
    out
}

/// What a leak of `pem` would contain: each long base64 line of its body,
/// and its DER.
fn needles(pem: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(|l| l.as_bytes().to_vec())
        .collect();
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).expect("a PEM private key");
    out.push(der.secret_der().to_vec());
    out
}

/// The keys found in `state`'s files.
fn leaked(state: &Path, keys: &[String]) -> Vec<usize> {
    let layers = store_layers(state);
    keys.iter()
        .enumerate()
        .filter(|(_, k)| {
            needles(k)
                .iter()
                .any(|n| layers.iter().any(|l| find(l, n).is_some()))
        })
        .map(|(i, _)| i)
        .collect()
}

/// Every deployed key under the scratch dir, and the CA key read from the
/// store with `identity`.
fn all_keys(p: &Pgbr, identity: Option<&Path>) -> Vec<String> {
    let mut deployed = Vec::new();
    files(&p.path().join("cells"), &mut deployed);
    let mut keys: Vec<String> = deployed
        .into_iter()
        .filter(|(f, _)| f.ends_with("tls/server.key"))
        .map(|(_, k)| String::from_utf8(k).unwrap())
        .collect();
    let mut store = pgbr::store::Store::open(&p.location()).unwrap();
    store.set_identity(identity);
    let ca = store.pki().unwrap().ca.expect("a CA");
    keys.push(String::from_utf8(store.get_object(&ca.key).unwrap()).unwrap());
    keys.sort();
    keys.dedup();
    keys
}

fn generations(p: &Pgbr) -> usize {
    let out = p.run(&["generations", "--json"]).expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v.as_array().expect("a list").len()
}

#[track_caller]
fn says(out: &Output, what: &[&str]) {
    for w in what {
        assert!(out.stderr.contains(w), "no `{w}` in:\n{}", out.stderr);
    }
}

#[test]
fn a_sealed_store_holds_no_private_key_bytes() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    p.run(&["rotate", t, "--cells", "zone2", "--yes"])
        .expect_code(0);
    let keys = all_keys(&p, None);
    assert_eq!(keys.len(), 5, "3 leaves, zone2's first leaf, the CA");
    // (Deploy dirs keep older generations' files, so every key ever
    // deployed is found there.)
    // The scan finds them while the store is plain: it can fail.
    assert_eq!(leaked(&p.state(), &keys), vec![0, 1, 2, 3, 4]);

    let (alice, alice_pub, _) = identity(&p, "alice");
    let out = p
        .run(&["state", "seal", "--recipient", &alice_pub])
        .expect_code(0);
    assert!(
        out.stdout.contains("Sealed 5 private key(s)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&alice_pub), "{}", out.stdout);
    assert_eq!(leaked(&p.state(), &keys), Vec::<usize>::new());

    // A key issued later is sealed as it is stored.
    let a = alice.to_str().unwrap();
    p.run(&["--identity", a, "rotate", t, "--cells", "zone1", "--yes"])
        .expect_code(0);
    let after = all_keys(&p, Some(&alice));
    let new: Vec<String> = after.into_iter().filter(|k| !keys.contains(k)).collect();
    assert_eq!(new.len(), 1, "zone1's new leaf");
    assert_eq!(leaked(&p.state(), &new), Vec::<usize>::new());
    assert_eq!(leaked(&p.state(), &keys), Vec::<usize>::new());
}

#[test]
fn commands_that_need_a_key_need_an_identity_and_name_the_recipients() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let (alice, alice_pub, _) = identity(&p, "alice");
    let (bob, bob_pub, _) = identity(&p, "bob");
    p.run(&["state", "seal", "--recipient", &alice_pub])
        .expect_code(0);
    let a = alice.to_str().unwrap();

    // Nothing here reads a key: all work without an identity, even with a
    // change pending.
    three_cells(&p, 5440, "");
    p.run(&["check", t]).expect_code(0);
    p.run(&["render", t, "--cell", "zone1"]).expect_code(0);
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
    p.run(&["plan", t, "--json"]).expect_code(0);
    p.run(&["status", t]).expect_code(2);
    p.run(&["generations"]).expect_code(0);
    p.run(&["certs"]).expect_code(0);
    p.run(&["gc", "--dry-run"]).expect_code(0);

    // apply, rotate, rollback: refused before anything is committed.
    let before = generations(&p);
    for args in [
        &["apply", t, "--yes"][..],
        &["rotate", t, "--yes"],
        &["rotate", t, "--ca", "--yes"],
    ] {
        let out = p.run(args).expect_code(1);
        says(
            &out,
            &[
                &format!("the state is sealed to {alice_pub} and no identity was given"),
                "hint: pass `--identity FILE` or set PGBR_IDENTITY_FILE",
            ],
        );
        let out = p
            .run_env(args, &[("PGBR_IDENTITY_FILE", bob.to_str().unwrap())])
            .expect_code(1);
        says(
            &out,
            &[&bob_pub, &format!("the state is sealed to {alice_pub}")],
        );
        assert!(!out.stderr.contains("AGE-SECRET-KEY"), "{}", out.stderr);
    }
    assert_eq!(generations(&p), before);

    // With the identity (flag or environment) they work.
    p.run(&["--identity", a, "apply", t, "--yes"])
        .expect_code(0);
    p.run_env(&["rotate", t, "--yes"], &[("PGBR_IDENTITY_FILE", a)])
        .expect_code(0);
    let out = p.run(&["rollback", "--yes"]).expect_code(1);
    says(&out, &["the state is sealed to", "no identity was given"]);
    p.run(&["rollback", "--dry-run"]).expect_code(0);
    p.run(&["rollback", "--yes", "--identity", a])
        .expect_code(0);
    p.run(&["plan", t, "--detailed-exitcode"]).expect_code(2);
}

/// Whether `identity` can open the file key of any age file in `state`'s
/// files, and how many age files there are.
fn opens_any(state: &Path, identity: &age::x25519::Identity) -> (bool, usize) {
    let marker = b"age-encryption.org/v1\n";
    let mut seen = 0;
    for layer in store_layers(state) {
        let mut at = 0;
        while let Some(i) = find(&layer[at..], marker) {
            let start = at + i;
            seen += 1;
            if let Ok(d) = age::Decryptor::new_buffered(&layer[start..]) {
                if d.decrypt(std::iter::once(identity as &dyn age::Identity))
                    .is_ok()
                {
                    return (true, seen);
                }
            }
            at = start + 1;
        }
    }
    (false, seen)
}

#[test]
fn rekey_leaves_a_removed_recipient_nothing_to_open() {
    let p = Pgbr::new();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let (alice, alice_pub, _) = identity(&p, "alice");
    let (bob, bob_pub, bob_key) = identity(&p, "bob");
    let team = p.write("team.txt", &format!("# the team\n{alice_pub}\n{bob_pub}\n"));
    p.run(&["state", "seal", "--recipients-file", team.to_str().unwrap()])
        .expect_code(0);
    let b = bob.to_str().unwrap();
    assert!(opens_any(&p.state(), &bob_key).0, "bob is a recipient");

    // A rekey needs an identity of the current set.
    let out = p
        .run(&["state", "rekey", "--recipient", &alice_pub])
        .expect_code(1);
    says(&out, &["no identity was given", &alice_pub, &bob_pub]);
    // Bob removes himself: afterwards his identity opens nothing, neither
    // through pgbr nor in the raw files.
    let out = p
        .run(&["--identity", b, "state", "rekey", "--recipient", &alice_pub])
        .expect_code(0);
    assert!(
        out.stdout.contains("Re-sealed 4 private key(s)"),
        "{}",
        out.stdout
    );
    let (opened, seen) = opens_any(&p.state(), &bob_key);
    assert!(!opened);
    assert!(seen >= 4, "the scan saw {seen} age files");
    let out = p
        .run(&["--identity", b, "rotate", t, "--yes"])
        .expect_code(1);
    says(&out, &[&format!("the state is sealed to {alice_pub}")]);
    p.run(&["--identity", alice.to_str().unwrap(), "rotate", t, "--yes"])
        .expect_code(0);

    // `seal` does not change the recipients of a sealed store.
    let out = p
        .run(&["state", "seal", "--recipient", &bob_pub])
        .expect_code(1);
    says(
        &out,
        &[
            &format!("it is already sealed to {alice_pub}"),
            "pgbr state rekey",
        ],
    );
}

#[test]
fn bad_recipients_and_identities_are_clear_errors() {
    let p = Pgbr::new();
    let out = p.run(&["state", "seal"]).expect_code(1);
    says(
        &out,
        &["no age recipient", "hint: pass `--recipient age1…`"],
    );
    let out = p
        .run(&["state", "seal", "--recipient", "age1bogus"])
        .expect_code(1);
    says(&out, &["parse age recipient `age1bogus`", "age-keygen -y"]);
    let out = p
        .run(&["state", "rekey", "--recipient", &identity(&p, "a").1])
        .expect_code(1);
    says(&out, &["it is not sealed", "pgbr state seal"]);

    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    let (_, public, _) = identity(&p, "alice");
    p.run(&["state", "seal", "--recipient", &public])
        .expect_code(0);
    let bad = p.write("bad.key", "AGE-SECRET-KEY-1NOTAKEYATALL\n");
    let out = p
        .run(&["--identity", bad.to_str().unwrap(), "apply", t, "--yes"])
        .expect_code(1);
    says(&out, &["line 1 is not an age X25519 identity"]);
    assert!(!out.stderr.contains("NOTAKEY"), "{}", out.stderr);
    let out = p
        .run(&["--identity", "/nonexistent/id", "apply", t, "--yes"])
        .expect_code(1);
    says(&out, &["read identity file `/nonexistent/id`"]);
}

/// The bytes of every `\\x…` bytea literal in a `pg_dump` of `db`.
fn dumped_bytea(db: &str) -> Vec<Vec<u8>> {
    let server = pg_server::server();
    let out = std::process::Command::new("/usr/lib/postgresql/15/bin/pg_dump")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-U", "postgres", "-d", db])
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut values = Vec::new();
    for piece in text.split("\\x").skip(1) {
        let hex: String = piece.chars().take_while(char::is_ascii_hexdigit).collect();
        let bytes = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        values.push(bytes);
    }
    assert!(values.len() > 5, "the dump holds the objects");
    values
}

/// Which of `keys` are found in the `pg_dump` of `db` and in the files of
/// its tables (after a checkpoint).
fn leaked_in_postgres(db: &str, keys: &[String]) -> Vec<usize> {
    let server = pg_server::server();
    server.psql(db, "CHECKPOINT").unwrap();
    let oid = server
        .psql(
            db,
            &format!("SELECT oid FROM pg_database WHERE datname = '{db}'"),
        )
        .unwrap();
    let mut layers_found = Vec::new();
    for value in dumped_bytea(db) {
        layers(&value, 3, &mut layers_found);
    }
    let mut pages = Vec::new();
    files(&server.data_dir().join("base").join(oid.trim()), &mut pages);
    for (_, data) in pages {
        layers(&data, 3, &mut layers_found);
    }
    keys.iter()
        .enumerate()
        .filter(|(_, k)| {
            needles(k)
                .iter()
                .any(|n| layers_found.iter().any(|l| find(l, n).is_some()))
        })
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_sealed_postgresql_store_holds_no_private_key_bytes() {
    let p = Pgbr::on_postgres();
    let db = p.state_url.as_deref().unwrap();
    let db = db
        .rsplit_once('/')
        .unwrap()
        .1
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let topo = three_cells(&p, 5433, "");
    let t = topo.to_str().unwrap();
    p.run(&["apply", t, "--yes"]).expect_code(0);
    let keys = all_keys(&p, None);
    assert_eq!(keys.len(), 4, "3 leaves and the CA");
    // Found while plain, in the dump and in the table files: the scan can fail.
    assert_eq!(leaked_in_postgres(&db, &keys), vec![0, 1, 2, 3]);

    let (alice, alice_pub, _) = identity(&p, "alice");
    p.run(&["state", "seal", "--recipient", &alice_pub])
        .expect_code(0);
    assert_eq!(leaked_in_postgres(&db, &keys), Vec::<usize>::new());
    let a = alice.to_str().unwrap();
    p.run(&["rotate", t, "--yes"]).expect_code(1);
    p.run(&["--identity", a, "rotate", t, "--yes"])
        .expect_code(0);
    let new: Vec<String> = all_keys(&p, Some(&alice))
        .into_iter()
        .filter(|k| !keys.contains(k))
        .collect();
    assert_eq!(new.len(), 3, "the rotated leaves");
    assert_eq!(leaked_in_postgres(&db, &new), Vec::<usize>::new());
    p.run(&["state", "verify"]).expect_code(0);
}
