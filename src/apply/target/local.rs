//! The local deploy target: the only code that writes deployed files
//! (a remote target runs this same code on its host).
//!
//! Every file is written to a temp name, fsynced and renamed; a generation
//! is assembled in `generations/.<N>.partial` and renamed into place;
//! `current` is flipped with rename(2); directories are fsynced after each
//! rename. It refuses to follow unexpected symlinks inside a deploy dir and
//! never writes outside it (except the `config_link` the topology names).

use super::{io, Error, FileContent, HookOutput, HookRun, Prepare, Target};
use crate::plan::Observed;
use crate::store::ObjectId;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The marker file that says a deploy dir is pgbr's.
pub const MARKER: &str = ".pgbr-deploy";

/// Deploys to the local filesystem. Holds a lock on every deploy dir it
/// prepared (or removed from) until it is dropped, at the end of the run:
/// another pgbr cannot write the dir in between.
#[derive(Debug, Default)]
pub(super) struct LocalTarget {
    held: Mutex<BTreeMap<PathBuf, Flock<File>>>,
}

impl LocalTarget {
    /// Locks `dd` (`flock` on the directory itself, no lock file) unless
    /// this target holds it already; fails at once when another process
    /// holds it. The descriptor is close-on-exec: hooks do not inherit it.
    fn hold(&self, dd: &Path) -> Result<(), Error> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.contains_key(dd) {
            return Ok(());
        }
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
            .open(dd)
            .map_err(io("open", dd))?;
        let lock = match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(refuse(
                    dd,
                    "another pgbr is deploying it right now (it holds the deploy dir's lock)",
                    "wait for it to finish; if it deploys from another store, only one of the \
                     two stores may keep this cell (see `pgbr status`)",
                ))
            }
            Err((_, errno)) => return Err(io("lock", dd)(errno.into())),
        };
        held.insert(dd.to_path_buf(), lock);
        Ok(())
    }
}

fn refuse(path: &Path, reason: impl Into<String>, hint: impl Into<String>) -> Error {
    Error::Refused {
        path: path.to_path_buf(),
        reason: reason.into(),
        hint: hint.into(),
    }
}

/// `lstat`, `None` when missing.
fn lstat(path: &Path) -> Result<Option<fs::Metadata>, Error> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("inspect", path)(e)),
    }
}

/// Refuses `path` when it exists as anything but a real directory.
fn expect_dir(path: &Path) -> Result<bool, Error> {
    match lstat(path)? {
        None => Ok(false),
        Some(m) if m.file_type().is_symlink() => Err(refuse(
            path,
            "it is a symlink, and pgbr does not write through symlinks in a deploy dir",
            "replace the symlink with a real directory, or point `deploy_dir` at the real path",
        )),
        Some(m) if !m.is_dir() => Err(refuse(
            path,
            "it exists and is not a directory",
            "move it away or choose another path",
        )),
        Some(_) => Ok(true),
    }
}

fn fsync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("fsync directory", dir))
}

/// A resolved owner: uid and gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    uid: u32,
    gid: u32,
}

