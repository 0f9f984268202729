//! The vocabulary of validation: the problem list, key paths, how a found
//! value is shown, did-you-mean, unknown-key checks and the typed value
//! checks shared by every table (`expected X, found Y`).
//!
//! Pure helpers over the merged tree; they must not know which table they
//! check (the callers say what is expected).

use super::load::{Node, Table};
use super::model::{ini_unsafe_char, AbsPath};
use super::Problem;

/// The problems found so far.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem at `file`, `key`.
    pub fn push(&mut self, file: &str, key: &str, message: impl Into<String>) {
        self.0.push(Problem {
            file: file.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        });
    }
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Sorted by file then key (stable, so one key's problems keep their
    /// order), duplicates removed.
    pub fn into_sorted(mut self) -> Vec<Problem> {
        self.0
            .sort_by(|a, b| (&a.file, &a.key).cmp(&(&b.file, &b.key)));
        self.0.dedup();
        self.0
    }
}

/// `parent.key`, quoting `key` as TOML does when it is not a bare key.
pub(crate) fn child_key(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// How a found value is shown: TOML-like, in backticks (`"x"`, `70000`).
pub(crate) fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::Table(_) => "a table".into(),
        toml::Value::Array(_) => format!("an array `{}`", inline(v)),
        _ => format!("`{}`", inline(v)),
    }
}

fn inline(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(a) => {
            let items: Vec<String> = a.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::Table(_) => "{…}".into(),
    }
}

/// The candidate closest to `input`, when it is close enough to suggest.
pub(crate) fn suggest<'a>(
    input: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Reports every key of `table` that is not in `known`.
pub(crate) fn check_known_keys(table: &Table, path: &str, known: &[&str], p: &mut Problems) {
    for (key, node) in &table.entries {
        if known.contains(&key.as_str()) {
            continue;
        }
        let msg = match suggest(key, known.iter().copied()) {
            Some(s) => format!("unknown key; did you mean `{s}`?"),
            None => {
                let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                format!("unknown key; expected one of {}", list.join(", "))
            }
        };
        p.push(node.file(), &child_key(path, key), msg);
    }
}

/// The leaf value at `key`, or a problem when it is a table.
pub(crate) fn leaf<'a>(
    node: &'a Node,
    key: &str,
    what: &str,
    p: &mut Problems,
) -> Option<&'a toml::Value> {
    match node {
        Node::Leaf(l) => Some(&l.value),
        Node::Table(t) => {
            p.push(&t.file, key, format!("expected {what}, found a table"));
            None
        }
    }
}

/// Converts a value, `None` when it is not what is expected.
pub(crate) type Accept<T> = Box<dyn Fn(&toml::Value) -> Option<T>>;

/// A typed check of one value: what is expected, and the conversion.
pub(crate) struct Check<T> {
    pub what: String,
    pub accept: Accept<T>,
}

impl<T> Check<T> {
    /// Applies the check to `node` at `key`, reporting a mismatch.
    pub fn apply(&self, node: &Node, key: &str, p: &mut Problems) -> Option<T> {
        let v = leaf(node, key, &self.what, p)?;
        let out = (self.accept)(v);
        if out.is_none() {
            p.push(
                node.file(),
                key,
                format!(
                    "expected {}, found {}{}",
                    self.what,
                    describe(v),
                    unsafe_note(v)
                ),
            );
        }
        out
    }
    /// Like [`Check::apply`] on `table[name]`; reports a missing key when
    /// `required`, and returns `None` for a missing optional key.
    pub fn get(
        &self,
        table: &Table,
        path: &str,
        name: &str,
        required: bool,
        p: &mut Problems,
    ) -> Option<T> {
        let key = child_key(path, name);
        match table.entries.get(name) {
            Some(node) => self.apply(node, &key, p),
            None => {
                if required {
                    p.push(
                        &table.file,
                        &key,
                        format!("missing; expected {}", self.what),
                    );
                }
                None
            }
        }
    }
}

