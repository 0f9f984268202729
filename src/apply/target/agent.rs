//! `pgbr agent`: the host side of a remote target. It serves the [`Target`]
//! operations of [`LocalTarget`] over stdin/stdout, so a remote cell is
//! deployed by the very code that deploys a local one (SPEC §9: one
//! implementation of the deploy rules). The operator's side is `ssh.rs`.
//!
//! The protocol: length-prefixed frames (a little-endian `u32`, then that
//! many bytes of postcard), one [`Request`] answered by one [`Response`],
//! starting with a [`Request::Hello`] that checks [`PROTOCOL`]. The frames
//! carry the structs the `Target` trait itself takes and returns
//! ([`Prepare`], [`FileContent`], [`HookRun`], `Observed`, [`HookOutput`],
//! [`Error`]),
//! so a field added to one of them travels without a protocol edit.
//!
//! One agent serves one run (one operator) with one [`LocalTarget`], so
//! the deploy dirs it locked stay locked until the run ends, as on a local
//! cell. It ends, and its locks go with it, as soon as its operator is
//! gone: at the end of its input (the operator closed it, or sshd ended a
//! session whose client stopped answering, `ClientAliveInterval`), at a
//! broken output (`EPIPE`), on `SIGHUP` (the default action), or after
//! [`IDLE_LIMIT`] without a frame: an operator pings an idle agent every
//! [`PING_EVERY`] ([`Request::Ping`], never answered), so silence that
//! long means a cut connection that sshd has not noticed.
//!
//! It must not write anything but frames to its stdout: `serve_stdio`
//! moves the process's stdout onto stderr first (a hook or a library that
//! prints cannot corrupt the channel).

