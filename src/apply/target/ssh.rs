//! The SSH deploy target (SPEC §9): a cell on a host of its own, reached
//! with the system OpenSSH client (`std::process::Command`, no SSH
//! library), so the operator's `~/.ssh/config`, agent, `ProxyJump`,
//! certificates and `known_hosts` work as they already do.
//!
//! It writes nothing itself: on first use it opens one session whose shell
//! prints the host's facts and execs the agent from
//! `~/.cache/pgbr/<version>-<hash>/pgbr-agent` (copying it there first,
//! once per build, over the same connection), and asks the agent to run
//! the local target's operations (`agent.rs`). The deploy rules have one
//! implementation, `local.rs`, wherever the cell is. The agent is the
//! `pgbr-agent` binary of this build when it lies next to `pgbr`, else
//! `pgbr` itself (`pgbr agent`, eight times the bytes to copy).
//!
//! Every ssh it starts gets the same options: `-F [ssh] config_file`, the
//! user's `[ssh] options` first (ssh keeps the first value it sees), then
//! `BatchMode=yes`, a master per host (`ControlMaster=auto`, `ControlPath`
//! in a private 0700 dir, `ControlPersist=no`: the master is the agent's
//! own session and ends with it), and a connect timeout
//! and keepalives when neither the options nor the config set them. Host
//! key checking is never touched. Every wait is bounded; a host that goes
//! away mid-run is [`Error::Lost`], and the target stays broken for the
//! rest of the run (nothing more is attempted there).

use super::agent::{read_frame, write_frame, Request, Response, PING_EVERY, PROTOCOL};
use super::binaries::{binaries, Binary};
use super::{Error, FileContent, HookOutput, HookRun, Prepare, Reach, Target};
use crate::plan::Observed;
use crate::topology::SshSpec;
use std::borrow::Cow;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `ConnectTimeout` when neither `[ssh] options` nor the ssh config set one.
const CONNECT_TIMEOUT: u64 = 10;
/// How long one operation on the host may take before the host counts as lost.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// What a hook's answer may take beyond the hook's own timeout.
const HOOK_MARGIN: Duration = Duration::from_secs(30);
/// How long copying pgbr's binary to a host may take.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// Where on the host (under the login's home) pgbr's binary is cached.
const CACHE: &str = ".cache/pgbr";
/// The lines the host's shell prints before the agent starts: system,
/// machine, home, and whether this pgbr is cached there.
const FACTS: usize = 4;

/// A host reached over SSH.
pub(super) struct SshTarget {
    spec: SshSpec,
    /// `ssh://…`, as the topology writes it (named in every error).
    target: String,
    /// Cells this run named on it (for the errors).
    cells: Mutex<Vec<String>>,
    session: Mutex<Session>,
}

#[derive(Default)]
struct Session {
    conn: Option<Conn>,
    /// Why the host is unusable for the rest of the run (serialized: errors
    /// are not `Clone`).
    broken: Option<Vec<u8>>,
}

/// An open connection: the ssh arguments, the control dir and the agent.
struct Conn {
    /// The options every ssh gets (up to, not including, the host).
    args: Vec<OsString>,
    /// The private dir of the master's socket.
    control_dir: PathBuf,
    /// The user's options keep the master after its session
    /// (`ControlPersist`): it must be told to exit.
    persist: bool,
    agent: Option<Agent>,
    /// The cache dir (`<version>-<hash>`) of the agent this run uses there.
    build: String,
}

impl Conn {
    /// The master's log (`ssh -E`): ssh's own words, kept even by a
    /// master in the background (the operator's `ControlPersist`).
    fn master_log(&self) -> PathBuf {
        self.control_dir.join("master.log")
    }
}

