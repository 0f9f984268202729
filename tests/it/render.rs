//! Rendered configs against real pgBackRest 2.45: every file must load
//! without a single warning (pgBackRest only *warns* on unknown or misplaced
//! options, so a rendering mistake would otherwise go unnoticed).
//!
//! `pgbackrest help <command>` with `--config` parses the whole file for that
//! command (unknown options, stanza-only options in `[global]`, repeated
//! keys, empty and malformed values) and prints the values it read, without
//! connecting to Postgres or a peer. `help backup --stanza` covers the
//! repository and `pg1..pgN`; `help server` covers the TLS server block.

use std::path::Path;
use std::process::Command;

use pgbr::render::{render_cell, Phase};
use pgbr::topology::{example, Cell, Topology};

/// `names` (sorted) as cells under `/<name>`, on localhost, with Postgres
/// ports from 5432, with the `[options]` of the 3-cell example.
fn topology(names: &[String]) -> Topology {
    let cells = names
        .iter()
        .enumerate()
        .map(|(i, name)| example::cell(name, i, "localhost", 5432 + i as u16, &format!("/{name}")))
        .collect();
    example::topology(cells, &[("compress-type", "zst"), ("start-fast", "y")])
}

fn three_cells() -> Topology {
    topology(&["zone1".into(), "zone2".into(), "zone3".into()])
}

