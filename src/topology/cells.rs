//! `[defaults]` and `[cells.<name>]`: placeholders, per-cell values, and the
//! checks that compare cells (ports on one host, deploy dirs, config links).
//!
//! A cell's value is its own key if set, else the `[defaults]` key, with
//! `{cell}` and `{index}` replaced. A `[defaults]` value is checked once, at
//! `defaults.<key>`, so one bad default is one problem, not one per cell.
//! Pure: no IO, and nothing about `[repo]`, `[tls]` or `[options]` beyond the
//! TLS port base handed in.

use super::fields::{
    abs_path, check_known_keys, child_key, command, describe, host, int_in, one_of, port, suggest,
    text, unsafe_note, Check, Problems,
};
use super::load::{Leaf, Node, Table};
use super::model::{is_valid_name, AbsPath, Cell, CellName, Health};
use super::target::{parse_address, SshSettings, TargetSpec};
use std::collections::BTreeMap;

/// The keys of a cell (and of `[defaults]`).
pub(crate) const CELL_KEYS: &[&str] = &[
    "host",
    "pg_path",
    "pg_socket_path",
    "pg_port",
    "pg_user",
    "pg_database",
    "deploy_dir",
    "owner",
    "log_path",
    "lock_path",
    "spool_path",
    "config_link",
    "activate",
    "health",
    "health_command",
    "hook_timeout_seconds",
    "target",
];

/// How long a hook may run when `hook_timeout_seconds` is not set.
pub const DEFAULT_HOOK_TIMEOUT_SECONDS: u32 = 120;
/// The longest `hook_timeout_seconds` accepted (a day).
const MAX_HOOK_TIMEOUT_SECONDS: i64 = 86_400;

const REQUIRED: &[&str] = &["host", "pg_path", "deploy_dir"];
const PLACEHOLDERS: &[&str] = &["cell", "index"];
/// `target` may name the cell's `host` too.
const TARGET_PLACEHOLDERS: &[&str] = &["cell", "index", "host"];
/// pgBackRest numbers peers pg1..pg256.
pub(crate) const MAX_CELLS: usize = 256;

/// A checked cell value.
#[derive(Debug, Clone)]
enum Value {
    Text(String),
    Path(AbsPath),
    Port(u16),
    Seconds(u32),
}

/// An effective cell value and where it was set.
#[derive(Debug, Clone)]
struct Val {
    value: Value,
    file: String,
    from_defaults: bool,
}

/// A cell as far as its values could be checked.
#[derive(Debug)]
pub(crate) struct Draft {
    name: String,
    index: usize,
    valid_name: bool,
    values: BTreeMap<&'static str, Val>,
    /// Keys that are set but invalid (already reported): no default applies.
    invalid: Vec<&'static str>,
}

fn cell_check(key: &str) -> Check<Value> {
    fn map<T: 'static>(c: Check<T>, f: fn(T) -> Value) -> Check<Value> {
        let accept = c.accept;
        Check {
            what: c.what,
            accept: Box::new(move |v| accept(v).map(f)),
        }
    }
    match key {
        "host" => map(host(), Value::Text),
        "pg_port" => map(port(), Value::Port),
        "pg_user" | "pg_database" => map(text(), Value::Text),
        "owner" => map(owner(), Value::Text),
        "activate" | "health_command" => map(command(), Value::Text),
        "health" => map(one_of(&["none", "tls"]), |s| Value::Text(s.into())),
        "hook_timeout_seconds" => map(int_in(1, MAX_HOOK_TIMEOUT_SECONDS), |i| {
            Value::Seconds(i as u32)
        }),
        "target" => target(),
        _ => map(abs_path(), Value::Path),
    }
}

/// `local` or `ssh://[user@]host[:port]`; `{host}` (the cell's `host`,
/// replaced when the cell is built) stands for a valid sample here.
fn target() -> Check<Value> {
    Check {
        what: "`\"local\"` or `\"ssh://[user@]host[:port]\"`".into(),
        accept: Box::new(|v| {
            let s = v.as_str()?;
            parse_address(&s.replace("{host}", "host"))?;
            Some(Value::Text(s.to_owned()))
        }),
    }
}

