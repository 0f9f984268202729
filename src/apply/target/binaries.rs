//! Which agent binary `ssh.rs` copies to a host: the one built for the
//! host's OS and architecture, of this very build. It owns finding them
//! and reading their build; it must not run them (one may be for another
//! machine) nor touch a host.
//!
//! Next to `pgbr` lie `pgbr-agent` (this machine's; without it, `pgbr`
//! itself serves as `pgbr agent`) and, for hosts of other platforms,
//! `pgbr-agent.<os>-<arch>` (`pgbr-agent.linux-aarch64`, as the host's
//! `uname -s` in lower case and `uname -m` name it). A file is used only
//! when it carries this build's [`BUILD_TAG`]: an agent of another build
//! could deploy by other rules than the `pgbr` that plans.

use super::agent::{BUILD_ID, BUILD_TAG};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// An agent binary and where it goes on a host.
pub(super) struct Binary {
    pub path: PathBuf,
    /// The `uname -s` (lower case) and `uname -m` of the hosts it runs on.
    pub os: String,
    pub arch: String,
    /// Its name in the cache dir on the host: `pgbr-agent`,
    /// `pgbr-agent.<os>-<arch>` or `pgbr`.
    pub name: String,
    /// What starts the agent from it (`agent` for `pgbr`).
    pub args: &'static str,
    /// `<version>-<first 16 hex digits of its blake3>`.
    pub dir: String,
    /// The binary gzipped (made once per run, when a host needs a copy).
    gz: OnceLock<Result<Vec<u8>, String>>,
}

impl Binary {
    /// The binary at `path`, whose content is `bytes`.
    fn new(
        path: PathBuf,
        bytes: &[u8],
        platform: (&str, &str),
        name: String,
        args: &'static str,
    ) -> Self {
        let hash = blake3::hash(bytes).to_hex();
        Binary {
            path,
            os: platform.0.to_owned(),
            arch: platform.1.to_owned(),
            name,
            args,
            dir: format!("{}-{}", env!("CARGO_PKG_VERSION"), &hash[..16]),
            gz: OnceLock::new(),
        }
    }

    /// Whether it runs on a host whose `uname -s` and `uname -m` say
    /// `os` and `arch`.
    pub fn runs_on(&self, os: &str, arch: &str) -> bool {
        self.os.eq_ignore_ascii_case(os) && self.arch == arch
    }

    /// A shell `case` pattern for `"$(uname -s)-$(uname -m)"` on the hosts
    /// it runs on (the OS in any case: `[Ll][Ii][Nn][Uu][Xx]-x86_64`).
    pub fn pattern(&self) -> String {
        let mut p = String::new();
        for c in self.os.chars() {
            if c.is_ascii_alphabetic() {
                p.push('[');
                p.push(c.to_ascii_lowercase());
                p.push(c.to_ascii_uppercase());
                p.push(']');
            } else {
                p.push(c);
            }
        }
        format!("{p}-{}", self.arch)
    }

    /// The binary, gzipped at the fastest level (1.7 MB become 0.7; all
    /// of pgbr, 13 MB, about 5).
    pub fn gzipped(&'static self) -> Result<&'static [u8], String> {
        self.gz
            .get_or_init(|| {
                let file = std::fs::File::open(&self.path).map_err(|e| e.to_string())?;
                let mut gz = flate2::read::GzEncoder::new(file, flate2::Compression::fast());
                let mut out = Vec::new();
                gz.read_to_end(&mut out).map_err(|e| e.to_string())?;
                Ok(out)
            })
            .as_ref()
            .map(Vec::as_slice)
            .map_err(Clone::clone)
    }
}

/// Every agent binary this run can copy, found and hashed once.
pub(super) struct Binaries {
    /// For this machine's platform first, then for others.
    pub all: Vec<Binary>,
    /// The dir `pgbr` is in (where an agent for another platform goes).
    pub dir: PathBuf,
    /// `pgbr-agent.<os>-<arch>` files there not of this build: the file
    /// and what it carries (`None`: no build id at all).
    pub stale: Vec<(PathBuf, Option<String>)>,
}

impl Binaries {
    /// The binary for a host whose `uname -s` and `uname -m` say `os` and
    /// `arch`.
    pub fn for_host(&self, os: &str, arch: &str) -> Option<&Binary> {
        self.all.iter().find(|b| b.runs_on(os, arch))
    }