use super::local::LocalTarget;
use super::{Error, FileContent, HookOutput, HookRun, Prepare, Target};
use crate::plan::Observed;
use std::borrow::Cow;
use std::io::{Read, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// The protocol's version: both sides must speak the same one (2: the
/// conditional flip, `Ping`, `prepare` answers with `current`).
pub const PROTOCOL: u32 = 2;
/// This build's identity (a hash of its sources and features, from
/// `build.rs`): `pgbr` copies the `pgbr-agent` next to it to the hosts
/// only when that one answers `--build-id` with the same.
pub const BUILD_ID: &str = env!("PGBR_BUILD_ID");
/// [`BUILD_ID`] behind a fixed prefix, as `pgbr-agent`'s file carries it:
/// `pgbr` reads it there for an agent built for another machine, which it
/// cannot run (`binaries.rs`).
pub const BUILD_TAG: &str = concat!("pgbr-build-id=", env!("PGBR_BUILD_ID"));
/// How often the operator pings an agent it has sent nothing to.
pub(super) const PING_EVERY: Duration = Duration::from_secs(3);
/// How long an agent waits for a frame before it counts its operator as
/// gone (and ends, releasing its locks). A request being answered (a
/// hook running) does not count: the wait starts when the answer is sent.
pub const IDLE_LIMIT: Duration = Duration::from_secs(20);
/// The largest frame either side accepts (a generation's files are a few KiB).
const MAX_FRAME: u32 = 256 << 20;

/// What the operator asks the agent.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) enum Request<'a> {
    /// The first request: both sides check the protocol version.
    Hello {
        /// The operator's [`PROTOCOL`].
        protocol: u32,
    },
    /// The operator is still there (sent when it had nothing to send for
    /// [`PING_EVERY`]). Not answered.
    Ping,
    /// [`Target::observe`].
    Observe {
        /// The cell.
        cell: &'a str,
        /// Its deploy dir.
        deploy_dir: &'a str,
    },
    /// [`Target::prepare`].
    Prepare(#[serde(borrow)] Prepare<'a>),
    /// [`Target::materialize`].
    Materialize {
        /// The deploy dir.
        deploy_dir: &'a str,
        /// The generation.
        generation: u64,
        /// Its files.
        files: Cow<'a, [FileContent]>,
        /// The owner.
        #[serde(borrow)]
        owner: Option<&'a str>,
    },
    /// [`Target::flip`].
    Flip {
        /// The deploy dir.
        deploy_dir: &'a str,
        /// The generation `current` must name now (`None`: none), or
        /// nothing changes.
        from: Option<u64>,
        /// The generation `current` names after (`None`: removed).
        to: Option<u64>,
    },
    /// [`Target::link_config`].
    LinkConfig {
        /// The symlink.
        link: &'a str,
        /// The deploy dir.
        deploy_dir: &'a str,
    },
    /// [`Target::resolve_owner`].
    ResolveOwner {
        /// `user` or `user:group`.
        owner: &'a str,
    },
    /// [`Target::run_hook`].
    RunHook(Cow<'a, HookRun>),
    /// [`Target::generation_size`].
    GenerationSize {
        /// The deploy dir.
        deploy_dir: &'a str,
        /// The generation.
        generation: u64,
    },
    /// [`Target::remove_generation`].
    RemoveGeneration {
        /// The deploy dir.
        deploy_dir: &'a str,
        /// The generation.
        generation: u64,
    },
    /// [`Target::remove_partial`].
    RemovePartial {
        /// The deploy dir.
        deploy_dir: &'a str,
        /// The generation.
        generation: u64,
    },
}

/// What the agent answers.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) enum Response {
    /// The answer to [`Request::Hello`].
    Hello {
        /// The agent's [`PROTOCOL`].
        protocol: u32,
        /// The agent's pgbr version.
        version: String,
    },
    /// What `observe` found.
    Observed(Observed),
    /// `prepare` succeeded; the generation `current` names.
    Prepared(Option<u64>),
    /// The operation succeeded.
    Done,
    /// A hook ran.
    Hook(HookOutput),
    /// A generation's size.
    Size(u64),
    /// The operation failed on the host.
    Failed(Error),
}

/// Writes one frame holding `value`.
pub(super) fn write_frame<T: serde::Serialize>(
    out: &mut impl Write,
    value: &T,
) -> std::io::Result<()> {
    let bytes = postcard::to_stdvec(value).map_err(std::io::Error::other)?;
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|n| *n <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("frame too large"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&bytes)?;
    out.flush()
}

/// Reads one frame's bytes; `None` at a clean end of input.
pub(super) fn read_frame(input: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut bytes = vec![0; len as usize];
    input.read_exact(&mut bytes)?;
    Ok(Some(bytes))
}

/// Runs one request on this machine, with the session's target (whose
/// locks last as long as the session). `None` for a ping.
fn answer(t: &LocalTarget, request: Request<'_>) -> Option<Response> {
    let done = |r: Result<(), Error>| r.map_or_else(Response::Failed, |()| Response::Done);
    Some(match request {
        Request::Ping => return None,
        Request::Hello { .. } => Response::Hello {
            protocol: PROTOCOL,
            version: env!("CARGO_PKG_VERSION").into(),
        },
        Request::Observe { cell, deploy_dir } => t
            .observe(cell, deploy_dir)
            .map_or_else(Response::Failed, Response::Observed),
        Request::Prepare(req) => t
            .prepare(&req)
            .map_or_else(Response::Failed, Response::Prepared),
        Request::Materialize {
            deploy_dir,
            generation,
            files,
            owner,
        } => done(t.materialize(deploy_dir, generation, &files, owner)),
        Request::Flip {
            deploy_dir,
            from,
            to,
        } => done(t.flip(deploy_dir, from, to)),
        Request::LinkConfig { link, deploy_dir } => done(t.link_config(link, deploy_dir)),
        Request::ResolveOwner { owner } => done(t.resolve_owner(owner)),
        Request::RunHook(hook) => t
            .run_hook(&hook)
            .map_or_else(Response::Failed, Response::Hook),
        Request::GenerationSize {
            deploy_dir,
            generation,
        } => t
            .generation_size(deploy_dir, generation)
            .map_or_else(Response::Failed, Response::Size),
        Request::RemoveGeneration {
            deploy_dir,
            generation,
        } => done(t.remove_generation(deploy_dir, generation)),
        Request::RemovePartial {
            deploy_dir,
            generation,
        } => done(t.remove_partial(deploy_dir, generation)),
    })
}

/// Answers requests from `input` on `output` with one target, until
/// `input` ends, `output` breaks, or no frame came for `idle`. The
/// target, and every lock it took, is dropped on return.
pub fn serve(
    input: impl Read + Send + 'static,
    mut output: impl Write,
    idle: Duration,
) -> std::io::Result<()> {
    let target = LocalTarget::default();
    // Frames are read on a thread of their own, so that silence can be
    // timed; a frame read ahead waits for the one before to be answered.
    let (frames, rx) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut input = input;
        loop {
            let frame = read_frame(&mut input);
            let end = !matches!(frame, Ok(Some(_)));
            if frames.send(frame).is_err() || end {
                break;
            }
        }
    });
    loop {
        let bytes = match rx.recv_timeout(idle) {
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Ok(None)) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(RecvTimeoutError::Timeout) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no word from the operator for {}s: its connection is gone; \
                         ending (the deploy dirs this agent locked are free again)",
                        idle.as_secs()
                    ),
                ))
            }
        };
        let request: Request<'_> = postcard::from_bytes(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a request this pgbr cannot read ({e}): is the operator's pgbr another version?"),
            )
        })?;
        if let Request::Hello { protocol } = request {
            if protocol != PROTOCOL {
                return Err(std::io::Error::other(format!(
                    "the operator speaks protocol {protocol}, this agent {PROTOCOL}"
                )));
            }
        }
        if let Some(response) = answer(&target, request) {
            write_frame(&mut output, &response)?;
        }
    }
}