/// `user` or `user:group`.
fn owner() -> Check<String> {
    let name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    Check {
        what: "`user` or `user:group`".into(),
        accept: Box::new(move |v| {
            let s = v.as_str()?;
            let ok = match s.split_once(':') {
                Some((u, g)) => name(u) && name(g),
                None => name(s),
            };
            ok.then(|| s.to_owned())
        }),
    }
}

/// The placeholders in `s` as (byte range of `{word}`, word): a lowercase
/// word in braces, not after `$` (so a shell's `${VAR}` is left alone).
fn spans(s: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = s[from..].find('{').map(|i| from + i) {
        from = open + 1;
        let Some(close) = s[from..].find('}').map(|i| from + i) else {
            break;
        };
        let word = &s[from..close];
        let shell = open > 0 && s.as_bytes()[open - 1] == b'$';
        let is_word = !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if is_word && !shell {
            found.push((open..close + 1, word));
            from = close + 1;
        }
    }
    found
}

/// The placeholder words in `s`.
fn placeholders(s: &str) -> Vec<&str> {
    spans(s).into_iter().map(|(_, w)| w).collect()
}

/// Replaces `{cell}` and `{index}` in string values.
fn expand(v: &toml::Value, cell: &str, index: usize) -> toml::Value {
    let toml::Value::String(s) = v else {
        return v.clone();
    };
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (range, word) in spans(s) {
        let with = match word {
            "cell" => cell.to_owned(),
            "index" => index.to_string(),
            _ => continue,
        };
        out.push_str(&s[last..range.start]);
        out.push_str(&with);
        last = range.end;
    }
    out.push_str(&s[last..]);
    toml::Value::String(out)
}

/// Reports unknown placeholders in a string value; `true` when none.
fn check_placeholders(v: &toml::Value, file: &str, key: &str, p: &mut Problems) -> bool {
    let Some(s) = v.as_str() else { return true };
    let is_target = key == "target" || key.ends_with(".target");
    let known = if is_target {
        TARGET_PLACEHOLDERS
    } else {
        PLACEHOLDERS
    };
    let mut ok = true;
    for word in placeholders(s) {
        if known.contains(&word) {
            continue;
        }
        ok = false;
        let mut msg = if is_target {
            format!("expected only the placeholders `{{cell}}`, `{{index}}` and `{{host}}`, found `{{{word}}}`")
        } else {
            format!("expected only the placeholders `{{cell}}` and `{{index}}`, found `{{{word}}}`")
        };
        if let Some(s) = suggest(word, known.iter().copied()) {
            msg += &format!("; did you mean `{{{s}}}`?");
        }
        p.push(file, key, msg);
    }
    ok
}

/// Checks one value (expanded for `cell`/`index`), reporting the raw value.
fn check_value(
    key: &str,
    node: &Node,
    path: &str,
    cell: &str,
    index: usize,
    p: &mut Problems,
) -> Option<Value> {
    let check = cell_check(key);
    let Node::Leaf(Leaf { file, value }) = node else {
        p.push(
            node.file(),
            path,
            format!("expected {}, found a table", check.what),
        );
        return None;
    };
    if !check_placeholders(value, file, path, p) {
        return None;
    }
    let out = (check.accept)(&expand(value, cell, index));
    if out.is_none() {
        p.push(
            file,
            path,
            format!(
                "expected {}, found {}{}",
                check.what,
                describe(value),
                unsafe_note(value)
            ),
        );
    }
    out
}

/// Checks `[defaults]`; returns the keys whose values are usable.
pub(crate) fn check_defaults(defaults: &Table, p: &mut Problems) -> Vec<&'static str> {
    check_known_keys(defaults, "defaults", CELL_KEYS, p);
    CELL_KEYS
        .iter()
        .copied()
        .filter(|k| {
            defaults.entries.get(*k).is_some_and(|node| {
                // A sample cell stands in for every cell: names cannot
                // contain `/` or `.`, so a default valid for it is valid for all.
                check_value(k, node, &child_key("defaults", k), "cell", 0, p).is_some()
            })
        })
        .collect()
}

