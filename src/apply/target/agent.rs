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
//! It must not write anything but frames to its stdout: `serve_stdio`
//! moves the process's stdout onto stderr first (a hook or a library that
//! prints cannot corrupt the channel).

use super::local::LocalTarget;
use super::{Error, FileContent, HookOutput, HookRun, Prepare, Target};
use crate::plan::Observed;
use std::borrow::Cow;
use std::io::{Read, Write};

/// The protocol's version: both sides must speak the same one.
pub const PROTOCOL: u32 = 1;
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
        /// The generation `current` names (`None`: removed).
        generation: Option<u64>,
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

/// Runs one request on this machine. Each request gets its own target, so
/// a deploy dir's lock lasts one operation on a remote host: an agent
/// whose connection was cut lives on until sshd notices, and a lock it
/// kept would refuse the apply that recovers (docs/design.md).
fn answer(t: &LocalTarget, request: Request<'_>) -> Response {
    let done = |r: Result<(), Error>| r.map_or_else(Response::Failed, |()| Response::Done);
    match request {
        Request::Hello { .. } => Response::Hello {
            protocol: PROTOCOL,
            version: env!("CARGO_PKG_VERSION").into(),
        },
        Request::Observe { cell, deploy_dir } => t
            .observe(cell, deploy_dir)
            .map_or_else(Response::Failed, Response::Observed),
        Request::Prepare(req) => done(t.prepare(&req)),
        Request::Materialize {
            deploy_dir,
            generation,
            files,
            owner,
        } => done(t.materialize(deploy_dir, generation, &files, owner)),
        Request::Flip {
            deploy_dir,
            generation,
        } => done(t.flip(deploy_dir, generation)),
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
    }
}

/// Answers requests from `input` on `output` until `input` ends.
pub fn serve(mut input: impl Read, mut output: impl Write) -> std::io::Result<()> {
    while let Some(bytes) = read_frame(&mut input)? {
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
        write_frame(&mut output, &answer(&LocalTarget::default(), request))?;
    }
    Ok(())
}

/// `pgbr agent`: serves stdin/stdout. Its own stdout becomes stderr first,
/// so nothing but frames reaches the operator's channel.
pub fn serve_stdio() -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let channel = std::io::stdout().as_fd().try_clone_to_owned()?;
    nix::unistd::dup2_stdout(std::io::stderr()).map_err(std::io::Error::from)?;
    let output = std::io::BufWriter::new(std::fs::File::from(channel));
    serve(std::io::stdin().lock(), output)
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
        serve(&input[..], &mut output).unwrap();
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
            Request::Prepare(Prepare {
                cell: "c1",
                deploy_dir: dd,
                owner: None,
                dirs: vec![],
                adopt: false,
                store: "0123456789abcdef0123456789abcdef",
                store_name: "ops:/srv/pgbr/state",
                generation: 1,
                expect_current: None,
            }),
            Request::Materialize {
                deploy_dir: dd,
                generation: 1,
                files: Cow::Borrowed(&files),
                owner: None,
            },
            Request::Flip {
                deploy_dir: dd,
                generation: Some(1),
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
        assert!(matches!(
            answers[1..4],
            [Response::Done, Response::Done, Response::Done]
        ));
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

    #[test]
    fn a_wrong_protocol_is_refused() {
        let mut input = Vec::new();
        write_frame(&mut input, &Request::Hello { protocol: 999 }).unwrap();
        let err = serve(&input[..], Vec::new()).unwrap_err();
        assert!(err.to_string().contains("protocol 999"), "{err}");
    }
}
