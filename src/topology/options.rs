//! The pgBackRest option table and the checks of the `[options]` passthrough.
//!
//! The table (`pgbackrest_options.tsv`) is derived from pgBackRest 2.45's own
//! option definition by `tools/gen_pgbackrest_options.py`; this file parses
//! it, looks names up (indexed `repoN-`/`pgN-` names and deprecated names
//! included) and turns each `[options]` entry into the text pgBackRest reads
//! (booleans `y`/`n`). It must not know about cells or render files: the
//! options that pgbr writes itself are named here only to point the user at
//! the topology key that sets them.

use super::fields::{describe, suggest, unsafe_note, Problems};
use super::load::{Node, Table};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The pgBackRest release the table describes.
pub(crate) const PGBACKREST_RELEASE: &str = "2.45";

const TABLE: &str = include_str!("pgbackrest_options.tsv");

/// Where pgBackRest accepts an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    /// `[global]` or a stanza section.
    Global,
    /// Only a stanza section.
    Stanza,
    /// Only the command line.
    CommandLine,
}

/// The value type of an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Boolean,
    Integer,
    /// Seconds, fractions allowed.
    Time,
    /// Bytes, with an optional `KiB`.. suffix.
    Size,
    /// Text: string, string-id, path, list and hash.
    Text {
        path: bool,
        hash: bool,
    },
}

/// One option of the table.
#[derive(Debug, Clone)]
pub(crate) struct OptionDef {
    /// The name without index (`repo-path`, `compress-type`).
    pub name: &'static str,
    pub section: Section,
    pub kind: Kind,
    /// `pg` or `repo` for indexed options.
    pub group: Option<&'static str>,
    /// Allowed values, empty when any value of the type goes.
    pub allowed: Vec<&'static str>,
    /// Inclusive range, as written in pgBackRest's definition.
    pub range: Option<(&'static str, &'static str)>,
    /// Internal to pgBackRest: not for users.
    pub internal: bool,
}

struct Catalog {
    options: BTreeMap<&'static str, OptionDef>,
    /// Group name -> highest index.
    groups: BTreeMap<&'static str, u32>,
    /// Old name (`?` = index) -> current option name.
    deprecated: Vec<(&'static str, &'static str)>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| parse_table(TABLE))
}

fn parse_table(text: &'static str) -> Catalog {
    let mut cat = Catalog {
        options: BTreeMap::new(),
        groups: BTreeMap::new(),
        deprecated: Vec::new(),
    };
    let none = |s: &'static str| (s != "-").then_some(s);
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&'static str> = line.split('\t').collect();
        match f[0] {
            "group" => {
                cat.groups
                    .insert(f[1], f[2].parse().expect("group index in option table"));
            }
            "deprecated" => cat.deprecated.push((f[1], f[2])),
            "option" => {
                let section = match f[2] {
                    "global" => Section::Global,
                    "stanza" => Section::Stanza,
                    _ => Section::CommandLine,
                };
                let kind = match f[3] {
                    "boolean" => Kind::Boolean,
                    "integer" => Kind::Integer,
                    "time" => Kind::Time,
                    "size" => Kind::Size,
                    other => Kind::Text {
                        path: other == "path",
                        hash: other == "hash",
                    },
                };
                let flags: Vec<&str> = f[7].split(',').collect();
                cat.options.insert(
                    f[1],
                    OptionDef {
                        name: f[1],
                        section,
                        kind,
                        group: none(f[4]),
                        allowed: none(f[5])
                            .map(|s| s.split(',').collect())
                            .unwrap_or_default(),
                        range: none(f[6]).and_then(|r| r.split_once("..")),
                        internal: flags.contains(&"internal"),
                    },
                );
            }
            other => panic!("unknown row kind `{other}` in the option table"),
        }
    }
    cat
}

/// What an option name means to pgBackRest 2.45.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    /// A current option; `index` is set for grouped options (`repo2-path`).
    Known {
        def: &'static OptionDef,
        index: Option<u32>,
    },
    /// A deprecated name; `current` is its current spelling.
    Deprecated { current: String },
    /// Not an option.
    Unknown,
}

