//! Crash safety (SPEC §8): apply a 16-cell change, SIGKILL the real binary
//! at a random moment (or abort it at a failpoint), then check that every
//! cell is on its old or its new generation, complete and exact, that the
//! store opens, and that the next apply converges with no drift left.
//!
//! `PGBR_SOAK_TRIALS` sets the number of random-kill trials (default 12;
//! `make soak` runs 200) and `PGBR_SOAK_SEED` replays a run. The test
//! prints a report: kills per phase and recovery times.

use crate::harness::{Output, Pgbr};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CELLS: usize = 16;
/// The files of every generation dir.
const FILES: [&str; 4] = [
    "pgbackrest.conf",
    "tls/ca.crt",
    "tls/server.crt",
    "tls/server.key",
];

fn cell_name(i: usize) -> String {
    format!("c{:02}", i + 1)
}

/// A 16-cell topology; `variant` changes `[options]`, so every cell's config.
fn topology(root: &Path, variant: usize) -> String {
    let compress = ["zst", "lz4"][variant];
    let mut t = format!(
        r#"
stanza = "multigres"

[repo]
path = "/backup/repo"
retention_full = 7

[tls]
server_port_base = 18432
server_address = "127.0.0.1"

[options]
compress-type = "{compress}"

[defaults]
host = "localhost"
pg_path = "/{{cell}}/pg_data"
deploy_dir = "{root}/{{cell}}/pgbackrest"
"#,
        root = root.join("cells").display()
    );
    for i in 0..CELLS {
        t.push_str(&format!(
            "\n[cells.{}]\npg_port = {}\n",
            cell_name(i),
            5400 + i
        ));
    }
    t
}

/// A scratch fleet: the topology file flips between two variants.
struct Fleet {
    p: Pgbr,
    topo: PathBuf,
    /// Rendered config per variant, per cell.
    configs: [BTreeMap<String, String>; 2],
    /// TLS files per cell (they never change in these trials).
    tls: BTreeMap<String, BTreeMap<&'static str, Vec<u8>>>,
}

impl Fleet {
    fn new() -> Fleet {
        let p = Pgbr::new();
        let topo = p.path().join("topo.toml");
        let mut configs = [BTreeMap::new(), BTreeMap::new()];
        for (v, map) in configs.iter_mut().enumerate() {
            fs::write(&topo, topology(p.path(), v)).unwrap();
            let out = p.path().join(format!("render{v}"));
            p.run(&[
                "render",
                topo.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .expect_code(0);
            for i in 0..CELLS {
                let c = cell_name(i);
                map.insert(
                    c.clone(),
                    fs::read_to_string(out.join(&c).join("pgbackrest.conf")).unwrap(),
                );
            }
        }
        Fleet {
            p,
            topo,
            configs,
            tls: BTreeMap::new(),
        }
    }
    fn set_variant(&self, v: usize) {
        fs::write(&self.topo, topology(self.p.path(), v)).unwrap();
    }
    fn deploy_dir(&self, cell: &str) -> PathBuf {
        crate::harness::deploy_dir(&self.p, cell)
    }
    fn t(&self) -> &str {
        self.topo.to_str().unwrap()
    }
    fn apply(&self) -> Output {
        self.p.run(&["apply", self.t(), "--yes"])
    }
    /// The generation each cell's `current` names.
    fn live(&self) -> BTreeMap<String, u64> {
        (0..CELLS)
            .map(|i| {
                let c = cell_name(i);
                let link = fs::read_link(self.deploy_dir(&c).join("current"))
                    .unwrap_or_else(|e| panic!("{c}: `current` is not a readable link: {e}"));
                let n = link
                    .to_str()
                    .and_then(|s| s.strip_prefix("generations/"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{c}: `current` -> {}", link.display()));
                (c, n)
            })
            .collect()
    }
    /// The generation numbers in the store (the store must open).
    fn generations(&self) -> Vec<u64> {
        let out = self.p.run(&["generations", "--json"]).expect_code(0);
        let v: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("generations --json: {e}\n{}", out.stdout));
        v.as_array()
            .unwrap()
            .iter()
            .map(|g| g["number"].as_u64().expect("number"))
            .collect()
    }
    /// Checks that `cell`'s live generation dir holds exactly `variant`'s files.
    fn check_cell(&self, cell: &str, variant: usize, ctx: &str) {
        let cur = self.deploy_dir(cell).join("current");
        let mut found = Vec::new();
        walk(&cur, "", &mut found);
        found.sort();
        let mut want: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(found, want, "{ctx}: {cell}: files through `current`");
        let conf = fs::read_to_string(cur.join("pgbackrest.conf")).unwrap();
        assert!(
            conf == self.configs[variant][cell],
            "{ctx}: {cell}: config is not variant {variant}'s render"
        );
        let key = cur.join("tls/server.key");
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600,
            "{ctx}: {cell}: key mode"
        );
        let tls = &self.tls[cell];
        for (name, bytes) in tls {
            assert!(
                &fs::read(cur.join(name)).unwrap() == bytes,
                "{ctx}: {cell}: {name} differs"
            );
        }
    }
    fn record_tls(&mut self) {
        for i in 0..CELLS {
            let c = cell_name(i);
            let cur = self.deploy_dir(&c).join("current");
            let files = FILES[1..]
                .iter()
                .map(|f| (*f, fs::read(cur.join(f)).unwrap()))
                .collect();
            self.tls.insert(c, files);
        }
    }
    /// After a converging apply: every cell on `variant`, no pending
    /// change, no drift.
    fn check_converged(&self, variant: usize, ctx: &str) {
        for i in 0..CELLS {
            self.check_cell(&cell_name(i), variant, ctx);
        }
        self.p
            .run(&["plan", self.t(), "--detailed-exitcode"])
            .expect_code(0);
        let st = self.p.run(&["status", self.t(), "--json"]).expect_code(0);
        let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
        for c in v.as_array().unwrap() {
            assert_eq!(c["drift"], serde_json::json!([]), "{ctx}: drift: {c}");
            assert_eq!(c["pending"], "unchanged", "{ctx}: {c}");
        }
    }
}

/// Every file under `dir` (following the `current` link itself only).
fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let relname = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let m = fs::symlink_metadata(e.path()).unwrap();
        if m.is_dir() {
            walk(&e.path(), &relname, out);
        } else {
            assert!(m.is_file(), "{relname} is not a regular file");
            out.push(relname);
        }
    }
}

