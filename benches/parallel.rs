//! Observing and writing cells several at once (`[ssh] parallel`, issue 10),
//! in-process on 32 local cells: `parallel = 1` (one cell after the other,
//! as pgbr did before) against the default 10, each pair in the same run.
//!
//! * `observe`: `gather` of 32 deployed cells (what a no-change `plan`
//!   reads: every deploy dir, every live file hashed);
//! * `deploy`: `deploy_generation` of a first apply (prepare, TLS check and
//!   materialize of every cell, then 32 flips one at a time: the flips are
//!   the same in both rows).
//!
//! Each runs against the local target as it is, and behind a fixed delay per
//! target call (a stand-in for a network round trip, `PGBR_BENCH_DELAY_MS`,
//! default 5), where overlapping shows. `cargo bench --bench parallel`;
//! `PGBR_BENCH_CELLS` (default 32) and `PGBR_BENCH_RUNS` (default 3).
// Benchmarks print to a terminal or a log: a closed pipe is not their
// concern (clippy.toml disallows the std printing macros in pgbr).
#![allow(clippy::disallowed_macros)]

use pgbr::apply::{
    Error as ApplyError, FileContent, HookOutput, HookRun, HookTimeouts, Prepare, Rollout, Target,
    Targets,
};
use pgbr::generations::Cause;
use pgbr::plan::{Observed, Request};
use pgbr::progress::NullReporter;
use pgbr::store::{Location, Store};
use pgbr::topology::{example, Health, TargetSpec, Topology};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A target whose every call first waits `delay`, then does the real thing.
struct Delayed {
    inner: Arc<dyn Target>,
    delay: Duration,
}

impl Delayed {
    fn wait(&self) {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
    }
}