/// Splits `repo12-s3-bucket` into (`repo`, 12, `s3-bucket`).
fn split_indexed(name: &str) -> Option<(&str, u32, &str)> {
    let digits_at = name.find(|c: char| c.is_ascii_digit())?;
    let (prefix, rest) = name.split_at(digits_at);
    let dash = rest.find('-')?;
    let (digits, tail) = (&rest[..dash], &rest[dash + 1..]);
    if prefix.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((prefix, digits.parse().ok()?, tail))
}

/// Looks `name` up as pgBackRest would.
pub(crate) fn lookup(name: &str) -> Lookup {
    let cat = catalog();
    if let Some(def) = cat.options.get(name) {
        if def.group.is_none() {
            return Lookup::Known { def, index: None };
        }
    }
    if let Some((group, index, tail)) = split_indexed(name) {
        if let Some(max) = cat.groups.get(group) {
            if let Some(def) = cat.options.get(format!("{group}-{tail}").as_str()) {
                if def.group == Some(group) && index <= *max {
                    return Lookup::Known {
                        def,
                        index: Some(index),
                    };
                }
            }
        }
    }
    for (old, current) in &cat.deprecated {
        let group = cat.options.get(current).and_then(|d| d.group);
        let current_name = |index: u32| match group {
            Some(g) => format!("{g}{index}-{}", &current[g.len() + 1..]),
            None => current.to_string(),
        };
        match old.split_once('?') {
            None if *old == name => {
                return Lookup::Deprecated {
                    current: current_name(1),
                }
            }
            Some((pre, post)) => {
                if let Some(digits) = name.strip_prefix(pre).and_then(|n| n.strip_suffix(post)) {
                    if let Ok(index @ 1..=256) = digits.parse::<u32>() {
                        if !digits.starts_with('0') {
                            return Lookup::Deprecated {
                                current: current_name(index),
                            };
                        }
                    }
                }
            }
            None => {}
        }
    }
    Lookup::Unknown
}

/// The inclusive integer range of option `name` (an ungrouped spelling such
/// as `repo-retention-full`), when the table has one.
pub(crate) fn int_range(name: &str) -> Option<(i64, i64)> {
    let (lo, hi) = catalog().options.get(name)?.range?;
    Some((lo.parse().ok()?, hi.parse().ok()?))
}

/// Why pgbr refuses an option it writes itself, and what to set instead.
fn owned_by_pgbr(lookup: &Lookup) -> Option<String> {
    let (def, index) = match lookup {
        Lookup::Known { def, index } => (*def, *index),
        _ => return None,
    };
    let key = match (def.group, index, def.name) {
        (Some("repo"), Some(1), "repo-path") => "use `repo.path`",
        (Some("repo"), Some(1), "repo-retention-full") => "use `repo.retention_full`",
        (Some("pg"), _, "pg-path") => "use `pg_path` in `[cells.<name>]` or `[defaults]`",
        (Some("pg"), _, "pg-port") => "use `pg_port` in `[cells.<name>]` or `[defaults]`",
        (Some("pg"), _, "pg-socket-path") => {
            "use `pg_socket_path` in `[cells.<name>]` or `[defaults]`"
        }
        (Some("pg"), _, "pg-user") => "use `pg_user` in `[cells.<name>]` or `[defaults]`",
        (Some("pg"), _, "pg-database") => "use `pg_database` in `[cells.<name>]` or `[defaults]`",
        (Some("pg"), _, "pg-host") => "use `host` in `[cells.<name>]` or `[defaults]`",
        (Some("pg"), _, _) => "pgbr writes every `pgN-*` option from `[cells]`",
        (None, _, "log-path") => "use `log_path` in `[cells.<name>]` or `[defaults]`",
        (None, _, "lock-path") => "use `lock_path` in `[cells.<name>]` or `[defaults]`",
        (None, _, "spool-path") => "use `spool_path` in `[cells.<name>]` or `[defaults]`",
        (None, _, "tls-server-address") => "use `tls.server_address`",
        (None, _, "tls-server-port") => "use `tls.server_port_base`",
        (None, _, "tls-server-auth") => "use `tls.client_cn`",
        (None, _, n) if n.starts_with("tls-server-") => {
            "pgbr issues and deploys the TLS files itself; see `[tls]`"
        }
        _ => return None,
    };
    let scope = if def.section == Section::Stanza {
        "a stanza option set by pgbr"
    } else {
        "set by pgbr"
    };
    Some(format!("{scope}; {key}"))
}

