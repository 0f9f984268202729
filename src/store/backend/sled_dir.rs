//! The sled store's directory: creating it private, refusing one that is
//! not (another user's, writable by others, a planted symlink), and the
//! process lock that lets one pgbr at a time own it.
//!
//! The state directory and its `db/` are the user's own, 0700, and every
//! file in `db/` is 0600, whatever the umask: sled creates its files with
//! the process umask, so they are tightened after every open. A state
//! directory or `db/` owned by someone else, or writable by others, is
//! refused (root too: a directory another user prepared may hold links
//! aimed at root's files, or hand them the keys). The lock file is opened
//! with `O_NOFOLLOW`.
//!
//! `flock(LOCK_EX | LOCK_NB)` on `<state>/lock`, held for the store's
//! lifetime. The kernel drops it when the holder exits, however it exits, so
//! a killed pgbr never leaves a stale lock behind. After locking, the holder
//! writes its pid and command line into the file so that a second process
//! can say who holds it; the file's content is only ever informative, the
//! flock is the lock. The descriptor is close-on-exec (std opens files with
//! `O_CLOEXEC`), so `activate` commands do not inherit the lock; but a
//! holder killed while it was starting a child leaves the lock with that
//! child until it execs, so a lock whose noted holder has exited is waited
//! for, briefly ([`RELEASE_GRACE`]), before "state is locked".

use super::command_line;
use crate::store::{Distrust, Error};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a lock whose noted holder has exited is waited for before
/// "state is locked". A holder killed while it was starting a child
/// (between fork and exec) leaves the lock with that child for a moment:
/// the descriptor is close-on-exec, so the lock goes when the child execs.
const RELEASE_GRACE: Duration = Duration::from_secs(3);

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
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(nix::libc::ELOOP) => Error::Untrusted {
                    path: path.clone(),
                    why: Distrust::Symlink,
                },
                _ => Error::io("open state lock file", &path)(e),
            })?;
        // A lock file of an older pgbr, or made under another umask.
        let meta = file
            .metadata()
            .map_err(Error::io("inspect state lock file", &path))?;
        trusted(&path, &meta)?;
        if meta.mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(Error::io("restrict permissions of state lock file", &path))?;
        }
        let deadline = Instant::now() + RELEASE_GRACE;
        let mut file = file;
        let locked = loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => break locked,
                Err((mut held, Errno::EWOULDBLOCK)) => {
                    let mut note = String::new();
                    let _ = held.rewind().and_then(|()| held.read_to_string(&mut note));
                    if holder_gone(&note) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(50));
                        file = held;
                        continue;
                    }
                    return Err(Error::Locked {
                        store: dir.display().to_string(),
                        holder: describe_holder(&note),
                    });
                }
                Err((_, errno)) => return Err(Error::io("lock state", &path)(errno.into())),
            }
        };
        let note = format!("{}\n{}\n", std::process::id(), command_line());
        locked
            .set_len(0)
            .and_then(|()| locked.write_all_at(note.as_bytes(), 0))
            .map_err(Error::io("write state lock file", &path))?;
        Ok(StateLock { _file: locked })
    }
}

/// Refuses `meta` (of `path`) unless this user owns it and others cannot
/// write it.
fn trusted(path: &Path, meta: &fs::Metadata) -> Result<(), Error> {
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        let owner = nix::unistd::User::from_uid(meta.uid().into())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| meta.uid().to_string());
        return Err(Error::Untrusted {
            path: path.to_owned(),
            why: Distrust::Owner {
                owner,
                uid: meta.uid(),
                me,
            },
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Error::Untrusted {
            path: path.to_owned(),
            why: Distrust::Writable {
                mode: meta.mode() & 0o7777,
            },
        });
    }
    Ok(())
}

