//! The `[pgbackrest]` table: which pgBackRest release the cells run (and
//! how to call it), and the rules of SPEC §1 that changed between releases.
//!
//! Each rule is a method of [`PgbackrestVersion`] with the release note that
//! introduced it, so a caller asks the version ("does this client check IP
//! SANs?") instead of comparing numbers. The option lists of each release
//! live in `options.rs`; this file must not know about them beyond the
//! supported range.

use super::fields::{check_known_keys, describe, text, Problems};
use super::load::{Node, Table};
use std::fmt;

const KEYS: &[&str] = &["version", "bin"];

/// A pgBackRest minor release pgbr supports: 2.45 to 2.59. Patch releases
/// (`2.55.1`) map to their minor: pgBackRest adds or changes options only
/// in minor releases, and peers of the same minor talk to each other.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct PgbackrestVersion {
    minor: u16,
}

impl PgbackrestVersion {
    /// The oldest supported release (Debian 12's).
    pub const OLDEST: PgbackrestVersion = PgbackrestVersion { minor: 45 };
    /// The newest supported release.
    pub const NEWEST: PgbackrestVersion = PgbackrestVersion { minor: 59 };
    /// The default when the topology names none.
    pub const DEFAULT: PgbackrestVersion = Self::OLDEST;

    /// `2.<minor>` when it is supported.
    pub fn from_minor(minor: u16) -> Option<Self> {
        (Self::OLDEST.minor..=Self::NEWEST.minor)
            .contains(&minor)
            .then_some(Self { minor })
    }

    /// Parses `2.55` or `2.55.1` (also `pgBackRest 2.55.1`, what
    /// `pgbackrest version` prints) into a release of any minor, supported
    /// or not: `None` only when the text is not a version.
    pub fn parse_any(s: &str) -> Option<(u16, u16)> {
        let s = s.trim();
        let s = s.strip_prefix("pgBackRest ").unwrap_or(s);
        let mut parts = s.split('.');
        let number = |p: Option<&str>| -> Option<u16> {
            let p = p?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 4 {
                return None;
            }
            p.parse().ok()
        };
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        if let Some(patch) = parts.next() {
            // A development build prints `2.56dev`; only digits count here.
            number(Some(patch))?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some((major, minor))
    }

    /// Parses a supported version; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match Self::parse_any(s) {
            Some((2, minor)) => Self::from_minor(minor),
            _ => None,
        }
    }

    /// The minor number (`55` for 2.55).
    pub fn minor(self) -> u16 {
        self.minor
    }

    /// Every supported release, oldest first.
    pub fn all() -> impl Iterator<Item = PgbackrestVersion> {
        (Self::OLDEST.minor..=Self::NEWEST.minor).map(|minor| Self { minor })
    }

    /// Whether the TLS client matches a `pgN-host` that is an IP address
    /// against the certificate's IP SANs. Before, it reads only the DNS
    /// SANs, so pgbr adds every IP address as a DNS SAN too.
    ///
    /// pgBackRest 2.53 release notes, Features: "Support IP-based SANs for
    /// TLS certificate validation." (pgbackrest/pgbackrest#2047). pgbr's
    /// e2e on 2.55.1 proves it: a peer named by `127.0.0.1` whose leaf
    /// holds that address only as an IP SAN is accepted.
    pub fn checks_ip_sans(self) -> bool {
        self.minor >= 53
    }

    /// Whether only `restore` runs as root unless `allow-root` is set.
    ///
    /// pgBackRest 2.59.0 release notes, IMPORTANT NOTE: "Starting with this
    /// release, only the restore command may be run as root by default. Use
    /// allow-root to run other commands as root". An `activate` hook or a
    /// health command that calls pgBackRest as root must run it as the
    /// cluster's user from then on (or set `allow-root`).
    pub fn refuses_root(self) -> bool {
        self.minor >= 59
    }
}

impl fmt::Display for PgbackrestVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "2.{}", self.minor)
    }
}

impl From<PgbackrestVersion> for String {
    fn from(v: PgbackrestVersion) -> String {
        v.to_string()
    }
}

impl TryFrom<String> for PgbackrestVersion {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unsupported pgBackRest version `{s}`"))
    }
}

/// The `[pgbackrest]` table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Pgbackrest {
    /// The release every cell runs.
    pub version: PgbackrestVersion,
    /// The pgBackRest program on every cell's host: a name looked up on
    /// `PATH` (default `pgbackrest`) or an absolute path.
    pub bin: String,
}

impl Default for Pgbackrest {
    fn default() -> Self {
        Pgbackrest {
            version: PgbackrestVersion::DEFAULT,
            bin: "pgbackrest".into(),
        }
    }
}

