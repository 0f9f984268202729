//! Sealing behaviour of the store, on real sled databases: what is sealed,
//! who can read it, and what seal and rekey refuse.

use super::backend::Keyspace;
use super::object::{Codec, StoredObject};
use super::seal::testutil::identity_file;
use super::tests::{manifest, open_temp};
use super::*;
use std::path::{Path, PathBuf};

const KEY: &[u8] = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
const CERT: &[u8] =
    b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";

fn recipients(list: &[&String]) -> Recipients {
    let given: Vec<String> = list.iter().map(|s| (*s).clone()).collect();
    Recipients::parse(&given, &[]).unwrap()
}

fn codec(store: &Store, id: &ObjectId) -> Codec {
    let value = store
        .backend
        .get(Keyspace::Objects, &id.0)
        .unwrap()
        .unwrap();
    let stored: StoredObject = format::decode(&value, "t", store.name()).unwrap();
    stored.codec
}

fn reopen(dir: &Path, identity: Option<&Path>) -> Store {
    let mut store = Store::open(&dir.into()).unwrap();
    store.set_identity(identity);
    store
}

struct Team {
    _tmp: tempfile::TempDir,
    state: PathBuf,
    alice: (PathBuf, String),
    bob: (PathBuf, String),
}

/// A store holding a key and a certificate, referenced by generation 1
/// and the PKI record, and two operators' identities.
fn team() -> (Team, ObjectId, ObjectId) {
    let (tmp, store) = open_temp();
    let key = store.put_object(KEY).unwrap();
    let cert = store.put_object(CERT).unwrap();
    store
        .commit(Commit {
            manifest: Some(manifest(1, &[key, cert])),
            pki: Some(PkiRecord {
                ca: Some(StoredPair { cert, key }),
                ..PkiRecord::default()
            }),
            consumed_plan: None,
        })
        .unwrap();
    let state = tmp.path().join("state");
    drop(store);
    let alice = identity_file(tmp.path(), "alice.txt");
    let bob = identity_file(tmp.path(), "bob.txt");
    (
        Team {
            _tmp: tmp,
            state,
            alice,
            bob,
        },
        key,
        cert,
    )
}

