//! pgbr over SSH on the namespaced test hosts (issue 10, SPEC §9). Every
//! assertion is about SPEC §9's promises: files
//! on the right host only with exact bytes and 0600 keys, drift seen and
//! repaired on a host, rollback and gc on the hosts, unreachable hosts and
//! changed or unknown host keys named with the cell, the address and ssh's
//! words with nothing changed anywhere, `sudo -n` for a non-root login,
//! and a host lost in the rolling phase leaving every host on a complete
//! generation (the crash-soak invariants) with the next apply converging.

use crate::harness::{Output, Pgbr};
use crate::hosts::{Hosts, Sudo};
use std::path::PathBuf;

// ------------------------------------------------------------------ pgbr over SSH

/// The error pgbr printed, from its `error:` line to the end (progress
/// lines before it name cells too).
fn error_part(stderr: &str) -> &str {
    stderr.find("error: ").map_or("", |i| &stderr[i..])
}

/// How often `cell` is named in `text`, as a word of its own (a path
/// through its deploy dir is another word).
fn mentions(text: &str, cell: &str) -> usize {
    text.split(|c: char| !c.is_ascii_alphanumeric() && !"/._-".contains(c))
        .filter(|w| *w == cell)
        .count()
}

/// The files of every generation dir.
const FILES: [&str; 4] = [
    "pgbackrest.conf",
    "tls/ca.crt",
    "tls/server.crt",
    "tls/server.key",
];

/// A fleet: cell `c<i+1>` on host `i`, deployed by pgbr over SSH.
struct Fleet {
    hosts: Hosts,
    p: Pgbr,
    topo: PathBuf,
}

impl Fleet {
    fn new(n: usize) -> Fleet {
        Fleet {
            hosts: Hosts::start(n),
            p: Pgbr::new(),
            topo: PathBuf::new(),
        }
    }
    fn cell(i: usize) -> String {
        format!("c{}", i + 1)
    }
    /// Writes the topology: `compress` varies every config, `ssh` and
    /// `defaults` are added to the `[ssh]` and `[defaults]` tables,
    /// `cells` to each cell (`{i}` is its host's index).
    fn write(&mut self, compress: &str, ssh: &str, defaults: &str, cells: &str) {
        let mut t = format!(
            r#"
stanza = "remote"

[repo]
path = "/backup/repo"
retention_full = 7

[tls]
server_port_base = 18432
server_address = "0.0.0.0"

[options]
compress-type = "{compress}"

[ssh]
config_file = "{config}"
options = ["ConnectTimeout=2", "ServerAliveInterval=1", "ServerAliveCountMax=2"]
parallel = 4
{ssh}

[defaults]
target = "ssh://root@{{host}}"
pg_path = "/{{cell}}/pg_data"
deploy_dir = "{cells}/{{cell}}/pgbackrest"
{defaults}
"#,
            config = self.hosts.ssh_config().display(),
            cells = self.hosts.cells_dir().display(),
        );
        for i in 0..self.hosts.len() {
            t.push_str(&format!(
                "\n[cells.{}]\nhost = \"{}\"\npg_port = 5432\n{}\n",
                Fleet::cell(i),
                self.hosts.addr(i),
                cells.replace("{i}", &i.to_string())
            ));
        }
        self.topo = self.p.write("topo.toml", &t);
    }
    fn t(&self) -> &str {
        self.topo.to_str().unwrap()
    }
    fn run(&self, args: &[&str]) -> Output {
        self.p.run(args)
    }
    fn deploy_dir(&self, i: usize) -> PathBuf {
        self.hosts
            .cells_dir()
            .join(Fleet::cell(i))
            .join("pgbackrest")
    }
    /// The generation host `i`'s cell is on (`None`: no `current`).
    fn live(&self, i: usize) -> Option<u64> {
        let link = self
            .hosts
            .read_link(i, &self.deploy_dir(i).join("current"))?;
        let n = link
            .strip_prefix("generations/")
            .and_then(|n| n.parse().ok());
        Some(n.unwrap_or_else(|| panic!("{}: `current` -> {link}", Fleet::cell(i))))
    }
    /// The generation dirs on host `i`.
    fn generation_dirs(&self, i: usize) -> Vec<u64> {
        let out = self.hosts.on(
            i,
            &[
                "ls",
                self.deploy_dir(i).join("generations").to_str().unwrap(),
            ],
        );
        let mut v: Vec<u64> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        v.sort();
        v
    }
    /// The configs `pgbr render` writes for the current topology.
    fn rendered(&self) -> Vec<Vec<u8>> {
        let out = self.p.path().join("render");
        let _ = std::fs::remove_dir_all(&out);
        self.run(&["render", self.t(), "--out", out.to_str().unwrap()])
            .expect_code(0);
        (0..self.hosts.len())
            .map(|i| std::fs::read(out.join(Fleet::cell(i)).join("pgbackrest.conf")).unwrap())
            .collect()
    }
    /// The crash-soak invariants on every host: `current` names a complete
    /// generation (exactly its four files, the key 0600, the config one of
    /// `configs`' renders for that cell), and nothing of this cell is on
    /// another host or on this machine. Returns each cell's generation.
    #[track_caller]
    fn check_every_host(&self, configs: &[&[Vec<u8>]], ctx: &str) -> Vec<u64> {
        let mut live = Vec::new();
        for i in 0..self.hosts.len() {
            let c = Fleet::cell(i);
            let Some(g) = self.live(i) else {
                panic!("{ctx}: {c}: no `current` on host {}", self.hosts.addr(i))
            };
            let cur = self.deploy_dir(i).join("current");
            let tree = self.hosts.tree(i, &cur.join("."));
            let files: Vec<&str> = tree
                .iter()
                .filter(|l| l.contains(" f "))
                .map(|l| l.split(' ').next().unwrap())
                .collect();
            let mut want = FILES.to_vec();
            want.sort();
            assert_eq!(files, want, "{ctx}: {c}: files of generation {g}");
            let key = tree
                .iter()
                .find(|l| l.starts_with("tls/server.key "))
                .unwrap();
            assert!(key.contains(" f 600 "), "{ctx}: {c}: key is `{key}`");
            let conf = self.hosts.read(i, &cur.join("pgbackrest.conf")).unwrap();
            assert!(
                configs.iter().any(|v| v[i] == conf),
                "{ctx}: {c}: generation {g}'s config is no render of the topology:\n{}",
                String::from_utf8_lossy(&conf)
            );
            for j in (0..self.hosts.len()).filter(|&j| j != i) {
                assert!(
                    self.hosts.tree(j, &self.deploy_dir(i)).is_empty(),
                    "{ctx}: {c}'s files are on host {}",
                    self.hosts.addr(j)
                );
            }
            live.push(g);
        }
        let local: Vec<_> = std::fs::read_dir(self.hosts.cells_dir()).unwrap().collect();
        assert!(
            local.is_empty(),
            "{ctx}: cells deployed on this machine: {local:?}"
        );
        live
    }
    /// While host `i` cannot be used: `plan`, `status` and `apply` each
    /// exit 1 (SPEC §9: a plan of unseen cells is not a plan, and apply
    /// changes nothing while a cell it targets cannot be observed), name
    /// the cell, its address and `words` (ssh's, the hint's), and no host
    /// changed: every cell still on generation 1 of `zst`, no other
    /// generation dir written. Returns apply's stderr.
    #[track_caller]
    fn refused(&self, i: usize, words: &[&str], zst: &[Vec<u8>], ctx: &str) -> String {
        let addr = self.hosts.addr(i).to_string();
        // The cell once, by the line that lists it; then the address.
        let cell = format!("{}: reach `ssh://root@{addr}`: ", Fleet::cell(i));
        let mut said = String::new();
        for args in [
            vec!["plan", self.t()],
            vec!["status", self.t()],
            vec!["apply", self.t(), "--yes"],
        ] {
            let out = self.run(&args).expect_code(1);
            for word in [cell.as_str(), addr.as_str()].iter().chain(words) {
                assert!(
                    out.stderr.contains(word),
                    "{ctx}: {args:?}: no `{word}`:\n{}",
                    out.stderr
                );
            }
            assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
            assert_eq!(
                mentions(error_part(&out.stderr), &Fleet::cell(i)),
                1,
                "{ctx}: {args:?}:\n{}",
                out.stderr
            );
            if args[0] == "status" {
                let row = out.stdout.lines().find(|l| l.starts_with(&Fleet::cell(i)));
                assert!(
                    row.is_some_and(|r| r.contains("unreachable")),
                    "{ctx}: status:\n{}",
                    out.stdout
                );
            }
            said = out.stderr;
        }
        assert_eq!(self.check_every_host(&[zst], ctx), [1, 1, 1]);
        for j in 0..self.hosts.len() {
            assert_eq!(self.generation_dirs(j), [1], "{ctx}: written on host {j}");
        }
        said
    }
    #[track_caller]
    fn converged(&self, ctx: &str) {
        self.run(&["plan", self.t(), "--detailed-exitcode"])
            .expect_code(0);
        let st = self.run(&["status", self.t(), "--json"]).expect_code(0);
        let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
        for c in v.as_array().unwrap() {
            assert_eq!(c["drift"], serde_json::json!([]), "{ctx}: drift: {c}");
            assert_eq!(c["pending"], "unchanged", "{ctx}: {c}");
        }
    }
}

