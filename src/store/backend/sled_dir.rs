//! The sled store's directory: creating it private, and the process lock
//! that lets one pgbr at a time own it.
//!
//! `flock(LOCK_EX | LOCK_NB)` on `<state>/lock`, held for the store's
//! lifetime. The kernel drops it when the holder exits, however it exits, so
//! a killed pgbr never leaves a stale lock behind. After locking, the holder
//! writes its pid and command line into the file so that a second process
//! can say who holds it; the file's content is only ever informative, the
//! flock is the lock. The descriptor is close-on-exec (std opens files with
//! `O_CLOEXEC`), so `activate` commands do not inherit the lock.

use super::command_line;
use crate::store::Error;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// A held lock on a state directory; released on drop.
#[derive(Debug)]
pub(super) struct StateLock {
    _file: Flock<File>,
}

impl StateLock {
    /// Locks the state directory `dir` without waiting.
    pub(super) fn acquire(dir: &Path) -> Result<StateLock, Error> {
        let path = dir.join("lock");
        // No truncation before the lock is ours: the holder's note stays
        // readable for the error message.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(Error::io("open state lock file", &path))?;
        let locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut note = String::new();
                let _ = file.read_to_string(&mut note);
                return Err(Error::Locked {
                    store: dir.display().to_string(),
                    holder: describe_holder(&note),
                });
            }
            Err((_, errno)) => return Err(Error::io("lock state", &path)(errno.into())),
        };
        let note = format!("{}\n{}\n", std::process::id(), command_line());
        locked
            .set_len(0)
            .and_then(|()| locked.write_all_at(note.as_bytes(), 0))
            .map_err(Error::io("write state lock file", &path))?;
        Ok(StateLock { _file: locked })
    }
}

/// Creates `dir` (mode 0700) or checks it is a directory and takes away any
/// group/other bits: the store holds private keys.
pub(super) fn prepare(dir: &Path) -> Result<(), Error> {
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(Error::Io {
            action: "open state directory".into(),
            path: dir.to_owned(),
            source: std::io::Error::other("it exists and is not a directory"),
        }),
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(Error::io("restrict permissions of state directory", dir))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(Error::io("create state directory", dir))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    Err(Error::io("create state directory", dir)(e))
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(Error::io("inspect state directory", dir)(e)),
    }
}

/// `pid 1234 (pgbr apply …)` from the lock file's note.
fn describe_holder(note: &str) -> String {
    let mut lines = note.lines();
    let pid = lines.next().and_then(|l| l.trim().parse::<u32>().ok());
    let command = lines.next().map(str::trim).unwrap_or("");
    match pid {
        // The holder may have locked and not yet written its note.
        None => "another process".to_owned(),
        Some(pid) if command.is_empty() => format!("pid {pid}"),
        Some(pid) => format!("pid {pid} ({command})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_note_is_described() {
        assert_eq!(
            describe_holder("42\npgbr apply t.toml\n"),
            "pid 42 (pgbr apply t.toml)"
        );
        assert_eq!(describe_holder("42\n"), "pid 42");
        assert_eq!(describe_holder(""), "another process");
        assert_eq!(describe_holder("garbage"), "another process");
    }

    #[test]
    fn note_names_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = StateLock::acquire(dir.path()).unwrap();
        let note = std::fs::read_to_string(dir.path().join("lock")).unwrap();
        assert!(note.starts_with(&format!("{}\n", std::process::id())));
    }

    #[test]
    fn second_lock_fails_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let lock = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err();
        let Error::Locked { holder, .. } = err else {
            panic!("{err:?}")
        };
        assert!(holder.starts_with(&format!("pid {} (", std::process::id())));
        drop(lock);
        StateLock::acquire(dir.path()).unwrap();
    }
}