/// Checks every cell of the `cells` table (sorted by name).
pub(crate) fn check_cells(
    cells: &Table,
    defaults: &Table,
    usable_defaults: &[&str],
    p: &mut Problems,
) -> Vec<Draft> {
    if cells.entries.is_empty() {
        p.push(
            &cells.file,
            "cells",
            "expected at least one cell, found none",
        );
    }
    if cells.entries.len() > MAX_CELLS {
        p.push(
            &cells.file,
            "cells",
            format!(
                "expected at most {MAX_CELLS} cells (pgBackRest's pg1..pg256), found {}",
                cells.entries.len()
            ),
        );
    }
    let mut drafts = Vec::new();
    for (index, (name, node)) in cells.entries.iter().enumerate() {
        let path = child_key("cells", name);
        let valid_name = is_valid_name(name);
        if !valid_name {
            p.push(
                node.file(),
                &path,
                format!("expected a cell name of 1-63 characters `[a-z0-9_-]`, found `{name:?}`"),
            );
        }
        let Node::Table(own) = node else {
            p.push(
                node.file(),
                &path,
                format!("expected a table (the cell's keys), found {}", found(node)),
            );
            continue;
        };
        check_known_keys(own, &path, CELL_KEYS, p);
        let mut values = BTreeMap::new();
        let mut invalid = Vec::new();
        for key in CELL_KEYS.iter().copied() {
            let key_path = child_key(&path, key);
            let val = match (own.entries.get(key), defaults.entries.get(key)) {
                (Some(node), _) => {
                    check_value(key, node, &key_path, name, index, p).map(|value| Val {
                        value,
                        file: node.file().to_owned(),
                        from_defaults: false,
                    })
                }
                (None, Some(Node::Leaf(l))) if usable_defaults.contains(&key) => {
                    (cell_check(key).accept)(&expand(&l.value, name, index)).map(|value| Val {
                        value,
                        file: l.file.to_string(),
                        from_defaults: true,
                    })
                }
                (None, Some(_)) => None, // reported at `defaults.<key>`
                (None, None) => {
                    if REQUIRED.contains(&key) {
                        let what = cell_check(key).what;
                        p.push(
                            &own.file,
                            &key_path,
                            format!("missing; expected {what} (here or in `[defaults]`)"),
                        );
                    }
                    None
                }
            };
            match val {
                Some(val) => {
                    values.insert(key, val);
                }
                None if own.entries.contains_key(key) || defaults.entries.contains_key(key) => {
                    invalid.push(key)
                }
                None => {}
            }
        }
        let draft = Draft {
            name: name.clone(),
            index,
            valid_name,
            values,
            invalid,
        };
        check_health(&draft, p);
        drafts.push(draft);
    }
    drafts
}

fn found(node: &Node) -> String {
    match node {
        Node::Leaf(l) => describe(&l.value),
        Node::Table(_) => "a table".into(),
    }
}

impl Draft {
    fn text(&self, key: &str) -> Option<&str> {
        match self.values.get(key).map(|v| &v.value) {
            Some(Value::Text(s)) => Some(s),
            _ => None,
        }
    }
    fn path(&self, key: &str) -> Option<&AbsPath> {
        match self.values.get(key).map(|v| &v.value) {
            Some(Value::Path(x)) => Some(x),
            _ => None,
        }
    }
    fn seconds(&self, key: &str) -> Option<u32> {
        match self.values.get(key).map(|v| &v.value) {
            Some(Value::Seconds(x)) => Some(*x),
            _ => None,
        }
    }
    fn port(&self) -> Option<u16> {
        match self.values.get("pg_port").map(|v| &v.value) {
            Some(Value::Port(x)) => Some(*x),
            None if !self.invalid.contains(&"pg_port") => Some(5432),
            _ => None,
        }
    }
    /// Records a problem about this cell's `key`, in the file that set it.
    fn problem(&self, key: &str, message: String, p: &mut Problems) {
        let path = child_key(&child_key("cells", &self.name), key);
        match self.values.get(key) {
            Some(v) if v.from_defaults => p.push(
                &v.file,
                &path,
                format!("{message}; set by `defaults.{key}`"),
            ),
            Some(v) => p.push(&v.file, &path, message),
            None => {}
        }
    }
    /// The cell's `target` with `{host}` replaced (`local` when not set).
    fn place(&self) -> Option<String> {
        match self.text("target") {
            None if self.invalid.contains(&"target") => None,
            None => Some("local".into()),
            Some(t) => Some(t.replace("{host}", self.text("host")?)),
        }
    }
    /// The host, with the loopback spellings made one.
    fn machine(&self) -> Option<String> {
        let h = self.text("host")?.to_ascii_lowercase();
        Some(match h.as_str() {
            "localhost" | "127.0.0.1" | "::1" | "0:0:0:0:0:0:0:1" | "localhost.localdomain" => {
                "localhost".into()
            }
            _ => h,
        })
    }
}

