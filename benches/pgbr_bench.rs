//! pgbr's benchmarks: `cargo bench --bench pgbr_bench [NAME]`.
//!
//! Plain `Instant` timing (no harness): each benchmark warms up, runs a
//! fixed number of iterations and reports the minimum and the median. Add a
//! benchmark by writing a function and listing it in [`BENCHMARKS`]; results
//! are recorded in `docs/benchmarks.md`.
// Tests and benchmarks print to a terminal or a log: a closed pipe is
// not their concern (clippy.toml disallows the std printing macros in pgbr).
#![allow(clippy::disallowed_macros)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgbr::apply::{
    Error as ApplyError, FileContent, HookOutput, HookRun, HookTimeouts, Prepare, Rollout, Target,
    Targets,
};
use pgbr::generations::Cause;
use pgbr::plan::Observed;
use pgbr::plan::Request;
use pgbr::progress::NullReporter;
use pgbr::store::{ObjectId, Store};

use pgbr::render::{render_cell, Phase};
use pgbr::topology::{example, Topology};

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
    Benchmark {
        name: "cli/plan/256-cells/no-change",
        run: cli_plan_no_change,
    },
    Benchmark {
        name: "cli/apply/256-cells/first",
        run: cli_apply_first,
    },
    Benchmark {
        name: "cli/apply/256-cells/one-cell-change",
        run: cli_apply_one_cell_change,
    },
    Benchmark {
        name: "store/growth/256-cells/one-cell-change",
        run: store_growth_sled,
    },
    Benchmark {
        name: "state/postgres-vs-sled/256-cells",
        run: postgres_vs_sled,
    },
    Benchmark {
        name: "store/growth/256-cells/one-cell-change/postgres",
        run: store_growth_postgres,
    },
];

#[path = "../tests/support/pg_server.rs"]
mod pg_server;

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