/// Deploy over SSH, drift on one host, a change, rollback and gc: each
/// host ends up with its cell's exact bytes, and nothing elsewhere.
#[test]
fn ssh_deploy_drift_rollback_gc() {
    let mut f = Fleet::new(3);
    f.write("zst", "", "", "");
    let zst = f.rendered();
    let out = f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    assert_eq!(
        f.check_every_host(&[&zst], "first apply"),
        [1, 1, 1],
        "{out:?}"
    );
    f.converged("first apply");
    // A no-change plan logs in to each host once (one master per host;
    // the probe, the copy check and the agent share it).
    let logins = |f: &Fleet| -> Vec<usize> {
        (0..3)
            .map(|i| f.hosts.sshd_log(i).matches("Accepted publickey").count())
            .collect()
    };
    let before = logins(&f);
    f.run(&["plan", f.t(), "--detailed-exitcode"])
        .expect_code(0);
    let after = logins(&f);
    for i in 0..3 {
        assert_eq!(
            after[i] - before[i],
            1,
            "logins to host {i}: {before:?} -> {after:?}"
        );
    }

    // Drift on host 2: status names it, apply repairs it.
    let conf = f.deploy_dir(1).join("current/pgbackrest.conf");
    f.hosts.sh(
        1,
        &format!("chmod u+w {0}; echo '# edited' >> {0}", conf.display()),
    );
    f.run(&["plan", f.t(), "--detailed-exitcode"])
        .expect_code(2);
    let st = f.run(&["status", f.t(), "--json"]).expect_code(2);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    let drifted: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["drift"] != serde_json::json!([]))
        .map(|c| c["cell"].as_str().unwrap())
        .collect();
    assert_eq!(drifted, ["c2"], "{}", st.stdout);
    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    f.check_every_host(&[&zst], "drift repaired");
    f.converged("drift repaired");

    // A change everywhere, then back with rollback.
    f.write("lz4", "", "", "");
    let lz4 = f.rendered();
    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    let changed = f.check_every_host(&[&lz4], "changed");
    assert!(changed.iter().all(|&g| g > 1), "{changed:?}");
    f.run(&["rollback", "--yes"]).expect_code(0);
    f.check_every_host(&[&zst], "rolled back");
    f.write("zst", "", "", "");
    f.converged("rolled back");

    // gc removes the generation dirs no longer kept, on the hosts.
    f.run(&["gc", "--keep", "1"]).expect_code(0);
    for i in 0..3 {
        let live = f.live(i).unwrap();
        assert_eq!(f.generation_dirs(i), [live], "host {}", f.hosts.addr(i));
    }
    f.check_every_host(&[&zst], "after gc");
}

