//! The pgBackRest option tables and the checks of the `[options]` passthrough.
//!
//! The tables (`pgbackrest_options.tsv`) are derived from the option
//! definitions of every supported pgBackRest release (2.45 to 2.59) by
//! `tools/gen_pgbackrest_options.py`: the first release in full, each later
//! one as the rows it adds, changes or drops. This file replays them into
//! one catalog per release, looks names up (indexed `repoN-`/`pgN-` names
//! and deprecated names included) in the release the topology names, says
//! which release added or removed a name or a value that the chosen one
//! does not know, and turns each `[options]` entry into the text pgBackRest
//! reads (booleans `y`/`n`). It must not know about cells or render files:
//! the options that pgbr writes itself are named here only to point the
//! user at the topology key that sets them.

use super::fields::{describe, suggest, unsafe_note, Problems};
use super::load::{Node, Table};
use super::pgbackrest::PgbackrestVersion;
use std::collections::BTreeMap;
use std::sync::OnceLock;

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

/// A range that depends on another option's value (`compress-level` by
/// `compress-type` from 2.56).
#[derive(Debug, Clone)]
pub(crate) struct RangeBy {
    /// The option whose value picks the range.
    pub option: &'static str,
    /// Its default, when `[options]` does not set it.
    pub default: Option<&'static str>,
    /// Value -> inclusive range.
    pub ranges: Vec<(&'static str, (&'static str, &'static str))>,
}

/// One option of a release's table.
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
    /// A range that depends on another option, when the definition has one.
    pub range_by: Option<RangeBy>,
    /// Internal to pgBackRest: not for users.
    pub internal: bool,
}

/// The options of one release.
#[derive(Clone, Default)]
struct Catalog {
    options: BTreeMap<&'static str, OptionDef>,
    /// Group name -> highest index.
    groups: BTreeMap<&'static str, u32>,
    /// Old name (`?` = index) -> current option name.
    deprecated: BTreeMap<&'static str, &'static str>,
}

/// Every release's catalog, oldest first, with the patch release its rows
/// come from (`2.55.1`).
fn catalogs() -> &'static [(PgbackrestVersion, &'static str, Catalog)] {
    static CATALOGS: OnceLock<Vec<(PgbackrestVersion, &'static str, Catalog)>> = OnceLock::new();
    CATALOGS.get_or_init(|| parse_table(TABLE))
}

fn catalog(version: PgbackrestVersion) -> &'static Catalog {
    let all = catalogs();
    let i = all
        .iter()
        .position(|(v, _, _)| *v == version)
        .expect("every supported release has an option table");
    &all[i].2
}

fn parse_table(text: &'static str) -> Vec<(PgbackrestVersion, &'static str, Catalog)> {
    let mut out: Vec<(PgbackrestVersion, &'static str, Catalog)> = Vec::new();
    let mut cat = Catalog::default();
    let none = |s: &'static str| (s != "-").then_some(s);
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&'static str> = line.split('\t').collect();
        match f[0] {
            "release" => {
                let version = PgbackrestVersion::parse(f[1]).expect("release in option table");
                if let Some(last) = out.last_mut() {
                    last.2 = cat.clone();
                }
                out.push((version, f[2], Catalog::default()));
            }
            "group" => {
                cat.groups
                    .insert(f[1], f[2].parse().expect("group index in option table"));
            }
            "deprecated" => {
                cat.deprecated.insert(f[1], f[2]);
            }
            "drop" => match f[1] {
                "group" => drop(cat.groups.remove(f[2])),
                "option" => drop(cat.options.remove(f[2])),
                _ => drop(cat.deprecated.remove(f[2])),
            },
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
                let (range, range_by) = parse_range(f[6]);
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
                        range,
                        range_by,
                        internal: flags.contains(&"internal"),
                    },
                );
            }
            other => panic!("unknown row kind `{other}` in the option table"),
        }
    }
    if let Some(last) = out.last_mut() {
        last.2 = cat;
    }
    out
}

/// `lo..hi`, or `<option>|<default>|<value>=lo..hi,...` (whose plain range
/// is the widest of them, for the message when the value is unknown).
fn parse_range(field: &'static str) -> (Option<(&'static str, &'static str)>, Option<RangeBy>) {
    if field == "-" {
        return (None, None);
    }
    let mut parts = field.split('|');
    let (Some(option), Some(default), Some(list)) = (parts.next(), parts.next(), parts.next())
    else {
        return (field.split_once(".."), None);
    };
    let ranges: Vec<_> = list
        .split(',')
        .filter_map(|r| {
            let (value, range) = r.split_once('=')?;
            Some((value, range.split_once("..")?))
        })
        .collect();
    let by = RangeBy {
        option,
        default: (default != "-").then_some(default),
        ranges,
    };
    (None, Some(by))
}

