//! Certificate lifecycle through the real binary: renewal on a year's
//! clock, rolling rotation with the built-in TLS health check against live
//! servers, revert when a server is not reloaded, and CA rotation in three
//! steps with a handshake between every pair of cells after each.

use crate::harness::{current, deploy_dir, Pgbr, ThreeCells};
use crate::tls_server::{free_ports, CellServer};
use pgbr::apply::health::probe_tls;
use pgbr::pki::{self, CertAndKey, SecretPem};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

const CELLS: [&str; 3] = ["zone1", "zone2", "zone3"];

/// Three cells on 127.0.0.1 with TLS ports from `base`; `hooks` goes into `[defaults]`.
fn topology(p: &Pgbr, base: u16, hooks: &str) -> PathBuf {
    ThreeCells {
        host: "127.0.0.1",
        tls_base: base,
        defaults: hooks,
        ..ThreeCells::default()
    }
    .write(p)
}

fn tls_file(p: &Pgbr, cell: &str, file: &str) -> String {
    fs::read_to_string(deploy_dir(p, cell).join("current/tls").join(file)).unwrap()
}

fn serial(p: &Pgbr, cell: &str) -> String {
    pki::inspect(&tls_file(p, cell, "server.crt"))
        .unwrap()
        .serial
}

/// Cell `from` (its bundle, its leaf as client certificate) handshakes
/// with cell `to`'s server; returns the serial `to` presents.
fn handshake(p: &Pgbr, base: u16, from: &str, to: usize) -> Result<String, String> {
    let client = CertAndKey {
        cert_pem: tls_file(p, from, "server.crt"),
        key_pem: SecretPem(tls_file(p, from, "server.key")),
    };
    probe_tls(
        &format!("127.0.0.1:{}", base + to as u16),
        "127.0.0.1",
        &tls_file(p, from, "ca.crt"),
        &client,
        Duration::from_secs(3),
    )
    .map(|r| r.presented.serial)
    .map_err(|e| pgbr::apply::error_chain(&e))
}

fn every_pair_handshakes(p: &Pgbr, base: u16, when: &str) {
    for from in CELLS {
        for (to, to_name) in CELLS.iter().enumerate() {
            let presented = handshake(p, base, from, to)
                .unwrap_or_else(|e| panic!("{when}: {from} -> {to_name} failed: {e}"));
            assert_eq!(
                presented,
                serial(p, to_name),
                "{when}: {to_name} presents its live leaf"
            );
        }
    }
}

/// Starts a server per cell on the listeners.
fn start_servers(p: &Pgbr, listeners: Vec<std::net::TcpListener>) -> Vec<CellServer> {
    CELLS
        .iter()
        .zip(listeners)
        .map(|(c, l)| CellServer::start(deploy_dir(p, c), l))
        .collect()
}