fn resolve_owner(spec: Option<&str>, deploy_dir: &Path) -> Result<Owner, Error> {
    use nix::unistd::{Group, User};
    let Some(spec) = spec else {
        // Default: the deploy dir's owner, or its nearest existing
        // ancestor's. Only root can give files away: anyone else owns what
        // they create, which is what an unprivileged operator expects (a
        // demo under /tmp must not try to hand files to root).
        let euid = nix::unistd::geteuid();
        if !euid.is_root() {
            return Ok(Owner {
                uid: euid.as_raw(),
                gid: nix::unistd::getegid().as_raw(),
            });
        }
        let mut p = deploy_dir;
        loop {
            if let Ok(m) = fs::metadata(p) {
                return Ok(Owner {
                    uid: m.uid(),
                    gid: m.gid(),
                });
            }
            p = p.parent().unwrap_or(Path::new("/"));
        }
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let bad = |reason: String| Error::Owner {
        owner: spec.to_owned(),
        reason,
    };
    let u = User::from_name(user)
        .map_err(|e| bad(format!("look up user `{user}`: {e}")))?
        .ok_or_else(|| bad(format!("there is no user `{user}` on this machine")))?;
    let gid = match group {
        None => u.gid.as_raw(),
        Some(g) => Group::from_name(g)
            .map_err(|e| bad(format!("look up group `{g}`: {e}")))?
            .ok_or_else(|| bad(format!("there is no group `{g}` on this machine")))?
            .gid
            .as_raw(),
    };
    Ok(Owner {
        uid: u.uid.as_raw(),
        gid,
    })
}

fn set_owner(path: &Path, owner: Owner) -> Result<(), Error> {
    let m = lstat(path)?.ok_or_else(|| {
        io("change owner of", path)(std::io::Error::from(std::io::ErrorKind::NotFound))
    })?;
    if m.uid() == owner.uid && m.gid() == owner.gid {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid)).map_err(|source| {
        Error::Chown {
            path: path.to_path_buf(),
            uid: owner.uid,
            gid: owner.gid,
            source,
        }
    })
}

/// When a new directory entry becomes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// fsync the parent right away.
    Now,
    /// The caller fsyncs the parent once, after all its new entries.
    Later,
}

/// Creates `dir` (mode 0700) and any missing parents, owned by `owner`.
/// New parents are always made durable; `dir`'s own entry per `sync`.
fn create_dir(dir: &Path, owner: Owner, sync: Sync) -> Result<(), Error> {
    if expect_dir(dir)? {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.exists() {
            create_dir(parent, owner, Sync::Now)?;
        }
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io("create directory", dir)(e)),
    }
    set_owner(dir, owner)?;
    if let (Sync::Now, Some(parent)) = (sync, dir.parent()) {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents with mode 0755, stated exactly
/// rather than left to the umask (under umask 000 they would be writable
/// by all): the directories of a `config_link`, which pgBackRest reads
/// through.
fn create_public_dirs(dir: &Path) -> Result<(), Error> {
    if expect_dir(dir)? {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_public_dirs(parent)?;
    }
    match fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io("create directory", dir)(e)),
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io("set mode of", dir))
}

/// Writes `bytes` to `dir/name` through a temp file, fsynced, renamed.
/// The caller fsyncs `dir`.
fn write_file(dir: &Path, name: &str, bytes: &[u8], mode: u32, owner: Owner) -> Result<(), Error> {
    let dest = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    if lstat(&tmp)?.is_some() {
        fs::remove_file(&tmp).map_err(io("remove stale temp file", &tmp))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    // The umask may have narrowed the mode; state it exactly.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io("set mode of", &tmp))?;
    f.write_all(bytes).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    drop(f);
    set_owner(&tmp, owner)?;
    fs::rename(&tmp, &dest).map_err(io("rename into place", &dest))?;
    Ok(())
}

fn generations_dir(deploy_dir: &Path) -> PathBuf {
    deploy_dir.join("generations")
}

/// The generation a `current` link names, checking it stays inside.
fn read_current(deploy_dir: &Path) -> Result<Option<u64>, Error> {
    let link = deploy_dir.join("current");
    let Some(m) = lstat(&link)? else {
        return Ok(None);
    };
    if !m.file_type().is_symlink() {
        return Err(refuse(
            &link,
            "it is not a symlink",
            "pgbr manages `current` as a symlink to `generations/<N>`; move the file away",
        ));
    }
    let target = fs::read_link(&link).map_err(io("read link", &link))?;
    let text = target.to_string_lossy();
    let number = text
        .strip_prefix("generations/")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u64>().ok());
    number.map(Some).ok_or_else(|| {
        refuse(
            &link,
            format!("it points at `{text}`, outside `generations/<N>`"),
            "someone changed it by hand; point it back at a generation or remove it and run `pgbr apply`",
        )
    })
}