fn check_health(d: &Draft, p: &mut Problems) {
    if d.text("health") == Some("tls") && d.values.contains_key("health_command") {
        d.problem(
            "health_command",
            "expected no `health_command` where `health = \"tls\"`, found a command; set one of the two".into(),
            p,
        );
    }
}

/// Checks what cells must not share: Postgres and TLS ports on one host,
/// deploy dirs, config links. `tls_base` is the first TLS port, when valid.
pub(crate) fn check_across(drafts: &[Draft], tls_base: Option<u16>, p: &mut Problems) {
    let tls_port = |d: &Draft| tls_base.and_then(|b| u16::try_from(b as usize + d.index).ok());
    for (i, b) in drafts.iter().enumerate() {
        let (Some(host), Some(pg)) = (b.machine(), b.port()) else {
            continue;
        };
        let earlier = drafts[..i]
            .iter()
            .find(|a| a.machine().as_ref() == Some(&host) && a.port() == Some(pg));
        if let Some(a) = earlier {
            b.problem(
                "pg_port",
                format!(
                    "expected a Postgres port no other cell on host `{}` uses, found `{pg}` (cell `{}` uses it)",
                    b.text("host").unwrap_or_default(),
                    a.name
                ),
                p,
            );
        }
        let tls_clash = drafts
            .iter()
            .find(|c| c.machine().as_ref() == Some(&host) && tls_port(c) == Some(pg));
        if let Some(c) = tls_clash {
            b.problem(
                "pg_port",
                format!(
                    "expected a Postgres port apart from the TLS ports on host `{}`, found `{pg}` (the TLS port of cell `{}`: `tls.server_port_base` + {})",
                    b.text("host").unwrap_or_default(),
                    c.name,
                    c.index
                ),
                p,
            );
        }
    }
    for (i, b) in drafts.iter().enumerate() {
        let Some(dir) = b.path("deploy_dir") else {
            continue;
        };
        for a in &drafts[..i] {
            let Some(other) = a.path("deploy_dir") else {
                continue;
            };
            if a.place() != b.place() {
                continue; // on different machines
            }
            let relation = if other == dir {
                "the deploy dir of"
            } else if other.contains(dir) {
                "inside the deploy dir of"
            } else if dir.contains(other) {
                "containing the deploy dir of"
            } else {
                continue;
            };
            b.problem(
                "deploy_dir",
                format!(
                    "expected a deploy dir apart from every other cell's, found `{dir}` ({relation} cell `{}`, `{other}`)",
                    a.name
                ),
                p,
            );
            break;
        }
        let Some(link) = b.path("config_link") else {
            continue;
        };
        if let Some(a) = drafts[..i]
            .iter()
            .find(|a| a.path("config_link") == Some(link) && a.place() == b.place())
        {
            b.problem(
                "config_link",
                format!(
                    "expected a config link no other cell uses, found `{link}` (cell `{}` uses it)",
                    a.name
                ),
                p,
            );
        }
    }
}