/// `pgbr agent` running on the host, spoken to over the master.
struct Agent {
    child: Child,
    requests: Option<SyncSender<Vec<u8>>>,
    answers: Receiver<std::io::Result<Option<Vec<u8>>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: std::thread::JoinHandle<()>,
    /// The log of ssh's own words, when this ssh is the master (`-E`).
    master_log: Option<PathBuf>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SshTarget {
    pub(super) fn new(spec: SshSpec) -> SshTarget {
        SshTarget {
            target: format!("ssh://{}", spec.address()),
            spec,
            cells: Mutex::default(),
            session: Mutex::default(),
        }
    }

    fn name_cell(&self, cell: &str) {
        let mut cells = lock(&self.cells);
        if !cells.iter().any(|c| c == cell) {
            cells.push(cell.to_owned());
        }
    }

    fn cells(&self) -> Vec<String> {
        lock(&self.cells).clone()
    }

    fn unreachable(&self, why: Reach, detail: String) -> Error {
        Error::Unreachable {
            target: self.target.as_str().into(),
            cells: self.cells().into(),
            why,
            detail: detail.into(),
        }
    }

    fn agent_error(&self, detail: impl Into<String>) -> Error {
        Error::Agent {
            target: self.target.as_str().into(),
            cells: self.cells().into(),
            detail: detail.into().into(),
        }
    }

    fn lost(&self, action: &str, detail: String) -> Error {
        Error::Lost {
            target: self.target.as_str().into(),
            cells: self.cells().into(),
            action: action.into(),
            detail: detail.into(),
        }
    }

    /// The ssh arguments before the host: config file, the user's options,
    /// then pgbr's. `connect` says whether a connect timeout and keepalives
    /// must be added (the user set none).
    fn args(&self, control_dir: &Path, add_timeouts: (bool, bool)) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut opt = |o: String| {
            a.push("-o".into());
            a.push(o.into());
        };
        for o in &self.spec.options {
            opt(o.clone());
        }
        opt("BatchMode=yes".into());
        opt("ControlMaster=auto".into());
        opt(format!("ControlPath={}/%C", control_dir.display()));
        // The master is the agent's own session: it ends with it, when pgbr
        // ends or is killed (its stdin closes), and no master outlives a run.
        opt("ControlPersist=no".into());
        if add_timeouts.0 {
            opt(format!("ConnectTimeout={CONNECT_TIMEOUT}"));
        }
        if add_timeouts.1 {
            opt("ServerAliveInterval=5".into());
            opt("ServerAliveCountMax=3".into());
        }
        let mut out = Vec::new();
        if let Some(f) = &self.spec.config_file {
            out.push("-F".into());
            out.push(f.into());
        }
        out.extend(a);
        if let Some(u) = &self.spec.user {
            out.push("-l".into());
            out.push(u.into());
        }
        if let Some(p) = self.spec.port {
            out.push("-p".into());
            out.push(p.to_string().into());
        }
        out
    }

    fn ssh(&self, args: &[OsString], remote: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(args).arg("--").arg(&self.spec.host).arg(remote);
        c
    }