fn check<T>(
    what: impl Into<String>,
    accept: impl Fn(&toml::Value) -> Option<T> + 'static,
) -> Check<T> {
    Check {
        what: what.into(),
        accept: Box::new(accept),
    }
}

/// A string that is safe as a pgBackRest INI value: non-empty, one line,
/// no control characters, no surrounding spaces.
pub(crate) fn ini_text(s: &str) -> bool {
    !s.is_empty() && ini_unsafe_char(s).is_none() && s.trim() == s
}

/// `` (a control character, U+000B)`` when a string value holds a
/// character that must not reach the INI file, so the reader of `expected
/// X, found Y` sees what is wrong with a `Y` that looks right.
pub(crate) fn unsafe_note(v: &toml::Value) -> String {
    let c = v.as_str().and_then(ini_unsafe_char);
    c.map(|c| {
        let what = if c.is_control() {
            "a control character"
        } else {
            "a Unicode line separator"
        };
        format!(" ({what}, U+{:04X})", u32::from(c))
    })
    .unwrap_or_default()
}

/// An integer in `lo..=hi`.
pub(crate) fn int_in(lo: i64, hi: i64) -> Check<i64> {
    check(format!("an integer {lo}-{hi}"), move |v| {
        v.as_integer().filter(|i| (lo..=hi).contains(i))
    })
}

/// A TCP port.
pub(crate) fn port() -> Check<u16> {
    check("an integer 1-65535", |v| {
        v.as_integer()
            .filter(|i| (1..=65535).contains(i))
            .map(|i| i as u16)
    })
}

/// An absolute path without `.` or `..` components.
pub(crate) fn abs_path() -> Check<AbsPath> {
    check("an absolute path without `.` or `..` components", |v| {
        let s = v.as_str()?;
        let clean = s.split('/').all(|c| c != "." && c != "..");
        clean.then(|| AbsPath::new(s)).flatten()
    })
}

/// A non-empty single-line string without surrounding spaces.
pub(crate) fn text() -> Check<String> {
    check("a non-empty string on one line", |v| {
        v.as_str().filter(|s| ini_text(s)).map(str::to_owned)
    })
}

/// A non-empty string (a shell command; newlines allowed).
pub(crate) fn command() -> Check<String> {
    check("a non-empty shell command", |v| {
        v.as_str()
            .filter(|s| !s.trim().is_empty() && !s.contains('\0'))
            .map(str::to_owned)
    })
}

/// Whether `s` looks like a host name or an IP address.
pub(crate) fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

/// A host name or IP address.
pub(crate) fn host() -> Check<String> {
    check("a host name or IP address", |v| {
        v.as_str().filter(|s| is_host(s)).map(str::to_owned)
    })
}

/// One of `choices` (strings).
pub(crate) fn one_of(choices: &'static [&'static str]) -> Check<&'static str> {
    let list: Vec<String> = choices.iter().map(|c| format!("`\"{c}\"`")).collect();
    let what = match list.len() {
        2 => format!("{} or {}", list[0], list[1]),
        _ => format!("one of {}", list.join(", ")),
    };
    check(what, move |v| {
        let s = v.as_str()?;
        choices.iter().copied().find(|c| *c == s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_quoted_only_when_needed() {
        assert_eq!(child_key("cells", "zone1"), "cells.zone1");
        assert_eq!(child_key("cells", "../x"), "cells.\"../x\"");
        assert_eq!(child_key("", "stanza"), "stanza");
    }

    #[test]
    fn values_are_shown_like_toml() {
        assert_eq!(describe(&toml::Value::Integer(70000)), "`70000`");
        assert_eq!(describe(&toml::Value::String("a\nb".into())), "`\"a\\nb\"`");
        assert_eq!(
            describe(&toml::Value::Array(vec![toml::Value::Boolean(true)])),
            "an array `[true]`"
        );
    }

    #[test]
    fn suggestions_need_to_be_close() {
        let keys = ["pg_port", "pg_path", "host"];
        assert_eq!(suggest("pgport", keys.iter().copied()), Some("pg_port"));
        assert_eq!(suggest("zzz", keys.iter().copied()), None);
    }
}
