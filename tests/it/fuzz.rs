//! Hostile topology input, fuzzed with proptest: (a) the shipped modules
//! (`modules/local-3cell.toml` importing `modules/defaults.toml`) mutated
//! line by line, (b) generated topologies with valid-ish values. Loading
//! must never panic or hang: every rejection is an `Err` that lists
//! problems naming the file, and every accepted topology renders every
//! cell, twice identically, as a well-formed pgBackRest INI file.
//!
//! `PROPTEST_CASES` sets the number of cases per property (default 64);
//! a long run: `PROPTEST_CASES=200000 cargo test --release --test it fuzz`
//! (see docs/security.md).

use pgbr::render::{render_cell, Phase};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use std::collections::BTreeSet;
use std::path::Path;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(crate::harness::repo_root().join("modules").join(name)).unwrap()
}

/// Values that have broken parsers and validators elsewhere.
const HOSTILE_VALUES: &[&str] = &[
    "\"../../etc\"",
    "\"/zone1/../../etc/pgbackrest\"",
    "\"relative/path\"",
    "\"\"",
    "-1",
    "0",
    "65536",
    "99999999999999999999999",
    "-9223372036854775808",
    "1e308",
    "nan",
    "-inf",
    "true",
    "1979-05-27T07:32:00Z",
    "[]",
    "[1, \"two\", [3]]",
    "{}",
    "{ a = { b = { c = 1 } } }",
    "\"ü\u{202e}名\u{0}\"",
    "\"\\u0000\"",
    "\"{cell}{index}{nope}{\"",
    "\"a\\nb\"",
    "\"; comment\"",
    "\"x # y\"",
    "'''multi\nline'''",
    "\"localhost\"",
    "\"0.0.0.0\"",
    "\"::1\"",
];

/// Whole lines to insert.
const HOSTILE_LINES: &[&str] = &[
    "[cells.zone4]",
    "[cells.\"../x\"]",
    "[cells.\"\"]",
    "[cells.ZONE]",
    "[cells.zone1.nested]",
    "imports = [\"root.toml\"]",
    "imports = [\"../../../../etc/passwd\"]",
    "imports = [\"missing.toml\"]",
    "imports = \"defaults.toml\"",
    "[options]",
    "repo1-path = \"/elsewhere\"",
    "pg2-host = \"x\"",
    "not-an-option = 1",
    "[tls]",
    "key_algorithm = \"dsa-512\"",
    "key_scope = \"shared\"",
    "extra_sans = [\"*.example.com\", \"\", \"1.2.3.4\"]",
    "server_port_base = 65535",
    "[defaults]",
    "deploy_dir = \"/same\"",
    "pg_port = 5432",
    "activate = \"true\"",
    "config_link = \"/tmp/../etc/pgbackrest.conf\"",
    "owner = \"nobody:nogroup\"",
    "owner = \"no-such-user-xyz\"",
    "health = \"tls\"",
    "[repo]",
    "retention_full = 0",
    "stanza = \"a b\"",
    "stanza = \"\"",
    "[[cells]]",
    "cells = 3",
    "= 1",
    "[",
    "\"unterminated",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Value(usize, String),
    Insert(usize, String),
    Raw(usize, String),
}

fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(HOSTILE_VALUES).prop_map(str::to_owned),
        1 => (1usize..20_000).prop_map(|n| format!("\"{}\"", "a".repeat(n))),
        1 => (1usize..300).prop_map(|d| format!("{}1{}", "[".repeat(d), "]".repeat(d))),
        1 => (1usize..300).prop_map(|d| format!("{}1{}", "{a=".repeat(d), "}".repeat(d))),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => "\\PC{0,40}".prop_map(|s| format!("{s:?}")),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0usize..64;
    prop_oneof![
        2 => at.clone().prop_map(Mutation::Delete),
        1 => at.clone().prop_map(Mutation::Duplicate),
        4 => (at.clone(), hostile_value()).prop_map(|(i, v)| Mutation::Value(i, v)),
        3 => (at.clone(), proptest::sample::select(HOSTILE_LINES))
            .prop_map(|(i, l)| Mutation::Insert(i, l.to_owned())),
        1 => (at, "\\PC{0,30}").prop_map(|(i, s)| Mutation::Raw(i, s)),
    ]
}