    /// Opens the master, checks the host can run this pgbr, copies it
    /// there if missing, starts the agent.
    fn connect(&self, conn_slot: &mut Option<Conn>) -> Result<(), Error> {
        let control_dir = private_dir().map_err(|e| {
            self.agent_error(format!(
                "make a private directory for ssh's control socket: {e}"
            ))
        })?;
        let conn = conn_slot.insert(Conn {
            args: Vec::new(),
            control_dir,
            persist: false,
            agent: None,
            build: String::new(),
        });
        // What the user's options and config already set (`ssh -G` prints
        // the configuration ssh would use, without connecting).
        let probe_args = self.args(&conn.control_dir, (false, false));
        let mut g = Command::new("ssh");
        g.arg("-G").args(&probe_args).arg("--").arg(&self.spec.host);
        let out = run_bounded(g, Input::Null, Duration::from_secs(10))
            .map_err(|e| self.unreachable(Reach::Ssh, format!("run `ssh`: {e}")))?;
        if !out.status.success() {
            return Err(self.unreachable(Reach::Ssh, ssh_words(&out.stderr, Reach::Ssh)));
        }
        let config = String::from_utf8_lossy(&out.stdout);
        let setting = |key: &str| {
            config
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .map(str::to_owned)
        };
        let timeout = setting("connecttimeout").and_then(|t| t.parse::<u64>().ok());
        let alive = setting("serveraliveinterval").is_some_and(|t| t != "0");
        conn.persist = setting("controlpersist").is_some_and(|p| p != "no");
        conn.args = self.args(&conn.control_dir, (timeout.is_none(), !alive));
        let connect_bound =
            Duration::from_secs(timeout.unwrap_or(CONNECT_TIMEOUT)) + Duration::from_secs(30);

        let binaries =
            binaries(|w| crate::output::errln!("{w}")).map_err(|e| self.agent_error(e))?;
        // One session does it all: the facts, then the agent for the
        // host's platform, at once when this build's is cached there, else
        // once the operator has copied it (a line `go` on stdin; end of
        // stdin instead ends the session, as for a host no agent is for).
        let sudo = if self.spec.sudo { "sudo -n -- " } else { "" };
        let mut case = String::new();
        for b in &binaries.all {
            case.push_str(&format!(
                "{}) f={CACHE}/{}/{} a={};; ",
                b.pattern(),
                b.dir,
                b.name,
                b.args
            ));
        }
        let script = format!(
            "s=$(uname -s); m=$(uname -m); echo \"$s\"; echo \"$m\"; cd && pwd || exit; \
             case \"$s-$m\" in {case}*) f= a=;; esac; \
             if test -n \"$f\" && test -x \"$f\"; then echo present; else \
             echo missing $(command -v gzip >/dev/null 2>&1 && echo gzip); \
             read go && test \"$go\" = go || exit 0; fi; exec {sudo}\"$PWD/$f\" $a"
        );
        let remote = format!("sh -c '{script}'");
        // This first ssh is the master: ssh's own words go to its log,
        // kept even when the operator's `ControlPersist` sends a master to
        // the background with no stderr; the remote side's stderr stays on
        // stderr.
        let mut master = conn.args.clone();
        master.extend(["-E".into(), conn.master_log().into()]);
        let mut agent = Agent::start(self.ssh(&master, &remote), FACTS, Some(conn.master_log()))
            .map_err(|e| self.unreachable(Reach::Ssh, format!("run `ssh`: {e}")))?;
        let facts = match agent.preamble(connect_bound) {
            Ok(facts) => facts,
            Err(_) => {
                let (code, words) = agent.finish();
                let text = String::from_utf8_lossy(&words);
                if code == Some(255) || code.is_none() {
                    let why = reach(&text);
                    return Err(self.unreachable(why, ssh_words(&words, why)));
                }
                return Err(self.agent_error(format!(
                    "the host's shell did not answer `{remote}` as expected{}",
                    stderr_suffix(&words)
                )));
            }
        };
        let [os, arch, home, state] = &facts[..] else {
            agent.finish();
            return Err(self.agent_error(format!(
                "the host's shell answered `{}` to `{remote}`",
                facts.join("; ")
            )));
        };
        let Some(binary) = binaries.for_host(os, arch) else {
            agent.finish();
            let (file, why) = binaries.missing(os, arch);
            return Err(Error::Platform {
                target: self.target.as_str().into(),
                cells: self.cells().into(),
                host: format!("{os} {arch}").into(),
                file: file.into(),
                why: why.into(),
            });
        };
        let dir = format!("{CACHE}/{}", binary.dir);
        let (file, args) = (&binary.name, binary.args);
        conn.build = binary.dir.clone();
        if state != "present" {
            let gzip = state.split_whitespace().any(|w| w == "gzip");
            if let Err(e) = self.upload(&conn.args, binary, &dir, gzip) {
                agent.finish();
                return Err(e);
            }
            if !agent.send(b"go\n".to_vec()) {
                let (_, words) = agent.finish();
                return Err(self.lost("start pgbr on the host", ssh_words(&words, Reach::Network)));
            }
        }
        let path = shell_quote(&format!("{home}/{dir}/{file}"));
        let command = [path.as_str(), args].join(" ").trim_end().to_owned();
        let hello = agent.ask(&Request::Hello { protocol: PROTOCOL }, connect_bound);
        match hello {
            Ok(Response::Hello { protocol, .. }) if protocol == PROTOCOL => {
                conn.agent = Some(agent);
                Ok(())
            }
            Ok(other) => Err(self.agent_error(format!("the agent answered {other:?} to hello"))),
            Err(_) => {
                let (code, words) = agent.finish();
                let text = String::from_utf8_lossy(&words).into_owned();
                if self.spec.sudo && text.contains("sudo") {
                    return Err(Error::Sudo {
                        target: self.target.as_str().into(),
                        cells: self.cells().into(),
                        detail: ssh_words(&words, Reach::Ssh).into(),
                    });
                }
                if code == Some(255) {
                    let why = reach(&text);
                    return Err(self.unreachable(why, ssh_words(&words, why)));
                }
                Err(self.agent_error(format!(
                    "`{sudo}{command}` exited{}: {}",
                    code.map(|c| format!(" with status {c}"))
                        .unwrap_or_default(),
                    ssh_words(&words, Reach::Ssh)
                )))
            }
        }
    }

