//! pgbr's benchmarks: `cargo bench --bench pgbr_bench [NAME]`.
//!
//! Plain `Instant` timing (no harness): each benchmark warms up, runs a
//! fixed number of iterations and reports the minimum and the median. Add a
//! benchmark by writing a function and listing it in [`BENCHMARKS`]; results
//! are recorded in `docs/benchmarks.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pgbr::render::{render_cell, Phase};
use pgbr::topology::{
    AbsPath, Cell, CellName, Health, KeyAlgorithm, KeyScope, Repo, StanzaName, Tls, Topology,
};

/// A named benchmark.
struct Benchmark {
    name: &'static str,
    run: fn(),
}

const BENCHMARKS: &[Benchmark] = &[
    Benchmark {
        name: "render/256-cells/full",
        run: render_256_full,
    },
    Benchmark {
        name: "render/256-cells/bootstrap",
        run: render_256_bootstrap,
    },
    Benchmark {
        name: "cli/check/256-cells",
        run: cli_check_256,
    },
    Benchmark {
        name: "cli/render/256-cells",
        run: cli_render_256,
    },
];

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters by name.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for bench in BENCHMARKS {
        if filters.is_empty() || filters.iter().any(|f| bench.name.contains(f.as_str())) {
            (bench.run)();
        }
    }
}

/// Times `f` (after `warmup` untimed runs) `iterations` times and prints the
/// minimum and median, with `note` (e.g. the bytes produced).
fn measure<T>(name: &str, warmup: usize, iterations: usize, mut f: impl FnMut() -> T, note: &str) {
    for _ in 0..warmup {
        black_box(f());
    }
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "{name:<32} min {:>9.3} ms   median {:>9.3} ms   ({iterations} runs; {note})",
        times[0].as_secs_f64() * 1e3,
        times[iterations / 2].as_secs_f64() * 1e3,
    );
}

fn path(s: &str) -> AbsPath {
    AbsPath::new(s).expect("absolute path")
}

/// The largest topology pgbr accepts: 256 cells `cell000..cell255` laid out
/// like the 3-cell example, with realistic host names.
fn topology_256() -> Topology {
    let cells = (0..256)
        .map(|index| {
            let name = format!("cell{index:03}");
            let deploy_dir = path(&format!("/srv/{name}/pgbackrest"));
            Cell {
                name: CellName::new(&name).expect("cell name"),
                index,
                host: format!("{name}.db.example.internal"),
                pg_path: path(&format!("/srv/{name}/pg_data")),
                pg_socket_path: Some(path(&format!("/srv/{name}/pg_sockets"))),
                pg_port: 5432,
                pg_user: "postgres".to_owned(),
                pg_database: "postgres".to_owned(),
                log_path: deploy_dir.join("log"),
                lock_path: deploy_dir.join("lock"),
                spool_path: deploy_dir.join("spool"),
                deploy_dir,
                owner: None,
                config_link: None,
                activate: None,
                health: Health::Tls,
            }
        })
        .collect();
    Topology {
        stanza: StanzaName::new("multigres").expect("stanza"),
        repo: Repo {
            path: path("/backup/repo"),
            retention_full: 7,
        },
        tls: Tls {
            server_port_base: 8432,
            server_address: "0.0.0.0".to_owned(),
            client_cn: "pgbackrest".to_owned(),
            ca_validity_days: 3650,
            cert_validity_days: 365,
            renew_before_days: 122,
            key_algorithm: KeyAlgorithm::EcdsaP256,
            extra_sans: Vec::new(),
            key_scope: KeyScope::PerCell,
        },
        options: [("compress-type", "zst"), ("start-fast", "y")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        cells,
    }
}

/// Renders every cell's file of `phase`, as `pgbr render`/`plan` do.
fn render_all(topology: &Topology, phase: Phase) -> Vec<String> {
    topology
        .cells
        .iter()
        .map(|cell| render_cell(topology, cell, phase))
        .collect()
}

fn bench_render(name: &str, phase: Phase, iterations: usize) {
    let topology = topology_256();
    let files = render_all(&topology, phase);
    let total: usize = files.iter().map(String::len).sum();
    let largest = files.iter().map(String::len).max().unwrap_or(0);
    let note = format!(
        "{} files, {:.1} MB total, largest {:.1} KB",
        files.len(),
        total as f64 / 1e6,
        largest as f64 / 1e3
    );
    measure(name, 3, iterations, || render_all(&topology, phase), &note);
}

fn render_256_full() {
    bench_render("render/256-cells/full", Phase::Full, 30);
}

fn render_256_bootstrap() {
    bench_render("render/256-cells/bootstrap", Phase::Bootstrap, 200);
}

/// The 256-cell topology as a module file, cells written out one by one
/// (the worst case for the loader: no `[defaults]` shortcut).
fn topology_256_toml(dir: &std::path::Path) -> std::path::PathBuf {
    let mut t = String::from(
        "stanza = \"multigres\"\n[repo]\npath = \"/backup/repo\"\nretention_full = 7\n\
         [tls]\nserver_port_base = 8432\nserver_address = \"0.0.0.0\"\n\
         [options]\ncompress-type = \"zst\"\nstart-fast = true\n",
    );
    for i in 0..256 {
        t.push_str(&format!(
            "[cells.cell{i:03}]\nhost = \"cell{i:03}.db.example.internal\"\n\
             pg_path = \"/srv/cell{i:03}/pg_data\"\npg_socket_path = \"/srv/cell{i:03}/pg_sockets\"\n\
             pg_port = 5432\ndeploy_dir = \"/srv/cell{i:03}/pgbackrest\"\nhealth = \"tls\"\n"
        ));
    }
    let path = dir.join("topology-256.toml");
    std::fs::write(&path, t).expect("write topology");
    path
}

/// Times one `pgbr` invocation (process start included), as a user runs it.
fn bench_cli(name: &str, args: &[&str], iterations: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let topo = topology_256_toml(dir.path());
    let mut full: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    full.insert(1, topo.display().to_string());
    let out_dir = dir.path().join("out");
    for a in full.iter_mut() {
        if a == "OUT" {
            *a = out_dir.display().to_string();
        }
    }
    let run = || {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_pgbr"))
            .args(&full)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run pgbr");
        assert!(status.success(), "pgbr {full:?} failed");
    };
    measure(
        name,
        2,
        iterations,
        run,
        "whole process, 256-cell module file",
    );
}

fn cli_check_256() {
    bench_cli("cli/check/256-cells", &["check"], 20);
}

fn cli_render_256() {
    bench_cli("cli/render/256-cells", &["render", "--out", "OUT"], 10);
}