/// Day `d` of the tests' calendar (day 0 is 2026-01-01), RFC 3339 for `--now`.
fn day(d: i64) -> String {
    (time::macros::datetime!(2026-01-01 00:00 UTC) + time::Duration::days(d))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

const RELOAD: &str = "activate = \"touch $PGBR_DEPLOY_DIR/reload\"\nhealth = \"tls\"";

fn a_year_of_renewal_on_an_injected_clock(p: Pgbr) {
    let (base, _) = free_ports(3);
    let t = topology(&p, base, "");
    let t = t.to_str().unwrap();
    p.run(&["apply", t, "--yes", "--now", &day(0), "--allow-clock-skew"])
        .expect_code(0);
    let first = serial(&p, "zone1");

    let out = p
        .run(&["plan", t, "--now", &day(200), "--detailed-exitcode"])
        .expect_code(0);
    assert!(out.stdout.contains("No changes."), "{}", out.stdout);

    // 365-day leaves, default window a third: 121 days. Day 250 leaves 115.
    let out = p
        .run(&["plan", t, "--now", &day(250), "--detailed-exitcode"])
        .expect_code(2);
    assert!(
        out.stdout.contains(&format!(
            "leaf zone1: renew now, replacing serial {first} (expires in 115 days, renewal window is 121 days)"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("3 certificate(s) to issue"),
        "{}",
        out.stdout
    );

    let out = p
        .run(&[
            "apply",
            t,
            "--yes",
            "--now",
            &day(250),
            "--allow-clock-skew",
        ])
        .expect_code(0);
    assert!(out.stderr.contains("warning: `--now` is"), "{}", out.stderr);
    let ca = pki::inspect(&tls_file(&p, "zone1", "ca.crt")).unwrap();
    for cell in CELLS {
        let leaf_pem = tls_file(&p, cell, "server.crt");
        let leaf = pki::inspect(&leaf_pem).unwrap();
        assert_ne!(leaf.serial, first);
        assert!(
            pki::signed_by(&leaf_pem, &tls_file(&p, cell, "ca.crt")),
            "chains to the CA"
        );
        let expected_end =
            time::macros::datetime!(2026-01-01 00:00 UTC) + time::Duration::days(250 + 365);
        assert_eq!(leaf.not_after, expected_end, "new notAfter one year on");
        let key = deploy_dir(&p, cell).join("current/tls/server.key");
        assert_eq!(
            fs::metadata(key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(ca.is_ca);
    let out = p
        .run(&["plan", t, "--now", &day(251), "--detailed-exitcode"])
        .expect_code(0);
    assert!(out.stdout.contains("No changes."), "{}", out.stdout);
}

#[test]
fn rolling_rotation_passes_health_and_a_server_not_reloaded_is_reverted() {
    let p = Pgbr::new();
    let (base, listeners) = free_ports(3);
    let t = topology(&p, base, "");
    let t = t.to_str().unwrap().to_owned();
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    let _servers = start_servers(&p, listeners);
    every_pair_handshakes(&p, base, "after the first apply");

    // Hooks alone change no file, but they change how the cell is
    // deployed: a generation with the same bytes, re-activated and checked.
    topology(&p, base, RELOAD);
    let out = p.run(&["plan", &t, "--detailed-exitcode"]).expect_code(2);
    assert!(
        out.stdout
            .contains("~ settings: activate, health (same files, re-activated)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("0 certificate(s) to issue"),
        "{}",
        out.stdout
    );
    let out = p.run(&["apply", &t, "--yes"]).expect_code(0);
    assert!(
        out.stderr.contains("zone1: activate\nzone1: health\n"),
        "{}",
        out.stderr
    );
    let gens: serde_json::Value =
        serde_json::from_str(&p.run(&["generations", "--json"]).expect_code(0).stdout).unwrap();
    assert_eq!(gens.as_array().unwrap().len(), 2);

    let before: Vec<String> = CELLS.iter().map(|c| serial(&p, c)).collect();
    let out = p.run(&["rotate", &t, "--yes"]).expect_code(0);
    assert!(
        out.stdout
            .contains("Apply complete: generation 3 (3 cell(s) deployed"),
        "{}",
        out.stdout
    );
    for (i, cell) in CELLS.iter().enumerate() {
        assert_ne!(serial(&p, cell), before[i], "{cell} has a new leaf");
        assert_eq!(
            handshake(&p, base, cell, i).unwrap(),
            serial(&p, cell),
            "{cell} serves it"
        );
    }
    every_pair_handshakes(&p, base, "after the rotation");

    // An activate that does not reload: zone2's server keeps the old leaf,
    // the health check sees it, zone2 goes back, zone3 is not started.
    topology(&p, base, "activate = \"true\"\nhealth = \"tls\"");
    let old_zone2 = serial(&p, "zone2");
    let out = p
        .run(&["rotate", &t, "--cells", "zone2,zone3", "--yes"])
        .expect_code(5);
    assert!(
        out.stderr.contains("activate cell `zone2`: health failed, the cell is back on generation 3; not started: zone3"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("presents serial `{old_zone2}`")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: fix the health problem"),
        "{}",
        out.stderr
    );
    assert_eq!(current(&p, "zone2"), "generations/3");
    assert_eq!(current(&p, "zone3"), "generations/3");
    assert_eq!(serial(&p, "zone2"), old_zone2);
    every_pair_handshakes(&p, base, "after the revert");
}

fn ca_rotation_in_three_steps_keeps_every_pair_talking(p: Pgbr) {
    let (base, listeners) = free_ports(3);
    let t = topology(&p, base, "");
    let t = t.to_str().unwrap().to_owned();
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    let _servers = start_servers(&p, listeners);
    topology(&p, base, RELOAD);
    let old_ca = tls_file(&p, "zone1", "ca.crt");
    let old_leaf = serial(&p, "zone1");

    // Step 3 before step 1 and 2 is impossible; `--cells` is refused.
    let out = p
        .run(&["rotate", &t, "--ca", "--cells", "zone1", "--yes"])
        .expect_code(1);
    assert!(out.stderr.contains("drop `--cells`"), "{}", out.stderr);

    // Step 1: every cell trusts old and new; leaves unchanged.
    let out = p.run(&["rotate", &t, "--ca", "--yes"]).expect_code(0);
    assert!(
        out.stdout.contains("CA: rotate, step 1 of 3"),
        "{}",
        out.stdout
    );
    let bundle = tls_file(&p, "zone1", "ca.crt");
    assert_eq!(pki::ca_bundle(&bundle).len(), 2);
    assert!(bundle.ends_with(&old_ca), "old CA kept after the new one");
    assert_eq!(serial(&p, "zone1"), old_leaf);
    every_pair_handshakes(&p, base, "after step 1");
    let out = p.run(&["plan", &t, "--detailed-exitcode"]).expect_code(0);
    assert!(out.stdout.contains("step 1 of 3 applied"), "{}", out.stdout);

    // Step 2: leaves re-issued from the new CA, cell by cell.
    let out = p.run(&["rotate", &t, "--ca", "--yes"]).expect_code(0);
    assert!(
        out.stdout
            .contains("CA rotation step 2: re-issue from the new CA"),
        "{}",
        out.stdout
    );
    let new_ca = pki::ca_bundle(&tls_file(&p, "zone1", "ca.crt"))[0].clone();
    for cell in CELLS {
        assert!(
            pki::signed_by(&tls_file(&p, cell, "server.crt"), &new_ca),
            "{cell}"
        );
    }
    every_pair_handshakes(&p, base, "after step 2");

    // Step 3: the old CA leaves every bundle.
    let out = p.run(&["rotate", &t, "--ca", "--yes"]).expect_code(0);
    assert!(out.stdout.contains("step 3 of 3"), "{}", out.stdout);
    for cell in CELLS {
        let b = tls_file(&p, cell, "ca.crt");
        assert_eq!(pki::ca_bundle(&b), vec![new_ca.clone()], "{cell}");
    }
    every_pair_handshakes(&p, base, "after step 3");
    let out = p.run(&["plan", &t, "--detailed-exitcode"]).expect_code(0);
    assert!(
        !out.stdout.contains("CA rotation under way"),
        "{}",
        out.stdout
    );
    // A fourth `rotate --ca` starts a new rotation.
    let gens: serde_json::Value =
        serde_json::from_str(&p.run(&["generations", "--json"]).expect_code(0).stdout).unwrap();
    let causes: Vec<&str> = gens
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["cause"].as_str().unwrap())
        .collect();
    assert_eq!(
        causes,
        [
            "apply",
            "ca rotation step 1",
            "ca rotation step 2",
            "ca rotation step 3"
        ]
    );
}

#[test]
fn status_probe_reports_each_server() {
    let p = Pgbr::new();
    let (base, mut listeners) = free_ports(3);
    let t = topology(&p, base, "");
    let t = t.to_str().unwrap().to_owned();
    p.run(&["apply", &t, "--yes"]).expect_code(0);
    // zone3's server is down: its port is closed.
    drop(listeners.pop());
    let _servers: Vec<CellServer> = CELLS[..2]
        .iter()
        .zip(listeners)
        .map(|(c, l)| CellServer::start(deploy_dir(&p, c), l))
        .collect();
    // One probe fails: exit 7 (PROBE_FAILED), for monitoring.
    let out = p.run(&["status", &t, "--probe", "--json"]).expect_code(7);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let z1 = &rows[0]["probe"];
    assert_eq!(z1["ok"], true, "{z1}");
    assert_eq!(
        z1["presented_serial"].as_str().unwrap(),
        serial(&p, "zone1")
    );
    assert_eq!(z1["server_version"], "2.45");
    // Issued moments ago with 365 days: 365, or 364 once a second passed.
    assert!(
        (364..=365).contains(&z1["days_left"].as_i64().unwrap()),
        "{z1}"
    );
    let z3 = &rows[2]["probe"];
    assert_eq!(z3["ok"], false, "{z3}");
    assert!(
        z3["error"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{}", base + 2)),
        "{z3}"
    );
    let text = p.run(&["status", &t, "--probe"]).expect_code(7).stdout;
    assert!(text.contains("probe: ok, presents serial"), "{text}");
    assert!(text.contains("pgBackRest 2.45"), "{text}");
    assert!(text.contains("probe: FAILED"), "{text}");
}

#[test]
fn rsa_2048_fleet_handshakes() {
    let p = Pgbr::new();
    let (base, listeners) = free_ports(3);
    let t = topology(&p, base, "");
    let text = fs::read_to_string(&t).unwrap().replace(
        "server_address = \"127.0.0.1\"",
        "server_address = \"127.0.0.1\"\nkey_algorithm = \"rsa-2048\"",
    );
    fs::write(&t, text).unwrap();
    p.run(&["apply", t.to_str().unwrap(), "--yes"])
        .expect_code(0);
    for cell in CELLS {
        let leaf = tls_file(&p, cell, "server.crt");
        assert_eq!(
            pki::key_algorithm(&leaf).unwrap(),
            Some(pgbr::topology::KeyAlgorithm::Rsa2048)
        );
    }
    let _servers = start_servers(&p, listeners);
    every_pair_handshakes(&p, base, "rsa-2048");
}

fn rollback_refuses_due_certificates_without_force(p: Pgbr) {
    let (base, _) = free_ports(3);
    let t = topology(&p, base, "");
    let t = t.to_str().unwrap().to_owned();
    p.run(&["apply", &t, "--yes", "--now", &day(0), "--allow-clock-skew"])
        .expect_code(0);
    // Day 250: generation 2 renews every leaf (115 days left < 121).
    p.run(&[
        "apply",
        &t,
        "--yes",
        "--now",
        &day(250),
        "--allow-clock-skew",
    ])
    .expect_code(0);
    let renewed = serial(&p, "zone1");
    let out = p
        .run(&["rollback", "--yes", "--now", &day(250)])
        .expect_code(1);
    assert!(
        out.stdout
            .contains("expires in 115 days, inside its renewal window of 121 days"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("hint: pass `--force`"),
        "{}",
        out.stderr
    );
    assert_eq!(serial(&p, "zone1"), renewed, "nothing deployed");
    // Past notAfter it is "expired"; --force deploys anyway.
    let out = p
        .run(&["rollback", "--dry-run", "--now", &day(400)])
        .expect_code(1);
    assert!(out.stdout.contains("expired 35 days ago"), "{}", out.stdout);
    p.run(&["rollback", "--yes", "--force", "--now", &day(250)])
        .expect_code(0);
    assert_ne!(serial(&p, "zone1"), renewed);
    assert_eq!(current(&p, "zone1"), "generations/3");
}

/// The topology of [`topology`] with `ca_validity_days = days`.
fn topology_with_ca_days(p: &Pgbr, base: u16, days: u32) -> String {
    let t = topology(p, base, "");
    let text = fs::read_to_string(&t).unwrap();
    fs::write(
        &t,
        text.replace("[tls]\n", &format!("[tls]\nca_validity_days = {days}\n")),
    )
    .unwrap();
    t.to_str().unwrap().to_owned()
}

/// The CA is judged like a leaf: once a 365-day leaf issued now would
/// outlive it, `plan --detailed-exitcode` exits 2 and names
/// `pgbr rotate --ca`; leaves issued from it end with it; once expired the
/// plan says so.
#[test]
fn an_aging_ca_is_judged_like_a_leaf() {
    let p = Pgbr::new();
    let (base, _) = free_ports(3);
    let t = topology_with_ca_days(&p, base, 500);
    p.run(&["apply", &t, "--yes", "--now", &day(0), "--allow-clock-skew"])
        .expect_code(0);
    let ca_end = pki::inspect(&tls_file(&p, "zone1", "ca.crt"))
        .unwrap()
        .not_after;
    // Day 100: 400 days left, leaves fine: nothing to say.
    p.run(&["plan", &t, "--now", &day(100), "--detailed-exitcode"])
        .expect_code(0);
    // Day 136: 364 days left, fewer than a leaf lasts (365): rotate the CA.
    let out = p
        .run(&["plan", &t, "--now", &day(136), "--detailed-exitcode"])
        .expect_code(2);
    assert!(out.stdout.contains("pgbr rotate --ca"), "{}", out.stdout);
    assert!(out.stdout.contains("expires in 364 days"), "{}", out.stdout);
    let json: serde_json::Value = serde_json::from_str(
        &p.run(&["plan", &t, "--now", &day(136), "--json"])
            .expect_code(0)
            .stdout,
    )
    .unwrap();
    assert!(
        json["ca_problem"]
            .as_str()
            .is_some_and(|s| s.contains("pgbr rotate --ca")),
        "{json}"
    );
    // A leaf re-issued now never outlives its CA.
    p.run(&[
        "rotate",
        &t,
        "--yes",
        "--now",
        &day(200),
        "--allow-clock-skew",
    ])
    .expect_code(0);
    for cell in CELLS {
        let leaf = pki::inspect(&tls_file(&p, cell, "server.crt")).unwrap();
        assert!(
            leaf.not_after <= ca_end,
            "{cell}: {} > {ca_end}",
            leaf.not_after
        );
    }
    // Capped leaves inside their window are not re-issued on every apply.
    p.run(&[
        "apply",
        &t,
        "--yes",
        "--now",
        &day(420),
        "--allow-clock-skew",
    ])
    .expect_code(0);
    let out = p
        .run(&["plan", &t, "--now", &day(421), "--detailed-exitcode"])
        .expect_code(2);
    assert!(
        out.stdout.contains("0 certificate(s) to issue") || out.stdout.contains("No changes"),
        "{}",
        out.stdout
    );
    // Expired: said as such.
    let out = p
        .run(&["plan", &t, "--now", &day(501), "--detailed-exitcode"])
        .expect_code(2);
    assert!(out.stdout.contains("CA: expired"), "{}", out.stdout);
}

/// `rollback` checks notBefore and the CA, not only the leaf's notAfter:
/// generation 1 was made with the clock 100 days ahead.
#[test]
fn rollback_refuses_certificates_not_valid_yet() {
    let p = Pgbr::new();
    let (base, _) = free_ports(3);
    let t = topology(&p, base, "");
    let t = t.to_str().unwrap().to_owned();
    p.run(&[
        "apply",
        &t,
        "--yes",
        "--now",
        &day(100),
        "--allow-clock-skew",
    ])
    .expect_code(0);
    // Back to the real day 0: the leaves are not valid yet, re-issued.
    p.run(&["apply", &t, "--yes", "--now", &day(0), "--allow-clock-skew"])
        .expect_code(0);
    let out = p
        .run(&["rollback", "--dry-run", "--now", &day(0)])
        .expect_code(1);
    assert!(out.stdout.contains("not valid until"), "{}", out.stdout);
    assert!(out.stdout.contains("CA"), "{}", out.stdout);
    assert!(
        out.stderr.contains("hint: pass `--force`"),
        "{}",
        out.stderr
    );
}

crate::harness::on_both_backends!(
    a_year_of_renewal_on_an_injected_clock,
    ca_rotation_in_three_steps_keeps_every_pair_talking,
    rollback_refuses_due_certificates_without_force,
);