/// An unreachable host, a refused login (the key ssh offers is not in the
/// host's authorized keys) and a changed host key: `plan`, `status` and
/// `apply` name the cell, its address and ssh's words, exit 1, and change
/// nothing anywhere; once the host is back (its key authorized or
/// trusted), apply converges.
#[test]
fn ssh_unreachable_host_refused_login_and_changed_host_key() {
    let mut f = Fleet::new(3);
    f.write("zst", "", "", "");
    let zst = f.rendered();
    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    f.write("lz4", "", "", "");
    let lz4 = f.rendered();

    f.hosts.cut(2);
    f.refused(2, &["timed out"], &zst, "unreachable");
    // Leaving the unreachable cell out plans the others.
    let out = f.run(&["plan", f.t(), "--cells", "c1,c2"]).expect_code(0);
    // (A word of its own: a serial's hex may well contain `c3`.)
    let names_c3 = out
        .stdout
        .split_whitespace()
        .any(|w| w.trim_end_matches(':') == "c3");
    assert!(!names_c3, "{}", out.stdout);
    f.hosts.reconnect(2);

    // The first cell of the rolling order refuses the login: no other
    // host gets anything either.
    f.hosts.refuse_key(0, "root");
    f.refused(
        0,
        &[
            "the host refused the login: root@",
            "Permission denied (publickey)",
            "check the login user of `target` and the key ssh offers",
        ],
        &zst,
        "refused login",
    );
    f.hosts.accept_key(0, "root");

    f.hosts.change_host_key(1);
    f.refused(
        1,
        &["Host key verification failed"],
        &zst,
        "changed host key",
    );
    // An unknown host key is refused as well: never accepted on first use.
    f.hosts.forget_host_key(1);
    let out = f.run(&["plan", f.t()]).expect_code(1);
    assert!(out.stderr.contains("c2"), "{}", out.stderr);
    f.hosts.trust_host_key(1);

    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    f.check_every_host(&[&lz4], "converged");
    f.converged("converged");
}

/// A non-root login: `[ssh] sudo = true` deploys through `sudo -n`; a
/// sudo that wants a password fails fast, names the cell, and deploys
/// nothing there.
#[test]
fn ssh_non_root_login_with_sudo() {
    let mut f = Fleet::new(2);
    let ok = f.hosts.add_user(0, Sudo::Passwordless);
    let pw = f.hosts.add_user(1, Sudo::Password);
    let users = [ok.clone(), pw.clone()];
    let cells = "target = \"ssh://USER{i}@{host}\"\n";
    f.write("zst", "sudo = true", "owner = \"root\"", cells);
    let topo = std::fs::read_to_string(&f.topo)
        .unwrap()
        .replace("USER0", &users[0])
        .replace("USER1", &users[1]);
    std::fs::write(&f.topo, topo).unwrap();

    let out = f.run(&["apply", f.t(), "--yes"]).expect_code(1);
    for word in ["c2", &f.hosts.addr(1).to_string(), "sudo", "password"] {
        assert!(out.stderr.contains(word), "no `{word}`:\n{}", out.stderr);
    }
    let error = error_part(&out.stderr);
    assert_eq!(mentions(error, "c2"), 1, "{}", out.stderr);
    assert!(
        error.contains("give the login user passwordless sudo"),
        "{error}"
    );
    assert!(f.live(0).is_none() && f.live(1).is_none(), "{out:?}");

    let out = f
        .run(&["apply", f.t(), "--yes", "--cells", "c1"])
        .expect_code(0);
    assert_eq!(f.live(0), Some(1), "{out:?}");
    let tree = f.hosts.tree(0, &f.deploy_dir(0).join("current/."));
    assert!(
        tree.iter().any(|l| l == "tls/server.key f 600 root"),
        "{tree:?}"
    );
}

/// A host lost during the rolling phase (its sshd and sessions killed
/// while the cell before it activates): the apply stops with its own exit
/// code; the cell already switched stays on its new, complete generation,
/// later cells are not started; every host holds a complete generation;
/// the next apply converges.
#[test]
fn ssh_host_lost_during_rolling_phase() {
    let mut f = Fleet::new(3);
    let p = f.paused_at(0, "activate", "");
    f.lose(&p, 1, |h| h.crash(1));
    f.hosts.boot(1);
    f.converges_after_loss(&p, "host lost");
}

/// A host lost right after its own flip (killed while its `activate`
/// runs): nothing can be reverted over a dead link, so the cell stays on
/// the generation its `current` names, its new and complete one (SPEC §9:
/// "cells already switched stay on their new, complete generation"),
/// recorded as interrupted after its flip; later cells are not started
/// (their hook never ran); once the host is back, `status` says what is
/// pending and the next apply runs that cell's `activate` again and
/// converges.
#[test]
fn ssh_host_lost_after_its_flip() {
    let mut f = Fleet::new(3);
    let (said, _) = f.lost_after_flip("activate", "", |h| h.crash(1), |f| f.hosts.boot(1));
    assert!(
        said.contains("closed by remote host"),
        "no ssh words:\n{said}"
    );
}

/// A host that stops answering in the middle of a request (its sshd
/// frozen while the cell's health command runs; the link stays up, the
/// kernel still acknowledges): the wait is bounded by ssh's keepalives,
/// which the user sets in `[ssh] options` (here 1 s × 2), not by the
/// request's own bound (the hook timeout of 120 s plus a margin). The
/// apply stops with `HOST_LOST` in ssh's words; once the host answers
/// again, the next apply converges.
#[test]
fn ssh_host_frozen_mid_request() {
    let mut f = Fleet::new(3);
    let (said, took) =
        f.lost_after_flip("health_command", "", |h| h.freeze(1), |f| f.hosts.thaw(1));
    assert!(
        took < std::time::Duration::from_secs(60),
        "lost after {took:?}, not within ssh's keepalive bound:\n{said}"
    );
    assert!(said.contains("not responding"), "no ssh words:\n{said}");
}

/// A host-side pgbr that stops answering while the host's sshd still
/// does (its agent frozen while c2's `activate` runs, as on a hung
/// filesystem; the keepalives pass): the request is bounded by its own
/// limit, for a hook the cell's `hook_timeout_seconds` (here 5) plus a
/// margin of 30 s. The apply stops with `HOST_LOST` naming that bound;
/// once the agent runs again (and ends with its session), the next apply
/// converges.
#[test]
fn ssh_agent_hung_mid_hook() {
    use nix::sys::signal::Signal;
    let mut f = Fleet::new(3);
    let (said, _) = f.lost_after_flip(
        "activate",
        "hook_timeout_seconds = 5",
        |h| h.signal_agents(1, Signal::SIGSTOP),
        |f| f.hosts.signal_agents(1, Signal::SIGCONT),
    );
    assert!(said.contains("no answer within 35s"), "{said}");
}

