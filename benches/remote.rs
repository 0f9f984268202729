//! pgbr over SSH on namespaced test hosts (`tests/it/hosts.rs`), each
//! figure next to its baseline in the same run (docs/benchmarks.md):
//!
//! * `first-apply`: `pgbr apply` of one cell per host onto empty hosts,
//!   against plain `ssh` writing the same four files per host (one
//!   connection per host: mkdir, `cat >` each file, `sync` them, a rename);
//! * `no-change-plan`: `pgbr plan` once everything is deployed, against
//!   opening one SSH connection to each host (`ssh HOST true`);
//!
//! both with the same parallelism (`[ssh] parallel`, [`PARALLEL`]), at 8
//! and 32 hosts. The split rows time what one host costs: a fresh
//! connection, a command over an open (multiplexed) connection, the write
//! of the four files with and without `sync`.
//!
//! `cargo bench --bench remote [FILTER]`; `PGBR_BENCH_HOSTS=8,32` sets the
//! sizes, `PGBR_BENCH_RUNS` the runs per figure (default 5). Needs root.
// Benchmarks print to a terminal or a log: a closed pipe is not their
// concern (clippy.toml disallows the std printing macros in pgbr).
#![allow(clippy::disallowed_macros)]

#[path = "../tests/it/hosts.rs"]
mod hosts;

use hosts::Hosts;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Hosts written or observed at once, by pgbr and by the baselines.
const PARALLEL: usize = 8;
/// The four files of a generation dir.
const FILES: [&str; 4] = [
    "pgbackrest.conf",
    "tls/ca.crt",
    "tls/server.crt",
    "tls/server.key",
];

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let sizes: Vec<usize> = std::env::var("PGBR_BENCH_HOSTS")
        .unwrap_or_else(|_| "8,32".into())
        .split(',')
        .map(|n| n.trim().parse().expect("PGBR_BENCH_HOSTS: numbers"))
        .collect();
    let runs: usize = std::env::var("PGBR_BENCH_RUNS")
        .ok()
        .map_or(5, |n| n.parse().expect("PGBR_BENCH_RUNS: a number"));
    // `make bench` passes no filter; `cargo bench render` skips these.
    if !filters.is_empty() && !filters.iter().any(|f| f.starts_with("remote")) {
        return;
    }
    for n in sizes {
        bench_hosts(n, runs);
    }
}

/// Minimum and median of `runs` timings of `f` (after one untimed run).
fn time(runs: usize, f: impl FnMut()) -> (Duration, Duration) {
    time_after(runs, || {}, f)
}

/// Like [`time`], with an untimed `setup` before each run of `f`.
fn time_after(runs: usize, mut setup: impl FnMut(), mut f: impl FnMut()) -> (Duration, Duration) {
    setup();
    f();
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            setup();
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    t.sort();
    (t[0], t[runs / 2])
}

fn row(name: &str, (min, median): (Duration, Duration), note: &str) {
    println!(
        "{name:<40} min {:>9.1} ms   median {:>9.1} ms   {note}",
        min.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3
    );
}