fn mutate(text: &str, muts: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for m in muts {
        let n = lines.len().max(1);
        match m {
            Mutation::Delete(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::Value(i, v) => {
                // Replace the value of the i-th `key = value` line.
                let keyed: Vec<usize> = (0..lines.len())
                    .filter(|&j| lines[j].contains('=') && !lines[j].starts_with('#'))
                    .collect();
                if let Some(&j) = keyed.get(i % keyed.len().max(1)) {
                    let key = lines[j].split('=').next().unwrap().to_owned();
                    lines[j] = format!("{key}= {v}");
                }
            }
            Mutation::Insert(i, l) => lines.insert(i % (lines.len() + 1), l.clone()),
            Mutation::Raw(i, s) if !lines.is_empty() => {
                let j = i % n;
                let cut = lines[j]
                    .char_indices()
                    .map(|(k, _)| k)
                    .nth(i % 7)
                    .unwrap_or(lines[j].len());
                lines[j].insert_str(cut, s);
            }
            _ => {}
        }
    }
    lines.join("\n") + "\n"
}

/// Checks one pgBackRest config as pgBackRest 2.45 would read it.
fn check_ini(text: &str) -> Result<(), String> {
    let mut section = String::new();
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with(';') {
            return Err(format!("`;` line: {line:?}"));
        }
        if let Some(s) = line.strip_prefix('[') {
            section = s
                .strip_suffix(']')
                .ok_or(format!("bad section {line:?}"))?
                .into();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or(format!("not key=value: {line:?}"))?;
        if k.is_empty() || v.is_empty() {
            return Err(format!("empty key or value: {line:?}"));
        }
        if v.contains('\n') || v.contains('\r') {
            return Err(format!("newline in value: {line:?}"));
        }
        if !seen.insert((section.clone(), k.to_owned())) {
            return Err(format!("`{k}` twice in [{section}]"));
        }
    }
    Ok(())
}

/// Loads `root` and checks the contract: `Err` with problems, or a
/// topology whose every cell renders well-formed and deterministically.
fn load_and_render(root: &Path) -> Result<(), TestCaseError> {
    match pgbr::topology::load(root) {
        Err(e) => {
            prop_assert!(!e.problems.is_empty(), "an error with no problems");
            for p in &e.problems {
                prop_assert!(!p.file.is_empty() && !p.message.is_empty(), "{p:?}");
            }
        }
        Ok(topo) => {
            for cell in &topo.cells {
                prop_assert!(
                    !cell.name.as_str().contains('/') && !cell.name.as_str().starts_with('.'),
                    "accepted cell name {:?}",
                    cell.name.as_str()
                );
                for phase in [Phase::Bootstrap, Phase::Full] {
                    let a = render_cell(&topo, cell, phase);
                    let b = render_cell(&topo, cell, phase);
                    prop_assert_eq!(&a, &b);
                    if let Err(e) = check_ini(&a) {
                        return Err(TestCaseError::fail(format!(
                            "{}: {e}\n{a}",
                            cell.name.as_str()
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// (a) The shipped modules, mutated.
    #[test]
    fn mutated_shipped_modules_are_rejected_or_render(
        root_muts in proptest::collection::vec(mutation(), 0..6),
        defaults_muts in proptest::collection::vec(mutation(), 0..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root_text = mutate(&shipped("local-3cell.toml"), &root_muts);
        let defaults_text = mutate(&shipped("defaults.toml"), &defaults_muts);
        std::fs::write(dir.path().join("root.toml"), &root_text).unwrap();
        std::fs::write(dir.path().join("defaults.toml"), &defaults_text).unwrap();
        let start = std::time::Instant::now();
        load_and_render(&dir.path().join("root.toml"))?;
        prop_assert!(start.elapsed() < std::time::Duration::from_secs(5), "slow case");
    }

    /// (b) Generated topologies: many cells, values near and past the limits.
    #[test]
    fn generated_topologies_are_rejected_or_render(
        cells in proptest::collection::btree_map(
            prop_oneof![60 => "[a-z0-9_-]{1,10}", 1 => "\\PC{0,8}"],
            (
                prop_oneof![40 => 1u32..65536, 1 => 0u32..200_000],
                prop_oneof![20 => Just("localhost".to_owned()), 1 => "[a-z0-9.-]{0,20}", 1 => Just("::1".to_owned()), 1 => Just("10.0.0.1".to_owned())],
                prop_oneof![60 => Just(None), 1 => Just(Some("/x".to_owned())), 1 => Just(Some("rel".to_owned())), 1 => "/[a-z./]{0,12}".prop_map(Some)],
            ),
            0..40,
        ),
        base in prop_oneof![3 => 1024u32..60000, 1 => 0u32..70000],
        options in proptest::collection::vec(
            (
                proptest::sample::select(&["compress-type", "start-fast", "log-level-file", "process-max", "io-timeout", "bogus-opt", "repo1-path", "pg1-host"][..]),
                prop_oneof![
                    6 => proptest::sample::select(&["\"zst\"", "true", "false", "\"detail\"", "4", "60"][..]).prop_map(str::to_owned),
                    1 => hostile_value(),
                ],
            ),
            0..3,
        ),
        stanza in prop_oneof![20 => Just("main".to_owned()), 1 => "\\PC{0,12}"],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut t = format!(
            "stanza = {stanza:?}\n[repo]\npath = \"/backup/repo\"\nretention_full = 7\n[tls]\nserver_port_base = {base}\nserver_address = \"0.0.0.0\"\n[defaults]\npg_path = \"/{{cell}}/pg_data\"\ndeploy_dir = \"/deploy/{{cell}}/{{index}}\"\n[options]\n"
        );
        for (k, v) in &options {
            t.push_str(&format!("{k} = {v}\n"));
        }
        for (name, (port, host, deploy)) in &cells {
            t.push_str(&format!("[cells.{name:?}]\npg_port = {port}\nhost = {host:?}\n"));
            if let Some(d) = deploy {
                t.push_str(&format!("deploy_dir = {d:?}\n"));
            }
        }
        let root = dir.path().join("root.toml");
        std::fs::write(&root, &t).unwrap();
        load_and_render(&root)?;
    }
}