    /// Copies the agent binary to `~/<dir>/` on the host, over the open
    /// master (no second login): to a temp name, then renamed;
    /// gzipped when the host has gzip (a third of the bytes, and gzip's
    /// CRC refuses a damaged copy).
    fn upload(
        &self,
        args: &[OsString],
        binary: &'static Binary,
        dir: &str,
        gzip: bool,
    ) -> Result<(), Error> {
        let read_err = |e: String| {
            self.agent_error(format!(
                "read `{}` to copy it to the host: {e}",
                binary.path.display()
            ))
        };
        let (input, unpack) = if gzip {
            (
                Input::Bytes(binary.gzipped().map_err(read_err)?),
                "gzip -dc",
            )
        } else {
            let file = std::fs::File::open(&binary.path).map_err(|e| read_err(e.to_string()))?;
            (Input::File(file), "cat")
        };
        let tmp = format!("{dir}/.pgbr.$$");
        let script = format!(
            "umask 077 && mkdir -p {dir} && {{ {unpack} > {tmp} || {{ rm -f {tmp}; exit 1; }}; }} \
             && chmod 0755 {tmp} && mv -f {tmp} {dir}/{}",
            binary.name
        );
        let failed = format!("copy pgbr to `~/{dir}/{}`", binary.name);
        self.run_script(
            args,
            ("copy pgbr to the host", &failed),
            &script,
            input,
            UPLOAD_TIMEOUT,
        )
        .map(drop)
    }

    /// Runs `script` on the host in a session of its own over the open
    /// master, with `input` as its stdin, bounded by `limit`; its stdout.
    /// A broken connection is [`Error::Lost`] while doing `action.0`; the
    /// script failing is an agent error saying `action.1` failed, with
    /// its words.
    fn run_script(
        &self,
        args: &[OsString],
        action: (&str, &str),
        script: &str,
        input: Input,
        limit: Duration,
    ) -> Result<Vec<u8>, Error> {
        let out = run_bounded(self.ssh(args, &format!("sh -c '{script}'")), input, limit)
            .map_err(|e| self.lost(action.0, e.to_string()))?;
        if out.status.code() == Some(255) {
            let why = reach(&String::from_utf8_lossy(&out.stderr));
            return Err(self.lost(action.0, ssh_words(&out.stderr, why)));
        }
        if !out.status.success() {
            return Err(self.agent_error(format!(
                "{}: {}",
                action.1,
                ssh_words(&out.stderr, Reach::Ssh)
            )));
        }
        Ok(out.stdout)
    }

    /// Sends one request to the host's agent (connecting first if needed).
    fn call(
        &self,
        action: &str,
        request: &Request<'_>,
        limit: Duration,
    ) -> Result<Response, Error> {
        let mut session = self.session()?;
        let agent = session
            .conn
            .as_mut()
            .and_then(|c| c.agent.as_mut())
            .expect("connected");
        match agent.ask(request, limit) {
            Ok(Response::Failed(e)) => Err(e.on_host(&self.target)),
            Ok(answer) => Ok(answer),
            Err(why) => {
                // The host side's last words, then ssh's (a keepalive
                // timeout, say): `finish` reads both.
                let (_, words) = agent.finish();
                let said = ssh_words(&words, Reach::Network);
                let detail = match why {
                    Ask::Closed if said.is_empty() => "the connection closed".to_owned(),
                    Ask::Closed => said,
                    Ask::TimedOut => format!("no answer within {}s", limit.as_secs()),
                    Ask::Garbled(e) => format!("the agent's answer cannot be read: {e}"),
                };
                let e = self.lost(action, detail);
                session.broken = postcard::to_stdvec(&e).ok();
                Err(e)
            }
        }
    }

    /// The session, connected (once per run; a host that failed stays
    /// failed for the rest of the run).
    fn session(&self) -> Result<std::sync::MutexGuard<'_, Session>, Error> {
        let mut session = lock(&self.session);
        if let Some(bytes) = &session.broken {
            return Err(revive(bytes, self.cells()));
        }
        if session.conn.is_none() {
            if let Err(e) = self.connect(&mut session.conn) {
                session.broken = postcard::to_stdvec(&e).ok();
                return Err(e);
            }
        }
        Ok(session)
    }

    fn unexpected(&self, action: &str, answer: Response) -> Error {
        self.agent_error(format!("the agent answered {answer:?} to {action}"))
    }
}