/// What an option name means to one pgBackRest release.
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

/// Looks `name` up as pgBackRest `version` would.
pub(crate) fn lookup(version: PgbackrestVersion, name: &str) -> Lookup {
    lookup_in(catalog(version), name)
}

fn lookup_in(cat: &'static Catalog, name: &str) -> Lookup {
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
pub(crate) fn int_range(version: PgbackrestVersion, name: &str) -> Option<(i64, i64)> {
    let (lo, hi) = catalog(version).options.get(name)?.range?;
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
fn bad_index(version: PgbackrestVersion, name: &str) -> Option<(&'static str, u32, u32)> {
    let cat = catalog(version);
    let (group, index, tail) = split_indexed(name)?;
    let (group, max) = cat.groups.get_key_value(group)?;
    let def = cat.options.get(format!("{group}-{tail}").as_str())?;
    (def.group == Some(group) && index > *max).then_some((group, index, *max))
}

/// Candidates for a did-you-mean, spelled with the index the user wrote.
fn suggestion(version: PgbackrestVersion, name: &str) -> Option<String> {
    let index = split_indexed(name).map_or(1, |(_, i, _)| i);
    let names: Vec<String> = catalog(version)
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

/// Checks the `[options]` table against pgBackRest `version`'s options;
/// returns name -> rendered value.
pub(crate) fn check_options(
    table: &Table,
    version: PgbackrestVersion,
    p: &mut Problems,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut ranged_by = Vec::new();
    for (name, node) in &table.entries {
        let key = super::fields::child_key("options", name);
        let file = node.file();
        let found = lookup(version, name);
        let refuse = |p: &mut Problems, msg: String| p.push(file, &key, msg);
        match &found {
            Lookup::Unknown => match bad_index(version, name) {
                Some((group, index, max)) => refuse(
                    p,
                    format!("expected a `{group}` index 1-{max}, found `{index}`"),
                ),
                None => {
                    let mut msg = format!("unknown pgBackRest {version} option");
                    if let Some(when) = other_release(version, name) {
                        msg += &format!(" ({when}; see `[pgbackrest] version`)");
                    } else if let Some(s) = suggestion(version, name) {
                        msg += &format!("; did you mean `{s}`?");
                    }
                    refuse(p, msg);
                }
            },
            Lookup::Deprecated { current } => {
                let msg = match owned_by_pgbr(&lookup(version, current)) {
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
                } else {
                    match check_value(def, node) {
                        Ok(v) => {
                            let by = def
                                .range_by
                                .as_ref()
                                .or_else(|| range_stated_later(version, name));
                            if let Some(by) = by {
                                ranged_by.push((name, node, *def, by, v.clone()));
                            }
                            out.insert(name.clone(), v);
                        }
                        Err(mut msg) => {
                            if let Some(from) = later_release_accepting(version, name, node) {
                                msg += &format!(
                                    " (pgBackRest {from} and later accept it; see `[pgbackrest] version`)"
                                );
                            }
                            refuse(p, msg);
                        }
                    }
                }
            }
        }
    }
    // A range that depends on another option (`compress-level` by
    // `compress-type`): that option's value here, or its default.
    for (name, node, def, by, value) in ranged_by {
        let chosen = out.get(by.option).map(String::as_str).or(by.default);
        let Some((lo, hi)) =
            chosen.and_then(|c| by.ranges.iter().find(|(v, _)| *v == c).map(|(_, r)| *r))
        else {
            continue;
        };
        if !in_range(def.kind, lo, hi, &value) {
            let chosen = chosen.unwrap_or("?");
            p.push(
                node.file(),
                &super::fields::child_key("options", name),
                format!(
                    "expected an integer {lo}-{hi} (the range for `{} = {chosen}`), found `{value}`",
                    by.option
                ),
            );
            out.remove(name);
        }
    }
    out
}

/// The dependent range that the first release after `version` states for
/// `name`. pgBackRest 2.56 wrote `compress-level`'s range by
/// `compress-type` into its definition; earlier releases hand the level to
/// the same compression libraries, which refuse it only when a backup runs.
fn range_stated_later(version: PgbackrestVersion, name: &str) -> Option<&'static RangeBy> {
    catalogs()
        .iter()
        .filter(|(v, _, _)| *v > version)
        .find_map(|(_, _, cat)| match lookup_in(cat, name) {
            Lookup::Known { def, .. } => def.range_by.as_ref(),
            _ => None,
        })
}

/// For a name `version` does not know: which release added it (the first
/// after `version` that knows it) or removed it (the first after the last
/// one before `version` that knew it).
fn other_release(version: PgbackrestVersion, name: &str) -> Option<String> {
    let known = |cat: &'static Catalog| matches!(lookup_in(cat, name), Lookup::Known { .. });
    let all = catalogs();
    if let Some((v, _, _)) = all.iter().find(|(v, _, c)| *v > version && known(c)) {
        return Some(format!("added in pgBackRest {v}"));
    }
    let last_known = all.iter().rposition(|(v, _, c)| *v < version && known(c))?;
    let (removed_in, _, _) = all.get(last_known + 1)?;
    Some(format!("removed in pgBackRest {removed_in}"))
}

/// The first release after `version` whose definition of `name` accepts
/// the value `version` refused (`backup-standby = "prefer"` from 2.54).
fn later_release_accepting(
    version: PgbackrestVersion,
    name: &str,
    node: &Node,
) -> Option<PgbackrestVersion> {
    catalogs()
        .iter()
        .filter(|(v, _, _)| *v > version)
        .find(|(_, _, cat)| match lookup_in(cat, name) {
            Lookup::Known { def, .. } => !def.internal && check_value(def, node).is_ok(),
            _ => false,
        })
        .map(|(v, _, _)| *v)
}

/// Checks one value against its definition; returns the text to render,
/// or what was expected and found.
fn check_value(def: &OptionDef, node: &Node) -> Result<String, String> {
    let Node::Leaf(leaf) = node else {
        return Err(format!("expected {}, found a table", expected(def)));
    };
    let v = &leaf.value;
    let bad = || Err(format!("expected {}, found {}", expected(def), describe(v)));
    if let toml::Value::String(s) = v {
        if s.is_empty() {
            return Err("expected a non-empty value, found `\"\"`".into());
        }
        if super::model::ini_unsafe_char(s).is_some() || s.trim() != s {
            return Err(format!(
                "expected a value on one line without control characters or surrounding spaces, found {}{}",
                describe(v),
                unsafe_note(v)
            ));
        }
    }
    let text = match (def.kind, v) {
        (Kind::Boolean, toml::Value::Boolean(b)) => if *b { "y" } else { "n" }.to_string(),
        // `backup-standby` is `y`/`n`/`prefer` from 2.54: a boolean still
        // means `y`/`n`, as it did when the option was one.
        (Kind::Text { .. }, toml::Value::Boolean(b))
            if def.allowed.contains(&"y") && def.allowed.contains(&"n") =>
        {
            if *b { "y" } else { "n" }.to_string()
        }
        (Kind::Integer, toml::Value::Integer(i)) => i.to_string(),
        (Kind::Time, toml::Value::Integer(i)) => i.to_string(),
        (Kind::Time, toml::Value::Float(f)) if f.is_finite() => f.to_string(),
        (Kind::Size, toml::Value::Integer(i)) => i.to_string(),
        (Kind::Size, toml::Value::String(s)) if parse_size(s).is_some() => s.clone(),
        (Kind::Text { path, hash }, toml::Value::String(s)) => {
            if (path && !s.starts_with('/')) || (hash && !s.contains('=')) {
                return bad();
            }
            s.clone()
        }
        _ => return bad(),
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
            return Err(msg);
        }
    }
    if let Some((lo, hi)) = def.range {
        if !in_range(def.kind, lo, hi, &text) {
            return bad();
        }
    }
    Ok(text)
}

/// Whether `text` lies in `lo..=hi` (sizes compared in bytes).
fn in_range(kind: Kind, lo: &str, hi: &str, text: &str) -> bool {
    let number = |s: &str| match kind {
        Kind::Size => parse_size(s).map(|b| b as f64),
        _ => s.parse::<f64>().ok(),
    };
    match (number(lo), number(hi), number(text)) {
        (Some(lo), Some(hi), Some(x)) => lo <= x && x <= hi,
        _ => false,
    }
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
    use crate::topology::load::Table;
    use std::rc::Rc;

    const V45: PgbackrestVersion = PgbackrestVersion::OLDEST;

    fn v(s: &str) -> PgbackrestVersion {
        PgbackrestVersion::parse(s).unwrap()
    }

    /// The problems `[options]` (TOML text) has under `version`.
    fn problems(version: &str, options: &str) -> Vec<String> {
        let tree = Table::from_toml(&Rc::from("t.toml"), options.parse().expect("test TOML"));
        let mut p = Problems::default();
        check_options(&tree, v(version), &mut p);
        p.into_sorted().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_supported_release_has_a_table() {
        let releases: Vec<_> = catalogs().iter().map(|(v, _, _)| *v).collect();
        assert_eq!(releases, PgbackrestVersion::all().collect::<Vec<_>>());
        assert_eq!(catalogs()[10].1, "2.55.1");
    }

    #[test]
    fn an_option_added_later_is_unknown_before_and_says_when() {
        assert!(problems("2.58", "tls-cipher-13 = \"TLS_AES_256_GCM_SHA384\"").is_empty());
        assert_eq!(
            problems("2.45", "tls-cipher-13 = \"TLS_AES_256_GCM_SHA384\""),
            ["t.toml: options.tls-cipher-13: unknown pgBackRest 2.45 option (added in pgBackRest 2.58; see `[pgbackrest] version`)"]
        );
        assert!(problems("2.55", "repo2-sftp-host = \"backup\"").is_empty());
        assert_eq!(
            problems("2.45", "repo2-sftp-host = \"backup\""),
            ["t.toml: options.repo2-sftp-host: unknown pgBackRest 2.45 option (added in pgBackRest 2.46; see `[pgbackrest] version`)"]
        );
    }

    #[test]
    fn an_option_removed_later_is_unknown_after_and_says_when() {
        // `stop-auto` became internal in 2.58; no release between 2.45 and
        // 2.59 drops a name outright, so the removal is shown on a table
        // made for the test.
        assert!(problems("2.57", "stop-auto = true").is_empty());
        assert_eq!(
            problems("2.58", "stop-auto = true"),
            ["t.toml: options.stop-auto: internal pgBackRest option; not for configuration files"]
        );
        assert!(matches!(
            lookup(v("2.45"), "repo-target-time"),
            Lookup::Unknown
        ));
        assert!(matches!(
            lookup(v("2.54"), "repo-target-time"),
            Lookup::Known { .. }
        ));
        let table = "release\t2.45\t2.45.0\noption\tgone\tglobal\tboolean\t-\t-\t-\t-\nrelease\t2.46\t2.46.0\ndrop\toption\tgone\n";
        let cats = parse_table(table);
        assert!(cats[0].2.options.contains_key("gone"));
        assert!(!cats[1].2.options.contains_key("gone"));
    }

    #[test]
    fn backup_standby_prefer_needs_2_54() {
        assert!(problems("2.54", "backup-standby = \"prefer\"").is_empty());
        assert!(problems("2.59", "backup-standby = \"prefer\"").is_empty());
        assert_eq!(
            problems("2.45", "backup-standby = \"prefer\""),
            ["t.toml: options.backup-standby: expected a boolean (`true` or `false`), found `\"prefer\"` (pgBackRest 2.54 and later accept it; see `[pgbackrest] version`)"]
        );
        assert!(problems("2.45", "backup-standby = true").is_empty());
        // From 2.54 a boolean still means `y`/`n`.
        assert!(problems("2.54", "backup-standby = true").is_empty());
        assert_eq!(
            problems("2.54", "backup-standby = \"prefered\""),
            ["t.toml: options.backup-standby: expected one of `n`, `prefer`, `y`, found `\"prefered\"`; did you mean `prefer`?"]
        );
    }

    #[test]
    fn a_range_that_depends_on_another_option_uses_its_value_or_default() {
        assert!(problems("2.56", "compress-type = \"zst\"\ncompress-level = 19").is_empty());
        assert_eq!(
            problems("2.56", "compress-level = 19"),
            ["t.toml: options.compress-level: expected an integer -1-9 (the range for `compress-type = gz`), found `19`"]
        );
        // 2.45's definition states no range, but its zlib refuses 19 when a
        // backup runs: the range 2.56 wrote down applies (issue 12 item 20).
        assert_eq!(
            problems("2.45", "compress-level = 19"),
            ["t.toml: options.compress-level: expected an integer -1-9 (the range for `compress-type = gz`), found `19`"]
        );
        assert!(problems("2.45", "compress-type = \"zst\"\ncompress-level = 19").is_empty());
    }

    fn known(name: &str) -> (&'static str, Option<u32>) {
        match lookup(V45, name) {
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
        assert!(matches!(lookup(V45, "repo257-path"), Lookup::Unknown));
        assert!(matches!(lookup(V45, "repo0-path"), Lookup::Unknown));
        assert!(matches!(lookup(V45, "repo01-path"), Lookup::Unknown));
        assert!(matches!(lookup(V45, "compress-typo"), Lookup::Unknown));
        assert!(matches!(lookup(V45, "pg1-compress-type"), Lookup::Unknown));
    }

    #[test]
    fn deprecated_names_map_to_current_ones() {
        let current = |n: &str| match lookup(V45, n) {
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
        let def = |n: &str| lookup(V45, n);
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
        assert_eq!(int_range(V45, "repo-retention-full"), Some((1, 9_999_999)));
    }

    #[test]
    fn out_of_range_indexes_are_named() {
        assert_eq!(bad_index(V45, "repo300-path"), Some(("repo", 300, 256)));
        assert_eq!(bad_index(V45, "repo2-path"), None);
        assert_eq!(bad_index(V45, "repo300-nothing"), None);
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
            suggestion(V45, "repo2-s3-buckt").as_deref(),
            Some("repo2-s3-bucket")
        );
        assert_eq!(
            suggestion(V45, "compres-type").as_deref(),
            Some("compress-type")
        );
    }
}
