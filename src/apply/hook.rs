//! Running a hook (`activate`, a health command) on this machine: a shell
//! command with the cell's environment, in a process group of its own,
//! bounded by a timeout, its whole output kept in a log file and a bounded
//! tail of it returned for the operator. Used by the local target; a remote
//! target runs the same code on its host.
//!
//! A hook is the operator's code, but it must not be able to take pgbr
//! down with it or outlive its budget: its own process group means a
//! `kill 0` in it stays in it, and a timeout kills the whole group (the
//! shell and everything it started), not only `/bin/sh`. Its output goes to
//! a file, never into memory: however much a hook prints, pgbr reads at
//! most [`TAIL_BYTES`] from the end of it.

use super::target::{io, Error, HookOutput, HookRun};
use nix::fcntl::{openat, OFlag};
use nix::sys::signal::{killpg, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, Pid, UnlinkatFlags};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How many lines of output a failing hook reports.
const TAIL_LINES: usize = 20;
/// How much of the end of the output is read to find them.
pub const TAIL_BYTES: u64 = 64 * 1024;
/// At most this much text is reported (a single huge line is cut at its
/// start).
pub const TAIL_CHARS: usize = 8 * 1024;

/// Runs `hook.command` with `/bin/sh -c` and `hook.env` in a new process
/// group, killing the group after `hook.timeout`.
pub fn run(hook: &HookRun) -> Result<HookOutput, Error> {
    // Output goes to a file, not a pipe: a hook may start a daemon that
    // keeps inherited pipes open long after the hook itself exited (and
    // would die of SIGPIPE once pgbr stopped reading).
    let (out, log) = output_file(hook.log.as_deref())?;
    let clone = || {
        out.try_clone().map_err(io(
            "open",
            Path::new(log.as_deref().unwrap_or("(hook output)")),
        ))
    };
    let (stdout, stderr) = (clone()?, clone()?);
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&hook.command)
        .envs(hook.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(io("run", Path::new("/bin/sh")))?;
    // The group's id is the shell's pid (`process_group(0)`).
    let group = Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + hook.timeout;
    let (code, timed_out) = loop {
        match child
            .try_wait()
            .map_err(io("wait for", Path::new("/bin/sh")))?
        {
            Some(status) => break (status.code(), false),
            None if Instant::now() >= deadline => {
                // The whole group: the shell and whatever it started. The
                // shell is reaped here; its children, re-parented to init,
                // are reaped there.
                let _ = killpg(group, Signal::SIGKILL);
                let _ = child.wait();
                break (None, true);
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Ok(HookOutput {
        code,
        timed_out,
        tail: tail_of(&out),
        log,
    })
}

/// The file the hook writes to: `log` (replaced, never followed or
/// truncated through a link) when given and its directory exists, else an
/// anonymous file that vanishes with pgbr, whatever kills it.
fn output_file(log: Option<&str>) -> Result<(File, Option<String>), Error> {
    if let Some(path) = log.map(Path::new) {
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            // The log dir belongs to the cell's owner: pgbr (often root)
            // never follows a link the owner planted there.
            let dir_fd = match nix::fcntl::open(
                dir,
                OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
                Mode::empty(),
            ) {
                Ok(fd) => Some(fd),
                Err(nix::errno::Errno::ENOENT) => None,
                Err(e) => return Err(io("open directory", dir)(e.into())),
            };
            if let Some(dir_fd) = dir_fd {
                match unlinkat(&dir_fd, name, UnlinkatFlags::NoRemoveDir) {
                    Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
                    Err(e) => return Err(io("remove", path)(e.into())),
                }
                let fd = openat(
                    &dir_fd,
                    name,
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC
                        | OFlag::O_RDWR,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| io("create", path)(e.into()))?;
                return Ok((File::from(fd), Some(path.display().to_string())));
            }
        }
    }
    let tmp = std::env::temp_dir();
    let fd = nix::fcntl::open(
        &tmp,
        OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| io("create an anonymous file in", &tmp)(e.into()))?;
    Ok((File::from(fd), None))
}

/// The last [`TAIL_LINES`] lines of `file`, read from its last
/// [`TAIL_BYTES`] only, decoded lossily, at most [`TAIL_CHARS`] long.
fn tail_of(file: &File) -> String {
    let len = file.metadata().map(|m| m.len()).unwrap_or_default();
    let start = len.saturating_sub(TAIL_BYTES);
    let mut buf = vec![0; (len - start) as usize];
    let mut read = 0;
    while read < buf.len() {
        match file.read_at(&mut buf[read..], start + read as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    buf.truncate(read);
    tail_text(&buf, start > 0)
}

/// The tail of `bytes`; `cut` says the bytes start inside the output, so
/// their first line may be partial.
pub fn tail_text(bytes: &[u8], cut: bool) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if cut && lines.len() > 1 {
        lines.remove(0);
    }
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    if tail.len() <= TAIL_CHARS {
        return tail;
    }
    let mut from = tail.len() - TAIL_CHARS;
    while !tail.is_char_boundary(from) {
        from += 1;
    }
    format!("…{}", &tail[from..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(command: &str, timeout: Duration, log: Option<&Path>) -> HookRun {
        HookRun {
            command: command.into(),
            env: vec![("X".into(), "y".into())],
            timeout,
            log: log.map(|p| p.display().to_string()),
        }
    }

    fn alive(pid: i32) -> bool {
        // A zombie is dead: look at its state, not only its existence.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                let state = s.rsplit_once(") ").map(|(_, r)| r.as_bytes()[0]);
                state != Some(b'Z') && state != Some(b'X')
            })
            .unwrap_or(false)
    }

    /// A timeout kills what the hook started, not only `/bin/sh`.
    #[test]
    fn a_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let cmd = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let out = run(&hook(&cmd, Duration::from_millis(500), None)).unwrap();
        assert!(out.timed_out);
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid), "the hook's child {pid} survived the timeout");
    }

    /// `kill 0` in a hook signals the hook's group, not pgbr's.
    #[test]
    fn kill_zero_stays_in_the_hook() {
        let out = run(&hook("kill 0; sleep 5", Duration::from_secs(10), None)).unwrap();
        assert_eq!(out.code, None, "killed by its own signal");
        assert!(!out.timed_out);
    }

    /// Huge output is kept in the log, and only a bounded tail is read;
    /// a byte that is not UTF-8 does not drop the lines after it.
    #[test]
    fn output_is_logged_whole_and_tailed_bounded_and_lossy() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pgbr-activate.log");
        let cmd = "head -c 3000000 /dev/zero | tr '\\0' x; printf '\\n\\377 bad\\n'; \
                   i=0; while [ $i -lt 30 ]; do echo line $i; i=$((i+1)); done; exit 3";
        let out = run(&hook(cmd, Duration::from_secs(30), Some(&log))).unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.log.as_deref(), Some(log.to_str().unwrap()));
        assert!(out.tail.ends_with("line 29"), "{}", out.tail);
        assert!(out.tail.starts_with("line 10"), "{}", out.tail);
        let whole = std::fs::metadata(&log).unwrap();
        assert!(whole.len() > 3_000_000);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(whole.permissions().mode() & 0o777, 0o600);
        let out = run(&hook(
            "printf 'a\\377b\\n'",
            Duration::from_secs(5),
            Some(&log),
        ))
        .unwrap();
        assert_eq!(out.tail, "a\u{FFFD}b");
        assert_eq!(
            std::fs::metadata(&log).unwrap().len(),
            4,
            "replaced, not appended"
        );
        let long = run(&hook(
            "head -c 300000 /dev/zero | tr '\\0' y",
            Duration::from_secs(5),
            None,
        ))
        .unwrap();
        assert!(long.tail.len() <= TAIL_CHARS + 3, "{}", long.tail.len());
        assert!(long.tail.starts_with('…'));
        assert_eq!(long.log, None);
    }

    /// A symlink planted where the log goes is replaced, never followed.
    #[test]
    fn a_planted_log_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let log = dir.path().join("pgbr-activate.log");
        std::os::unix::fs::symlink(&victim, &log).unwrap();
        run(&hook("echo hi", Duration::from_secs(5), Some(&log))).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "hi\n");
    }

    /// Without a log dir the output leaves no file behind.
    #[test]
    fn a_missing_log_dir_falls_back_to_an_anonymous_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("missing/pgbr-activate.log");
        let out = run(&hook("echo $X", Duration::from_secs(5), Some(&log))).unwrap();
        assert_eq!(out.tail, "y");
        assert_eq!(out.log, None);
        assert!(!dir.path().join("missing").exists());
    }
}