/// An error stored by [`Session::broken`], named with today's cells.
fn revive(bytes: &[u8], now: Vec<String>) -> Error {
    let mut e = postcard::from_bytes(bytes).unwrap_or_else(|_| Error::Agent {
        target: "".into(),
        cells: Box::default(),
        detail: "the host failed earlier in this run".into(),
    });
    match &mut e {
        Error::Unreachable { cells, .. }
        | Error::Lost { cells, .. }
        | Error::Agent { cells, .. }
        | Error::Sudo { cells, .. }
        | Error::Platform { cells, .. } => *cells = now.into(),
        _ => {}
    }
    e
}

/// Why [`Agent::ask`] got no answer.
enum Ask {
    Closed,
    TimedOut,
    Garbled(String),
}

impl Agent {
    /// Starts `cmd`, whose stdout is `preamble` lines of text (read by
    /// [`Agent::preamble`]), then the agent's frames; `master_log` is
    /// where ssh writes its own words (`-E`), if anywhere.
    fn start(
        mut cmd: Command,
        preamble: usize,
        master_log: Option<PathBuf>,
    ) -> std::io::Result<Agent> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err = child.stderr.take().expect("piped");
        let keep = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                let mut k = lock(&keep);
                k.extend_from_slice(&buf[..n]);
                // The last words are the ones that say why.
                let excess = k.len().saturating_sub(16 << 10);
                k.drain(..excess);
            }
        });
        let mut out = child.stdout.take().expect("piped");
        let (answer_tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            if preamble > 0 {
                // Byte by byte: what follows the last line is the agent's.
                let (mut text, mut lines, mut byte) = (Vec::new(), 0, [0u8]);
                while lines < preamble {
                    match out.read(&mut byte) {
                        Ok(1) => {
                            lines += usize::from(byte[0] == b'\n');
                            text.push(byte[0]);
                        }
                        Ok(_) => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                // All the lines, or the end of the session.
                let whole = lines == preamble;
                if answer_tx.send(Ok(whole.then_some(text))).is_err() || !whole {
                    return;
                }
            }
            loop {
                let frame = read_frame(&mut out);
                let end = !matches!(frame, Ok(Some(_)));
                if answer_tx.send(frame).is_err() || end {
                    break;
                }
            }
        });
        let mut stdin: ChildStdin = child.stdin.take().expect("piped");
        let (requests, request_rx) = mpsc::sync_channel::<Vec<u8>>(1);
        // Sends the requests, and a ping whenever there was none for
        // `PING_EVERY`: the agent ends (releasing its locks) when its
        // operator goes silent. Pings start after the first write: before
        // it the host's shell, not the agent, reads stdin (the `go` line).
        // Ends, closing the agent's stdin, when `requests` is dropped.
        let mut ping = Vec::new();
        write_frame(&mut ping, &Request::Ping)?;
        std::thread::spawn(move || {
            use std::io::Write;
            let mut started = false;
            loop {
                let frame = match request_rx.recv_timeout(PING_EVERY) {
                    Ok(frame) => frame,
                    Err(RecvTimeoutError::Timeout) if started => ping.clone(),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                started = true;
                if stdin
                    .write_all(&frame)
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok(Agent {
            child,
            requests: Some(requests),
            answers,
            stderr,
            stderr_reader,
            master_log,
        })
    }

    /// The preamble's lines, waiting up to `limit` for all of them
    /// (`Err` when the session ended or went silent before).
    fn preamble(&mut self, limit: Duration) -> Result<Vec<String>, Ask> {
        match self.answers.recv_timeout(limit) {
            Ok(Ok(Some(text))) => Ok(String::from_utf8_lossy(&text)
                .lines()
                .map(str::to_owned)
                .collect()),
            Ok(_) | Err(RecvTimeoutError::Disconnected) => Err(Ask::Closed),
            Err(RecvTimeoutError::Timeout) => Err(Ask::TimedOut),
        }
    }

    /// Writes raw bytes to the session's stdin; `false` once it is closed.
    fn send(&self, bytes: Vec<u8>) -> bool {
        matches!(self.requests.as_ref().map(|r| r.send(bytes)), Some(Ok(())))
    }

    /// Sends `request` and waits up to `limit` for the answer.
    fn ask(&mut self, request: &Request<'_>, limit: Duration) -> Result<Response, Ask> {
        let mut frame = Vec::new();
        write_frame(&mut frame, request).map_err(|e| Ask::Garbled(e.to_string()))?;
        if !self.send(frame) {
            return Err(Ask::Closed);
        }
        match self.answers.recv_timeout(limit) {
            Ok(Ok(Some(bytes))) => {
                postcard::from_bytes(&bytes).map_err(|e| Ask::Garbled(e.to_string()))
            }
            Ok(Ok(None)) | Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => Err(Ask::Closed),
            Err(RecvTimeoutError::Timeout) => Err(Ask::TimedOut),
        }
    }

    /// Ends the ssh process (politely first: its stdin closes) and returns
    /// its exit code and what was said: the host side's stderr, then ssh's
    /// own words from the master's log (a keepalive timeout, say).
    fn finish(&mut self) -> (Option<i32>, Vec<u8>) {
        self.requests = None;
        let code = wait_bounded(&mut self.child, Duration::from_secs(3));
        // The stderr reader ends when the session does (a multiplexed
        // session's stderr is the master's to close): a bounded moment.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.stderr_reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut words = lock(&self.stderr).clone();
        if let Some(log) = &self.master_log {
            let mut ssh = std::fs::read(log).unwrap_or_default();
            ssh.drain(..ssh.len().saturating_sub(16 << 10));
            words.extend(ssh);
        }
        (code, words)
    }
}

impl Drop for SshTarget {
    fn drop(&mut self) {
        let session = self.session.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(mut conn) = session.conn.take() else {
            return;
        };
        if let Some(mut agent) = conn.agent.take() {
            agent.finish();
        }
        if conn.persist {
            let mut exit = Command::new("ssh");
            exit.args(&conn.args)
                .args(["-O", "exit", "--"])
                .arg(&self.spec.host)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(mut child) = exit.spawn() {
                wait_bounded(&mut child, Duration::from_secs(5));
            }
        }
        let _ = std::fs::remove_dir_all(&conn.control_dir);
    }
}

/// Waits up to `limit` for `child`, then kills it; its exit code.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                return child.wait().ok().and_then(|s| s.code());
            }
        }
    }
}

