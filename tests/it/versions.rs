//! pgBackRest releases: `apply` reads `pgbackrest version` on every cell's
//! host and refuses a release other than `[pgbackrest] version` or a mix of
//! releases, naming every cell's; `--skip-version-check` deploys anyway with
//! a warning. A fake `pgbackrest` first on `PATH` answers per cell
//! (`PGBR_CELL`); the e2e runs the real ones.

use crate::harness::{live, three_cells, Output, Pgbr};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A `pgbackrest` that prints `pgBackRest <release>` for each cell as
/// `releases` says (`zone2=2.55.1`), else `default`; returns the PATH to
/// run pgbr with. From 2.59 it refuses root without `allow-root`, as the
/// real one does for every command but `restore`.
fn fake_pgbackrest(p: &Pgbr, default: &str, releases: &[(&str, &str)]) -> String {
    let mut script = String::from("#!/bin/sh\n");
    if default.starts_with("2.59") {
        script += "[ \"$(id -u)\" != 0 ] || [ \"$PGBACKREST_ALLOW_ROOT\" = y ] || { echo 'ERROR: [122]: unable to run as root' >&2; exit 122; }\n";
    }
    script += "case \"$PGBR_CELL\" in\n";
    for (cell, release) in releases {
        script += &format!("  {cell}) echo \"pgBackRest {release}\" ;;\n");
    }
    script += &format!("  *) echo \"pgBackRest {default}\" ;;\nesac\n");
    let bin: PathBuf = p.write("fakebin/pgbackrest", &script);
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// [`three_cells`] expecting release `expected` (`[pgbackrest] version`).
fn expecting(p: &Pgbr, expected: &str) -> String {
    let extra = format!("[pgbackrest]\nversion = \"{expected}\"\n");
    three_cells(p, 5433, &extra).to_str().unwrap().to_owned()
}

/// `pgbr ARGS` with `path` (from [`fake_pgbackrest`]) as `PATH`.
fn run_with(p: &Pgbr, path: &str, args: &[&str]) -> Output {
    p.run_env(args, &[("PATH", path)])
}

#[test]
fn apply_refuses_a_mix_of_releases_and_names_every_cell() {
    let p = Pgbr::new();
    let topo = expecting(&p, "2.55");
    let path = fake_pgbackrest(&p, "2.55.1", &[("zone2", "2.45.0")]);
    let out = run_with(&p, &path, &["apply", &topo, "--yes"]).expect_code(1);
    assert!(
        out.stderr.contains(
            "error: failed to deploy: cells do not run the pgBackRest release of `[pgbackrest] version` (expected 2.55): zone1 runs 2.55.1; zone2 runs 2.45.0; zone3 runs 2.55.1"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--skip-version-check"),
        "{}",
        out.stderr
    );
    assert!(
        !p.path().join("cells/zone1/pgbackrest").exists(),
        "nothing is deployed"
    );

    // A rolling upgrade: deployed anyway, with a warning.
    let out = run_with(
        &p,
        &path,
        &["apply", &topo, "--yes", "--skip-version-check"],
    )
    .expect_code(0);
    assert!(
        out.stderr
            .contains("--skip-version-check: deploying although deploy: cells do not run"),
        "{}",
        out.stderr
    );
}

#[test]
fn apply_refuses_patch_releases_that_differ() {
    let p = Pgbr::new();
    let topo = expecting(&p, "2.55.1");
    let path = fake_pgbackrest(&p, "2.55.1", &[("zone3", "2.55.0")]);
    let out = run_with(&p, &path, &["apply", &topo, "--yes"]).expect_code(1);
    assert!(
        out.stderr.contains(
            "cells run different pgBackRest releases, which refuse each other (expected 2.55): zone1 runs 2.55.1; zone2 runs 2.55.1; zone3 runs 2.55.0"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn apply_deploys_when_every_cell_runs_the_release() {
    let p = Pgbr::new();
    let topo = expecting(&p, "2.59");
    let path = fake_pgbackrest(&p, "2.59.1", &[]);
    run_with(&p, &path, &["apply", &topo, "--yes"]).expect_code(0);
    let conf = live(&p, "zone1", "pgbackrest.conf");
    assert!(
        conf.starts_with("# pgBackRest 2.59 configuration of cell `zone1`"),
        "{conf}"
    );

    // status --probe shows what each host runs next to what is expected.
    let path = fake_pgbackrest(&p, "2.59.1", &[("zone1", "2.58.0")]);
    let out = run_with(&p, &path, &["status", &topo, "--probe"])
        // No TLS server runs: the probes fail (exit 7, PROBE_FAILED).
        .expect_code(7);
    assert!(
        out.stdout.contains(
            "    pgBackRest: 2.58.0 installed, but the topology expects 2.59 (`[pgbackrest] version`)"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("    pgBackRest: 2.59.1 installed (expected 2.59)"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_missing_pgbackrest_is_named_with_its_cell() {
    let p = Pgbr::new();
    let topo = three_cells(
        &p,
        5433,
        "[pgbackrest]\nbin = \"/nonexistent/pgbackrest\"\n",
    );
    let out = p
        .run(&["apply", topo.to_str().unwrap(), "--yes", "--cells", "zone1"])
        .expect_code(1);
    assert!(
        out.stderr.contains("cannot read every cell's pgBackRest release (expected 2.45): zone1: `/nonexistent/pgbackrest version` exited 127"),
        "{}",
        out.stderr
    );
}