/// Creates `dir` with mode 0700 (missing parents too), or checks that it is
/// a directory this user owns that others cannot write, and takes away
/// any group/other bits: it holds private keys. `what` names it in errors.
fn private_dir(dir: &Path, what: &str, follow: bool) -> Result<(), Error> {
    let found = if follow {
        fs::metadata(dir)
    } else {
        fs::symlink_metadata(dir)
    };
    match found {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::Untrusted {
            path: dir.to_owned(),
            why: Distrust::Symlink,
        }),
        Ok(meta) if !meta.is_dir() => Err(Error::io(&format!("open {what}"), dir)(
            std::io::Error::other("it exists and is not a directory"),
        )),
        Ok(meta) => {
            trusted(dir, &meta)?;
            if meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                    .map_err(Error::io(&format!("restrict permissions of {what}"), dir))?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Explicit modes: under umask 000 the parents would be 0777.
            match fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
            {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    Err(Error::io(&format!("create {what}"), dir)(e))
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(Error::io(&format!("inspect {what}"), dir)(e)),
    }
}

/// Creates the state directory `dir` (mode 0700) or checks that it can be
/// trusted with private keys (see the module note).
pub(super) fn prepare(dir: &Path) -> Result<(), Error> {
    // The state directory itself may be a symlink the operator made (its
    // path is theirs to choose); what it resolves to must be theirs.
    private_dir(dir, "state directory", true)
}

/// Creates a database directory (`db/`, `db.next/`) with mode 0700, or
/// checks an existing one as [`prepare`] does; no symlink.
pub(super) fn prepare_db(db: &Path) -> Result<(), Error> {
    private_dir(db, "state database", false)
}

/// Takes group and other bits away from everything under `db` (sled
/// creates its files with the process umask).
pub(super) fn tighten_db(db: &Path) -> Result<(), Error> {
    let meta = fs::symlink_metadata(db).map_err(Error::io("inspect state database", db))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let want = if meta.is_dir() { 0o700 } else { 0o600 };
    if meta.mode() & 0o7777 != want {
        fs::set_permissions(db, fs::Permissions::from_mode(want))
            .map_err(Error::io("restrict permissions of state database", db))?;
    }
    if meta.is_dir() {
        for entry in fs::read_dir(db).map_err(Error::io("read state database", db))? {
            tighten_db(&entry.map_err(Error::io("read state database", db))?.path())?;
        }
    }
    Ok(())
}

/// `pid 1234 (pgbr apply …)` from the lock file's note.
/// Whether the pid the holder noted is no longer running (the lock is then
/// on its way out with a forked child of the dead holder).
fn holder_gone(note: &str) -> bool {
    let pid = note
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok());
    match pid {
        Some(pid) if pid > 0 => {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(Errno::ESRCH)
        }
        _ => false,
    }
}

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

    /// A lock held by another process (`flock(1)` here, for 1 s), whose
    /// note names `pid`.
    fn held_by_other(dir: &Path, pid: u32) -> std::process::Child {
        let path = dir.join("lock");
        std::fs::write(&path, format!("{pid}\npgbr apply t.toml\n")).unwrap();
        std::fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let child = std::process::Command::new("flock")
            .args(["--nonblock", "--no-fork"])
            .arg(&path)
            .args(["sleep", "1"])
            .spawn()
            .unwrap();
        // Until flock(1) holds it.
        let until = Instant::now() + Duration::from_secs(5);
        while Flock::lock(File::open(&path).unwrap(), FlockArg::LockExclusiveNonblock).is_ok() {
            assert!(Instant::now() < until, "flock(1) never took the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        child
    }

    #[test]
    fn a_dead_holders_lock_is_waited_for_briefly() {
        let dir = tempfile::tempdir().unwrap();
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let dead = gone.id();
        gone.wait().unwrap();
        let mut child = held_by_other(dir.path(), dead);
        let lock = StateLock::acquire(dir.path());
        child.wait().unwrap();
        assert!(lock.is_ok(), "{:?}", lock.err());
    }

    #[test]
    fn a_live_holders_lock_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = held_by_other(dir.path(), std::process::id());
        let lock = StateLock::acquire(dir.path());
        child.wait().unwrap();
        let err = lock.unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
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