/// The largest topology pgbr accepts: 256 cells `cell000..cell255` laid out
/// like the 3-cell example under `/srv`, with realistic host names.
fn topology_256() -> Topology {
    let cells = (0..256)
        .map(|i| {
            let name = format!("cell{i:03}");
            let host = format!("{name}.db.example.internal");
            example::cell(&name, i, &host, 5432, &format!("/srv/{name}"))
        })
        .collect();
    example::topology(cells, &[("compress-type", "zst"), ("start-fast", "y")])
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
fn topology_256_toml(dir: &Path) -> PathBuf {
    let path = dir.join("topology-256.toml");
    write_topology_256(&path, "/srv", Some("tls"), 5432);
    path
}

/// Writes the 256-cell module file to `path`: `cellNNN` on host
/// `cellNNN.db.example.internal`, deploy dir `<deploy_root>/cellNNN/pgbackrest`,
/// `pg_port` 5432 except `cell000`, which listens on `port0`.
fn write_topology_256(path: &Path, deploy_root: &str, health: Option<&str>, port0: u16) {
    let mut t = String::from(
        "stanza = \"multigres\"\n[repo]\npath = \"/backup/repo\"\nretention_full = 7\n\
         [tls]\nserver_port_base = 8432\nserver_address = \"0.0.0.0\"\n\
         [options]\ncompress-type = \"zst\"\nstart-fast = true\n",
    );
    for i in 0..256 {
        let port = if i == 0 { port0 } else { 5432 };
        t.push_str(&format!(
            "[cells.cell{i:03}]\nhost = \"cell{i:03}.db.example.internal\"\n\
             pg_path = \"/srv/cell{i:03}/pg_data\"\npg_socket_path = \"/srv/cell{i:03}/pg_sockets\"\n\
             pg_port = {port}\ndeploy_dir = \"{deploy_root}/cell{i:03}/pgbackrest\"\n"
        ));
        if let Some(h) = health {
            t.push_str(&format!("health = \"{h}\"\n"));
        }
    }
    std::fs::write(path, t).expect("write topology");
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

// ---------------------------------------------------------------------------
// Deploy benchmarks (issue 3): whole `pgbr` processes on 256 cells whose
// deploy dirs live in a temp dir, each reported next to a baseline measured
// in the same run, interleaved with it so that load from other jobs hits
// both alike.

/// Minimum and median of a set of timings.
#[derive(Debug, Clone, Copy)]
struct Summary {
    min: Duration,
    median: Duration,
    runs: usize,
}

impl Summary {
    fn of(mut times: Vec<Duration>) -> Summary {
        times.sort();
        Summary {
            min: times[0],
            median: times[times.len() / 2],
            runs: times.len(),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_line(name: &str, s: Summary, note: &str) {
    println!(
        "{name:<40} min {:>9.1} ms   median {:>9.1} ms   ({} runs; {note})",
        ms(s.min),
        ms(s.median),
        s.runs
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// Prints a figure, its baseline, the ratio of the medians against
/// `max_ratio` and, if given, the figure's median against `limit`.
fn report(
    name: &str,
    figure: (Summary, &str),
    baseline: (Summary, &str),
    max_ratio: f64,
    limit: Option<Duration>,
) {
    print_line(name, figure.0, figure.1);
    print_line("  baseline", baseline.0, baseline.1);
    // Both ratios: on a shared machine the medians carry the load of other
    // jobs, the minima are the least disturbed runs.
    let ratio = |f: Duration, b: Duration| f.as_secs_f64() / b.as_secs_f64();
    let median = ratio(figure.0.median, baseline.0.median);
    let min = ratio(figure.0.min, baseline.0.min);
    let mut line = format!(
        "  ratio of medians {median:.2}x, of minima {min:.2}x: target <= {max_ratio}x {} (medians), {} (minima)",
        verdict(median <= max_ratio),
        verdict(min <= max_ratio)
    );
    if let Some(limit) = limit {
        line.push_str(&format!(
            "; median {:.1} ms: target < {:.0} ms {}",
            ms(figure.0.median),
            ms(limit),
            verdict(figure.0.median < limit)
        ));
    }
    println!("{line}");
}

/// Runs `pgbr ARGS` to completion (output discarded) and returns its wall time.
fn run_pgbr(args: &[&std::ffi::OsStr]) -> Duration {
    let start = Instant::now();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_pgbr"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run pgbr");
    let elapsed = start.elapsed();
    assert!(status.success(), "pgbr {args:?} failed");
    elapsed
}

/// Flushes every dirty page of the machine (untimed), so that a timed
/// segment does not pay for the writeback of the previous one or of
/// removed scratch trees.
fn sync_all() {
    std::process::Command::new("sync")
        .status()
        .expect("run sync");
}

/// A fresh 256-cell fleet: state dir, deploy root and topology file, all in
/// one temp dir (the same filesystem as the deploy dirs of a real cell).
struct Fleet {
    dir: tempfile::TempDir,
    state: std::ffi::OsString,
    topology: PathBuf,
}

impl Fleet {
    fn new() -> Fleet {
        Fleet::with_state(None)
    }

    /// A fleet whose state is `url` (a PostgreSQL store), or an embedded
    /// store in its temp dir.
    fn with_state(url: Option<String>) -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let fleet = Fleet {
            state: url
                .map(Into::into)
                .unwrap_or_else(|| dir.path().join("state").into_os_string()),
            topology: dir.path().join("topology-256.toml"),
            dir,
        };
        fleet.set_port0(5432);
        fleet
    }

    fn deploy_root(&self) -> PathBuf {
        self.dir.path().join("deploy")
    }

    /// Rewrites the topology with `cell000` on `port`: every cell's file
    /// changes, since each lists `cell000` as a peer.
    fn set_port0(&self, port: u16) {
        let root = self.deploy_root();
        write_topology_256(&self.topology, root.to_str().expect("utf-8"), None, port);
    }

    fn apply(&self) -> Duration {
        run_pgbr(&[
            "--state".as_ref(),
            self.state.as_os_str(),
            "apply".as_ref(),
            self.topology.as_os_str(),
            "--yes".as_ref(),
        ])
    }

    fn plan(&self) -> Duration {
        run_pgbr(&[
            "--state".as_ref(),
            self.state.as_os_str(),
            "plan".as_ref(),
            self.topology.as_os_str(),
        ])
    }

    /// Every cell's live generation, as deployed.
    fn live(&self) -> Vec<CellFiles> {
        (0..256)
            .map(|i| {
                let cell = format!("cell{i:03}");
                let dd = self.deploy_root().join(&cell).join("pgbackrest");
                let link = std::fs::read_link(dd.join("current")).expect("current link");
                let generation = link
                    .to_str()
                    .and_then(|l| l.strip_prefix("generations/"))
                    .and_then(|n| n.parse().ok())
                    .expect("generations/<N>");
                let files = pgbr::plan::FILES
                    .iter()
                    .map(|(path, mode)| {
                        let bytes = std::fs::read(dd.join("current").join(path)).expect("read");
                        ((*path).to_owned(), *mode, bytes)
                    })
                    .collect();
                CellFiles {
                    cell,
                    generation,
                    files,
                }
            })
            .collect()
    }
}

/// One cell's generation: its number and (relative path, mode, bytes).
struct CellFiles {
    cell: String,
    generation: u64,
    files: Vec<(String, u32, Vec<u8>)>,
}

fn total_bytes(cells: &[CellFiles]) -> usize {
    cells
        .iter()
        .flat_map(|c| &c.files)
        .map(|(_, _, b)| b.len())
        .sum()
}

fn fsync_dir(dir: &Path) {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .expect("fsync dir");
}

/// The bare baseline: writes generation `number` of `cells` under
/// `root/<cell>/pgbackrest` with pgbr's discipline and nothing else. Per
/// cell: `generations/` is created if missing (no fsync), then
/// `generations/.<N>.partial/` and `tls/`; each file goes to a temp name
/// with its mode, is fsynced and renamed; the dirs are fsynced; the partial
/// dir is renamed to `<N>` and `generations/` fsynced; a `.current.tmp`
/// symlink is renamed over `current` and the deploy dir fsynced.
fn bare_deploy(root: &Path, cells: &[CellFiles], number: u64) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    for c in cells {
        let dd = root.join(&c.cell).join("pgbackrest");
        let gens = dd.join("generations");
        std::fs::create_dir_all(&gens).expect("create generations");
        let partial = gens.join(format!(".{number}.partial"));
        std::fs::create_dir(&partial).expect("create partial");
        let mut dirs = vec![partial.clone()];
        for (path, mode, bytes) in &c.files {
            let (dir, name) = match path.rsplit_once('/') {
                Some((d, n)) => (partial.join(d), n),
                None => (partial.clone(), path.as_str()),
            };
            if !dirs.contains(&dir) {
                std::fs::create_dir(&dir).expect("create dir");
                dirs.push(dir.clone());
            }
            let tmp = dir.join(format!(".{name}.tmp"));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(*mode)
                .open(&tmp)
                .expect("create temp file");
            f.write_all(bytes).expect("write");
            f.sync_all().expect("fsync");
            drop(f);
            std::fs::rename(&tmp, dir.join(name)).expect("rename");
        }
        for d in dirs.iter().rev() {
            fsync_dir(d);
        }
        std::fs::rename(&partial, gens.join(number.to_string())).expect("rename partial");
        fsync_dir(&gens);
        let tmp = dd.join(".current.tmp");
        std::os::unix::fs::symlink(format!("generations/{number}"), &tmp).expect("symlink");
        std::fs::rename(&tmp, dd.join("current")).expect("flip");
        fsync_dir(&dd);
    }
}

/// Times [`bare_deploy`] into a fresh scratch dir (created and removed
/// untimed).
fn time_bare_deploy(cells: &[CellFiles], number: u64) -> Duration {
    let scratch = tempfile::tempdir().expect("temp dir");
    sync_all();
    let start = Instant::now();
    bare_deploy(scratch.path(), cells, number);
    start.elapsed()
}

fn cli_plan_no_change() {
    const RUNS: usize = 15;
    let fleet = Fleet::new();
    fleet.apply();
    let files: Vec<PathBuf> = (0..256)
        .flat_map(|i| {
            let current = fleet
                .deploy_root()
                .join(format!("cell{i:03}/pgbackrest/current"));
            pgbr::plan::FILES.map(|(path, _)| current.join(path))
        })
        .collect();
    let cat = || {
        let start = Instant::now();
        let status = std::process::Command::new("cat")
            .args(&files)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run cat");
        assert!(status.success());
        start.elapsed()
    };
    let read = || {
        let start = Instant::now();
        let n: usize = files
            .iter()
            .map(|f| black_box(std::fs::read(f).expect("read")).len())
            .sum();
        (start.elapsed(), n)
    };
    for _ in 0..2 {
        fleet.plan();
        cat();
    }
    let (mut plans, mut cats, mut reads) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..RUNS {
        plans.push(fleet.plan());
        cats.push(cat());
        let (t, n) = read();
        reads.push(t);
        bytes = n;
    }
    let cat_note = format!(
        "`cat` of the {} deployed files, {:.1} MB, one process, to /dev/null",
        files.len(),
        bytes as f64 / 1e6
    );
    report(
        "cli/plan/256-cells/no-change",
        (
            Summary::of(plans),
            "whole process `pgbr plan` after a first apply",
        ),
        (Summary::of(cats), &cat_note),
        10.0,
        Some(Duration::from_millis(150)),
    );
    print_line(
        "  (info) in-process read",
        Summary::of(reads),
        "std::fs::read of the same files",
    );
}

fn cli_apply_first() {
    const RUNS: usize = 5;
    let (mut applies, mut bares) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..RUNS {
        let fleet = Fleet::new();
        sync_all();
        applies.push(fleet.apply());
        let live = fleet.live();
        bytes = total_bytes(&live);
        bares.push(time_bare_deploy(&live, 1));
    }
    let bare_note = format!(
        "in-process write+fsync loop: 1024 files, {:.1} MB, 8 fsyncs per cell",
        bytes as f64 / 1e6
    );
    report(
        "cli/apply/256-cells/first",
        (
            Summary::of(applies),
            "whole process `pgbr apply --yes`, fresh state and deploy dirs",
        ),
        (Summary::of(bares), &bare_note),
        2.5,
        None,
    );
}

fn cli_apply_one_cell_change() {
    const RUNS: usize = 5;
    let fleet = Fleet::new();
    fleet.apply();
    let mut before = fleet.live();
    let (mut applies, mut bares, mut strict) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cells, mut changed_files, mut changed_bytes) = (0, 0, 0);
    for k in 0..RUNS {
        fleet.set_port0(5433 + k as u16);
        sync_all();
        applies.push(fleet.apply());
        let after = fleet.live();
        // The cells the apply moved to a new generation, complete, and
        // (stricter) only the files whose bytes changed.
        let moved: Vec<CellFiles> = after
            .into_iter()
            .zip(&before)
            .filter(|(a, b)| a.generation != b.generation)
            .map(|(a, _)| a)
            .collect();
        let only_changed: Vec<CellFiles> = moved
            .iter()
            .map(|a| {
                let b = before.iter().find(|b| b.cell == a.cell).expect("cell");
                CellFiles {
                    cell: a.cell.clone(),
                    generation: a.generation,
                    files: a
                        .files
                        .iter()
                        .filter(|f| !b.files.contains(f))
                        .cloned()
                        .collect(),
                }
            })
            .collect();
        let number = moved.first().map(|c| c.generation).unwrap_or(2);
        cells = moved.len();
        changed_files = only_changed.iter().map(|c| c.files.len()).sum::<usize>();
        changed_bytes = total_bytes(&only_changed);
        bares.push(time_bare_deploy(&moved, number));
        strict.push(time_bare_deploy(&only_changed, number));
        before = fleet.live();
    }
    let bare_note = format!(
        "bare loop writing the {cells} changed cells' new generation dirs ({} files)",
        cells * 4
    );
    report(
        "cli/apply/256-cells/one-cell-change",
        (
            Summary::of(applies),
            "whole process `pgbr apply --yes`, `cell000`'s pg_port changed",
        ),
        (Summary::of(bares), &bare_note),
        2.5,
        None,
    );
    print_line(
        "  (info) changed files only",
        Summary::of(strict),
        &format!(
            "bare loop writing only the {changed_files} changed files, {:.1} MB",
            changed_bytes as f64 / 1e6
        ),
    );
}

/// A deploy target that keeps deploy dirs in memory, so that the growth
/// benchmark can run `apply`'s store work (gather, plan, build, journal)
/// a hundred times without writing 3.5 GB of deploy dirs.
#[derive(Default)]
struct MemTarget {
    dirs: Mutex<BTreeMap<String, Observed>>,
    materialized: Mutex<BTreeMap<(String, u64), FileIds>>,
}

/// A generation's files as [`Observed::files`] lists them.
type FileIds = BTreeMap<String, (ObjectId, u32)>;

impl Target for MemTarget {
    fn observe(&self, _cell: &str, deploy_dir: &str) -> Result<Observed, ApplyError> {
        Ok(self
            .dirs
            .lock()
            .expect("lock")
            .get(deploy_dir)
            .cloned()
            .unwrap_or_default())
    }

    fn prepare(&self, req: &Prepare<'_>) -> Result<Option<u64>, ApplyError> {
        let mut dirs = self.dirs.lock().expect("lock");
        let dir = dirs.entry(req.deploy_dir.to_owned()).or_default();
        dir.exists = true;
        dir.managed = true;
        Ok(dir.current)
    }

    fn materialize(
        &self,
        deploy_dir: &str,
        generation: u64,
        files: &[FileContent],
        _owner: Option<&str>,
    ) -> Result<(), ApplyError> {
        let ids = files
            .iter()
            .map(|f| (f.path.clone(), (ObjectId::of(&f.bytes), f.mode)))
            .collect();
        self.materialized
            .lock()
            .expect("lock")
            .insert((deploy_dir.to_owned(), generation), ids);
        let mut dirs = self.dirs.lock().expect("lock");
        dirs.entry(deploy_dir.to_owned())
            .or_default()
            .generations
            .push(generation);
        Ok(())
    }

    fn flip(
        &self,
        deploy_dir: &str,
        _from: Option<u64>,
        generation: Option<u64>,
    ) -> Result<(), ApplyError> {
        let files = generation
            .and_then(|g| {
                self.materialized
                    .lock()
                    .expect("lock")
                    .remove(&(deploy_dir.to_owned(), g))
            })
            .unwrap_or_default();
        let mut dirs = self.dirs.lock().expect("lock");
        let dir = dirs.entry(deploy_dir.to_owned()).or_default();
        dir.current = generation;
        dir.files = files;
        Ok(())
    }

    fn link_config(&self, _link: &str, _deploy_dir: &str) -> Result<(), ApplyError> {
        Ok(())
    }

    fn resolve_owner(&self, _owner: &str) -> Result<(), ApplyError> {
        Ok(())
    }

    fn run_hook(&self, _hook: &HookRun) -> Result<HookOutput, ApplyError> {
        unreachable!("the growth topology has no `activate` or health command")
    }

    fn generation_size(&self, _deploy_dir: &str, _generation: u64) -> Result<u64, ApplyError> {
        Ok(0)
    }

    fn remove_generation(&self, _deploy_dir: &str, _generation: u64) -> Result<(), ApplyError> {
        Ok(())
    }

    fn remove_partial(&self, _deploy_dir: &str, _generation: u64) -> Result<(), ApplyError> {
        Ok(())
    }
}

/// What `pgbr apply TOPO --yes` does, in-process, against `target`:
/// load, gather, plan, build (issue, put objects, commit the manifest),
/// deploy (journal, materialize, flip). Returns the new generation's number.
fn apply_in_process(store: &Store, target: &Targets, topology: &Path) -> u64 {
    let topo = pgbr::topology::load(topology).expect("load topology");
    let clock = pgbr::clock::Clock::resolve(None).expect("clock");
    let inputs = pgbr::apply::gather(
        store,
        target,
        &topo,
        topology.to_str().expect("utf-8"),
        Request::default(),
        clock.now,
        &NullReporter,
    )
    .expect("gather");
    let plan = pgbr::plan::compute(&inputs);
    let built =
        pgbr::apply::build_generation(store, &topo, &plan, &inputs, clock.now, Cause::Apply, None)
            .expect("build")
            .expect("the plan has changes");
    pgbr::apply::deploy_generation(
        store,
        target,
        &built.manifest,
        &built.previous,
        Rollout {
            adopt: false,
            parallel: topo.ssh.parallel,
            hook_timeouts: HookTimeouts::of(&topo),
        },
        &NullReporter,
    )
    .map_err(|stopped| stopped.error)
    .expect("deploy");
    built.manifest.number
}

/// Raw bytes of the files generation `number` changed: objects of its
/// manifest that the previous generation did not have at the same place.
fn changed_raw_bytes(store: &Store, number: u64) -> u64 {
    let new = pgbr::generations::read(store, number)
        .expect("read")
        .expect("kept");
    let old = pgbr::generations::read(store, number - 1)
        .expect("read")
        .expect("kept");
    let mut bytes = 0;
    for (cell, entry) in &new.cells {
        let before = old.cells.get(cell);
        for f in &entry.files {
            let same = before.is_some_and(|b| b.files.iter().any(|g| g == f));
            if !same {
                bytes += store.get_object(&f.object).expect("object").len() as u64;
            }
        }
    }
    bytes
}

/// `du` of `dir` in bytes: allocated blocks (`-sk`) and apparent size (`-sb`).
fn du(dir: &Path) -> (u64, u64) {
    let run = |flag: &str| -> u64 {
        let out = std::process::Command::new("du")
            .arg(flag)
            .arg(dir)
            .output()
            .expect("run du");
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("du output")
    };
    (run("-sk") * 1024, run("-sb"))
}

/// The 256-cell no-change plan and one-cell-change apply with the state in
/// a local PostgreSQL (the test server: fsync off, so this measures pgbr's
/// round trips, not the disk) and in sled, in the same run.
fn postgres_vs_sled() {
    const PLANS: usize = 10;
    const APPLIES: usize = 5;
    let server = pg_server::server();
    let mut results = Vec::new();
    for url in [None, Some(server.fresh_url())] {
        let fleet = Fleet::with_state(url);
        fleet.apply();
        fleet.plan();
        let plans: Vec<Duration> = (0..PLANS).map(|_| fleet.plan()).collect();
        let applies: Vec<Duration> = (0..APPLIES)
            .map(|k| {
                fleet.set_port0(5433 + k as u16);
                fleet.apply()
            })
            .collect();
        results.push((Summary::of(plans), Summary::of(applies)));
    }
    let [(sled_plan, sled_apply), (pg_plan, pg_apply)] = results[..] else {
        unreachable!("two backends")
    };
    for (what, sled, pg) in [
        ("plan/no-change", sled_plan, pg_plan),
        ("apply/one-cell-change", sled_apply, pg_apply),
    ] {
        print_line(
            &format!("state/sled/256-cells/{what}"),
            sled,
            "state in sled",
        );
        let ratio = ms(pg.median) / ms(sled.median);
        print_line(
            &format!("state/postgres/256-cells/{what}"),
            pg,
            &format!(
                "state in local PostgreSQL: {ratio:.2}x sled (median), target <= 2x {}",
                verdict(ratio <= 2.0)
            ),
        );
    }
}

fn store_growth_sled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    store_growth(
        "store/growth/256-cells/one-cell-change",
        &pgbr::store::Location::from(state.clone()),
        Some(&state),
        100,
    );
}

fn store_growth_postgres() {
    let url = pg_server::server().fresh_url();
    store_growth(
        "store/growth/256-cells/one-cell-change/postgres",
        &pgbr::store::Location::new(url),
        None,
        100,
    );
}

/// Store growth per one-cell-change generation; `dir` is the state dir
/// to `du` (embedded stores only).
fn store_growth(
    name: &str,
    location: &pgbr::store::Location,
    state_dir: Option<&Path>,
    generations: u64,
) {
    let generations = std::env::var("PGBR_BENCH_GENERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(generations)
        .max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let topology = dir.path().join("topology-256.toml");
    let deploy_root = dir.path().join("deploy");
    let root = deploy_root.to_str().expect("utf-8");
    let store = Store::open(location).expect("open store");
    let du = |d: Option<&Path>| d.map(du).unwrap_or((0, 0));
    let target = Targets::fixed(Arc::new(MemTarget::default()));
    write_topology_256(&topology, root, None, 5432);
    apply_in_process(&store, &target, &topology);
    let s0 = store.stats().expect("stats");
    let (du0, app0) = du(state_dir);
    let start = Instant::now();
    let mut raw = 0;
    for k in 1..=generations {
        // Incrementing ports: every generation's configs are new bytes (alternating would be deduplicated).
        write_topology_256(&topology, root, None, 5432 + k as u16);
        let number = apply_in_process(&store, &target, &topology);
        raw += changed_raw_bytes(&store, number);
    }
    let elapsed = start.elapsed();
    let s1 = store.stats().expect("stats");
    let (du1, app1) = du(state_dir);
    let per = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / generations as f64;
    let raw_per = raw as f64 / generations as f64;
    println!(
        "{name:<40} {generations} one-cell-change generations in {:.1} s ({:.0} ms each; in-process apply, deploy dirs in memory)",
        elapsed.as_secs_f64(),
        ms(elapsed) / generations as f64,
    );
    println!(
        "  raw bytes changed per generation       {:>10.1} KB   ({} objects added per generation)",
        raw_per / 1e3,
        (s1.objects - s0.objects) / generations
    );
    let line = |what: &str, bytes: f64| {
        let pct = 100.0 * bytes / raw_per;
        println!(
            "  {what:<38} {:>10.1} KB   {pct:>5.1}% of raw: target <= 10% {}",
            bytes / 1e3,
            verdict(pct <= 10.0)
        );
    };
    line(
        "stored object bytes per generation",
        per(s0.stored_bytes, s1.stored_bytes),
    );
    line(
        "database files per generation",
        per(s0.disk_bytes, s1.disk_bytes),
    );
    if state_dir.is_none() {
        println!(
            "  database tables after generation 1: {:.1} MB; after {}: {:.1} MB",
            s0.disk_bytes as f64 / 1e6,
            generations + 1,
            s1.disk_bytes as f64 / 1e6
        );
        return;
    }
    line("`du -sk` of the state dir per generation", per(du0, du1));
    line("`du -sb` of the state dir per generation", per(app0, app1));
    println!(
        "  state dir after generation 1: {:.1} MB on disk; after {}: {:.1} MB",
        du0 as f64 / 1e6,
        generations + 1,
        du1 as f64 / 1e6
    );
}