/// (group, index, highest index) when `name` is a grouped option whose
/// index is out of range (`repo300-path`).
fn bad_index(name: &str) -> Option<(&'static str, u32, u32)> {
    let cat = catalog();
    let (group, index, tail) = split_indexed(name)?;
    let (group, max) = cat.groups.get_key_value(group)?;
    let def = cat.options.get(format!("{group}-{tail}").as_str())?;
    (def.group == Some(group) && index > *max).then_some((group, index, *max))
}

/// Candidates for a did-you-mean, spelled with the index the user wrote.
fn suggestion(name: &str) -> Option<String> {
    let index = split_indexed(name).map_or(1, |(_, i, _)| i);
    let names: Vec<String> = catalog()
        .options
        .values()
        .filter(|d| !d.internal && d.section != Section::CommandLine)
        .map(|d| match d.group {
            Some(g) => format!("{g}{index}-{}", &d.name[g.len() + 1..]),
            None => d.name.to_string(),
        })
        .collect();
    suggest(name, names.iter().map(String::as_str)).map(str::to_owned)
}

/// Checks the `[options]` table; returns name -> rendered value.
pub(crate) fn check_options(table: &Table, p: &mut Problems) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, node) in &table.entries {
        let key = super::fields::child_key("options", name);
        let file = node.file();
        let found = lookup(name);
        let refuse = |p: &mut Problems, msg: String| p.push(file, &key, msg);
        match &found {
            Lookup::Unknown => match bad_index(name) {
                Some((group, index, max)) => refuse(
                    p,
                    format!("expected a `{group}` index 1-{max}, found `{index}`"),
                ),
                None => {
                    let mut msg = format!("unknown pgBackRest {PGBACKREST_RELEASE} option");
                    if let Some(s) = suggestion(name) {
                        msg += &format!("; did you mean `{s}`?");
                    }
                    refuse(p, msg);
                }
            },
            Lookup::Deprecated { current } => {
                let msg = match owned_by_pgbr(&lookup(current)) {
                    Some(why) => format!("deprecated name of `{current}`, which is {why}"),
                    None => format!("deprecated pgBackRest option; use `{current}` instead"),
                };
                refuse(p, msg);
            }
            Lookup::Known { def, .. } => {
                if def.internal {
                    refuse(
                        p,
                        "internal pgBackRest option; not for configuration files".into(),
                    );
                } else if let Some(why) = owned_by_pgbr(&found) {
                    refuse(p, why);
                } else if def.section == Section::CommandLine {
                    let mut msg =
                        "command-line-only pgBackRest option; a configuration file cannot set it"
                            .to_string();
                    if def.name == "stanza" {
                        msg += "; use the top-level `stanza` key";
                    }
                    refuse(p, msg);
                } else if def.section == Section::Stanza {
                    refuse(
                        p,
                        "stanza-only pgBackRest option; `[options]` goes to `[global]`, where pgBackRest ignores it".into(),
                    );
                } else if let Some(v) = check_value(def, node, p, &key) {
                    out.insert(name.clone(), v);
                }
            }
        }
    }
    check_compress_level(table, &mut out, p);
    out
}

/// `compress-level`'s range for each `compress-type`, from pgBackRest's
/// own option definition (2.56 and later state it; older releases reject
/// the same levels only when a backup runs).
const COMPRESS_LEVELS: &[(&str, i64, i64)] = &[
    ("bz2", 1, 9),
    ("gz", -1, 9),
    ("lz4", -5, 12),
    ("zst", -7, 22),
];