/// What a bounded command reads.
enum Input {
    Null,
    File(std::fs::File),
    Bytes(&'static [u8]),
}

/// Runs `cmd` to completion with `input` as stdin, killing it after `limit`.
fn run_bounded(mut cmd: Command, input: Input, limit: Duration) -> std::io::Result<Output> {
    let (stdin, bytes) = match input {
        Input::Null => (Stdio::null(), None),
        Input::File(f) => (Stdio::from(f), None),
        Input::Bytes(b) => (Stdio::piped(), Some(b)),
    };
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(bytes), Some(mut pipe)) = (bytes, child.stdin.take()) {
        // A writer of its own: the reader may stop reading (and be killed).
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(bytes);
        });
    }
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = read(Box::new(child.stdout.take().expect("piped")));
    let err = read(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {}s", limit.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// What kind of failure ssh's stderr describes.
fn reach(stderr: &str) -> Reach {
    let s = stderr.to_ascii_lowercase();
    if s.contains("host key") || s.contains("host identification") {
        Reach::HostKey
    } else if s.contains("permission denied") || s.contains("authentication") {
        Reach::Login
    } else if s.contains("bad configuration")
        || s.contains("unsupported option")
        || s.contains("command-line")
        || s.contains("can't open user config")
    {
        Reach::Ssh
    } else {
        Reach::Network
    }
}

/// ssh's words on one line: its banner (`@@@…`) and empty lines left out;
/// for a host key failure, the lines about the key.
fn ssh_words(stderr: &[u8], why: Reach) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('@'))
        .filter(|l| {
            why != Reach::HostKey || {
                let l = l.to_ascii_lowercase();
                l.contains("key") || l.contains("verification")
            }
        })
        .collect();
    let keep = &lines[lines.len().saturating_sub(6)..];
    keep.join("; ")
}

fn stderr_suffix(stderr: &[u8]) -> String {
    let words = ssh_words(stderr, Reach::Ssh);
    if words.is_empty() {
        String::new()
    } else {
        format!(" ({words})")
    }
}

/// `s` as one POSIX shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A new private (0700) directory with a short path, for control sockets
/// (a socket path has at most 107 bytes; `%C` takes 40).
fn private_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let tmp = std::env::temp_dir();
    let base = if tmp.as_os_str().len() <= 48 {
        tmp
    } else {
        PathBuf::from("/tmp")
    };
    for _ in 0..16 {
        let dir = base.join(format!(
            "pgbr-ssh-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free name"))
}