fn hash_tree(root: &Path, rel: &str, out: &mut Observed) -> Result<(), Error> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(io("read directory", &dir))?
        .collect::<Result<_, _>>()
        .map_err(io("read directory", &dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let relname = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let path = e.path();
        let m = lstat(&path)?.expect("listed");
        if m.is_dir() {
            hash_tree(root, &relname, out)?;
        } else if m.is_file() {
            let mut bytes = Vec::with_capacity(m.len() as usize);
            File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(io("read", &path))?;
            out.files
                .insert(relname, (ObjectId::of(&bytes), m.mode() & 0o7777));
        } else {
            // A symlink or special file inside a generation: record it as an
            // unreadable entry so it shows as drift.
            out.files
                .insert(relname, (ObjectId::of(b"<not a regular file>"), 0));
        }
    }
    Ok(())
}

/// What a deploy dir's marker says, as found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Claim {
    exists: bool,
    /// It holds pgbr's marker for this cell.
    managed: bool,
    /// It is not empty and holds no marker.
    foreign: bool,
    /// The store the marker names (`None`: a marker of an older pgbr,
    /// which recorded only the cell).
    store: Option<String>,
    /// How that store was named when it bound the dir (a path or URL).
    store_name: Option<String>,
}

/// The value of `key=` in a marker's text.
fn marker_value<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// What `dd` holds: nothing, pgbr's marker for `cell` (and which store
/// wrote it), or a non-empty directory without one. Reads only the marker
/// (and one directory entry).
fn claim(cell: &str, dd: &Path) -> Result<Claim, Error> {
    if !expect_dir(dd)? {
        return Ok(Claim::default());
    }
    let marker = dd.join(MARKER);
    match fs::read_to_string(&marker) {
        Ok(text) => {
            let named = marker_value(&text, "cell").unwrap_or_default();
            if named != cell {
                return Err(refuse(
                    dd,
                    format!("its marker says it belongs to cell `{named}`, not `{cell}`"),
                    "two cells cannot share a deploy dir; use `--adopt` if the cell was renamed",
                ));
            }
            Ok(Claim {
                exists: true,
                managed: true,
                foreign: false,
                store: marker_value(&text, "store").map(str::to_owned),
                store_name: marker_value(&text, "store-name").map(str::to_owned),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut entries = fs::read_dir(dd).map_err(io("read directory", dd))?;
            Ok(Claim {
                exists: true,
                foreign: entries.next().is_some(),
                ..Claim::default()
            })
        }
        Err(e) => Err(io("read", &marker)(e)),
    }
}

/// The marker's text: the cell and the store that deploys it.
fn marker_text(req: &Prepare<'_>) -> String {
    format!(
        "# deployed by pgbr; do not remove\ncell={}\nstore={}\nstore-name={}\n",
        req.cell,
        req.store,
        req.store_name.replace(['\n', '\r'], " ")
    )
}

/// How messages name a store: its id and, when known, where it was.
fn describe_store(id: &str, name: Option<&str>) -> String {
    match name {
        Some(name) if !name.is_empty() => format!("`{id}` (`{name}`)"),
        _ => format!("`{id}`"),
    }
}

/// Refuses to deploy `req` into `dd` when its marker, its `current` or its
/// generation dirs show that another store (or a copy of this one) deploys
/// there. Called under the deploy dir's lock. `Ok(true)`: the marker must
/// be (re)written to name this store.
fn check_binding(req: &Prepare<'_>, dd: &Path, found: &Claim) -> Result<bool, Error> {
    if !found.managed {
        return Ok(true);
    }
    let adopt_hint = |what: &str| {
        format!(
            "{what}; if this store is the one that should deploy the cell from now on, \
             run `pgbr apply --adopt` (the other store must then stop deploying it)"
        )
    };
    let current = read_current(dd)?;
    if !req.adopt {
        let this = describe_store(req.store, Some(req.store_name));
        match &found.store {
            Some(other) if other != req.store => {
                return Err(refuse(
                    dd,
                    format!(
                        "it is deployed by store {}, not by this store {this}",
                        describe_store(other, found.store_name.as_deref())
                    ),
                    adopt_hint("use the store that deployed it (`--state`)"),
                ))
            }
            _ => {}
        }
        if current != req.expect_current {
            return Err(refuse(
                dd,
                format!(
                    "its `current` is {}, but this store {this} has {} live there: \
                     another store, or another copy of this one, deployed it",
                    shown_generation(current),
                    shown_generation(req.expect_current)
                ),
                adopt_hint("run `pgbr plan` with the newest copy of the state"),
            ));
        }
        if let Some(n) = generation_numbers(dd)?
            .into_iter()
            .find(|n| *n > req.generation)
        {
            return Err(refuse(
                dd,
                format!(
                    "it holds generation {n}, newer than the generation {} this store {this} \
                     deploys: another store, or another copy of this one, deployed it",
                    req.generation
                ),
                adopt_hint("run `pgbr plan` with the newest copy of the state"),
            ));
        }
    }
    Ok(found.store.as_deref() != Some(req.store)
        || found.store_name.as_deref() != Some(req.store_name))
}

/// `generation N`, or `nothing`: what a `current` names, in messages.
fn shown_generation(g: Option<u64>) -> String {
    match g {
        Some(n) => format!("generation {n}"),
        None => "nothing".to_owned(),
    }
}

/// The numbers of the `generations/<N>` dirs in `dd`.
fn generation_numbers(dd: &Path) -> Result<Vec<u64>, Error> {
    let gens = generations_dir(dd);
    let mut numbers = Vec::new();
    if expect_dir(&gens)? {
        for e in fs::read_dir(&gens).map_err(io("read directory", &gens))? {
            let e = e.map_err(io("read directory", &gens))?;
            if let Ok(n) = e.file_name().to_string_lossy().parse::<u64>() {
                numbers.push(n);
            }
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

impl Target for LocalTarget {
    fn observe(&self, cell: &str, deploy_dir: &str) -> Result<Observed, Error> {
        let dd = Path::new(deploy_dir);
        let mut out = Observed::default();
        let found = claim(cell, dd)?;
        (out.exists, out.managed, out.foreign) = (found.exists, found.managed, found.foreign);
        (out.store, out.store_name) = (found.store, found.store_name);
        if !out.managed {
            return Ok(out);
        }
        let gens = generations_dir(dd);
        if expect_dir(&gens)? {
            for e in fs::read_dir(&gens).map_err(io("read directory", &gens))? {
                let e = e.map_err(io("read directory", &gens))?;
                let name = e.file_name();
                let name = name.to_string_lossy();
                if let Ok(n) = name.parse::<u64>() {
                    out.generations.push(n);
                } else if let Some(n) = partial_number(&name) {
                    out.partials.push(n);
                }
            }
            out.generations.sort_unstable();
        }
        out.current = read_current(dd)?;
        if let Some(n) = out.current {
            let gen_dir = gens.join(n.to_string());
            if expect_dir(&gen_dir)? {
                hash_tree(&gen_dir, "", &mut out)?;
            }
        }
        Ok(out)
    }

    fn prepare(&self, req: &Prepare<'_>) -> Result<Option<u64>, Error> {
        let dd = Path::new(req.deploy_dir);
        let owner = resolve_owner(req.owner, dd)?;
        // Only the marker matters here: the live files were read by gather.
        if claim(req.cell, dd)?.foreign && !req.adopt {
            return Err(refuse(
                dd,
                "it is not empty and does not hold a pgbr deployment (no marker file)",
                "check the path; to take it over as it is, run again with `--adopt`",
            ));
        }
        create_dir(dd, owner, Sync::Now)?;
        // Held until the run ends: from here to the flip (and the revert),
        // no other pgbr writes this dir. What was read before the lock is
        // read again under it.
        self.hold(dd)?;
        let found = claim(req.cell, dd)?;
        if found.foreign && !req.adopt {
            return Err(refuse(
                dd,
                "it is not empty and does not hold a pgbr deployment (no marker file)",
                "check the path; to take it over as it is, run again with `--adopt`",
            ));
        }
        if check_binding(req, dd, &found)? {
            write_file(dd, MARKER, marker_text(req).as_bytes(), 0o644, owner)?;
        }
        create_dir(&generations_dir(dd), owner, Sync::Later)?;
        for d in &req.dirs {
            let d = Path::new(d);
            let sync = if d.parent() == Some(dd) {
                Sync::Later
            } else {
                Sync::Now
            };
            create_dir(d, owner, sync)?;
        }
        // One fsync for the marker and every directory made in the deploy dir.
        fsync_dir(dd)?;
        read_current(dd)
    }

    fn materialize(
        &self,
        deploy_dir: &str,
        generation: u64,
        files: &[FileContent],
        owner: Option<&str>,
    ) -> Result<(), Error> {
        let dd = Path::new(deploy_dir);
        let owner = resolve_owner(owner, dd)?;
        let gens = generations_dir(dd);
        expect_dir(&gens)?;
        let fin = gens.join(generation.to_string());
        if expect_dir(&fin)? {
            // Left by an interrupted run: reuse it only when it is exact.
            let mut found = Observed::default();
            hash_tree(&fin, "", &mut found)?;
            let want: std::collections::BTreeMap<_, _> = files
                .iter()
                .map(|f| (f.path.clone(), (ObjectId::of(&f.bytes), f.mode)))
                .collect();
            if found.files == want {
                return Ok(());
            }
            if read_current(dd)? == Some(generation) {
                return Err(refuse(
                    &fin,
                    "it is live and does not match the store",
                    "run `pgbr plan` to see the drift; `pgbr apply` deploys a fresh generation",
                ));
            }
            fs::remove_dir_all(&fin).map_err(io("remove incomplete generation", &fin))?;
        }
        // A killed run leaves `.<M>.partial` behind, and the next run
        // usually deploys a higher number: sweep them all, not only ours
        // (they hold key copies, and gc never sees them).
        for e in fs::read_dir(&gens).map_err(io("read directory", &gens))? {
            let e = e.map_err(io("read directory", &gens))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if partial_number(&name).is_some() {
                let path = e.path();
                fs::remove_dir_all(&path).map_err(io("remove stale", &path))?;
            }
        }
        let partial = gens.join(format!(".{generation}.partial"));
        // `.N.partial` and its subdirectories are fsynced before the rename,
        // and `generations/` after it: no fsync needed as they are made.
        create_dir(&partial, owner, Sync::Later)?;
        let written = (|| {
            let mut dirs = vec![partial.clone()];
            for f in files {
                let (sub, name) = match f.path.rsplit_once('/') {
                    Some((d, n)) => (partial.join(d), n),
                    None => (partial.clone(), f.path.as_str()),
                };
                if !dirs.contains(&sub) {
                    create_dir(&sub, owner, Sync::Later)?;
                    dirs.push(sub.clone());
                }
                write_file(&sub, name, &f.bytes, f.mode, owner)?;
            }
            for d in dirs.iter().rev() {
                fsync_dir(d)?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            // A full disk: give the space back and leave no half-written
            // files (with a key copy) behind.
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
        crate::failpoint::hit("partial-written");
        fs::rename(&partial, &fin).map_err(io("rename into place", &fin))?;
        fsync_dir(&gens)
    }

    fn flip(&self, deploy_dir: &str, from: Option<u64>, to: Option<u64>) -> Result<(), Error> {
        let dd = Path::new(deploy_dir);
        let link = dd.join("current");
        // Under the lock (this run's since `prepare`), `current` cannot
        // move between the check and the rename.
        self.hold(dd)?;
        let now = read_current(dd)?; // also refuses a `current` that is not ours
        if now != from {
            return Err(refuse(
                &link,
                format!(
                    "it names {}, but this flip expects {} there: `current` moved after this \
                     run read it (by hand, or a flip sent before a lost connection arrived late)",
                    shown_generation(now),
                    shown_generation(from)
                ),
                "nothing was changed; run `pgbr plan` to see which generation is live there, \
                 then `pgbr apply` again",
            ));
        }
        match to {
            Some(n) => {
                let tmp = dd.join(".current.tmp");
                if lstat(&tmp)?.is_some() {
                    fs::remove_file(&tmp).map_err(io("remove stale", &tmp))?;
                }
                std::os::unix::fs::symlink(format!("generations/{n}"), &tmp)
                    .map_err(io("create link", &tmp))?;
                let owner = resolve_owner(None, dd)?;
                set_owner(&tmp, owner)?;
                fs::rename(&tmp, &link).map_err(io("flip", &link))?;
            }
            None => {
                if lstat(&link)?.is_some() {
                    fs::remove_file(&link).map_err(io("remove", &link))?;
                }
            }
        }
        fsync_dir(dd)
    }

    fn link_config(&self, link: &str, deploy_dir: &str) -> Result<(), Error> {
        let link = Path::new(link);
        let want = Path::new(deploy_dir).join("current/pgbackrest.conf");
        match lstat(link)? {
            Some(m)
                if m.file_type().is_symlink()
                    && fs::read_link(link).map_err(io("read link", link))? == want =>
            {
                return Ok(());
            }
            Some(m) if m.file_type().is_symlink() => {}
            Some(_) => {
                return Err(refuse(
                    link,
                    "`config_link` names an existing file that is not a symlink",
                    "move the file away (pgbr only replaces symlinks there)",
                ))
            }
            None => {}
        }
        let parent = link.parent().unwrap_or(Path::new("/"));
        create_public_dirs(parent)?;
        let tmp = parent.join(format!(
            ".{}.pgbr-tmp",
            link.file_name().unwrap_or_default().to_string_lossy()
        ));
        if lstat(&tmp)?.is_some() {
            fs::remove_file(&tmp).map_err(io("remove stale", &tmp))?;
        }
        std::os::unix::fs::symlink(&want, &tmp).map_err(io("create link", &tmp))?;
        fs::rename(&tmp, link).map_err(io("rename into place", link))?;
        fsync_dir(parent)
    }

    fn resolve_owner(&self, owner: &str) -> Result<(), Error> {
        resolve_owner(Some(owner), Path::new("/")).map(drop)
    }

    fn run_hook(&self, hook: &HookRun) -> Result<HookOutput, Error> {
        crate::apply::hook::run(hook)
    }

    fn generation_size(&self, deploy_dir: &str, generation: u64) -> Result<u64, Error> {
        let dir = generations_dir(Path::new(deploy_dir)).join(generation.to_string());
        if !expect_dir(&dir)? {
            return Ok(0);
        }
        crate::disk::tree_size(&dir).map_err(io("measure", &dir))
    }

    fn remove_generation(&self, deploy_dir: &str, generation: u64) -> Result<(), Error> {
        if expect_dir(Path::new(deploy_dir))? {
            self.hold(Path::new(deploy_dir))?;
        }
        remove_generation_dir(deploy_dir, generation)
    }

    fn remove_partial(&self, deploy_dir: &str, generation: u64) -> Result<(), Error> {
        if expect_dir(Path::new(deploy_dir))? {
            self.hold(Path::new(deploy_dir))?;
        }
        let gens = generations_dir(Path::new(deploy_dir));
        let dir = gens.join(format!(".{generation}.partial"));
        if expect_dir(&dir)? {
            fs::remove_dir_all(&dir).map_err(io("remove stale", &dir))?;
            fsync_dir(&gens)?;
        }
        Ok(())
    }
}

/// `N` of a `.<N>.partial` name.
fn partial_number(name: &str) -> Option<u64> {
    name.strip_prefix('.')
        .and_then(|n| n.strip_suffix(".partial"))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
}

fn remove_generation_dir(deploy_dir: &str, generation: u64) -> Result<(), Error> {
    let dd = Path::new(deploy_dir);
    if read_current(dd)? == Some(generation) {
        return Err(refuse(
            dd,
            format!("generation {generation} is live there"),
            "this is a bug in pgbr's gc; please report it",
        ));
    }
    let dir = generations_dir(dd).join(generation.to_string());
    if expect_dir(&dir)? {
        fs::remove_dir_all(&dir).map_err(io("remove", &dir))?;
        fsync_dir(&generations_dir(dd))?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The `Prepare` of cell `c1` for generation `generation` in `dd`
    /// (the agent's tests send it over the wire).
    pub(in crate::apply::target) fn prepare<'a>(
        dd: &'a str,
        expect_current: Option<u64>,
        generation: u64,
    ) -> Prepare<'a> {
        Prepare {
            cell: "c1",
            deploy_dir: dd,
            owner: None,
            dirs: vec![],
            adopt: false,
            store: "0123456789abcdef0123456789abcdef",
            store_name: "ops:/srv/pgbr/state",
            generation,
            expect_current,
        }
    }

    fn files(text: &str) -> Vec<FileContent> {
        vec![FileContent {
            path: "pgbackrest.conf".into(),
            mode: 0o640,
            bytes: text.as_bytes().to_vec(),
        }]
    }

    /// A flip moves `current` only from the generation it names; a stale
    /// one (a flip to 1 sent before a cut, arriving after the cell moved
    /// on to 2) is refused, named, and changes nothing.
    #[test]
    fn a_flip_moves_current_only_from_the_generation_it_expects() {
        let dir = tempfile::tempdir().unwrap();
        let dd = dir.path().join("dd");
        let dd = dd.to_str().unwrap();
        let t = LocalTarget::default();
        assert_eq!(t.prepare(&prepare(dd, None, 1)).unwrap(), None);
        t.materialize(dd, 1, &files("one"), None).unwrap();
        t.flip(dd, None, Some(1)).unwrap();
        assert_eq!(read_current(Path::new(dd)).unwrap(), Some(1));
        assert_eq!(t.prepare(&prepare(dd, Some(1), 2)).unwrap(), Some(1));
        t.materialize(dd, 2, &files("two"), None).unwrap();
        t.flip(dd, Some(1), Some(2)).unwrap();

        // The late flip: it expects no `current`, and would put back 1.
        let err = t.flip(dd, None, Some(1)).unwrap_err();
        let Error::Refused { path, reason, hint } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path, &Path::new(dd).join("current"));
        assert!(
            reason.contains("it names generation 2, but this flip expects nothing"),
            "{reason}"
        );
        assert!(hint.contains("pgbr plan"), "{hint}");
        assert_eq!(read_current(Path::new(dd)).unwrap(), Some(2));
        // Nor does a revert that expects another generation remove it.
        assert!(t.flip(dd, Some(1), None).is_err());
        assert_eq!(read_current(Path::new(dd)).unwrap(), Some(2));
        // A revert that finds what it expects does.
        t.flip(dd, Some(2), Some(1)).unwrap();
        t.flip(dd, Some(1), None).unwrap();
        assert_eq!(read_current(Path::new(dd)).unwrap(), None);
    }

    /// A target keeps every lock it took until it is dropped: another
    /// target (another pgbr) can neither prepare nor flip the dir
    /// meanwhile, and can once it is gone.
    #[test]
    fn locks_last_as_long_as_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let dd = dir.path().join("dd");
        let dd = dd.to_str().unwrap();
        let first = LocalTarget::default();
        first.prepare(&prepare(dd, None, 1)).unwrap();
        first.materialize(dd, 1, &files("one"), None).unwrap();
        let second = LocalTarget::default();
        for err in [
            second.prepare(&prepare(dd, None, 1)).unwrap_err(),
            second.flip(dd, None, Some(1)).unwrap_err(),
        ] {
            assert!(
                err.to_string()
                    .contains("another pgbr is deploying it right now"),
                "{err}"
            );
        }
        assert_eq!(read_current(Path::new(dd)).unwrap(), None);
        first.flip(dd, None, Some(1)).unwrap();
        drop(first);
        assert_eq!(second.prepare(&prepare(dd, Some(1), 2)).unwrap(), Some(1));
    }
}