/// Runs `jobs` with at most `parallel` at once; panics if one fails.
fn run_parallel(parallel: usize, jobs: Vec<Command>) {
    let mut pending = jobs.into_iter();
    let mut running: Vec<(Child, String)> = Vec::new();
    loop {
        while running.len() < parallel {
            let Some(mut cmd) = pending.next() else { break };
            let what = format!("{cmd:?}");
            running.push((cmd.spawn().expect("spawn"), what));
        }
        if running.is_empty() {
            return;
        }
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].0.try_wait().expect("wait") {
                let (_, what) = running.swap_remove(i);
                assert!(status.success(), "{what}: {status}");
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// `ssh` to host `i` with the hosts' config and `opts` (`-o` values).
fn ssh(hosts: &Hosts, i: usize, opts: &[String]) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-F")
        .arg(hosts.ssh_config())
        .args(["-o", "BatchMode=yes"]);
    for o in opts {
        c.arg("-o").arg(o);
    }
    c.arg(hosts.addr(i).to_string()).stdout(Stdio::null());
    c
}

/// A shell script that writes `files` into `dir` as pgbr lays a generation
/// out (temp dir, files, sync, rename into place).
fn write_script(dir: &str, files: &[(String, Vec<u8>)], sync: bool) -> String {
    let mut s = format!("set -e\nrm -rf {dir}.tmp\nmkdir -p {dir}.tmp/tls\ncd {dir}.tmp\n");
    for (name, bytes) in files {
        let text = String::from_utf8(bytes.clone()).expect("text files");
        s.push_str(&format!("cat > {name} <<'PGBR_EOF'\n{text}PGBR_EOF\n"));
    }
    s.push_str("chmod 600 tls/server.key\n");
    if sync {
        s.push_str("sync pgbackrest.conf tls/ca.crt tls/server.crt tls/server.key . tls\n");
    }
    s.push_str(&format!("cd /\nrm -rf {dir}\nmv {dir}.tmp {dir}\n"));
    s
}

fn topology(hosts: &Hosts, dir: &Path) -> PathBuf {
    let mut t = format!(
        r#"stanza = "bench"

[repo]
path = "/backup/repo"
retention_full = 7

[tls]
server_port_base = 18432
server_address = "0.0.0.0"

[ssh]
config_file = "{config}"
parallel = {PARALLEL}

[defaults]
target = "ssh://root@{{host}}"
pg_path = "/{{cell}}/pg_data"
deploy_dir = "{cells}/{{cell}}/pgbackrest"
"#,
        config = hosts.ssh_config().display(),
        cells = hosts.cells_dir().display()
    );
    for i in 0..hosts.len() {
        t.push_str(&format!(
            "\n[cells.c{i:03}]\nhost = \"{}\"\npg_port = 5432\n",
            hosts.addr(i)
        ));
    }
    let path = dir.join("topo.toml");
    std::fs::write(&path, t).unwrap();
    path
}

/// Runs pgbr; `Err` with its output when it fails.
fn pgbr(state: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_pgbr"))
        .arg("--state")
        .arg(state)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pgbr");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs pgbr and notes when each line of its output arrived; panics if it
/// fails. The phases of a run are read from those lines (see [`split`]).
fn pgbr_lines(state: &Path, args: &[&str]) -> (Duration, Vec<(Duration, String)>) {
    use std::io::BufRead;
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgbr"))
        .arg("--state")
        .arg(state)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pgbr");
    let stamp = |r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            std::io::BufReader::new(r)
                .lines()
                .map_while(Result::ok)
                .map(|l| (start.elapsed(), l))
                .collect::<Vec<_>>()
        })
    };
    let out = stamp(Box::new(child.stdout.take().unwrap()));
    let err = stamp(Box::new(child.stderr.take().unwrap()));
    let status = child.wait().unwrap();
    let total = start.elapsed();
    let mut lines = out.join().unwrap();
    lines.extend(err.join().unwrap());
    lines.sort();
    assert!(status.success(), "pgbr {args:?}: {status}: {lines:?}");
    (total, lines)
}

/// Where a run's time went, from its output lines: until the plan is
/// printed (connect, copy pgbr if missing, observe), until the rolling
/// phase starts (`generation N: …`: issue, commit, write the generation
/// dirs), until it ends (`Apply complete`: the flips, one cell at a
/// time), and until pgbr exits (closing every connection).
fn split(total: Duration, lines: &[(Duration, String)]) -> [Duration; 4] {
    let at = |prefix: &str| {
        lines
            .iter()
            .find(|(_, l)| l.starts_with(prefix))
            .map(|(t, _)| *t)
    };
    let planned = at("Plan for").unwrap_or(total);
    let rolling = at("generation ").unwrap_or(planned);
    let rolled = at("Apply complete").unwrap_or(rolling);
    [planned, rolling - planned, rolled - rolling, total - rolled]
}