/// `rotate` over SSH: every host gets a new leaf (its serial in `status`
/// changes, the key stays 0600), `activate` runs on the cell's own host
/// with its environment, and nothing of pgbr is left running or in the
/// temp dir on this machine once a command ends (masters closed, control
/// dirs removed).
#[test]
fn ssh_rotate_runs_hooks_on_the_hosts_and_leaves_nothing_behind() {
    let mut f = Fleet::new(2);
    let hook = format!(
        "activate = \"echo $PGBR_CELL $PGBR_GENERATION >> {}/activated\"",
        f.hosts.cells_dir().display()
    );
    f.write("zst", "", &hook, "");
    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    let serials = |f: &Fleet| -> Vec<String> {
        let st = f.run(&["status", f.t(), "--json"]).expect_code(0);
        let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["serial"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = serials(&f);
    let rotate = f.p.spawn(&["rotate", f.t(), "--yes"]);
    let pid = rotate.id();
    let out = rotate.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let after = serials(&f);
    for i in 0..2 {
        assert_ne!(
            before[i],
            after[i],
            "{}: leaf not re-issued",
            Fleet::cell(i)
        );
    }
    let zst = f.rendered();
    assert_eq!(f.check_every_host(&[&zst], "rotated"), [2, 2]);
    f.converged("rotated");
    // Each host ran its own cell's hook, once per generation, and only there.
    let log = f.hosts.cells_dir().join("activated");
    for i in 0..2 {
        let c = Fleet::cell(i);
        let ran = String::from_utf8(f.hosts.read(i, &log).expect("hook ran on the host")).unwrap();
        assert_eq!(ran, format!("{c} 1\n{c} 2\n"), "host {}", f.hosts.addr(i));
    }
    assert!(!log.exists(), "a hook ran on this machine");

    // The rotate's masters are closed (no SSH connection left on the
    // hosts) and its private control dir is gone.
    for i in 0..2 {
        crate::hosts::wait_for(
            "the hosts' SSH connections to close",
            std::time::Duration::from_secs(20),
            || {
                let out = f.hosts.on(i, &["ss", "-Htn", "state", "established"]);
                out.status.success() && out.stdout.is_empty()
            },
        );
    }
    let prefix = format!("pgbr-ssh-{pid}-");
    for tmp in [std::env::temp_dir(), "/tmp".into()] {
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .collect();
        assert!(left.is_empty(), "control dirs left: {left:?}");
    }
}

/// No SSH connection outlives a run: not when pgbr is killed in the
/// middle of an apply (each host's master is its agent's own session,
/// which ends once pgbr's end of it is gone), and not when the operator's
/// ssh config keeps masters (`ControlPersist 30s`: pgbr then closes them
/// itself).
#[test]
fn ssh_no_connection_outlives_a_run() {
    let mut f = Fleet::new(2);
    let p = f.paused_at(0, "activate", "");
    let mut apply = f.p.spawn(&["apply", f.t(), "--yes"]);
    crate::hosts::wait_for(
        "c1's activation",
        std::time::Duration::from_secs(60),
        || f.hosts.read(0, &p.flag).is_some(),
    );
    apply.kill().unwrap();
    apply.wait().unwrap();
    f.hosts.sh(0, &format!("touch {}", p.go.display()));
    let closed = |f: &Fleet, what: &str| {
        for i in 0..2 {
            crate::hosts::wait_for(what, std::time::Duration::from_secs(15), || {
                let out = f.hosts.on(i, &["ss", "-Htn", "state", "established"]);
                out.status.success() && out.stdout.is_empty()
            });
        }
    };
    closed(&f, "the killed run's SSH connections to close");

    let config = f.hosts.ssh_config();
    let persist = f.p.write(
        "persist_config",
        &format!("ControlPersist 30s\nInclude {}\n", config.display()),
    );
    let topo = std::fs::read_to_string(&f.topo).unwrap().replace(
        &format!("config_file = \"{}\"", config.display()),
        &format!("config_file = \"{}\"", persist.display()),
    );
    std::fs::write(&f.topo, topo).unwrap();
    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    closed(&f, "masters kept by ControlPersist to be closed");
    f.converged("after a killed run");
}

/// A host cut off the network while the rolling phase runs (no FIN, no
/// RST: a silent stall) is lost within ssh's keepalive bound; the apply
/// stops with `HOST_LOST` naming the cell, the address and ssh's words;
/// once the host is back the next apply converges.
#[test]
fn ssh_host_cut_off_during_rolling_phase() {
    let mut f = Fleet::new(3);
    let p = f.paused_at(0, "activate", "");
    f.lose(&p, 1, |h| h.cut(1));
    f.hosts.reconnect(1);
    f.lost_session_ends(1);
    f.converges_after_loss(&p, "host cut off");
}

/// Two stores deploying one fleet over SSH at once: while the first
/// run's `activate` on c1 waits, the second (`--adopt`, so that only the
/// lock can stop it) is refused naming the cell, its host and the lock,
/// while the first still runs, and writes nothing on any host; the first
/// then completes and the fleet converges. The hosts' agents hold the
/// deploy dirs for the whole run, as a local run does.
#[test]
fn ssh_two_runs_on_one_remote_cell() {
    let mut f = Fleet::new(2);
    let p = f.paused_at(0, "activate", "");
    let mut first = Reap(f.p.spawn(&["apply", f.t(), "--yes"]));
    crate::hosts::wait_for(
        "c1's activation",
        std::time::Duration::from_secs(60),
        || f.hosts.read(0, &p.flag).is_some(),
    );
    let other = Pgbr::new();
    let out = other
        .run(&["apply", f.t(), "--yes", "--adopt"])
        .expect_code(1);
    let addr = f.hosts.addr(0).to_string();
    for word in [
        "`c1`",
        &format!("ssh://root@{addr}{}", f.deploy_dir(0).display()),
        "another pgbr is deploying it right now",
        "hint:",
    ] {
        assert!(out.stderr.contains(word), "no `{word}`:\n{}", out.stderr);
    }
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the second failed while the first still ran"
    );
    for i in 0..2 {
        let names = f.hosts.sh(
            i,
            &format!("ls -A {}", f.deploy_dir(i).join("generations").display()),
        );
        assert_eq!(
            names.split_whitespace().collect::<Vec<_>>(),
            ["1", "2"],
            "host {}: the second run wrote there",
            f.hosts.addr(i)
        );
    }
    f.hosts.sh(0, &format!("touch {}", p.go.display()));
    let status = first.0.wait().unwrap();
    assert!(status.success(), "the first apply deploys the fleet");
    assert_eq!(f.check_every_host(&[&p.lz4], "first run"), [2, 2]);
    f.converged("first run");
}

/// A run cut off from a host whose sshd never ends dead sessions (no
/// `ClientAliveInterval`): that host's agent, which holds the cell's
/// deploy dir, hears no ping from its operator and ends on its own
/// (`agent::IDLE_LIMIT`), while the host is still cut off, releasing the
/// lock; the next apply converges.
#[test]
fn ssh_cut_off_run_releases_its_locks_without_client_alive() {
    let mut f = Fleet::new(3);
    f.hosts.without_client_alive(1);
    let p = f.paused_at(0, "activate", "");
    f.lose(&p, 1, |h| {
        assert_eq!(h.agents(1), 1, "c2's host runs the first run's agent");
        h.cut(1)
    });
    // Nothing reaches the host: only the agent's own bound can end it.
    crate::hosts::wait_for(
        "the cut-off run's agent on c2's host to end by itself",
        pgbr::apply::target::agent::IDLE_LIMIT * 3,
        || f.hosts.agents(1) == 0,
    );
    f.hosts.reconnect(1);
    f.converges_after_loss(&p, "cut off, no ClientAliveInterval");
}

/// Kills and reaps a pgbr left running by a failed assertion.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The agent in each host's cache: its dir's name, checked to be the only
/// thing there, 0700, holding just `file`, 0755.
fn cached(f: &Fleet, i: usize, file: &str) -> Vec<u8> {
    let cache = std::path::Path::new("/root/.cache/pgbr");
    let tree = f.hosts.tree(i, cache);
    let [_, dir, entry] = &tree[..] else {
        panic!("host {i}: the cache holds {tree:?}");
    };
    let (name, rest) = dir.split_once(' ').unwrap();
    assert_eq!(rest, "d 700 root", "host {i}: {tree:?}");
    assert_eq!(entry, &format!("{name}/{file} f 755 root"), "host {i}");
    f.hosts.read(i, &cache.join(name).join(file)).unwrap()
}

/// pgbr copies `pgbr-agent` of its own build (next to it) to a host,
/// gzipped when the host has gzip, as it is when it has not; either way
/// the cached copy is that very binary, mode 0755 in a 0700 dir, and
/// nothing else is left in the cache.
#[test]
fn ssh_the_copy_of_the_agent_is_exact_with_or_without_gzip() {
    let mut f = Fleet::new(2);
    f.write("zst", "", "", "");
    // Host 2 has no gzip (its own mount namespace): `command -v` fails.
    let gzip = f.hosts.sh(1, "command -v gzip").trim().to_owned();
    f.hosts.sh(1, &format!("mount --bind /dev/null {gzip}"));
    assert!(f
        .hosts
        .sh(1, "command -v gzip || echo none")
        .contains("none"));

    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    let ours = std::fs::read(env!("CARGO_BIN_EXE_pgbr-agent")).unwrap();
    for i in 0..2 {
        let copy = cached(&f, i, "pgbr-agent");
        assert!(copy == ours, "host {i}: the copy differs from pgbr-agent");
    }
    f.converged("copied");
}

/// Without a `pgbr-agent` of its own build next to it (none, or one of
/// another build), pgbr copies itself and runs `pgbr agent` there: the
/// deploy works the same, and a stale `pgbr-agent` is named in a warning.
#[test]
fn ssh_without_its_agent_binary_pgbr_copies_itself() {
    let mut f = Fleet::new(1);
    f.write("zst", "", "", "");
    // pgbr alone in a dir of its own.
    let bin = f.p.path().join("bin");
    let pgbr = install(env!("CARGO_BIN_EXE_pgbr"), &bin, "pgbr");
    let ours = std::fs::read(&pgbr).unwrap();

    let out = f.p.run_bin(&pgbr, &["plan", f.t()], &[]).expect_code(0);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert!(
        cached(&f, 0, "pgbr") == ours,
        "the host's copy differs from pgbr"
    );

    // A `pgbr-agent` of another build: named, and not copied.
    let stale = bin.join("pgbr-agent");
    std::fs::write(&stale, "#!/bin/sh\n# pgbr-build-id=0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&stale, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    f.hosts.sh(0, "rm -rf /root/.cache/pgbr");
    let out =
        f.p.run_bin(&pgbr, &["apply", f.t(), "--yes"], &[])
            .expect_code(0);
    for word in [
        &format!("warning: `{}` is of another pgbr build", stale.display()),
        "0123456789abcdef",
        pgbr::apply::target::agent::BUILD_ID,
        "install both binaries of one build together",
    ] {
        assert!(out.stderr.contains(word), "no `{word}`:\n{}", out.stderr);
    }
    assert!(
        cached(&f, 0, "pgbr") == ours,
        "the host's copy differs from pgbr"
    );
    f.converged("copied");
}

/// Links (or copies, across filesystems) `from` into `dir` as `name`.
fn install(from: &str, dir: &std::path::Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let to = dir.join(name);
    if std::fs::hard_link(from, &to).is_err() {
        std::fs::copy(from, &to).unwrap();
    }
    to
}

/// Two hosts with a topology written (`zst`); the second's `uname` (in its
/// own mount namespace) says `Linux riscv64`: a machine of another
/// platform, as far as pgbr can tell.
fn riscv_fleet() -> Fleet {
    let mut f = Fleet::new(2);
    f.write("zst", "", "", "");
    let fake = f.hosts.dir().join("uname");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$1\" in -m) echo riscv64 ;; *) echo Linux ;; esac\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let uname = f.hosts.sh(1, "command -v uname").trim().to_owned();
    f.hosts
        .sh(1, &format!("mount --bind {} {uname}", fake.display()));
    f
}

/// A host of another platform (its `uname -m` says riscv64) gets the
/// `pgbr-agent.linux-riscv64` next to pgbr, when that one is of pgbr's
/// build (here this machine's agent under that name: the host is not
/// really riscv64); one of another build is refused, naming the file,
/// with nothing copied or deployed anywhere.
#[test]
fn ssh_a_host_of_another_platform_gets_its_agent() {
    let f = riscv_fleet();
    let bin = f.p.path().join("bin");
    let pgbr = install(env!("CARGO_BIN_EXE_pgbr"), &bin, "pgbr");
    install(env!("CARGO_BIN_EXE_pgbr-agent"), &bin, "pgbr-agent");
    let riscv = bin.join("pgbr-agent.linux-riscv64");
    std::fs::write(&riscv, "\x7fELF pgbr-build-id=0123456789abcdef").unwrap();

    let out =
        f.p.run_bin(&pgbr, &["apply", f.t(), "--yes"], &[])
            .expect_code(1);
    for word in [
        "the host is `Linux riscv64`",
        &format!(
            "`{}` is of another pgbr build (0123456789abcdef; this pgbr is {})",
            riscv.display(),
            pgbr::apply::target::agent::BUILD_ID
        ),
        "put it next to pgbr as `pgbr-agent.linux-riscv64`",
    ] {
        assert!(out.stderr.contains(word), "no `{word}`:\n{}", out.stderr);
    }
    assert!(f.live(0).is_none() && f.live(1).is_none(), "{out:?}");
    assert!(f
        .hosts
        .tree(1, std::path::Path::new("/root/.cache"))
        .is_empty());

    std::fs::remove_file(&riscv).unwrap();
    install(
        env!("CARGO_BIN_EXE_pgbr-agent"),
        &bin,
        "pgbr-agent.linux-riscv64",
    );
    f.p.run_bin(&pgbr, &["apply", f.t(), "--yes"], &[])
        .expect_code(0);
    let agent = std::fs::read(env!("CARGO_BIN_EXE_pgbr-agent")).unwrap();
    assert!(cached(&f, 0, "pgbr-agent") == agent, "host 1's agent");
    assert!(
        cached(&f, 1, "pgbr-agent.linux-riscv64") == agent,
        "host 2's agent"
    );
    f.p.run_bin(&pgbr, &["plan", f.t(), "--detailed-exitcode"], &[])
        .expect_code(0);
}

/// A host that cannot run this pgbr (its `uname -m` says another
/// architecture) is named with what it is and what to do, and pgbr
/// copies nothing there and deploys nothing anywhere.
#[test]
fn ssh_host_of_another_architecture_is_refused() {
    let f = riscv_fleet();

    let out = f.run(&["apply", f.t(), "--yes"]).expect_code(1);
    let addr = f.hosts.addr(1).to_string();
    assert_eq!(mentions(error_part(&out.stderr), "c2"), 1, "{}", out.stderr);
    for word in [
        &format!("c2: run pgbr on `ssh://root@{addr}`: the host is `Linux riscv64`"),
        addr.as_str(),
        "riscv64",
        std::env::consts::ARCH,
        "hint:",
    ] {
        assert!(out.stderr.contains(word), "no `{word}`:\n{}", out.stderr);
    }
    assert!(f.live(0).is_none() && f.live(1).is_none(), "{out:?}");
    assert!(
        f.hosts
            .tree(1, std::path::Path::new("/root/.cache"))
            .is_empty(),
        "pgbr copied itself to a host that cannot run it"
    );
}

/// A fleet on generation 1 (`zst`) with generation 2 (`lz4`) written to
/// its topology (with `extra` in `[defaults]`), whose `hook` (`activate`
/// or `health_command`) notes each
/// run in `ran` on its host, and on host `at` waits (up to 30 s) until
/// `go` exists there, after touching `flag`.
struct Paused {
    zst: Vec<Vec<u8>>,
    lz4: Vec<Vec<u8>>,
    at: usize,
    flag: PathBuf,
    go: PathBuf,
    ran: PathBuf,
}

impl Fleet {
    fn paused_at(&mut self, at: usize, hook: &str, extra: &str) -> Paused {
        self.write("zst", "", "", "");
        let zst = self.rendered();
        self.run(&["apply", self.t(), "--yes"]).expect_code(0);
        let dir = self.hosts.cells_dir();
        let (flag, go, ran) = (dir.join("waiting"), dir.join("go"), dir.join("ran"));
        let hook = format!(
            "{hook} = \"echo $PGBR_CELL $PGBR_GENERATION >> {ran}; if [ $PGBR_CELL = {cell} ] && [ ! -e {go} ]; then touch {flag}; i=0; while [ ! -e {go} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; fi\"",
            cell = Fleet::cell(at),
            ran = ran.display(),
            flag = flag.display(),
            go = go.display()
        );
        self.write("lz4", "", &format!("{extra}\n{hook}"), "");
        let lz4 = self.rendered();
        Paused {
            zst,
            lz4,
            at,
            flag,
            go,
            ran,
        }
    }

    /// What `p`'s hook noted on each host, trimmed.
    fn ran(&self, p: &Paused) -> Vec<String> {
        (0..self.hosts.len())
            .map(|i| {
                let bytes = self.hosts.read(i, &p.ran).unwrap_or_default();
                String::from_utf8_lossy(&bytes).trim().to_owned()
            })
            .collect()
    }

    /// Applies `lz4` until `p`'s hook waits, then `fault`s the hosts and
    /// lets the hook go on: the apply must stop with `HOST_LOST`, naming
    /// cell `lost`, its address and that its host was lost, without a
    /// panic. Its stderr, and how long it ran after the fault.
    fn lose(
        &mut self,
        p: &Paused,
        lost: usize,
        fault: impl FnOnce(&mut Hosts),
    ) -> (String, std::time::Duration) {
        let apply = self.p.spawn(&["apply", self.t(), "--yes"]);
        let waiting = format!("{}'s hook", Fleet::cell(p.at));
        crate::hosts::wait_for(&waiting, std::time::Duration::from_secs(60), || {
            self.hosts.read(p.at, &p.flag).is_some()
        });
        let faulted = std::time::Instant::now();
        fault(&mut self.hosts);
        self.hosts.sh(p.at, &format!("touch {}", p.go.display()));
        let out = finish(apply, std::time::Duration::from_secs(300));
        let took = faulted.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(i32::from(pgbr::exit_codes::HOST_LOST)),
            "{stderr}"
        );
        let cell = format!("`{}`", Fleet::cell(lost));
        let addr = self.hosts.addr(lost).to_string();
        for word in [cell.as_str(), addr.as_str(), "host was lost"] {
            assert!(stderr.contains(word), "no `{word}`:\n{stderr}");
        }
        assert_eq!(
            mentions(error_part(&stderr), &Fleet::cell(lost)),
            1,
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        (stderr, took)
    }

    /// Waits until host `i` ended the session of a run whose connection
    /// was lost: its agent holds the cell's deploy dir until the host's
    /// sshd notices (`ClientAliveInterval`, as docs/design.md asks of
    /// hosts) or, at the latest, until it heard nothing from its operator
    /// for `agent::IDLE_LIMIT`; until then a retry is refused, loudly.
    fn lost_session_ends(&self, i: usize) {
        let what = format!("{}'s host to end the lost run's session", Fleet::cell(i));
        crate::hosts::wait_for(&what, std::time::Duration::from_secs(30), || {
            self.hosts.agents(i) == 0
        });
    }

    /// c2's host lost (`fault`) while c2's `hook` runs, after its flip:
    /// c2 stays on its new generation and c3's hook never ran; once `back`
    /// brought the host back (and it ended the lost run's session),
    /// `status` says c2's deploy was interrupted
    /// after its flip (exit 2), and the next apply converges, running the
    /// hook again on c2 and for the first time on c3, each for the
    /// generation now live there (a new one: repairing an interrupted cell
    /// makes one, as for drift). The lost apply's stderr, and how long it
    /// ran after the fault.
    fn lost_after_flip(
        &mut self,
        hook: &str,
        extra: &str,
        fault: impl FnOnce(&mut Hosts),
        back: impl FnOnce(&mut Fleet),
    ) -> (String, std::time::Duration) {
        let p = self.paused_at(1, hook, extra);
        let lost = self.lose(&p, 1, fault);
        assert_eq!(self.live(1), Some(2), "c2 stays on its new generation");
        assert_eq!(self.ran(&p), ["c1 2", "c2 2", ""]);

        back(self);
        self.lost_session_ends(1);
        let st = self.run(&["status", self.t()]).expect_code(2);
        let row = st.stdout.lines().find(|l| l.starts_with("c2 "));
        assert!(
            row.is_some_and(|r| r.contains("interrupted after its flip")),
            "{}",
            st.stdout
        );
        self.converges_after_loss(&p, "host lost after its flip");
        let live: Vec<u64> = (0..3).map(|i| self.live(i).unwrap()).collect();
        let want = [
            "c1 2".to_owned(),
            format!("c2 2\nc2 {}", live[1]),
            format!("c3 {}", live[2]),
        ];
        assert_eq!(self.ran(&p), want, "live: {live:?}");
        lost
    }

    /// After a host was lost while a cell switched: c1 is on its new
    /// generation, c3 was not started, every host holds a complete
    /// generation (`zst` or `lz4`), and the next apply converges on `lz4`.
    fn converges_after_loss(&mut self, p: &Paused, what: &str) {
        let live = self.check_every_host(&[&p.zst, &p.lz4], what);
        assert!(live[0] > 1, "c1 stays on its new generation: {live:?}");
        assert_eq!(live[2], 1, "c3 was not started: {live:?}");
        self.run(&["apply", self.t(), "--yes"]).expect_code(0);
        self.check_every_host(&[&p.lz4], "converged");
        self.converged("converged");
    }
}

/// Waits up to `limit` for `child` (killed after it) and its output.
fn finish(child: std::process::Child, limit: std::time::Duration) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for pgbr"),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("pgbr ({pid}) still runs after {limit:?}");
        }
    }
}

