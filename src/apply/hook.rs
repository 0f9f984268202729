//! Running a hook (`activate`, a health command) on this machine: a shell
//! command with the cell's environment, bounded by a timeout, its output
//! tail kept for the operator. Used by the local target; a remote target
//! runs the same code on its host.

use super::target::{io, Error, HookOutput};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How many lines of output a failing hook reports.
const TAIL_LINES: usize = 20;

/// Runs `command` with `/bin/sh -c` and `env`, killing it after `timeout`.
pub fn run(command: &str, env: &[(&str, String)], timeout: Duration) -> Result<HookOutput, Error> {
    // Output goes to a file, not a pipe: a hook may start a daemon that
    // keeps inherited pipes open long after the hook itself exited.
    let out_path = std::env::temp_dir().join(format!(
        "pgbr-hook-{}-{}.log",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    let log = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&out_path)
        .map_err(io("create", &out_path))?;
    let log2 = log.try_clone().map_err(io("open", &out_path))?;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(io("run", Path::new("/bin/sh")))?;
    let deadline = Instant::now() + timeout;
    let (code, timed_out) = loop {
        match child
            .try_wait()
            .map_err(io("wait for", Path::new("/bin/sh")))?
        {
            Some(status) => break (status.code(), false),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break (None, true);
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let text = fs::read_to_string(&out_path).unwrap_or_default();
    let _ = fs::remove_file(&out_path);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    Ok(HookOutput {
        code,
        timed_out,
        tail,
    })
}
