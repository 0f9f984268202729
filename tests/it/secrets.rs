//! Secrets (SPEC §4, §8): private keys never appear in any output, saved
//! plan or hook environment; the CA key never leaves the store; each
//! generation holds exactly one key, the cell's own, mode 0600; every
//! directory pgbr creates, and the store, is 0700.

use crate::harness::three_cells;
use crate::harness::Pgbr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every path under `dir` (not following symlinks).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        out.push(path.clone());
        let m = fs::symlink_metadata(&path).unwrap();
        if m.is_dir() {
            walk(&path, out);
        }
    }
}

/// The base64 lines of a PEM body: what a leak would contain.
fn pem_body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}

#[test]
fn private_keys_stay_private() {
    let p = Pgbr::new();
    let envs = p.path().join("hookenv");
    fs::create_dir_all(&envs).unwrap();
    let hook = format!(
        "activate = \"env > {}/$PGBR_CELL.$PGBR_GENERATION\"",
        envs.display()
    );
    let topo = three_cells(&p, 5433, &hook);
    let t = topo.to_str().unwrap();
    let plan_file = p.path().join("plan.out");
    let pf = plan_file.to_str().unwrap();
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut run = |args: &[&str]| {
        let out = p.run(args);
        outputs.push((
            format!("{args:?} (exit {})", out.code),
            format!("{}\n{}", out.stdout, out.stderr),
        ));
        out.code
    };
    assert_eq!(run(&["plan", t, "--out", pf]), 0);
    assert_eq!(run(&["apply", pf]), 0);
    assert_eq!(run(&["apply", pf]), 4); // stale
    three_cells(&p, 5440, &hook);
    for args in [
        &["check", t][..],
        &["render", t, "--cell", "zone1"],
        &["plan", t],
        &["plan", t, "--json"],
        &["plan", t, "--detailed-exitcode"],
    ] {
        run(args);
    }
    assert_eq!(run(&["apply", t, "--yes"]), 0);
    for args in [
        &["generations"][..],
        &["generations", "--json"],
        &["certs"],
        &["certs", "--json"],
        &["status", t],
        &["status", t, "--json"],
        &["rollback", "--dry-run"],
        &["gc", "--dry-run"],
        &["rotate", t, "--cells", "zone2", "--yes"],
        &["rollback", "--to", "99", "--yes"],
        &["rotate", t, "--ca", "--yes"],
    ] {
        run(args);
    }
    // Failing commands: a bad topology, a failing activation, bad keys.
    let broken = p.write(
        "broken.toml",
        "stanza = 1\n[cells.zone1]\npg_port = 70000\n",
    );
    run(&["apply", broken.to_str().unwrap(), "--yes"]);
    three_cells(&p, 5441, "health_command = \"echo failing; exit 1\"");
    assert_eq!(run(&["apply", t, "--yes"]), 5);
    let saved = fs::read_to_string(&plan_file).unwrap();
    outputs.push(("saved plan".into(), saved));
    for e in fs::read_dir(&envs).unwrap() {
        let e = e.unwrap();
        outputs.push((
            format!("activate environment {}", e.path().display()),
            fs::read_to_string(e.path()).unwrap(),
        ));
    }

    // The keys: every deployed leaf key, and the CA key from the store.
    let cells_dir = p.path().join("cells");
    let mut deployed = Vec::new();
    walk(&cells_dir, &mut deployed);
    let mut keys: Vec<String> = deployed
        .iter()
        .filter(|f| f.ends_with("tls/server.key"))
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    let ca_key = {
        let store = pgbr::store::Store::open(&p.location()).unwrap();
        let ca = store.pki().unwrap().ca.expect("a CA");
        String::from_utf8(store.get_object(&ca.key).unwrap()).unwrap()
    };
    assert!(ca_key.contains("PRIVATE KEY"));
    keys.push(ca_key.clone());
    let secrets: Vec<String> = keys.iter().flat_map(|k| pem_body_lines(k)).collect();
    assert!(secrets.len() > 6);
    for (what, text) in &outputs {
        assert!(!text.contains("PRIVATE KEY"), "{what} shows a private key");
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{what} shows private key bytes");
        }
    }

    // On disk: one key per generation, the cell's own, 0600; never the CA key.
    let ca_lines = pem_body_lines(&ca_key);
    for path in &deployed {
        let m = fs::symlink_metadata(path).unwrap();
        if m.is_dir() {
            assert_eq!(mode(path), 0o700, "{}", path.display());
            continue;
        }
        if !m.is_file() {
            continue;
        }
        let text = fs::read_to_string(path).unwrap_or_default();
        assert!(
            !ca_lines.iter().any(|l| text.contains(l.as_str())),
            "the CA key is in {}",
            path.display()
        );
        if text.contains("PRIVATE KEY") {
            assert!(path.ends_with("tls/server.key"), "{}", path.display());
            assert_eq!(mode(path), 0o600, "{}", path.display());
            let cert = fs::read_to_string(path.with_file_name("server.crt")).unwrap();
            assert!(
                pgbr::pki::key_matches(&cert, &pgbr::pki::SecretPem(text.clone())),
                "{} is not the key of its server.crt",
                path.display()
            );
        }
    }
    let gen_dirs: Vec<_> = deployed
        .iter()
        .filter(|d| {
            d.parent().is_some_and(|p| p.ends_with("generations"))
                && d.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.parse::<u64>().is_ok())
        })
        .collect();
    assert!(gen_dirs.len() >= 6, "{gen_dirs:?}");
    for g in gen_dirs {
        let keys = deployed
            .iter()
            .filter(|f| f.starts_with(g) && f.is_file())
            .filter(|f| fs::read_to_string(f).is_ok_and(|t| t.contains("PRIVATE KEY")))
            .count();
        assert_eq!(keys, 1, "{}", g.display());
    }

    // The store: 0700, and its lock note 0600.
    assert_eq!(mode(&p.state()), 0o700);
    assert_eq!(mode(&p.state().join("lock")), 0o600);
}