/// A change of how the hosts are reached alone (`[ssh] config_file` and
/// `options`) is an update that only records it: `apply` makes a
/// generation without writing, flipping or activating anything on a
/// host, and the next plan is empty. `rollback` (to a generation recorded
/// the old way) and `gc` then reach the hosts the new way: the old ssh
/// config no longer exists.
#[test]
fn ssh_a_connection_change_is_recorded_not_redeployed() {
    let mut f = Fleet::new(2);
    let ran = f.hosts.cells_dir().join("activated");
    let activate = format!("activate = \"echo x >> {}\"", ran.display());
    f.write("zst", "", &activate, "");
    let zst = f.rendered();
    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    f.write("lz4", "", &activate, "");
    let lz4 = f.rendered();
    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    let activations = |f: &Fleet| -> Vec<usize> {
        (0..2)
            .map(|i| f.hosts.read(i, &ran).map_or(0, |b| b.len() / 2))
            .collect()
    };
    assert_eq!(activations(&f), [2, 2]);

    // The same hosts through another config file and one more option;
    // the old config file is gone.
    let old = f.hosts.ssh_config();
    let new =
        f.p.write("reach/ssh_config", &std::fs::read_to_string(&old).unwrap());
    let topo = std::fs::read_to_string(&f.topo)
        .unwrap()
        .replace(&old.display().to_string(), &new.display().to_string())
        .replace(
            "\"ConnectTimeout=2\"",
            "\"ConnectTimeout=2\", \"ConnectionAttempts=2\"",
        );
    std::fs::write(&f.topo, topo).unwrap();
    let moved = old.with_extension("moved");
    std::fs::rename(&old, &moved).unwrap();

    let plan = f
        .run(&["plan", f.t(), "--detailed-exitcode"])
        .expect_code(2);
    for i in 0..2 {
        let line = format!(
            "~ {}: update generation 2 (full)\n    ~ settings: connection \
             (how its host is reached: recorded, nothing redeployed)\n",
            Fleet::cell(i)
        );
        assert!(plan.stdout.contains(&line), "{}", plan.stdout);
    }
    assert!(
        plan.stdout
            .contains("Plan: 0 to create, 2 to update (2 only recorded), 0 unchanged;"),
        "{}",
        plan.stdout
    );
    let out = f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    let said = format!("{}{}", out.stdout, out.stderr);
    for words in [
        "Apply complete: generation 3 (0 cell(s) deployed).",
        "Cells: 2 reached another way, recorded (c1, c2).",
    ] {
        assert!(said.contains(words), "no `{words}`:\n{said}");
    }
    for i in 0..2 {
        assert_eq!(f.generation_dirs(i), [1, 2], "host {i}");
    }
    assert_eq!(f.check_every_host(&[&lz4], "recorded"), [2, 2]);
    assert_eq!(activations(&f), [2, 2], "activate ran again");
    f.converged("recorded");

    // Back to generation 1, recorded the old way, then gc: through the
    // new config.
    f.run(&["rollback", "--to", "1", "--yes"]).expect_code(0);
    assert_eq!(f.check_every_host(&[&zst], "rolled back"), [4, 4]);
    assert_eq!(activations(&f), [3, 3]);
    f.run(&["gc", "--keep", "1"]).expect_code(0);
    for i in 0..2 {
        assert_eq!(f.generation_dirs(i), [4], "host {i} after gc");
    }
    let plan = f.run(&["plan", f.t()]).expect_code(0);
    assert!(!plan.stdout.contains("connection"), "{}", plan.stdout);
    std::fs::rename(&moved, &old).unwrap();
}