impl Target for Delayed {
    fn observe(&self, cell: &str, deploy_dir: &str) -> Result<Observed, ApplyError> {
        self.wait();
        self.inner.observe(cell, deploy_dir)
    }
    fn prepare(&self, req: &Prepare<'_>) -> Result<Option<u64>, ApplyError> {
        self.wait();
        self.inner.prepare(req)
    }
    fn materialize(
        &self,
        deploy_dir: &str,
        generation: u64,
        files: &[FileContent],
        owner: Option<&str>,
    ) -> Result<(), ApplyError> {
        self.wait();
        self.inner.materialize(deploy_dir, generation, files, owner)
    }
    fn flip(&self, deploy_dir: &str, from: Option<u64>, to: Option<u64>) -> Result<(), ApplyError> {
        self.wait();
        self.inner.flip(deploy_dir, from, to)
    }
    fn link_config(&self, link: &str, deploy_dir: &str) -> Result<(), ApplyError> {
        self.wait();
        self.inner.link_config(link, deploy_dir)
    }
    fn resolve_owner(&self, owner: &str) -> Result<(), ApplyError> {
        self.wait();
        self.inner.resolve_owner(owner)
    }
    fn run_hook(&self, hook: &HookRun) -> Result<HookOutput, ApplyError> {
        self.wait();
        self.inner.run_hook(hook)
    }
    fn generation_size(&self, deploy_dir: &str, generation: u64) -> Result<u64, ApplyError> {
        self.wait();
        self.inner.generation_size(deploy_dir, generation)
    }
    fn remove_generation(&self, deploy_dir: &str, generation: u64) -> Result<(), ApplyError> {
        self.wait();
        self.inner.remove_generation(deploy_dir, generation)
    }
    fn remove_partial(&self, deploy_dir: &str, generation: u64) -> Result<(), ApplyError> {
        self.wait();
        self.inner.remove_partial(deploy_dir, generation)
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `cells` local cells under `root`, no health check or hook.
fn topology(root: &Path, cells: usize, parallel: usize) -> Topology {
    let cells = (0..cells)
        .map(|i| {
            let name = format!("cell{i:03}");
            let mut cell = example::cell(
                &name,
                i,
                "localhost",
                5432,
                &root.join(&name).display().to_string(),
            );
            cell.health = Health::None;
            cell
        })
        .collect();
    let mut topo = example::topology(cells, &[]);
    topo.ssh.parallel = parallel;
    topo
}

/// One fresh fleet: the time of its first deploy, then of `runs`
/// observations of the deployed cells.
fn one_fleet(
    cells: usize,
    parallel: usize,
    delay: Duration,
    runs: usize,
) -> (Duration, Vec<Duration>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&Location::new(dir.path().join("state"))).expect("open store");
    let topo = topology(&dir.path().join("deploy"), cells, parallel);
    let local = Targets::new().of(&TargetSpec::Local).expect("local");
    let targets = Targets::fixed(Arc::new(Delayed {
        inner: local,
        delay,
    }));
    let now = time::OffsetDateTime::now_utc();
    let gather = || {
        pgbr::apply::gather(
            &store,
            &targets,
            &topo,
            "bench.toml",
            Request::default(),
            now,
            &NullReporter,
        )
        .expect("gather")
    };
    let inputs = gather();
    let plan = pgbr::plan::compute(&inputs);
    let built =
        pgbr::apply::build_generation(&store, &topo, &plan, &inputs, now, Cause::Apply, None)
            .expect("build")
            .expect("changes");
    drop(inputs);
    let start = Instant::now();
    pgbr::apply::deploy_generation(
        &store,
        &targets,
        &built.manifest,
        &built.previous,
        Rollout {
            adopt: false,
            parallel,
            hook_timeouts: HookTimeouts::of(&topo),
        },
        &NullReporter,
    )
    .map_err(|stopped| stopped.error)
    .expect("deploy");
    let deploy = start.elapsed();
    let observes = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let inputs = gather();
            let elapsed = start.elapsed();
            assert_eq!(pgbr::plan::compute(&inputs).summary.unchanged, cells);
            elapsed
        })
        .collect();
    (deploy, observes)
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let cells = env_or("PGBR_BENCH_CELLS", 32) as usize;
    let runs = env_or("PGBR_BENCH_RUNS", 3).max(1) as usize;
    let delay_ms = env_or("PGBR_BENCH_DELAY_MS", 5);
    for delay in [Duration::ZERO, Duration::from_millis(delay_ms)] {
        let name = format!(
            "parallel/{cells}-cells/{}",
            if delay.is_zero() {
                "local".to_owned()
            } else {
                format!("local+{delay_ms}ms-per-call")
            }
        );
        if !(filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))) {
            continue;
        }
        let settings = [1, pgbr::topology::DEFAULT_PARALLEL];
        let mut deploys = vec![Vec::new(); settings.len()];
        let mut observes = vec![Vec::new(); settings.len()];
        // The settings alternate fleet by fleet, so both see the same load.
        for _ in 0..runs {
            for (i, parallel) in settings.iter().enumerate() {
                let (deploy, observe) = one_fleet(cells, *parallel, delay, runs);
                deploys[i].push(deploy);
                observes[i].extend(observe);
            }
        }
        let rows: Vec<(usize, Duration, Duration)> = settings
            .iter()
            .zip(observes.into_iter().zip(deploys))
            .map(|(p, (o, d))| (*p, median(o), median(d)))
            .collect();
        println!("{name}");
        for (parallel, observe, deploy) in &rows {
            println!(
                "  parallel = {parallel:<3} observe median {:>8.1} ms   deploy median {:>8.1} ms",
                ms(*observe),
                ms(*deploy)
            );
        }
        let (_, o1, d1) = rows[0];
        let (_, on, dn) = rows[1];
        println!(
            "  speedup: observe {:.1}x, deploy {:.1}x ({runs} fleets per row; flips stay one at a time)",
            o1.as_secs_f64() / on.as_secs_f64(),
            d1.as_secs_f64() / dn.as_secs_f64()
        );
    }
}