/// Where a kill landed, judged by what the disk and the store show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    BeforeCommit,
    AfterCommitBeforeFlip,
    MidFleet,
    AllFlipped,
    ExitedBeforeKill,
}

/// One trial: from a converged fleet on `1 - variant`, apply `variant`
/// and stop it (`kill_after`, or a failpoint). Returns the phase and the
/// time the converging apply took.
fn trial(
    f: &Fleet,
    variant: usize,
    kill_after: Option<Duration>,
    failpoint: Option<&str>,
    ctx: &str,
) -> (Phase, Duration) {
    let old = f.live();
    let gens_before = f.generations();
    let max_before = gens_before.iter().copied().max().unwrap_or(0);
    f.set_variant(variant);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgbr"));
    cmd.arg("--state")
        .arg(f.p.state())
        .args(["apply", f.t(), "--yes"])
        .env_remove("PGBR_STATE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(fp) = failpoint {
        cmd.env("PGBR_FAILPOINT", fp);
    }
    let mut child = cmd.spawn().unwrap();
    let mut exited = false;
    if let Some(delay) = kill_after {
        std::thread::sleep(delay);
        exited = child.try_wait().unwrap().is_some();
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    if let Some(fp) = failpoint {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("failpoint `{fp}` reached")),
            "{ctx}: failpoint not reached: {err}"
        );
    }

    // Invariants right after the kill.
    let gens = f.generations();
    let max_now = gens.iter().copied().max().unwrap_or(0);
    assert!(max_now <= max_before + 1, "{ctx}: {gens:?}");
    let live = f.live();
    let mut flipped = 0;
    for (cell, &n) in &live {
        if n == old[cell] {
            f.check_cell(cell, 1 - variant, ctx);
        } else {
            assert!(
                n > max_before && gens.contains(&n),
                "{ctx}: {cell} on generation {n}, neither its old {} nor a committed new one ({gens:?})",
                old[cell]
            );
            f.check_cell(cell, variant, ctx);
            flipped += 1;
        }
    }
    let phase = if exited {
        Phase::ExitedBeforeKill
    } else if max_now == max_before {
        Phase::BeforeCommit
    } else if flipped == 0 {
        Phase::AfterCommitBeforeFlip
    } else if flipped < CELLS {
        Phase::MidFleet
    } else {
        Phase::AllFlipped
    };

    // The next run converges.
    let start = Instant::now();
    f.apply().expect_code(0);
    let recovery = start.elapsed();
    f.check_converged(variant, ctx);
    // An interrupted run leaves no half-written generation behind for long.
    for i in 0..CELLS {
        let gens_dir = f.deploy_dir(&cell_name(i)).join("generations");
        for e in fs::read_dir(&gens_dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name.parse::<u64>().is_ok(),
                "{ctx}: stray `{name}` in {}",
                gens_dir.display()
            );
        }
    }
    (phase, recovery)
}