#[test]
fn sealing_seals_keys_only_and_reading_them_needs_a_recipient_identity() {
    let (t, key, cert) = team();
    let report = reopen(&t.state, None)
        .seal(&recipients(&[&t.alice.1]))
        .unwrap();
    assert_eq!(report.keys, 1);
    assert_eq!(report.recipients, vec![t.alice.1.clone()]);

    let store = reopen(&t.state, None);
    assert_eq!(store.sealed_to(), vec![t.alice.1.clone()]);
    assert_eq!(codec(&store, &key), Codec::Age);
    assert_eq!(codec(&store, &cert), Codec::Zstd);
    // Without an identity: certificates, manifests and the PKI record read,
    // the key does not, and the error names the recipients.
    assert_eq!(store.get_object(&cert).unwrap(), CERT);
    assert_eq!(store.generation_record(1).unwrap().unwrap().number, 1);
    assert_eq!(store.pki().unwrap().ca.unwrap().key, key);
    let err = store.get_object(&key).unwrap_err();
    assert!(matches!(err, Error::IdentityNeeded { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "read private key object {}: the state is sealed to {} and no identity was given",
            key.to_hex(),
            t.alice.1
        )
    );
    assert!(store.require_keys("x").is_err());
    drop(store);

    let store = reopen(&t.state, Some(&t.bob.0));
    let err = store.get_object(&key).unwrap_err();
    assert!(matches!(err, Error::WrongIdentity { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&t.bob.1) && text.contains(&t.alice.1),
        "{text}"
    );
    assert!(matches!(
        store.require_keys("x").unwrap_err(),
        Error::WrongIdentity { .. }
    ));
    drop(store);

    let store = reopen(&t.state, Some(&t.alice.0));
    store.require_keys("x").unwrap();
    assert_eq!(store.get_object(&key).unwrap(), KEY);
}

#[test]
fn a_sealed_store_never_takes_a_plaintext_key() {
    let (t, _, _) = team();
    reopen(&t.state, None)
        .seal(&recipients(&[&t.alice.1]))
        .unwrap();
    // No identity needed to store a key: sealing uses the public keys.
    let store = reopen(&t.state, None);
    let rsa = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n";
    let id = store.put_object(rsa).unwrap();
    assert_eq!(codec(&store, &id), Codec::Age);
    let config = store.put_object(b"[global]\nrepo1-path=/x\n").unwrap();
    assert_eq!(codec(&store, &config), Codec::Zstd);
    // The PKI record of a sealed store is written as version 3.
    store
        .commit(Commit {
            pki: Some(PkiRecord::default()),
            ..Commit::default()
        })
        .unwrap();
    let value = store.backend.get(Keyspace::Meta, b"pki").unwrap().unwrap();
    assert_eq!(value[..2], format::SEALED_VERSION.to_le_bytes());
    drop(store);
    assert_eq!(
        reopen(&t.state, Some(&t.alice.0)).get_object(&id).unwrap(),
        rsa
    );
}

#[test]
fn rekey_drops_a_removed_recipient_and_needs_a_current_identity() {
    let (t, key, _) = team();
    reopen(&t.state, None)
        .seal(&recipients(&[&t.alice.1, &t.bob.1]))
        .unwrap();
    assert_eq!(
        reopen(&t.state, Some(&t.bob.0)).get_object(&key).unwrap(),
        KEY
    );
    let only_alice = recipients(&[&t.alice.1]);

    // Without an identity, or with one that is not a recipient: refused.
    let err = reopen(&t.state, None).rekey(&only_alice).unwrap_err();
    assert!(matches!(err, Error::IdentityNeeded { .. }), "{err:?}");
    let (_, stranger) = {
        let tmp = t.state.parent().unwrap();
        let (path, public) = identity_file(tmp, "carol.txt");
        (public, path)
    };
    let err = reopen(&t.state, Some(&stranger))
        .rekey(&only_alice)
        .unwrap_err();
    assert!(matches!(err, Error::WrongIdentity { .. }), "{err:?}");

    // Bob rekeys himself out.
    let report = reopen(&t.state, Some(&t.bob.0)).rekey(&only_alice).unwrap();
    assert_eq!(report.keys, 1);
    let err = reopen(&t.state, Some(&t.bob.0))
        .get_object(&key)
        .unwrap_err();
    assert!(matches!(err, Error::WrongIdentity { .. }), "{err:?}");
    assert_eq!(
        reopen(&t.state, Some(&t.alice.0)).get_object(&key).unwrap(),
        KEY
    );
}

#[test]
fn seal_and_rekey_refuse_the_wrong_state() {
    let (t, _, _) = team();
    let err = reopen(&t.state, Some(&t.alice.0))
        .rekey(&recipients(&[&t.alice.1]))
        .unwrap_err();
    assert!(matches!(err, Error::NotSealed { .. }), "{err:?}");
    reopen(&t.state, None)
        .seal(&recipients(&[&t.alice.1]))
        .unwrap();
    // Sealing again to the same recipients is harmless and needs no identity.
    let again = reopen(&t.state, None)
        .seal(&recipients(&[&t.alice.1]))
        .unwrap();
    assert_eq!(again.keys, 0);
    let err = reopen(&t.state, None)
        .seal(&recipients(&[&t.bob.1]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("seal the state: it is already sealed to {}", t.alice.1)
    );
    assert_eq!(reopen(&t.state, None).sealed_to(), vec![t.alice.1.clone()]);
}

#[test]
fn an_interrupted_rewrite_is_finished_or_discarded_on_open() {
    let (t, key, _) = team();
    // Crash before the swap: a half-built db.next is discarded.
    std::fs::create_dir(t.state.join("db.next")).unwrap();
    std::fs::write(t.state.join("db.next/junk"), b"x").unwrap();
    let store = reopen(&t.state, None);
    assert!(!t.state.join("db.next").exists());
    assert_eq!(store.get_object(&key).unwrap(), KEY);
    drop(store);
    // Crash between the two renames: db.next is complete and taken.
    std::fs::rename(t.state.join("db"), t.state.join("db.next")).unwrap();
    let store = reopen(&t.state, None);
    assert!(!t.state.join("db.next").exists());
    assert_eq!(store.get_object(&key).unwrap(), KEY);
}