    /// Why there is no binary for such a host, for people: the file pgbr
    /// looked for and, if there is one, whose build it is.
    pub fn missing(&self, os: &str, arch: &str) -> (String, String) {
        let name = format!("pgbr-agent.{}-{arch}", os.to_ascii_lowercase());
        let path = self.dir.join(&name);
        let why = match self.stale.iter().find(|(p, _)| *p == path) {
            Some((_, Some(build))) => format!(
                "`{}` is of another pgbr build ({build}; this pgbr is {BUILD_ID})",
                path.display()
            ),
            Some((_, None)) => format!("`{}` is no pgbr agent (it names no build)", path.display()),
            None => format!("there is no `{}`", path.display()),
        };
        (name, why)
    }
}

/// This run's agent binaries; warnings about stale ones go to `warn`.
pub(super) fn binaries(warn: impl Fn(String)) -> Result<&'static Binaries, String> {
    static BINARIES: OnceLock<Result<Binaries, String>> = OnceLock::new();
    BINARIES
        .get_or_init(|| {
            let pgbr =
                std::env::current_exe().map_err(|e| format!("find this pgbr's own binary: {e}"))?;
            let dir = pgbr.parent().map(Path::to_path_buf).unwrap_or_default();
            let ours = (std::env::consts::OS, std::env::consts::ARCH);
            let agent = dir.join("pgbr-agent");
            let native = match read_agent(&agent) {
                Some((bytes, Some(b))) if b == BUILD_ID => {
                    Binary::new(agent, &bytes, ours, "pgbr-agent".into(), "")
                }
                found => {
                    if let Some((_, build)) = found {
                        warn(format!(
                            "warning: `{}` is {}, this pgbr is {BUILD_ID}: copying all of pgbr \
                             to the hosts instead (slower); install both binaries of one \
                             build together",
                            agent.display(),
                            build.map_or("no pgbr agent (it names no build)".into(), |b| {
                                format!("of another pgbr build ({b})")
                            }),
                        ));
                    }
                    let bytes = std::fs::read(&pgbr)
                        .map_err(|e| format!("read `{}`: {e}", pgbr.display()))?;
                    Binary::new(pgbr, &bytes, ours, "pgbr".into(), "agent")
                }
            };
            let mut all = vec![native];
            let mut stale = Vec::new();
            let mut others: Vec<(PathBuf, String, String)> = std::fs::read_dir(&dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| {
                            let name = e.file_name().into_string().ok()?;
                            let (os, arch) = platform_of(&name)?;
                            Some((e.path(), os.to_owned(), arch.to_owned()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            others.sort();
            for (path, os, arch) in others {
                if all.iter().any(|b| b.runs_on(&os, &arch)) {
                    continue;
                }
                match read_agent(&path) {
                    Some((bytes, Some(b))) if b == BUILD_ID => {
                        let name = format!("pgbr-agent.{os}-{arch}");
                        all.push(Binary::new(path, &bytes, (&os, &arch), name, ""));
                    }
                    Some((_, found)) => stale.push((path, found)),
                    None => {}
                }
            }
            Ok(Binaries { all, dir, stale })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The platform a file named `pgbr-agent.<os>-<arch>` is for (lower-case
/// letters, digits and `_` only: the name goes into a shell script).
fn platform_of(name: &str) -> Option<(&str, &str)> {
    let (os, arch) = name.strip_prefix("pgbr-agent.")?.split_once('-')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    (plain(os) && plain(arch)).then_some((os, arch))
}

/// A file's bytes and the build it carries, read once (`None`: no such
/// file; no build: a file that names none, or cannot be read).
fn read_agent(path: &Path) -> Option<(Vec<u8>, Option<String>)> {
    if !path.is_file() {
        return None;
    }
    let bytes = std::fs::read(path).unwrap_or_default();
    let build = build_in(&bytes);
    Some((bytes, build))
}

/// The build id after the first [`BUILD_TAG`] prefix in `bytes` that is
/// followed by 16 hex digits.
fn build_in(bytes: &[u8]) -> Option<String> {
    let prefix = BUILD_TAG
        .strip_suffix(BUILD_ID)
        .expect("the tag ends with the id")
        .as_bytes();
    let mut rest = bytes;
    while let Some(at) = rest.windows(prefix.len()).position(|w| w == prefix) {
        let id = rest.get(at + prefix.len()..at + prefix.len() + 16)?;
        if id.iter().all(u8::is_ascii_hexdigit) {
            return Some(String::from_utf8_lossy(id).into_owned());
        }
        rest = &rest[at + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_is_read_from_the_bytes_that_carry_its_tag() {
        let tagged = format!("\x7fELF…pgbr-build-id=zz…{BUILD_TAG}\0…");
        assert_eq!(build_in(tagged.as_bytes()).as_deref(), Some(BUILD_ID));
        assert_eq!(build_in(b"pgbr-build-id=0123"), None);
        assert_eq!(build_in(b"#!/bin/sh\necho hi\n"), None);
    }

    #[test]
    fn only_plain_platform_names_are_agents() {
        assert_eq!(
            platform_of("pgbr-agent.linux-aarch64"),
            Some(("linux", "aarch64"))
        );
        assert_eq!(
            platform_of("pgbr-agent.linux-x86_64"),
            Some(("linux", "x86_64"))
        );
        for name in [
            "pgbr-agent",
            "pgbr-agent.linux",
            "pgbr-agent.Linux-aarch64",
            "pgbr-agent.linux-aarch64.old",
            "pgbr-agent.linux-arm'64",
        ] {
            assert_eq!(platform_of(name), None, "{name}");
        }
    }

    #[test]
    fn a_pattern_matches_the_os_in_any_case() {
        let b = Binary::new(PathBuf::new(), b"", ("linux", "aarch64"), String::new(), "");
        assert_eq!(b.pattern(), "[lL][iI][nN][uU][xX]-aarch64");
        assert!(b.runs_on("Linux", "aarch64") && !b.runs_on("Linux", "x86_64"));
    }
}
