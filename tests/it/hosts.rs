//! Test hosts: real `sshd`s on this machine, each in a network and mount
//! namespace of its own, so that cells can be deployed "to other hosts"
//! over real SSH (SPEC §9) without leaving the machine.
//!
//! Each host has:
//! * a network namespace `pgbrt-<pid>-<n>-<i>` whose only link is a veth
//!   on a bridge the test creates in the root namespace, with an address
//!   in a private /24 that no address or route on the machine overlaps
//!   (the bridge's name claims the /24 between concurrent runs). There is
//!   no default route: a host can reach the other hosts and the bridge's
//!   address (the operator), nothing else;
//! * a mount namespace of its own, held by a `sleep` process: a private
//!   tmpfs on [`Hosts::cells_dir`] (empty as seen from the root namespace),
//!   on `/root` and on `/home`, so a file found there on a host can only
//!   have come over SSH (or through [`Hosts::on`]);
//! * its own `sshd -D -f <generated config>` listening on its address only,
//!   with a host key generated for this run, `UsePAM no`, and authorized
//!   keys from the run's directory.
//!
//! [`Hosts::ssh_config`] is an `ssh_config` for pgbr's `[ssh] config_file`:
//! the run's identity, `IdentitiesOnly`, and a known-hosts file per host.
//!
//! Teardown (kill every process in the namespaces, delete the namespaces,
//! links and test users, remove the run's directory) is one shell script,
//! `<dir>/teardown.sh`, kept up to date as things are created. [`Drop`]
//! runs it, and so does a watchdog process that runs it when its stdin
//! closes: when the test process dies without unwinding (SIGKILL, a
//! timeout), nothing is left behind either.
//!
//! Used by the integration tests, the benchmarks (`#[path]`) and the
//! end-to-end test (through `examples/testhosts.rs`). Needs root and
//! `ip`, `unshare`, `nsenter`, `sshd`, `ssh`, `ssh-keygen` (and `sudo` and
//! `useradd` for [`Hosts::add_user`]).

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a host may take to come up (namespace, sshd listening).
const BOOT_TIMEOUT: Duration = Duration::from_secs(20);
/// The sshd binary (Debian's openssh-server).
const SSHD: &str = "/usr/sbin/sshd";

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Sudo rights of a user made by [`Hosts::add_user`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sudo {
    /// No sudoers entry.
    None,
    /// `NOPASSWD: ALL`.
    Passwordless,
    /// `ALL` with a password (the user has none, so `sudo -n` fails).
    Password,
}

/// One test host.
pub struct Host {
    /// `h1`, `h2`, … (also an alias in the generated ssh_config).
    pub name: String,
    /// Its address on the bridge.
    pub addr: Ipv4Addr,
    netns: String,
    veth: String,
    /// Its sshd config, host key, authorized keys, known_hosts, logs.
    dir: PathBuf,
    /// The process holding its mount namespace.
    holder: Child,
    sshd: Option<Child>,
    /// Its sshd ends a session whose client stopped answering (1 s × 3);
    /// `false`: sshd's default, never.
    client_alive: bool,
}

/// A set of test hosts on one private bridge.
pub struct Hosts {
    dir: PathBuf,
    private: PathBuf,
    bridge: String,
    prefix: [u8; 3],
    hosts: Vec<Host>,
    users: Vec<String>,
    /// Namespaces and links made so far (teardown deletes them).
    namespaces: Vec<String>,
    links: Vec<String>,
    watchdog: Option<(Child, ChildStdin)>,
}

/// Panics with a command's output unless it succeeded.
#[track_caller]
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("test hosts: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "test hosts: {cmd:?} failed ({})\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polls `ready` every 50 ms until it holds, or panics after `timeout`.
#[track_caller]
pub fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "test hosts: timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The IPv4 prefixes (address, length) of every address and route here.
fn taken_prefixes() -> Vec<(u32, u32)> {
    let mut taken = Vec::new();
    let addrs = run(Command::new("ip").args(["-o", "-4", "addr", "show"]));
    let routes = run(Command::new("ip").args(["-4", "route", "show", "table", "all"]));
    let text = String::from_utf8_lossy(&addrs.stdout).into_owned()
        + &String::from_utf8_lossy(&routes.stdout);
    for word in text.split_whitespace() {
        let (ip, len) = match word.split_once('/') {
            Some((ip, len)) => (ip, len.parse().unwrap_or(32)),
            None => (word, 32),
        };
        if let Ok(ip) = ip.parse::<Ipv4Addr>() {
            taken.push((u32::from(ip), len.min(32)));
        }
    }
    taken
}

fn overlaps(a: (u32, u32), b: (u32, u32)) -> bool {
    let len = a.1.min(b.1);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a.0 & mask == b.0 & mask
}

/// Creates a bridge for a /24 that overlaps nothing on the machine and
/// that no concurrent run has claimed (the bridge's name is the claim).
fn claim_subnet(seed: u64) -> ([u8; 3], String) {
    let taken = taken_prefixes();
    let mut x = seed | 1;
    for _ in 0..200 {
        // xorshift: a different walk per process and set.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let prefix = [10, 16 + (x % 232) as u8, (x >> 8) as u8];
        let net = (
            u32::from(Ipv4Addr::new(prefix[0], prefix[1], prefix[2], 0)),
            24,
        );
        if taken.iter().any(|t| overlaps(*t, net)) {
            continue;
        }
        let bridge = format!("pgbr-{}-{}", prefix[1], prefix[2]);
        let made = Command::new("ip")
            .args(["link", "add", &bridge, "type", "bridge"])
            .stderr(Stdio::null())
            .status()
            .expect("run ip");
        if made.success() {
            return (prefix, bridge);
        }
    }
    panic!("test hosts: no free private /24 in 10.0.0.0/8");
}

impl Hosts {
    /// Starts `n` hosts with a private cells dir of their own.
    pub fn start(n: usize) -> Hosts {
        Hosts::start_with(n, None)
    }

    /// Starts `n` hosts; each mounts a private tmpfs on `private` (made if
    /// missing; by default `<run dir>/cells`).
    pub fn start_with(n: usize, private: Option<&Path>) -> Hosts {
        assert!(
            (1..=200).contains(&n),
            "test hosts: 1 to 200 hosts, not {n}"
        );
        let pid = std::process::id();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = tempfile::Builder::new()
            .prefix(&format!("pgbr-hosts-{pid}-{seq}-"))
            .tempdir()
            .expect("temp dir")
            .keep();
        // sshd reads a user's authorized keys as that user.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let private = private.map_or_else(|| dir.join("cells"), Path::to_path_buf);
        std::fs::create_dir_all(&private).expect("mkdir cells dir");
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");

        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let (prefix, bridge) =
            claim_subnet(u64::from(pid) << 32 ^ (seq as u64) << 20 ^ u64::from(nanos));
        let mut hosts = Hosts {
            dir,
            private,
            bridge,
            prefix,
            hosts: Vec::new(),
            users: Vec::new(),
            namespaces: Vec::new(),
            links: Vec::new(),
            watchdog: None,
        };
        hosts.write_teardown();
        hosts.start_watchdog();
        let [a, b, c] = prefix;
        run(Command::new("ip").args([
            "addr",
            "add",
            &format!("{a}.{b}.{c}.1/24"),
            "dev",
            &hosts.bridge,
        ]));
        run(Command::new("ip").args(["link", "set", &hosts.bridge, "up"]));

        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "pgbr-test", "-f"])
            .arg(hosts.identity()));
        for i in 0..n {
            hosts.add_host(pid, seq, i);
        }
        hosts.write_ssh_config();
        for i in 0..n {
            hosts.start_sshd(i);
        }
        hosts
    }

    fn add_host(&mut self, pid: u32, seq: usize, i: usize) {
        let [a, b, c] = self.prefix;
        let name = format!("h{}", i + 1);
        let addr = Ipv4Addr::new(a, b, c, 10 + i as u8);
        let netns = format!("pgbrt-{pid}-{seq}-{}", i + 1);
        let veth = format!("{}-{}", self.bridge, i + 1);
        let dir = self.dir.join(&name);
        std::fs::create_dir_all(dir.join("authorized_keys")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            dir.join("authorized_keys"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::copy(
            self.identity().with_extension("pub"),
            dir.join("authorized_keys/root"),
        )
        .unwrap();

        self.namespaces.push(netns.clone());
        self.links.push(veth.clone());
        self.write_teardown();
        run(Command::new("ip").args(["netns", "add", &netns]));
        run(Command::new("ip").args([
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ]));
        run(Command::new("ip").args(["link", "set", &veth, "master", &self.bridge, "up"]));
        let cidr = format!("{addr}/24");
        run(Command::new("ip").args(["-n", &netns, "addr", "add", &cidr, "dev", "eth0"]));
        run(Command::new("ip").args(["-n", &netns, "link", "set", "eth0", "up"]));
        run(Command::new("ip").args(["-n", &netns, "link", "set", "lo", "up"]));

        // The mount namespace: private tmpfs on the cells dir, /root, /home.
        let mut holder = Command::new("ip")
            .args(["netns", "exec", &netns, "unshare", "--mount", "--propagation", "private", "--"])
            .args(["sh", "-c", "mount -t tmpfs -o mode=755 pgbr-host \"$1\" && mount -t tmpfs -o mode=700 pgbr-host /root && mount -t tmpfs -o mode=755 pgbr-host /home && exec sleep infinity", "sh"])
            .arg(&self.private)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn ip netns exec");
        let holder_pid = holder.id();
        let what = format!("host {name}'s mount namespace");
        wait_for(&what, BOOT_TIMEOUT, || {
            if let Ok(Some(status)) = holder.try_wait() {
                panic!("test hosts: {what} failed to start: {status}");
            }
            std::fs::read_to_string(format!("/proc/{holder_pid}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
        });
        std::fs::write(dir.join("known_hosts"), "").unwrap();
        self.hosts.push(Host {
            name,
            addr,
            netns,
            veth,
            dir,
            holder,
            sshd: None,
            client_alive: true,
        });
        self.new_host_key_files(i);
    }

    // ------------------------------------------------------------ paths

    /// The run's directory (configs, keys, logs; removed at teardown).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The directory every host has a private tmpfs on.
    pub fn cells_dir(&self) -> &Path {
        &self.private
    }
    /// The ssh_config for `[ssh] config_file` (and `ssh -F`).
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }
    /// The private key every host accepts (for root and test users).
    pub fn identity(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    /// The number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }
    /// Host `i` (0-based).
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }
    /// Host `i`'s address.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        self.hosts[i].addr
    }
    /// The operator's address on the bridge (where pgbr connects from).
    pub fn operator_addr(&self) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, 1)
    }
    /// The pid whose namespaces are host `i` (for `nsenter -t`).
    pub fn pid(&self, i: usize) -> u32 {
        self.hosts[i].holder.id()
    }
    /// Host `i`'s sshd log.
    pub fn sshd_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.hosts[i].dir.join("sshd.log")).unwrap_or_default()
    }

    // ------------------------------------------------------------ on a host

    /// Runs `args` on host `i` (its network and mount namespaces), as root.
    pub fn on(&self, i: usize, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid(i).to_string(), "-n", "-m", "--"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }
    /// Runs a shell script on host `i`; panics unless it succeeds; stdout.
    #[track_caller]
    pub fn sh(&self, i: usize, script: &str) -> String {
        let out = self.on(i, &["sh", "-c", script]);
        assert!(
            out.status.success(),
            "on {}: `{script}` failed ({})\n{}{}",
            self.hosts[i].name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// The bytes of `path` on host `i`, or `None` if it cannot be read.
    pub fn read(&self, i: usize, path: &Path) -> Option<Vec<u8>> {
        let out = self.on(i, &["cat", path.to_str().expect("utf-8 path")]);
        out.status.success().then_some(out.stdout)
    }
    /// Where the symlink `path` on host `i` points, or `None`.
    pub fn read_link(&self, i: usize, path: &Path) -> Option<String> {
        let out = self.on(i, &["readlink", path.to_str().expect("utf-8 path")]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }
    /// `find PATH -printf '<path> <type> <mode> <owner>'` on host `i`
    /// (sorted; empty when `path` is missing).
    pub fn tree(&self, i: usize, path: &Path) -> Vec<String> {
        let out = self.on(
            i,
            &["find", path.to_str().unwrap(), "-printf", "%P %y %m %u\\n"],
        );
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }
    /// Runs `command` on host `i` over SSH with the generated config.
    pub fn ssh(&self, i: usize, user: &str, command: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.ssh_config())
            .args([
                "-o",
                "BatchMode=yes",
                "-l",
                user,
                &self.addr(i).to_string(),
                command,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run ssh")
    }

    // ------------------------------------------------------------ faults

    /// Cuts host `i` off the network (its bridge port goes down).
    pub fn cut(&self, i: usize) {
        run(Command::new("ip").args(["link", "set", &self.hosts[i].veth, "down"]));
    }
    /// Puts host `i` back on the network.
    pub fn reconnect(&self, i: usize) {
        run(Command::new("ip").args(["link", "set", &self.hosts[i].veth, "up"]));
    }
    /// Kills every process on host `i` but the one holding its mounts
    /// (sshd, sessions, whatever they started), like a crash that keeps
    /// the disk. [`Hosts::boot`] starts sshd again.
    pub fn crash(&mut self, i: usize) {
        let holder = self.pid(i);
        let pids = self.netns_pids(i);
        for &p in pids.iter().filter(|&&p| p != holder) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(mut sshd) = self.hosts[i].sshd.take() {
            let _ = sshd.wait();
        }
        let what = format!("host {}'s processes to die", self.hosts[i].name);
        wait_for(&what, BOOT_TIMEOUT, || {
            self.netns_pids(i)
                .iter()
                .all(|&p| p == holder || is_zombie(p))
        });
    }
    /// Starts host `i`'s sshd again after [`Hosts::crash`].
    pub fn boot(&mut self, i: usize) {
        self.start_sshd(i);
    }
    /// Restarts host `i`'s sshd without `ClientAliveInterval` (sshd's
    /// default): a session whose client is cut off lives on.
    pub fn without_client_alive(&mut self, i: usize) {
        self.crash(i);
        self.hosts[i].client_alive = false;
        self.start_sshd(i);
    }
    /// Gives host `i` a new host key (sshd restarts with it); the
    /// known_hosts file keeps the old one, so ssh refuses the host.
    pub fn change_host_key(&mut self, i: usize) {
        self.crash(i);
        self.new_host_key_files(i);
        self.start_sshd(i);
    }
    /// Writes host `i`'s current key into its known_hosts file (after
    /// [`Hosts::change_host_key`], as an operator who checked it would).
    pub fn trust_host_key(&self, i: usize) {
        let h = &self.hosts[i];
        let key = std::fs::read_to_string(h.dir.join("host_key.pub")).unwrap();
        std::fs::write(h.dir.join("known_hosts"), format!("{} {key}", h.addr)).unwrap();
    }
    /// Forgets host `i`'s key (ssh then refuses it as unknown).
    pub fn forget_host_key(&self, i: usize) {
        std::fs::write(self.hosts[i].dir.join("known_hosts"), "").unwrap();
    }

    /// Makes host `i` refuse `user`'s login: its authorized keys hold a
    /// stranger's key, not the one ssh offers. [`Hosts::accept_key`]
    /// undoes it.
    pub fn refuse_key(&self, i: usize, user: &str) {
        let stranger = self.dir.join("stranger");
        if !stranger.exists() {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "stranger", "-f"])
                .arg(&stranger));
        }
        self.authorize(i, user, &stranger);
    }
    /// Lets `user` log in to host `i` with the run's key again.
    pub fn accept_key(&self, i: usize, user: &str) {
        self.authorize(i, user, &self.identity());
    }
    fn authorize(&self, i: usize, user: &str, key: &Path) {
        let keys = self.hosts[i].dir.join("authorized_keys").join(user);
        let tmp = keys.with_extension("tmp");
        std::fs::copy(key.with_extension("pub"), &tmp).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::rename(&tmp, &keys).unwrap();
    }
    /// Freezes host `i`'s sshd and its sessions (SIGSTOP): the link stays
    /// up and the kernel still acknowledges, but nothing answers, as on a
    /// host stuck in swap or a hung hypervisor. [`Hosts::thaw`] resumes it.
    pub fn freeze(&self, i: usize) {
        self.signal_sshd(i, nix::sys::signal::Signal::SIGSTOP);
    }
    /// Resumes what [`Hosts::freeze`] stopped.
    pub fn thaw(&self, i: usize) {
        self.signal_sshd(i, nix::sys::signal::Signal::SIGCONT);
    }
    fn signal_sshd(&self, i: usize, signal: nix::sys::signal::Signal) {
        for p in self.netns_pids(i) {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            if comm.trim() == "sshd" {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), signal);
            }
        }
    }

    /// Makes a user `pgbrt<pid>x<n>` that can log in to host `i` only
    /// (with the run's key), with a home on that host and `sudo` rights
    /// there. Removed at teardown.
    pub fn add_user(&mut self, i: usize, sudo: Sudo) -> String {
        let user = format!("pgbrt{}x{}", std::process::id(), self.users.len() + 1);
        let home = format!("/home/{user}");
        // `*`: no password, but not locked (sshd refuses locked accounts).
        let mut tries = 0;
        loop {
            let out = Command::new("useradd")
                .args(["-M", "-d", &home, "-s", "/bin/sh", "-p", "*", &user])
                .stdin(Stdio::null())
                .output()
                .expect("run useradd");
            if out.status.success() {
                break;
            }
            // Another test may hold /etc/passwd's lock for a moment.
            tries += 1;
            assert!(
                tries < 50,
                "test hosts: useradd {user} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.users.push(user.clone());
        self.write_teardown();
        self.sh(i, &format!("mkdir -m 700 {home} && chown {user}: {home}"));
        self.accept_key(i, &user);
        let rule = match sudo {
            Sudo::None => None,
            Sudo::Passwordless => Some(format!("{user} ALL=(ALL) NOPASSWD: ALL\n")),
            Sudo::Password => Some(format!("{user} ALL=(ALL) ALL\n")),
        };
        if let Some(rule) = rule {
            // A sudoers.d of this host's own, over the machine's.
            let d = self.hosts[i].dir.join("sudoers.d");
            if !d.exists() {
                std::fs::create_dir(&d).unwrap();
                for entry in std::fs::read_dir("/etc/sudoers.d")
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    std::fs::copy(entry.path(), d.join(entry.file_name())).unwrap();
                }
                self.sh(i, &format!("mount --bind {} /etc/sudoers.d", d.display()));
            }
            let f = d.join(&user);
            std::fs::write(&f, rule).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o440)).unwrap();
        }
        user
    }

    // ------------------------------------------------------------ internals

    /// How many agents (`pgbr-agent`, or `pgbr agent`) run on host `i`.
    pub fn agents(&self, i: usize) -> usize {
        self.agent_pids(i).len()
    }
    /// Sends `signal` to every agent on host `i` (SIGSTOP: a
    /// host-side pgbr that hangs while sshd still answers).
    pub fn signal_agents(&self, i: usize, signal: nix::sys::signal::Signal) {
        for p in self.agent_pids(i) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), signal);
        }
    }
    fn agent_pids(&self, i: usize) -> Vec<u32> {
        self.netns_pids(i)
            .into_iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
                    let words: Vec<&[u8]> = c.split(|&b| b == 0).collect();
                    // `pgbr-agent`, or `pgbr agent` (pgbr copies itself
                    // when no `pgbr-agent` of its build is next to it).
                    words.iter().any(|w| w.ends_with(b"/pgbr-agent"))
                        || (words.iter().any(|w| w.ends_with(b"pgbr"))
                            && words.contains(&&b"agent"[..]))
                })
            })
            .collect()
    }

    fn netns_pids(&self, i: usize) -> Vec<u32> {
        let out = run(Command::new("ip").args(["netns", "pids", &self.hosts[i].netns]));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    fn new_host_key_files(&self, i: usize) {
        let key = self.hosts[i].dir.join("host_key");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(key.with_extension("pub"));
        run(Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                &self.hosts[i].name,
                "-f",
            ])
            .arg(&key));
    }

    fn start_sshd(&mut self, i: usize) {
        assert!(self.hosts[i].sshd.is_none(), "sshd already runs");
        let h = &self.hosts[i];
        let config = h.dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "# test host {name} (tests/it/hosts.rs)\n\
                 ListenAddress {addr}\n\
                 HostKey {dir}/host_key\n\
                 AuthorizedKeysFile {dir}/authorized_keys/%u\n\
                 PidFile {dir}/sshd.pid\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 MaxStartups 100:30:200\n\
                 MaxSessions 100\n\
                 {alive}\
                 Subsystem sftp internal-sftp\n",
                name = h.name,
                addr = h.addr,
                dir = h.dir.display(),
                alive = if h.client_alive {
                    "ClientAliveInterval 1\nClientAliveCountMax 3\n"
                } else {
                    ""
                },
            ),
        )
        .unwrap();
        let sshd = Command::new("nsenter")
            .args([
                "-t",
                &h.holder.id().to_string(),
                "-n",
                "-m",
                "--",
                SSHD,
                "-D",
                "-f",
            ])
            .arg(&config)
            .arg("-E")
            .arg(h.dir.join("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sshd");
        let addr = SocketAddr::from((h.addr, 22));
        let what = format!("sshd on {} ({addr})", h.name);
        self.hosts[i].sshd = Some(sshd);
        let dir = self.hosts[i].dir.clone();
        wait_for(&what, BOOT_TIMEOUT, || {
            if let Some(s) = self.hosts[i].sshd.as_mut() {
                if let Ok(Some(status)) = s.try_wait() {
                    panic!(
                        "test hosts: {what} exited: {status}\n{}",
                        std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
                    );
                }
            }
            banner(addr)
        });
    }

    fn write_ssh_config(&self) {
        let mut c =
            String::from("# Test hosts (tests/it/hosts.rs): one known_hosts file per host.\n");
        for h in &self.hosts {
            writeln!(
                c,
                "Host {name} {addr}\n  HostName {addr}\n  UserKnownHostsFile {kh}",
                name = h.name,
                addr = h.addr,
                kh = h.dir.join("known_hosts").display()
            )
            .unwrap();
        }
        writeln!(
            c,
            "Host *\n  IdentityFile {id}\n  IdentitiesOnly yes\n  GlobalKnownHostsFile /dev/null\n  \
             StrictHostKeyChecking yes\n  ConnectTimeout 10",
            id = self.identity().display()
        )
        .unwrap();
        std::fs::write(self.ssh_config(), c).unwrap();
        for i in 0..self.hosts.len() {
            self.trust_host_key(i);
        }
    }

    /// Shell-sourceable facts about the hosts (for `examples/testhosts.rs`).
    pub fn env(&self) -> String {
        let mut s = String::new();
        let addrs: Vec<String> = self.hosts.iter().map(|h| h.addr.to_string()).collect();
        let pids: Vec<String> = (0..self.len()).map(|i| self.pid(i).to_string()).collect();
        writeln!(s, "HOSTS_DIR={}", self.dir.display()).unwrap();
        writeln!(s, "HOSTS_CELLS_DIR={}", self.private.display()).unwrap();
        writeln!(s, "HOSTS_SSH_CONFIG={}", self.ssh_config().display()).unwrap();
        writeln!(s, "HOSTS_OPERATOR={}", self.operator_addr()).unwrap();
        writeln!(s, "HOSTS_ADDRS=({})", addrs.join(" ")).unwrap();
        writeln!(s, "HOSTS_PIDS=({})", pids.join(" ")).unwrap();
        s
    }

    /// The teardown script: every namespace's processes killed, the
    /// namespaces, links and users deleted, the run's dir removed.
    fn write_teardown(&self) {
        let ns = &self.namespaces;
        let links: Vec<&str> = self
            .links
            .iter()
            .map(String::as_str)
            .chain([self.bridge.as_str()])
            .collect();
        let script = format!(
            "#!/bin/sh\n\
             # Tears down test hosts (tests/it/hosts.rs); safe to run twice.\n\
             ns='{ns}'\n\
             for n in $ns; do\n  for p in $(ip netns pids \"$n\" 2>/dev/null); do kill -KILL \"$p\" 2>/dev/null; done\ndone\n\
             i=0\n\
             while [ $i -lt 100 ]; do\n  left=''\n  for n in $ns; do left=\"$left$(ip netns pids \"$n\" 2>/dev/null)\"; done\n  \
             [ -z \"$left\" ] && break\n  for p in $left; do kill -KILL \"$p\" 2>/dev/null; done\n  i=$((i + 1))\n  sleep 0.1\ndone\n\
             for n in $ns; do ip netns del \"$n\" 2>/dev/null; done\n\
             for l in {links}; do ip link del \"$l\" 2>/dev/null; done\n\
             for u in {users}; do userdel \"$u\" 2>/dev/null; done\n\
             rm -rf '{dir}'\n\
             exit 0\n",
            ns = ns.join(" "),
            links = links.join(" "),
            users = self.users.join(" "),
            dir = self.dir.display(),
        );
        let tmp = self.dir.join("teardown.sh.tmp");
        std::fs::write(&tmp, script).unwrap();
        std::fs::rename(&tmp, self.dir.join("teardown.sh")).unwrap();
    }

    fn start_watchdog(&mut self) {
        let mut child = Command::new("setsid")
            .args(["sh", "-c", "read _; exec sh \"$1\"", "sh"])
            .arg(self.dir.join("teardown.sh"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the teardown watchdog");
        let stdin = child.stdin.take().unwrap();
        self.watchdog = Some((child, stdin));
    }
}

/// Whether sshd answers on `addr` with its banner.
fn banner(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 8];
    let ok = s.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-");
    let _ = s.write_all(b"SSH-2.0-probe\r\n");
    ok
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // The watchdog runs the teardown when its stdin closes.
        let ran = match self.watchdog.take() {
            Some((mut child, stdin)) => {
                drop(stdin);
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => break status.success(),
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break false;
                        }
                    }
                }
            }
            None => false,
        };
        if !ran {
            let _ = Command::new("sh")
                .arg(self.dir.join("teardown.sh"))
                .status();
        }
        for h in &mut self.hosts {
            if let Some(mut s) = h.sshd.take() {
                let _ = s.kill();
                let _ = s.wait();
            }
            let _ = h.holder.kill();
            let _ = h.holder.wait();
        }
    }
}