/// Checks `compress-level` against the range of the chosen `compress-type`
/// (pgBackRest's default is `gz`); drops it from `out` when out of range.
fn check_compress_level(table: &Table, out: &mut BTreeMap<String, String>, p: &mut Problems) {
    let (Some(node), Some(level)) = (
        table.entries.get("compress-level"),
        out.get("compress-level")
            .and_then(|l| l.parse::<i64>().ok()),
    ) else {
        return;
    };
    let kind = out.get("compress-type").map_or("gz", String::as_str);
    let Some((_, lo, hi)) = COMPRESS_LEVELS.iter().find(|(k, ..)| *k == kind) else {
        return; // `none`: pgBackRest ignores the level
    };
    if !(*lo..=*hi).contains(&level) {
        p.push(
            node.file(),
            "options.compress-level",
            format!(
                "expected an integer {lo}-{hi} for `compress-type = \"{kind}\"`, found `{level}`"
            ),
        );
        out.remove("compress-level");
    }
}

/// Checks one value against its definition; returns the text to render.
fn check_value(def: &OptionDef, node: &Node, p: &mut Problems, key: &str) -> Option<String> {
    let file = node.file();
    let Node::Leaf(leaf) = node else {
        p.push(
            file,
            key,
            format!("expected {}, found a table", expected(def)),
        );
        return None;
    };
    let v = &leaf.value;
    let bad = |p: &mut Problems| {
        p.push(
            file,
            key,
            format!("expected {}, found {}", expected(def), describe(v)),
        );
        None
    };
    if let toml::Value::String(s) = v {
        if s.is_empty() {
            p.push(file, key, "expected a non-empty value, found `\"\"`");
            return None;
        }
        if super::model::ini_unsafe_char(s).is_some() || s.trim() != s {
            p.push(
                file,
                key,
                format!(
                    "expected a value on one line without control characters or surrounding spaces, found {}{}",
                    describe(v),
                    unsafe_note(v)
                ),
            );
            return None;
        }
    }
    let text = match (def.kind, v) {
        (Kind::Boolean, toml::Value::Boolean(b)) => if *b { "y" } else { "n" }.to_string(),
        (Kind::Integer, toml::Value::Integer(i)) => i.to_string(),
        (Kind::Time, toml::Value::Integer(i)) => i.to_string(),
        (Kind::Time, toml::Value::Float(f)) if f.is_finite() => f.to_string(),
        (Kind::Size, toml::Value::Integer(i)) => i.to_string(),
        (Kind::Size, toml::Value::String(s)) if parse_size(s).is_some() => s.clone(),
        (Kind::Text { path, hash }, toml::Value::String(s)) => {
            if (path && !s.starts_with('/')) || (hash && !s.contains('=')) {
                return bad(p);
            }
            s.clone()
        }
        _ => return bad(p),
    };
    if !def.allowed.is_empty() {
        let same = |a: &str| match def.kind {
            Kind::Size => parse_size(a).is_some() && parse_size(a) == parse_size(&text),
            _ => a == text,
        };
        if !def.allowed.iter().any(|a| same(a)) {
            let mut msg = format!("expected {}, found {}", expected(def), describe(v));
            let typo = suggest(&text, def.allowed.iter().copied());
            if let Some(s) = typo.filter(|_| matches!(def.kind, Kind::Text { .. })) {
                msg += &format!("; did you mean `{s}`?");
            }
            p.push(file, key, msg);
            return None;
        }
    }
    if let Some((lo, hi)) = def.range {
        let number = |s: &str| match def.kind {
            Kind::Size => parse_size(s).map(|b| b as f64),
            _ => s.parse::<f64>().ok(),
        };
        let in_range = match (number(lo), number(hi), number(&text)) {
            (Some(lo), Some(hi), Some(x)) => lo <= x && x <= hi,
            _ => false,
        };
        if !in_range {
            return bad(p);
        }
    }
    Some(text)
}