/// Prints the median of each phase of `splits`.
fn split_row(name: &str, splits: &mut [[Duration; 4]]) {
    let median = |i: usize, s: &mut [[Duration; 4]]| {
        s.sort_by_key(|x| x[i]);
        s[s.len() / 2][i].as_secs_f64() * 1e3
    };
    let [a, b, c, d] = [0, 1, 2, 3].map(|i| median(i, splits));
    println!(
        "{name:<40} connect+observe {a:>7.1} ms   write {b:>7.1} ms   roll {c:>7.1} ms   close {d:>6.1} ms   (medians)"
    );
}

fn bench_hosts(n: usize, runs: usize) {
    let started = Instant::now();
    let hosts = Hosts::start(n);
    println!(
        "-- {n} hosts (up in {:.1} s), parallel {PARALLEL}, {runs} runs per figure",
        started.elapsed().as_secs_f64()
    );
    let scratch = tempfile::tempdir().unwrap();
    let topo = topology(&hosts, scratch.path());
    let topo = topo.to_str().unwrap();
    let cells = hosts.cells_dir().to_path_buf();
    // Empty hosts; `cached`: pgbr's agent stays in each host's cache
    // (every apply after a host's first with this build).
    let clear = |hosts: &Hosts, cached: bool| {
        let cache = if cached { "" } else { "/root/.cache" };
        for i in 0..n {
            hosts.sh(i, &format!("rm -rf {}/* {cache}", cells.display()));
        }
    };

    // The files pgbr deploys (the same bytes for the baseline): from one
    // real apply when pgbr can deploy to these hosts, else rendered ones.
    let state = scratch.path().join("state");
    let first = pgbr(&state, &["apply", topo, "--yes"]);
    let files: Vec<Vec<(String, Vec<u8>)>> = (0..n)
        .map(|i| {
            let cur = cells.join(format!("c{i:03}/pgbackrest/current"));
            FILES
                .iter()
                .map(|f| {
                    let bytes = hosts.read(i, &cur.join(f)).unwrap_or_else(|| {
                        format!("# {f} of c{i:03}: stand-in\n")
                            .repeat(20)
                            .into_bytes()
                    });
                    (f.to_string(), bytes)
                })
                .collect()
        })
        .collect();

    // ---- first apply
    let base_dir = cells.join("baseline/generations/1");
    let base_dir = base_dir.to_str().unwrap();
    let write_all = |sync: bool| {
        let jobs = (0..n)
            .map(|i| {
                let mut c = ssh(&hosts, i, &[]);
                c.arg("sh").stdin(Stdio::piped());
                (c, write_script(base_dir, &files[i], sync))
            })
            .collect::<Vec<_>>();
        // Each job's script goes to its ssh's stdin.
        let mut pending = jobs.into_iter();
        let mut running: Vec<Child> = Vec::new();
        loop {
            while running.len() < PARALLEL {
                let Some((mut cmd, script)) = pending.next() else {
                    break;
                };
                let mut child = cmd.spawn().expect("spawn ssh");
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(script.as_bytes())
                    .unwrap();
                running.push(child);
            }
            if running.is_empty() {
                break;
            }
            running.retain_mut(|c| match c.try_wait().expect("wait") {
                Some(s) => {
                    assert!(s.success(), "baseline write: {s}");
                    false
                }
                None => true,
            });
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    let base = time(runs, || write_all(true));
    row(
        &format!("remote/first-apply/{n}-hosts/ssh"),
        base,
        "plain ssh: 4 files per host, synced, renamed",
    );
    match &first {
        Ok(()) => {
            for cached in [false, true] {
                let mut apply_splits = Vec::new();
                let net = time_after(
                    runs,
                    || {
                        clear(&hosts, cached);
                        let _ = std::fs::remove_dir_all(&state);
                    },
                    || {
                        let (total, lines) = pgbr_lines(&state, &["apply", topo, "--yes"]);
                        apply_splits.push(split(total, &lines));
                    },
                );
                // What was copied is the agent binary, not all of pgbr
                // (which pgbr copies when none of its build is next to it).
                let copied = hosts.sh(0, "ls /root/.cache/pgbr/*/");
                assert_eq!(copied.trim(), "pgbr-agent", "the host's cache");
                let name = if cached { "pgbr-cached" } else { "pgbr" };
                row(
                    &format!("remote/first-apply/{n}-hosts/{name}"),
                    net,
                    &format!(
                        "{:.2}x the ssh baseline (median){}",
                        net.1.as_secs_f64() / base.1.as_secs_f64(),
                        if cached {
                            ": this build's agent already on the hosts"
                        } else {
                            ": copies its agent to each host"
                        }
                    ),
                );
                // The untimed first run (see `time_after`) is left out.
                split_row(
                    &format!("remote/first-apply/{n}-hosts/{name}/split"),
                    &mut apply_splits[1..],
                );
            }
        }
        Err(e) => println!(
            "remote/first-apply/{n}-hosts/pgbr        not measured: pgbr cannot deploy to these hosts ({})",
            e.lines().next().unwrap_or("")
        ),
    }

    // ---- no-change plan
    let connect = time(runs, || {
        run_parallel(
            PARALLEL,
            (0..n)
                .map(|i| {
                    let mut c = ssh(&hosts, i, &[]);
                    c.arg("true");
                    c
                })
                .collect(),
        )
    });
    row(
        &format!("remote/no-change-plan/{n}-hosts/ssh"),
        connect,
        "one `ssh HOST true` per host",
    );
    if first.is_ok() {
        pgbr(&state, &["apply", topo, "--yes"]).expect("pgbr apply");
        let mut plan_splits = Vec::new();
        let plan = time(runs, || {
            let (total, lines) = pgbr_lines(&state, &["plan", topo, "--detailed-exitcode"]);
            plan_splits.push(split(total, &lines));
        });
        row(
            &format!("remote/no-change-plan/{n}-hosts/pgbr"),
            plan,
            &format!(
                "{:.2}x the ssh baseline (median)",
                plan.1.as_secs_f64() / connect.1.as_secs_f64()
            ),
        );
        split_row(
            &format!("remote/no-change-plan/{n}-hosts/pgbr/split"),
            &mut plan_splits[1..],
        );
    } else {
        println!("remote/no-change-plan/{n}-hosts/pgbr    not measured (see above)");
    }

    // ---- where the time goes, per host, one at a time
    let one = time(runs, || {
        run_parallel(
            1,
            vec![{
                let mut c = ssh(&hosts, 0, &[]);
                c.arg("true");
                c
            }],
        )
    });
    row(
        "remote/split/connect (1 host)",
        one,
        "fresh connection, `true`",
    );
    let mux = [
        "ControlMaster=auto".to_string(),
        "ControlPersist=60".to_string(),
        format!("ControlPath={}", scratch.path().join("cm").display()),
    ];
    let mut warm = ssh(&hosts, 0, &mux);
    warm.arg("true");
    run_parallel(1, vec![warm]);
    let muxed = time(runs, || {
        let mut c = ssh(&hosts, 0, &mux);
        c.arg("true");
        run_parallel(1, vec![c]);
    });
    row(
        "remote/split/round-trip (1 host)",
        muxed,
        "over an open multiplexed connection: what a rolling flip costs at least",
    );
    for sync in [false, true] {
        let t = time(runs, || {
            let mut c = ssh(&hosts, 0, &mux);
            c.arg("sh").stdin(Stdio::piped());
            let mut child = c.spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(write_script(base_dir, &files[0], sync).as_bytes())
                .unwrap();
            assert!(child.wait().unwrap().success());
        });
        let name = if sync { "write+sync" } else { "write" };
        row(
            &format!("remote/split/{name} (1 host)"),
            t,
            "4 files over an open connection",
        );
    }
    let _ = Command::new("ssh")
        .arg("-F")
        .arg(hosts.ssh_config())
        .args(["-o", &mux[2], "-O", "exit", &hosts.addr(0).to_string()])
        .stderr(Stdio::null())
        .status();
}