/// A short description of a command for error messages.
fn short(command: &str) -> String {
    let first = command.lines().next().unwrap_or_default();
    if first.chars().count() > 60 || first.len() < command.len() {
        format!("{}…", first.chars().take(60).collect::<String>())
    } else {
        first.to_owned()
    }
}

impl Target for SshTarget {
    fn observe(&self, cell: &str, deploy_dir: &str) -> Result<Observed, Error> {
        self.name_cell(cell);
        let action = format!("observe `{deploy_dir}`");
        match self.call(
            &action,
            &Request::Observe { cell, deploy_dir },
            REQUEST_TIMEOUT,
        )? {
            Response::Observed(o) => Ok(o),
            other => Err(self.unexpected(&action, other)),
        }
    }

    fn prepare(&self, req: &Prepare<'_>) -> Result<Option<u64>, Error> {
        self.name_cell(req.cell);
        let action = format!("prepare `{}`", req.deploy_dir);
        match self.call(&action, &Request::Prepare(req.clone()), REQUEST_TIMEOUT)? {
            Response::Prepared(current) => Ok(current),
            other => Err(self.unexpected(&action, other)),
        }
    }

    fn materialize(
        &self,
        deploy_dir: &str,
        generation: u64,
        files: &[FileContent],
        owner: Option<&str>,
    ) -> Result<(), Error> {
        let action = format!("write `{deploy_dir}/generations/{generation}`");
        let request = Request::Materialize {
            deploy_dir,
            generation,
            files: Cow::Borrowed(files),
            owner,
        };
        self.done(&action, &request, REQUEST_TIMEOUT)
    }

    fn flip(&self, deploy_dir: &str, from: Option<u64>, to: Option<u64>) -> Result<(), Error> {
        let action = format!("flip `{deploy_dir}/current`");
        self.done(
            &action,
            &Request::Flip {
                deploy_dir,
                from,
                to,
            },
            REQUEST_TIMEOUT,
        )
    }

    fn link_config(&self, link: &str, deploy_dir: &str) -> Result<(), Error> {
        let action = format!("link `{link}`");
        self.done(
            &action,
            &Request::LinkConfig { link, deploy_dir },
            REQUEST_TIMEOUT,
        )
    }

    fn resolve_owner(&self, owner: &str) -> Result<(), Error> {
        let action = format!("look up owner `{owner}`");
        self.done(&action, &Request::ResolveOwner { owner }, REQUEST_TIMEOUT)
    }

    fn run_hook(&self, hook: &HookRun) -> Result<HookOutput, Error> {
        if let Some((_, cell)) = hook.env.iter().find(|(k, _)| k == "PGBR_CELL") {
            self.name_cell(cell);
        }
        let action = format!("run `{}`", short(&hook.command));
        let request = Request::RunHook(Cow::Borrowed(hook));
        match self.call(&action, &request, hook.timeout + HOOK_MARGIN)? {
            Response::Hook(out) => Ok(out),
            other => Err(self.unexpected(&action, other)),
        }
    }

    fn generation_size(&self, deploy_dir: &str, generation: u64) -> Result<u64, Error> {
        let action = format!("measure `{deploy_dir}/generations/{generation}`");
        match self.call(
            &action,
            &Request::GenerationSize {
                deploy_dir,
                generation,
            },
            REQUEST_TIMEOUT,
        )? {
            Response::Size(n) => Ok(n),
            other => Err(self.unexpected(&action, other)),
        }
    }

    fn remove_generation(&self, deploy_dir: &str, generation: u64) -> Result<(), Error> {
        let action = format!("remove `{deploy_dir}/generations/{generation}`");
        self.done(
            &action,
            &Request::RemoveGeneration {
                deploy_dir,
                generation,
            },
            REQUEST_TIMEOUT,
        )
    }

    fn remove_partial(&self, deploy_dir: &str, generation: u64) -> Result<(), Error> {
        let action = format!("remove `{deploy_dir}/generations/.{generation}.partial`");
        self.done(
            &action,
            &Request::RemovePartial {
                deploy_dir,
                generation,
            },
            REQUEST_TIMEOUT,
        )
    }