/// "an integer 1-999", "one of `none`, `gz`", …
fn expected(def: &OptionDef) -> String {
    if !def.allowed.is_empty() {
        let list: Vec<String> = def.allowed.iter().map(|a| format!("`{a}`")).collect();
        return format!("one of {}", list.join(", "));
    }
    let range = def
        .range
        .map(|(lo, hi)| format!(" {lo}-{hi}"))
        .unwrap_or_default();
    match def.kind {
        Kind::Boolean => "a boolean (`true` or `false`)".into(),
        Kind::Integer => format!("an integer{range}"),
        Kind::Time => format!("a number of seconds{range}"),
        Kind::Size => format!("a size in bytes (an integer or a string such as `\"4MiB\"`){range}"),
        Kind::Text { path: true, .. } => "an absolute path (a string)".into(),
        Kind::Text { hash: true, .. } => "a `key=value` string".into(),
        Kind::Text { .. } => "a string".into(),
    }
}

/// Parses a pgBackRest size (`1048576`, `1MiB`, `64KB`, `2g`) into bytes.
fn parse_size(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> (&'static str, Option<u32>) {
        match lookup(name) {
            Lookup::Known { def, index } => (def.name, index),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn plain_and_indexed_names_are_known() {
        assert_eq!(known("compress-type"), ("compress-type", None));
        assert_eq!(known("repo1-s3-bucket"), ("repo-s3-bucket", Some(1)));
        assert_eq!(known("repo256-path"), ("repo-path", Some(256)));
        assert_eq!(known("pg2-host-config"), ("pg-host-config", Some(2)));
    }

    #[test]
    fn out_of_range_or_unindexed_group_names_are_not_known() {
        assert!(matches!(lookup("repo257-path"), Lookup::Unknown));
        assert!(matches!(lookup("repo0-path"), Lookup::Unknown));
        assert!(matches!(lookup("repo01-path"), Lookup::Unknown));
        assert!(matches!(lookup("compress-typo"), Lookup::Unknown));
        assert!(matches!(lookup("pg1-compress-type"), Lookup::Unknown));
    }

    #[test]
    fn deprecated_names_map_to_current_ones() {
        let current = |n: &str| match lookup(n) {
            Lookup::Deprecated { current } => current,
            other => panic!("{n}: {other:?}"),
        };
        assert_eq!(current("retention-diff"), "repo1-retention-diff");
        assert_eq!(current("repo-path"), "repo1-path");
        assert_eq!(current("db3-host"), "pg3-host");
        assert_eq!(current("repo2-s3-verify-ssl"), "repo2-storage-verify-tls");
        assert_eq!(current("archive-queue-max"), "archive-push-queue-max");
    }

    #[test]
    fn sections_types_and_lists_come_from_the_table() {
        let def = |n: &str| lookup(n);
        let Lookup::Known { def: d, .. } = def("compress-type") else {
            panic!()
        };
        assert_eq!(d.allowed, ["none", "bz2", "gz", "lz4", "zst"]);
        let Lookup::Known { def: d, .. } = def("log-level-file") else {
            panic!()
        };
        assert!(d.allowed.contains(&"detail") && d.allowed.contains(&"off"));
        let Lookup::Known { def: d, .. } = def("stanza") else {
            panic!()
        };
        assert_eq!(d.section, Section::CommandLine);
        assert_eq!(int_range("repo-retention-full"), Some((1, 9_999_999)));
    }

    #[test]
    fn out_of_range_indexes_are_named() {
        assert_eq!(bad_index("repo300-path"), Some(("repo", 300, 256)));
        assert_eq!(bad_index("repo2-path"), None);
        assert_eq!(bad_index("repo300-nothing"), None);
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("64kb"), Some(64 << 10));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("1.5MiB"), None);
        assert_eq!(parse_size("MiB"), None);
    }

    #[test]
    fn suggestions_keep_the_index() {
        assert_eq!(
            suggestion("repo2-s3-buckt").as_deref(),
            Some("repo2-s3-bucket")
        );
        assert_eq!(suggestion("compres-type").as_deref(), Some("compress-type"));
    }
}