/// A fleet deployed on variant 0, with the duration of one full
/// 16-cell change measured.
fn fleet() -> (Fleet, Duration) {
    let mut f = Fleet::new();
    f.set_variant(0);
    f.apply().expect_code(0);
    f.record_tls();
    f.check_converged(0, "setup");
    // The fastest of four full changes: a spike on a busy machine would
    // otherwise stretch the kill window past the end of most applies.
    let mut fastest = Duration::MAX;
    for v in [1, 0, 1, 0] {
        f.set_variant(v);
        let start = Instant::now();
        f.apply().expect_code(0);
        fastest = fastest.min(start.elapsed());
    }
    f.check_converged(0, "setup");
    (f, fastest)
}

#[test]
fn killed_at_each_failpoint_converges() {
    let (f, _) = fleet();
    let mut variant = 1;
    use Phase::*;
    for (point, want) in [
        ("after-commit", AfterCommitBeforeFlip),
        ("between-cells", MidFleet),
        ("between-cells@8", MidFleet),
        ("partial-written", AfterCommitBeforeFlip),
        // Every generation dir is written before the first flip (several
        // at once), so a kill at any write leaves every cell on its old one.
        ("partial-written@9", AfterCommitBeforeFlip),
        ("before-flip", AfterCommitBeforeFlip),
        ("before-flip@16", MidFleet),
        ("after-flip", MidFleet),
        ("after-flip@5", MidFleet),
        ("after-flip@16", AllFlipped),
    ] {
        let (phase, _) = trial(&f, variant, None, Some(point), point);
        assert_eq!(phase, want, "{point}");
        variant = 1 - variant;
    }
}

#[test]
fn killed_at_random_moments_converges() {
    let trials: usize = std::env::var("PGBR_SOAK_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let seed: u64 = std::env::var("PGBR_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash soak: {trials} trials, PGBR_SOAK_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (f, duration) = fleet();
    // Kill anywhere from process start to the measured end.
    let window = duration.max(Duration::from_millis(20));
    let started = Instant::now();
    let mut phases: BTreeMap<Phase, Vec<Duration>> = BTreeMap::new();
    let mut recoveries = Vec::new();
    let mut variant = 1;
    for i in 0..trials {
        let delay = window.mul_f64(rng.random::<f64>());
        let ctx = format!("trial {i} (seed {seed}, kill after {delay:?})");
        let (phase, recovery) = trial(&f, variant, Some(delay), None, &ctx);
        phases.entry(phase).or_default().push(recovery);
        recoveries.push(recovery);
        variant = 1 - variant;
    }
    recoveries.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = recoveries.iter().sum::<Duration>() / trials.max(1) as u32;
    eprintln!(
        "crash soak: {trials}/{trials} trials passed in {:.1}s; 16-cell apply takes {:.0} ms, kill window {:.0} ms",
        started.elapsed().as_secs_f64(),
        ms(duration),
        ms(window)
    );
    for (phase, rec) in &phases {
        let mean = rec.iter().sum::<Duration>() / rec.len() as u32;
        eprintln!(
            "  killed {phase:?}: {} (recovery mean {:.0} ms)",
            rec.len(),
            ms(mean)
        );
    }
    if let (Some(first), Some(last)) = (recoveries.first(), recoveries.last()) {
        eprintln!(
            "  recovery (converging apply): min {:.0} ms, mean {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            ms(*first),
            ms(mean),
            ms(recoveries[recoveries.len() * 95 / 100]),
            ms(*last)
        );
    }
}