/// `pgbr agent`: serves stdin/stdout. Its own stdout becomes stderr first,
/// so nothing but frames reaches the operator's channel.
pub fn serve_stdio() -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let channel = std::io::stdout().as_fd().try_clone_to_owned()?;
    nix::unistd::dup2_stdout(std::io::stderr()).map_err(std::io::Error::from)?;
    let output = std::io::BufWriter::new(std::fs::File::from(channel));
    serve(std::io::stdin(), output, IDLE_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(requests: &[Request<'_>]) -> Vec<Response> {
        let mut input = Vec::new();
        for r in requests {
            write_frame(&mut input, r).unwrap();
        }
        let mut output = Vec::new();
        serve(std::io::Cursor::new(input), &mut output, IDLE_LIMIT).unwrap();
        let mut out = &output[..];
        let mut answers = Vec::new();
        while let Some(bytes) = read_frame(&mut out).unwrap() {
            answers.push(postcard::from_bytes(&bytes).unwrap());
        }
        answers
    }

    #[test]
    fn agent_deploys_with_the_local_rules() {
        let dir = tempfile::tempdir().unwrap();
        let dd = dir.path().join("dd");
        let dd = dd.to_str().unwrap();
        let files = [FileContent {
            path: "tls/server.key".into(),
            mode: 0o600,
            bytes: b"k".to_vec(),
        }];
        let answers = roundtrip(&[
            Request::Hello { protocol: PROTOCOL },
            prepare(dd),
            Request::Materialize {
                deploy_dir: dd,
                generation: 1,
                files: Cow::Borrowed(&files),
                owner: None,
            },
            Request::Flip {
                deploy_dir: dd,
                from: None,
                to: Some(1),
            },
            Request::Observe {
                cell: "c1",
                deploy_dir: dd,
            },
            Request::Observe {
                cell: "other",
                deploy_dir: dd,
            },
        ]);
        assert!(matches!(
            answers[0],
            Response::Hello {
                protocol: PROTOCOL,
                ..
            }
        ));
        assert!(
            matches!(
                answers[1..4],
                [Response::Prepared(None), Response::Done, Response::Done]
            ),
            "{answers:?}"
        );
        let Response::Observed(o) = &answers[4] else {
            panic!("{:?}", answers[4]);
        };
        assert_eq!(o.current, Some(1));
        assert_eq!(o.files["tls/server.key"].1, 0o600);
        // The store's identity crossed in `Prepare` and is in the marker.
        assert_eq!(o.store.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        // An error crosses as the same variant, with its hint.
        assert!(
            matches!(&answers[5], Response::Failed(Error::Refused { hint, .. }) if hint.contains("--adopt")),
            "{:?}",
            answers[5]
        );
    }

    #[test]
    fn io_errors_keep_their_kind() {
        let e = super::super::io("create", std::path::Path::new("/x"))(
            std::io::Error::from_raw_os_error(13),
        );
        let bytes = postcard::to_stdvec(&Response::Failed(e)).unwrap();
        let Response::Failed(Error::Io(io)) = postcard::from_bytes(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(io.source.kind(), std::io::ErrorKind::PermissionDenied);
    }

    /// A session's answers, read from `from`.
    fn answers(from: &mut impl Read, n: usize) -> Vec<Response> {
        (0..n)
            .map(|_| postcard::from_bytes(&read_frame(from).unwrap().unwrap()).unwrap())
            .collect()
    }

    fn prepare(dd: &str) -> Request<'_> {
        Request::Prepare(super::super::local::tests::prepare(dd, None, 1))
    }

    /// An agent keeps the deploy dirs it locked for its whole session
    /// (another session, another pgbr, is refused meanwhile), pings keep
    /// it alive and are not answered, and its locks go when its operator
    /// does: at the end of its input, or after `idle` without a frame.
    #[test]
    fn a_session_keeps_its_locks_until_its_operator_is_gone() {
        use std::os::unix::net::UnixStream;
        let dir = tempfile::tempdir().unwrap();
        let dd = dir.path().join("dd");
        let dd = dd.to_str().unwrap().to_owned();
        let refused = |dd: &str| {
            let answer = roundtrip(&[prepare(dd)]);
            match &answer[..] {
                [Response::Failed(e)] => e.to_string().contains("another pgbr is deploying"),
                [Response::Prepared(None)] => false,
                other => panic!("{other:?}"),
            }
        };
        for end in ["input closed", "operator silent"] {
            let (mut operator, agent) = UnixStream::pair().unwrap();
            let output = agent.try_clone().unwrap();
            let idle = Duration::from_millis(if end == "input closed" { 60_000 } else { 500 });
            let session = std::thread::spawn(move || serve(agent, output, idle));
            write_frame(&mut operator, &Request::Hello { protocol: PROTOCOL }).unwrap();
            write_frame(&mut operator, &prepare(&dd)).unwrap();
            assert!(matches!(
                answers(&mut operator, 2)[..],
                [Response::Hello { .. }, Response::Prepared(None)]
            ));
            for _ in 0..3 {
                write_frame(&mut operator, &Request::Ping).unwrap();
                assert!(refused(&dd), "{end}: a second session prepared the dir");
            }
            if end == "input closed" {
                operator.shutdown(std::net::Shutdown::Write).unwrap();
                session.join().unwrap().unwrap();
                // No answer was ever sent to a ping.
                assert!(read_frame(&mut operator).unwrap().is_none());
            } else {
                let err = session.join().unwrap().unwrap_err();
                assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
            }
            assert!(!refused(&dd), "{end}: the lock outlived the session");
        }
    }

    /// A flip crosses with the generation it expects, and a stale one is
    /// refused on the host: `current` stays where the newer run put it.
    #[test]
    fn a_late_flip_is_refused_on_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let dd = dir.path().join("dd");
        let dd = dd.to_str().unwrap();
        let files = [FileContent {
            path: "pgbackrest.conf".into(),
            mode: 0o640,
            bytes: b"[global]\n".to_vec(),
        }];
        let write = |generation| Request::Materialize {
            deploy_dir: dd,
            generation,
            files: Cow::Borrowed(&files),
            owner: None,
        };
        let flip = |from, to| Request::Flip {
            deploy_dir: dd,
            from,
            to,
        };
        let answers = roundtrip(&[
            prepare(dd),
            write(1),
            flip(None, Some(1)),
            write(2),
            flip(Some(1), Some(2)),
            flip(None, Some(1)),
            Request::Observe {
                cell: "c1",
                deploy_dir: dd,
            },
        ]);
        assert!(
            matches!(
                answers[..5],
                [
                    Response::Prepared(None),
                    Response::Done,
                    Response::Done,
                    Response::Done,
                    Response::Done
                ]
            ),
            "{answers:?}"
        );
        let Response::Failed(e) = &answers[5] else {
            panic!("{:?}", answers[5])
        };
        assert!(
            e.to_string()
                .contains("it names generation 2, but this flip expects nothing"),
            "{e}"
        );
        let Response::Observed(o) = &answers[6] else {
            panic!("{:?}", answers[6])
        };
        assert_eq!(o.current, Some(2));
    }

    #[test]
    fn a_wrong_protocol_is_refused() {
        let mut input = Vec::new();
        write_frame(&mut input, &Request::Hello { protocol: 999 }).unwrap();
        let err = serve(std::io::Cursor::new(input), Vec::new(), IDLE_LIMIT).unwrap_err();
        assert!(err.to_string().contains("protocol 999"), "{err}");
    }
}