/// `gc` also removes the agents of other pgbr builds from each host's
/// cache (`--dry-run` only lists them), once per host, and nothing else
/// there: this build's agent and what is not named like a build stay.
#[test]
fn ssh_gc_removes_other_builds_agents() {
    let mut f = Fleet::new(2);
    f.write("zst", "", "", "");
    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    let cache = "/root/.cache/pgbr";
    let old = "0.0.9-0123456789abcdef";
    for i in 0..2 {
        f.hosts.sh(
            i,
            &format!(
                "mkdir -p {cache}/{old} {cache}/notes && echo x > {cache}/{old}/pgbr-agent \
                 && echo y > {cache}/keep-me"
            ),
        );
    }
    let listed = |f: &Fleet, i: usize| -> Vec<String> {
        let mut v: Vec<String> = f
            .hosts
            .sh(i, &format!("ls {cache}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    };
    let ours = listed(&f, 0)
        .into_iter()
        .find(|d| d.starts_with(&format!("{}-", env!("CARGO_PKG_VERSION"))))
        .expect("this build's agent is cached");

    for (args, verb, left) in [
        (&["gc", "--dry-run"][..], "would remove", 4),
        (&["gc"][..], "removed", 3),
    ] {
        let out = f.run(args).expect_code(0);
        for i in 0..2 {
            let line = format!(
                "gc {verb} `~/.cache/pgbr/{old}` on `ssh://root@{}` (another pgbr build's agent)\n",
                f.hosts.addr(i)
            );
            assert_eq!(out.stdout.matches(&line).count(), 1, "{}", out.stdout);
            let now = listed(&f, i);
            assert_eq!(now.len(), left, "host {i} after {args:?}: {now:?}");
            for kept in ["keep-me", "notes", ours.as_str()] {
                assert!(now.iter().any(|d| d == kept), "host {i}: {now:?}");
            }
        }
    }
    f.converged("after gc");
}

/// A host lost while its cell is being reverted (its `activate` of the new
/// generation failed; the host goes away during the re-activation of the
/// old one): the revert did not finish, so the run exits `REVERT_FAILED`
/// (the cell needs a look: it is on one of its two generations, each
/// complete), naming the cell, its address and the lost host, and later
/// cells are not started. Once the host is back, `apply` converges.
#[test]
fn ssh_host_lost_while_reverting() {
    let mut f = Fleet::new(2);
    let dir = f.hosts.cells_dir();
    let (armed, waiting, go) = (dir.join("armed"), dir.join("waiting"), dir.join("go"));
    // Where `armed` exists: generation 2's activate fails, and the
    // re-activation of generation 1 waits (up to 30 s) for `go`.
    let hook = format!(
        "activate = \"if [ -e {armed} ]; then [ $PGBR_GENERATION = 2 ] && exit 1; touch {waiting}; \
         i=0; while [ ! -e {go} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; fi\"",
        armed = armed.display(),
        waiting = waiting.display(),
        go = go.display()
    );
    f.write("zst", "", &hook, "");
    let zst = f.rendered();
    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    f.write("lz4", "", &hook, "");
    let lz4 = f.rendered();
    f.hosts.sh(0, &format!("touch {}", armed.display()));

    let apply = f.p.spawn(&["apply", f.t(), "--yes"]);
    crate::hosts::wait_for(
        "c1's re-activation",
        std::time::Duration::from_secs(60),
        || f.hosts.read(0, &waiting).is_some(),
    );
    f.hosts.cut(0);
    f.hosts.sh(0, &format!("touch {}", go.display()));
    let out = finish(apply, std::time::Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(pgbr::exit_codes::REVERT_FAILED)),
        "{stderr}"
    );
    let addr = f.hosts.addr(0).to_string();
    let check = format!(
        "hint: the cell needs an operator: check `ssh://root@{addr}{}/current`",
        f.deploy_dir(0).display()
    );
    for word in ["`c1`", addr.as_str(), "host was lost", &check] {
        assert!(stderr.contains(word), "no `{word}`:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    f.hosts.reconnect(0);
    f.lost_session_ends(0);
    // c1 on either complete generation, c2 not started.
    f.check_every_host(&[&zst, &lz4], "lost while reverting");
    assert_eq!(f.live(1), Some(1), "c2 was started");

    f.hosts.sh(0, &format!("rm -f {}", armed.display()));
    f.run(&["apply", f.t(), "--yes"]).expect_code(0);
    f.check_every_host(&[&lz4], "converged");
    f.converged("after a host lost while reverting");
}