    /// The build dirs in the login's `~/.cache/pgbr` other than the one
    /// this run uses (named `<version>-<16 hex digits>`: nothing else
    /// there is touched), listed and, unless `dry_run`, removed by the
    /// login user over the open master. A run of another build on the
    /// host at that moment may fail to start its agent (it says so; the
    /// next run copies it again).
    fn other_builds(&self, dry_run: bool) -> Result<Vec<String>, Error> {
        let action = "clean pgbr's cache on the host";
        let session = self.session()?;
        let conn = session.conn.as_ref().expect("connected");
        let (args, ours) = (&conn.args, &conn.build);
        let remove = if dry_run {
            ""
        } else {
            "rm -rf -- \"$d\" || exit 1; "
        };
        let script = format!(
            "cd && cd {CACHE} 2>/dev/null || exit 0; for d in *-{hex}; do \
             test -d \"$d\" && test \"$d\" != {ours} || continue; {remove}echo \"$d\"; done",
            hex = "[0-9a-f]".repeat(16)
        );
        let out = self.run_script(
            args,
            (action, action),
            &script,
            Input::Null,
            REQUEST_TIMEOUT,
        )?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .map(|d| format!("`~/{CACHE}/{d}` on `{}`", self.target))
            .collect())
    }
}

impl SshTarget {
    /// A request answered by [`Response::Done`].
    fn done(&self, action: &str, request: &Request<'_>, limit: Duration) -> Result<(), Error> {
        match self.call(action, request, limit)? {
            Response::Done => Ok(()),
            other => Err(self.unexpected(action, other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_failures_are_classified_from_its_words() {
        let changed = "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                       Offending ED25519 key in /k:1\nHost key for 10.0.0.2 has changed and you have requested strict checking.\n\
                       Host key verification failed.\n";
        assert_eq!(reach(changed), Reach::HostKey);
        let words = ssh_words(changed.as_bytes(), Reach::HostKey);
        assert!(words.ends_with("Host key verification failed."), "{words}");
        assert!(!words.contains('@'), "{words}");
        assert_eq!(
            reach("ssh: connect to host 10.0.0.3 port 22: Connection timed out"),
            Reach::Network
        );
        assert_eq!(
            reach("root@10.0.0.3: Permission denied (publickey)."),
            Reach::Login
        );
        assert_eq!(
            reach("/x/config: line 1: Bad configuration option: foo"),
            Reach::Ssh
        );
    }

    #[test]
    fn user_options_come_first_and_host_keys_are_left_alone() {
        let t = SshTarget::new(SshSpec {
            user: Some("pg".into()),
            host: "db1".into(),
            port: Some(2222),
            config_file: Some("/etc/pgbr/ssh_config".into()),
            options: vec!["ConnectTimeout=3".into()],
            sudo: false,
        });
        let args: Vec<String> = t
            .args(Path::new("/tmp/c"), (true, true))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let text = args.join(" ");
        assert!(
            text.starts_with("-F /etc/pgbr/ssh_config -o ConnectTimeout=3 -o BatchMode=yes"),
            "{text}"
        );
        assert!(text.contains("-o ControlPath=/tmp/c/%C"), "{text}");
        // The master is the agent's session: none outlives the run.
        assert!(text.contains("-o ControlPersist=no"), "{text}");
        assert!(text.ends_with("-l pg -p 2222"), "{text}");
        assert!(
            !text.to_lowercase().contains("stricthostkeychecking"),
            "{text}"
        );
        assert!(!text.to_lowercase().contains("knownhosts"), "{text}");
    }

    #[test]
    fn a_silent_agent_times_out_and_a_dead_one_is_closed() {
        let mut silent = Command::new("sh");
        silent.args(["-c", "exec sleep 30"]);
        let mut a = Agent::start(silent, 0, None).unwrap();
        let hello = Request::Hello { protocol: PROTOCOL };
        assert!(matches!(
            a.ask(&hello, Duration::from_millis(200)),
            Err(Ask::TimedOut)
        ));
        a.finish();

        let mut dead = Command::new("sh");
        dead.args([
            "-c",
            "echo 'Connection to 10.0.0.2 closed by remote host.' >&2; exit 255",
        ]);
        let mut a = Agent::start(dead, 0, None).unwrap();
        assert!(matches!(
            a.ask(&hello, Duration::from_secs(20)),
            Err(Ask::Closed)
        ));
        let (code, words) = a.finish();
        assert_eq!(code, Some(255));
        assert_eq!(
            ssh_words(&words, Reach::Network),
            "Connection to 10.0.0.2 closed by remote host."
        );
    }

    #[test]
    fn shell_words_and_short_commands() {
        assert_eq!(shell_quote("/home/o'b/x"), r"'/home/o'\''b/x'");
        assert_eq!(short("systemctl reload x"), "systemctl reload x");
        assert!(short("a\nb").ends_with('…'));
    }
}