/// Runs `pgbackrest --config=<config> ARGS help ...` and returns its output
/// with whitespace runs collapsed (help text wraps long values).
fn pgbackrest_help(config: &Path, args: &[&str]) -> String {
    let out = Command::new("pgbackrest")
        .arg(format!("--config={}", config.display()))
        .args(["--log-level-console=warn", "--log-level-stderr=warn"])
        .arg("--log-level-file=off")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `pgbackrest` ({e}): these tests need pgBackRest 2.45 on PATH; \
                 install it (e.g. `apt-get install pgbackrest`), as CI does"
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = format!("{stdout}\n{stderr}");
    assert!(
        out.status.success() && stdout.starts_with("pgBackRest 2.45 "),
        "pgbackrest {args:?} failed ({}), or is not version 2.45:\n{text}",
        out.status
    );
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What pgBackRest 2.45 complained about while loading `config`, after
/// checking that it read the values of `cell` from the file.
fn load_complaints(config: &Path, topology: &Topology, cell: &Cell) -> Vec<String> {
    let backup = pgbackrest_help(config, &["--stanza=multigres", "help", "backup"]);
    let server = pgbackrest_help(config, &["help", "server"]);
    // The values shown prove that pgBackRest parsed this very file.
    for expected in [
        format!("[current={}]", cell.pg_path),
        format!("[current={},", topology.repo.path),
        "[current=zst,".to_owned(),
    ] {
        assert!(backup.contains(&expected), "`{expected}` in:\n{backup}");
    }
    let port = format!("[current={},", topology.tls_port(cell));
    assert!(server.contains(&port), "`{port}` in:\n{server}");

    [backup, server]
        .iter()
        .flat_map(|text| {
            // One message per `WARN:`/`ERROR:` occurrence, up to the next one.
            text.match_indices("WARN:")
                .chain(text.match_indices("ERROR:"))
                .map(|(at, _)| text[at..].chars().take(160).collect::<String>())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Writes every cell's file of `phase` into `dir` and returns each file with
/// pgBackRest's complaints about it.
fn render_and_load(
    topology: &Topology,
    cells: &[&Cell],
    phase: Phase,
    dir: &Path,
    tamper: impl Fn(String) -> String,
) -> Vec<(String, Vec<String>)> {
    cells
        .iter()
        .map(|cell| {
            let file = dir.join(format!("{}-{phase}.conf", cell.name));
            std::fs::write(&file, tamper(render_cell(topology, cell, phase))).expect("write");
            let complaints = load_complaints(&file, topology, cell);
            (file.display().to_string(), complaints)
        })
        .collect()
}

#[test]
fn rendered_configs_load_in_pgbackrest_without_warnings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let topo = three_cells();
    let cells: Vec<&Cell> = topo.cells.iter().collect();
    for phase in [Phase::Bootstrap, Phase::Full] {
        for (file, complaints) in render_and_load(&topo, &cells, phase, dir.path(), |t| t) {
            assert!(complaints.is_empty(), "{file}: {complaints:#?}");
        }
    }
}

#[test]
fn largest_topology_loads_up_to_pg256() {
    let dir = tempfile::tempdir().expect("temp dir");
    let names: Vec<String> = (0..256).map(|i| format!("cell{i:03}")).collect();
    let topo = topology(&names);
    let cells = [&topo.cells[0], &topo.cells[255]];
    for (file, complaints) in render_and_load(&topo, &cells, Phase::Full, dir.path(), |t| t) {
        assert!(complaints.is_empty(), "{file}: {complaints:#?}");
        assert!(std::fs::read_to_string(&file)
            .expect("read")
            .contains("\npg256-database=postgres\n"));
    }
}

/// The check above can fail: an unknown option, a stanza-only option in
/// `[global]` and a malformed value are all caught.
#[test]
fn load_check_detects_bad_options() {
    let dir = tempfile::tempdir().expect("temp dir");
    let topo = three_cells();
    let cells = [&topo.cells[1]];
    type Tamper = fn(String) -> String;
    let cases: [(&str, Tamper); 3] = [
        ("invalid option 'foo-bar'", |t| t + "foo-bar=1\n"),
        ("stanza-only option 'pg1-host'", |t| {
            t.replacen("[global]\n", "[global]\npg1-host=elsewhere\n", 1)
        }),
        ("not valid for 'pg2-host-port'", |t| {
            t.replace("pg2-host-port=8432", "pg2-host-port=port")
        }),
    ];
    for (expected, tamper) in cases {
        let results = std::panic::catch_unwind(|| {
            render_and_load(&topo, &cells, Phase::Full, dir.path(), tamper)
        });
        let complaints = match results {
            Ok(results) => results.into_iter().flat_map(|(_, c)| c).collect(),
            // A malformed value is an ERROR with a non-zero exit.
            Err(panic) => vec![panic.downcast_ref::<String>().cloned().unwrap_or_default()],
        };
        assert!(
            complaints.iter().any(|c| c.contains(expected)),
            "expected a complaint with `{expected}`, got {complaints:#?}"
        );
    }
}

/// `pgbr render` of the shipped example prints exactly the library's
/// rendering, every cell in both phases. The bytes themselves are pinned
/// once, by the snapshots of `render::config`'s unit tests.
#[test]
fn local_3cell_example_renders_as_the_library_does() {
    let p = crate::harness::Pgbr::new();
    let path = crate::harness::repo_root().join("modules/local-3cell.toml");
    let topo = pgbr::topology::load(&path).unwrap();
    for cell in &topo.cells {
        for (phase, arg) in [
            (pgbr::render::Phase::Bootstrap, "bootstrap"),
            (pgbr::render::Phase::Full, "full"),
        ] {
            let out = p
                .run(&[
                    "render",
                    path.to_str().unwrap(),
                    "--cell",
                    cell.name.as_str(),
                    "--phase",
                    arg,
                ])
                .expect_code(0);
            assert_eq!(out.stdout, pgbr::render::render_cell(&topo, cell, phase));
        }
    }
}

/// Two renders of every cell hash the same, and `--out` writes one file per cell.
#[test]
fn render_out_is_deterministic() {
    let p = crate::harness::Pgbr::new();
    let topo = crate::harness::repo_root().join("modules/local-3cell.toml");
    let hash_all = |dir: &str| {
        p.run(&["render", topo.to_str().unwrap(), "--out", dir])
            .expect_code(0);
        let mut h = blake3::Hasher::new();
        for cell in ["zone1", "zone2", "zone3"] {
            h.update(
                &std::fs::read(p.path().join(dir).join(cell).join("pgbackrest.conf")).unwrap(),
            );
        }
        h.finalize()
    };
    assert_eq!(hash_all("a"), hash_all("b"));
}

#[test]
fn render_needs_a_cell_or_out_for_several_cells() {
    let p = crate::harness::Pgbr::new();
    let topo = crate::harness::repo_root().join("modules/local-3cell.toml");
    let out = p.run(&["render", topo.to_str().unwrap()]).expect_code(1);
    assert_eq!(
        out.stderr,
        "error: failed to render: the topology has several cells\nhint: name one with `--cell C`, or write all with `--out DIR`\n"
    );
    let out = p
        .run(&["render", topo.to_str().unwrap(), "--cell", "zone9"])
        .expect_code(1);
    assert_eq!(
        out.stderr,
        "error: failed to render cell `zone9`: no such cell in the topology\nhint: the cells are: zone1, zone2, zone3\n"
    );
}