/// SPEC §1: a pgBackRest client connects to the first address `host`
/// resolves to, so the TLS server must listen in that family. Only IP
/// literals are judged (names would need DNS, and validation is pure); the
/// IPv6 wildcard `::` also takes IPv4 connections on Linux.
pub(crate) fn check_address_family(drafts: &[Draft], server_address: &str, p: &mut Problems) {
    use std::net::IpAddr;
    let family = |ip: &IpAddr| if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let Ok(server) = server_address.parse::<IpAddr>() else {
        return;
    };
    if server == IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED) {
        return;
    }
    for d in drafts {
        let Some(host) = d.text("host") else { continue };
        let Ok(ip) = host.parse::<IpAddr>() else {
            continue;
        };
        if ip.is_ipv4() != server.is_ipv4() {
            d.problem(
                "host",
                format!(
                    "expected an {} address, as `tls.server_address` (`{server_address}`) listens on {} only, found `{host}` ({}); peers connect to `host` and would find no server",
                    family(&server),
                    family(&server),
                    family(&ip)
                ),
                p,
            );
        }
    }
}

/// The validated cell, when everything it needs was valid.
pub(crate) fn build(d: &Draft, ssh: &SshSettings) -> Option<Cell> {
    if !d.valid_name {
        return None;
    }
    let deploy_dir = d.path("deploy_dir")?.clone();
    let sub = |key: &str, default: &str| {
        d.path(key)
            .cloned()
            .unwrap_or_else(|| deploy_dir.join(default))
    };
    let health = match (d.text("health_command"), d.text("health")) {
        (Some(cmd), _) => Health::Command(cmd.to_owned()),
        (None, Some("tls")) => Health::Tls,
        _ => Health::None,
    };
    Some(Cell {
        name: CellName::new(&d.name)?,
        index: d.index,
        host: d.text("host")?.to_owned(),
        pg_path: d.path("pg_path")?.clone(),
        pg_socket_path: d.path("pg_socket_path").cloned(),
        pg_port: d.port()?,
        pg_user: d.text("pg_user").unwrap_or("postgres").to_owned(),
        pg_database: d.text("pg_database").unwrap_or("postgres").to_owned(),
        owner: d.text("owner").map(str::to_owned),
        log_path: sub("log_path", "log"),
        lock_path: sub("lock_path", "lock"),
        spool_path: sub("spool_path", "spool"),
        config_link: d.path("config_link").cloned(),
        activate: d.text("activate").map(str::to_owned),
        health,
        hook_timeout: std::time::Duration::from_secs(u64::from(
            d.seconds("hook_timeout_seconds")
                .unwrap_or(DEFAULT_HOOK_TIMEOUT_SECONDS),
        )),
        deploy_dir,
        target: TargetSpec::new(parse_address(&d.place()?)?, ssh),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_lowercase_words_outside_shell_expansions() {
        assert_eq!(placeholders("/{cell}/x{index}"), ["cell", "index"]);
        assert_eq!(
            placeholders("kill ${PID} ${pid} {Cell} { cell } {"),
            Vec::<&str>::new()
        );
        assert_eq!(placeholders("{cel}"), ["cel"]);
    }

    #[test]
    fn expansion_replaces_every_placeholder() {
        let v = toml::Value::String("/{cell}/{cell}-{index}".into());
        assert_eq!(expand(&v, "zone2", 1).as_str(), Some("/zone2/zone2-1"));
        let v = toml::Value::String("kill ${cell} {cell}".into());
        assert_eq!(expand(&v, "z", 0).as_str(), Some("kill ${cell} z"));
    }

    #[test]
    fn unknown_placeholders_are_reported_with_a_suggestion() {
        let mut p = Problems::default();
        let v = toml::Value::String("/{cel}".into());
        assert!(!check_placeholders(
            &v,
            "t.toml",
            "defaults.pg_path",
            &mut p
        ));
        let probs = p.into_sorted();
        assert_eq!(
            probs[0].to_string(),
            "t.toml: defaults.pg_path: expected only the placeholders `{cell}` and `{index}`, found `{cel}`; did you mean `{cell}`?"
        );
    }
}