impl Pgbackrest {
    /// Whether this is the default table (so topologies that do not set it
    /// keep the hash they had before the table existed).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Checks the `[pgbackrest]` table; defaults where a key is absent.
pub(crate) fn check(t: &Table, p: &mut Problems) -> Option<Pgbackrest> {
    check_known_keys(t, "pgbackrest", KEYS, p);
    let mut out = Pgbackrest::default();
    let mut ok = true;
    if let Some(node) = t.entries.get("version") {
        match version(node) {
            Ok(v) => out.version = v,
            Err(msg) => {
                p.push(node.file(), "pgbackrest.version", msg);
                ok = false;
            }
        }
    }
    if t.entries.contains_key("bin") {
        let bin = text()
            .get(t, "pgbackrest", "bin", false, p)
            .filter(|b| !b.contains(char::is_whitespace) || b.starts_with('/'));
        match bin {
            Some(b) if b.starts_with('/') || !b.contains('/') => out.bin = b,
            Some(b) => {
                p.push(
                    t.entries["bin"].file(),
                    "pgbackrest.bin",
                    format!("expected a program name or an absolute path, found `{b:?}`"),
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn version(node: &Node) -> Result<PgbackrestVersion, String> {
    let range = format!(
        "a pgBackRest release {}-{} as a string such as `\"2.55\"`",
        PgbackrestVersion::OLDEST,
        PgbackrestVersion::NEWEST
    );
    let Node::Leaf(leaf) = node else {
        return Err(format!("expected {range}, found a table"));
    };
    let found = describe(&leaf.value);
    let Some(s) = leaf.value.as_str() else {
        return Err(format!("expected {range}, found {found}"));
    };
    match PgbackrestVersion::parse_any(s) {
        Some((2, minor)) => PgbackrestVersion::from_minor(minor).ok_or_else(|| {
            format!("expected {range}, found {found} (pgbr knows the option lists of 2.45 to 2.59)")
        }),
        _ => Err(format!("expected {range}, found {found}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_releases_map_to_their_minor() {
        assert_eq!(
            PgbackrestVersion::parse("2.55").map(|v| v.minor()),
            Some(55)
        );
        assert_eq!(
            PgbackrestVersion::parse("2.55.1").map(|v| v.minor()),
            Some(55)
        );
        assert_eq!(
            PgbackrestVersion::parse("pgBackRest 2.59.1\n").map(|v| v.minor()),
            Some(59)
        );
        assert_eq!(
            PgbackrestVersion::parse("2.45").unwrap().to_string(),
            "2.45"
        );
    }

    #[test]
    fn versions_outside_the_range_or_malformed_are_refused() {
        for s in [
            "2.44", "2.60", "3.0", "2", "2.", "2.55.", "2.55.x", "v2.55", "2.55.1.1", "",
        ] {
            assert_eq!(PgbackrestVersion::parse(s), None, "{s}");
        }
        assert_eq!(PgbackrestVersion::parse_any("2.60.0"), Some((2, 60)));
    }

    fn checked(text: &str) -> Result<Pgbackrest, Vec<String>> {
        let tree = Table::from_toml(&std::rc::Rc::from("t.toml"), text.parse().expect("TOML"));
        let mut p = Problems::default();
        match check(&tree, &mut p) {
            Some(b) if p.is_empty() => Ok(b),
            _ => Err(p.into_sorted().iter().map(ToString::to_string).collect()),
        }
    }

    #[test]
    fn the_table_defaults_and_names_what_is_wrong() {
        assert_eq!(checked("").unwrap(), Pgbackrest::default());
        let b = checked("version = \"2.55.1\"\nbin = \"/opt/pgbackrest/bin/pgbackrest\"").unwrap();
        assert_eq!(
            (b.version.to_string(), b.bin.as_str()),
            ("2.55".into(), "/opt/pgbackrest/bin/pgbackrest")
        );
        assert_eq!(
            checked("version = \"2.60\"").unwrap_err(),
            ["t.toml: pgbackrest.version: expected a pgBackRest release 2.45-2.59 as a string such as `\"2.55\"`, found `\"2.60\"` (pgbr knows the option lists of 2.45 to 2.59)"]
        );
        assert_eq!(
            checked("version = 2.55").unwrap_err(),
            ["t.toml: pgbackrest.version: expected a pgBackRest release 2.45-2.59 as a string such as `\"2.55\"`, found `2.55`"]
        );
        assert_eq!(
            checked("bin = \"bin/pgbackrest\"\nversoin = \"2.55\"").unwrap_err(),
            [
                "t.toml: pgbackrest.bin: expected a program name or an absolute path, found `\"bin/pgbackrest\"`",
                "t.toml: pgbackrest.versoin: unknown key; did you mean `version`?",
            ]
        );
    }

    #[test]
    fn rules_change_at_their_release() {
        let v = |m| PgbackrestVersion::from_minor(m).unwrap();
        assert!(!v(52).checks_ip_sans() && v(53).checks_ip_sans());
        assert!(!v(58).refuses_root() && v(59).refuses_root());
    }
}
