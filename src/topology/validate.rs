//! Validation of the merged tree into a [`Topology`]: the top-level keys,
//! `[repo]`, `[tls]`, and the assembly of `[options]`, `[defaults]` and
//! `[cells]` (checked in `options.rs` and `cells.rs`).
//!
//! Every problem is collected, none stops the others. Pure: it reads no
//! files and must not fix values up silently; a default applies only where
//! a key is absent.

use super::cells;
use super::fields::{
    abs_path, check_known_keys, describe, host, ini_text, int_in, is_host, one_of, port, text,
    Check, Problems,
};
use super::load::{Node, Table};
use super::model::{KeyAlgorithm, KeyScope, Repo, StanzaName, Tls, Topology};
use super::options;
use super::pgbackrest::{self, PgbackrestVersion};
use super::target::{SshSettings, DEFAULT_PARALLEL};
use std::collections::BTreeMap;

const TOP_KEYS: &[&str] = &[
    "imports",
    "stanza",
    "repo",
    "tls",
    "pgbackrest",
    "options",
    "defaults",
    "cells",
    "ssh",
];
const SSH_KEYS: &[&str] = &["config_file", "options", "parallel", "sudo"];
/// `[ssh] parallel` is capped: each host is an ssh process and a thread.
const MAX_PARALLEL: i64 = 256;
const REPO_KEYS: &[&str] = &["path", "retention_full"];
const TLS_KEYS: &[&str] = &[
    "server_port_base",
    "server_address",
    "client_cn",
    "ca_validity_days",
    "cert_validity_days",
    "renew_before_days",
    "key_algorithm",
    "extra_sans",
    "key_scope",
];
/// Certificate validities are capped at a century.
const MAX_DAYS: i64 = 36_500;

/// Validates the merged tree; `None` when any problem was found.
pub(crate) fn validate(root: &Table, p: &mut Problems) -> Option<Topology> {
    check_known_keys(root, "", TOP_KEYS, p);
    let stanza = Check {
        what: "a stanza name of 1-63 characters `[a-z0-9_-]`".into(),
        accept: Box::new(|v| v.as_str().and_then(StanzaName::new)),
    }
    .get(root, "", "stanza", true, p);
    let pgbackrest = pgbackrest::check(&section(root, "pgbackrest", p), p);
    // With an unusable version, the newest release's options give the
    // fewest misleading problems.
    let version = pgbackrest
        .as_ref()
        .map_or(PgbackrestVersion::NEWEST, |b| b.version);
    let repo = repo(&section(root, "repo", p), version, p);
    let options = options::check_options(&section(root, "options", p), version, p);
    let defaults = section(root, "defaults", p);
    let usable = cells::check_defaults(&defaults, p);
    let cell_table = section(root, "cells", p);
    let drafts = match root.entries.get("cells") {
        Some(Node::Leaf(_)) => Vec::new(), // reported: not a table
        _ => cells::check_cells(&cell_table, &defaults, &usable, p),
    };
    let (tls_base, mut tls) = tls(&section(root, "tls", p), drafts.len(), p);
    if let Some(tls) = &mut tls {
        tls.ip_sans_as_dns = !version.checks_ip_sans();
    }
    cells::check_across(&drafts, tls_base, p);
    if let Some(tls) = &tls {
        cells::check_address_family(&drafts, &tls.server_address, p);
    }
    let ssh = ssh(&section(root, "ssh", p), p);

    if !p.is_empty() {
        return None;
    }
    let ssh = ssh?;
    let cells: Option<Vec<_>> = drafts.iter().map(|d| cells::build(d, &ssh)).collect();
    Some(Topology {
        stanza: stanza?,
        repo: repo?,
        tls: tls?,
        pgbackrest: pgbackrest?,
        options,
        cells: cells?,
        ssh,
    })
}

/// The `[ssh]` table (SPEC §9). `config_file` is resolved against the
/// directory of the module that sets it.
fn ssh(t: &Table, p: &mut Problems) -> Option<SshSettings> {
    check_known_keys(t, "ssh", SSH_KEYS, p);
    let config_file = match t.entries.get("config_file") {
        None => Some(None),
        Some(node) => Check {
            what: "a path to an ssh_config file".into(),
            accept: Box::new(|v| v.as_str().filter(|s| ini_text(s)).map(str::to_owned)),
        }
        .apply(node, "ssh.config_file", p)
        .map(|s| {
            let base = std::path::Path::new(node.file())
                .parent()
                .unwrap_or(std::path::Path::new(""));
            Some(base.join(s).display().to_string())
        }),
    };
    let option = |s: &str| {
        let (name, value) = s.split_once('=')?;
        let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric());
        (name_ok && !value.is_empty() && !s.contains(['\n', '\r', '\0'])).then(|| s.to_owned())
    };
    let options = or_default(
        Check {
            what: "a list of `Name=value` ssh options".into(),
            accept: Box::new(move |v| {
                v.as_array()?
                    .iter()
                    .map(|o| o.as_str().and_then(option))
                    .collect::<Option<Vec<_>>>()
            }),
        },
        t,
        "ssh",
        "options",
        Vec::new(),
        p,
    );
    let parallel = or_default(
        int_in(1, MAX_PARALLEL),
        t,
        "ssh",
        "parallel",
        DEFAULT_PARALLEL as i64,
        p,
    );
    let sudo = or_default(
        Check {
            what: "`true` or `false`".into(),
            accept: Box::new(|v| v.as_bool()),
        },
        t,
        "ssh",
        "sudo",
        false,
        p,
    );
    Some(SshSettings {
        config_file: config_file?,
        options: options?,
        parallel: usize::try_from(parallel?).ok()?,
        sudo: sudo?,
    })
}

/// The table `name` of `root`, or an empty one (in the root's file).
fn section(root: &Table, name: &str, p: &mut Problems) -> Table {
    match root.entries.get(name) {
        Some(Node::Table(t)) => t.clone(),
        Some(Node::Leaf(l)) => {
            p.push(
                &l.file,
                name,
                format!("expected a table, found {}", describe(&l.value)),
            );
            Table {
                file: l.file.clone(),
                entries: BTreeMap::new(),
            }
        }
        None => Table {
            file: root.file.clone(),
            entries: BTreeMap::new(),
        },
    }
}

fn repo(t: &Table, version: PgbackrestVersion, p: &mut Problems) -> Option<Repo> {
    check_known_keys(t, "repo", REPO_KEYS, p);
    let (lo, hi) = options::int_range(version, "repo-retention-full").unwrap_or((1, 9_999_999));
    let path = abs_path().get(t, "repo", "path", true, p);
    let retention_full = int_in(lo, hi).get(t, "repo", "retention_full", true, p);
    Some(Repo {
        path: path?,
        retention_full: u32::try_from(retention_full?).ok()?,
    })
}

/// `t[key]` checked, or `default` when absent; `None` when invalid.
fn or_default<T>(
    check: Check<T>,
    t: &Table,
    path: &str,
    key: &str,
    default: T,
    p: &mut Problems,
) -> Option<T> {
    match t.entries.get(key) {
        Some(_) => check.get(t, path, key, false, p),
        None => Some(default),
    }
}

/// The `[tls]` table, and its port base on its own (valid for the cell
/// count) so the port checks run even when another TLS key is wrong.
fn tls(t: &Table, cell_count: usize, p: &mut Problems) -> (Option<u16>, Option<Tls>) {
    check_known_keys(t, "tls", TLS_KEYS, p);
    let last = cell_count.saturating_sub(1);
    let base = port().get(t, "tls", "server_port_base", true, p).filter(|b| {
        let fits = usize::from(*b) + last <= 65535;
        if !fits {
            p.push(
                t.entries["server_port_base"].file(),
                "tls.server_port_base",
                format!(
                    "expected an integer 1-{} so that all {cell_count} cells get a TLS port, found `{b}`",
                    65535 - last
                ),
            );
        }
        fits
    });
    let server_address = host().get(t, "tls", "server_address", true, p);
    let cn = Check {
        what: "a non-empty string on one line without `=`".into(),
        accept: Box::new(|v| (text().accept)(v).filter(|s| !s.contains('='))),
    };
    let client_cn = or_default(cn, t, "tls", "client_cn", "pgbackrest".into(), p);
    let ca_days = or_default(int_in(1, MAX_DAYS), t, "tls", "ca_validity_days", 3650, p);
    let cert_days = or_default(int_in(1, MAX_DAYS), t, "tls", "cert_validity_days", 365, p);
    let renew = match t.entries.get("renew_before_days") {
        Some(node) => int_in(0, MAX_DAYS).apply(node, "tls.renew_before_days", p),
        None => cert_days.map(|c| c / 3),
    };
    if let (Some(r), Some(c), Some(node)) = (renew, cert_days, t.entries.get("renew_before_days")) {
        if r >= c {
            p.push(
                node.file(),
                "tls.renew_before_days",
                format!("expected fewer days than `tls.cert_validity_days` ({c}), found `{r}`"),
            );
        }
    }
    let algorithm = one_of(&["ecdsa-p256", "rsa-2048"]);
    let key_algorithm =
        or_default(algorithm, t, "tls", "key_algorithm", "ecdsa-p256", p).map(|s| match s {
            "rsa-2048" => KeyAlgorithm::Rsa2048,
            _ => KeyAlgorithm::EcdsaP256,
        });
    let scope = one_of(&["per-cell", "shared"]);
    let key_scope = or_default(scope, t, "tls", "key_scope", "per-cell", p).map(|s| match s {
        "shared" => KeyScope::Shared,
        _ => KeyScope::PerCell,
    });
    let sans = Check {
        what: "an array of host names or IP addresses".into(),
        accept: Box::new(|v| {
            v.as_array()?
                .iter()
                .map(|s| s.as_str().filter(|s| is_host(s)).map(str::to_owned))
                .collect::<Option<Vec<String>>>()
        }),
    };
    let extra_sans = or_default(sans, t, "tls", "extra_sans", Vec::new(), p);
    let tls = (|| {
        Some(Tls {
            server_port_base: base?,
            server_address: server_address?,
            client_cn: client_cn?,
            ca_validity_days: u32::try_from(ca_days?).ok()?,
            cert_validity_days: u32::try_from(cert_days?).ok()?,
            renew_before_days: u32::try_from(renew?).ok()?,
            key_algorithm: key_algorithm?,
            key_scope: key_scope?,
            extra_sans: extra_sans?,
            // Set from `[pgbackrest] version` by the caller.
            ip_sans_as_dns: true,
        })
    })();
    (base, tls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::model::Health;
    use std::rc::Rc;

    use crate::topology::TargetSpec;

    fn validated(text: &str) -> Result<Topology, Vec<String>> {
        let tree = Table::from_toml(&Rc::from("t.toml"), text.parse().expect("test TOML"));
        let mut p = Problems::default();
        match validate(&tree, &mut p) {
            Some(t) if p.is_empty() => Ok(t),
            _ => Err(p.into_sorted().iter().map(ToString::to_string).collect()),
        }
    }

    const BASE: &str = r#"
stanza = "s"
[repo]
path = "/r"
retention_full = 2
[tls]
server_port_base = 9000
server_address = "::"
[defaults]
host = "h{index}"
pg_path = "/{cell}/pg"
deploy_dir = "/d/{cell}"
activate = "kill -HUP $(cat ${PGBR_DEPLOY_DIR}/pid)"
[cells.b]
pg_port = 6000
[cells.a]
host = "own"
health_command = "true"
log_path = "/logs/{cell}"
"#;

    #[test]
    fn targets_expand_host_and_take_the_ssh_table() {
        let text = BASE.replace(
            "[cells.b]",
            "target = \"ssh://root@{host}:22\"\n[ssh]\nconfig_file = \"ssh_config\"\noptions = [\"ConnectTimeout=5\"]\nsudo = true\n[cells.b]",
        ) + "[cells.c]\ntarget = \"local\"\n";
        let t = validated(&text).unwrap();
        assert_eq!(t.ssh.parallel, crate::topology::DEFAULT_PARALLEL);
        let TargetSpec::Ssh(a) = &t.cells[0].target else {
            panic!("{:?}", t.cells[0].target)
        };
        assert_eq!(a.address(), "root@own:22");
        assert_eq!(a.config_file.as_deref(), Some("ssh_config"));
        assert_eq!(a.options, ["ConnectTimeout=5"]);
        assert!(a.sudo);
        assert_eq!(t.cells[1].target.to_string(), "ssh://root@h1:22");
        assert_eq!(t.cells[2].target, TargetSpec::Local);
        // Cells on different hosts may share a deploy dir path.
        let shared = text
            .replace("deploy_dir = \"/d/{cell}\"", "deploy_dir = \"/d\"")
            .replace("target = \"local\"", "target = \"ssh://c\"");
        assert!(validated(&shared).is_ok(), "{:?}", validated(&shared));
        // A local topology hashes as before the key existed.
        let plain = validated(BASE).unwrap();
        assert!(!serde_json::to_string(&plain).unwrap().contains("target"));
    }

    #[test]
    fn bad_targets_and_ssh_settings_are_named() {
        let text = BASE.replace(
            "[cells.b]",
            "target = \"ssh://{hots}\"\n[ssh]\noptions = [\"-oProxyCommand=x\"]\nparallel = 0\nsudo = \"yes\"\nport = 2\n[cells.b]",
        ) + "[cells.c]\ntarget = \"scp://x\"\n";
        assert_eq!(
            validated(&text).unwrap_err(),
            [
                "t.toml: cells.c.target: expected `\"local\"` or `\"ssh://[user@]host[:port]\"`, found `\"scp://x\"`",
                "t.toml: defaults.target: expected only the placeholders `{cell}`, `{index}` and `{host}`, found `{hots}`; did you mean `{host}`?",
                "t.toml: ssh.options: expected a list of `Name=value` ssh options, found an array `[\"-oProxyCommand=x\"]`",
                "t.toml: ssh.parallel: expected an integer 1-256, found `0`",
                "t.toml: ssh.port: unknown key; expected one of `config_file`, `options`, `parallel`, `sudo`",
                "t.toml: ssh.sudo: expected `true` or `false`, found `\"yes\"`",
            ]
        );
    }

    #[test]
    fn defaults_and_placeholders_apply_and_a_cells_own_keys_win() {
        let t = validated(BASE).unwrap();
        let (a, b) = (&t.cells[0], &t.cells[1]);
        assert_eq!((a.name.as_str(), a.index, b.index), ("a", 0, 1));
        assert_eq!((a.host.as_str(), b.host.as_str()), ("own", "h1"));
        assert_eq!(b.pg_path.as_str(), "/b/pg");
        assert_eq!((a.pg_port, b.pg_port), (5432, 6000));
        assert_eq!(a.log_path.as_str(), "/logs/a");
        assert_eq!(b.log_path.as_str(), "/d/b/log");
        assert_eq!(b.spool_path.as_str(), "/d/b/spool");
        assert_eq!(a.health, Health::Command("true".into()));
        assert_eq!(b.health, Health::None);
        assert_eq!(
            b.activate.as_deref(),
            Some("kill -HUP $(cat ${PGBR_DEPLOY_DIR}/pid)")
        );
        assert_eq!(t.tls_port(b), 9001);
    }

    #[test]
    fn tls_defaults() {
        let tls = validated(BASE).unwrap().tls;
        assert_eq!(tls.client_cn, "pgbackrest");
        assert_eq!((tls.ca_validity_days, tls.cert_validity_days), (3650, 365));
        assert_eq!(tls.renew_before_days, 121);
        assert_eq!(tls.key_algorithm, KeyAlgorithm::EcdsaP256);
        assert_eq!(tls.key_scope, KeyScope::PerCell);
        assert!(tls.extra_sans.is_empty());
        let short = BASE.replace("server_address", "cert_validity_days = 2\nserver_address");
        assert_eq!(validated(&short).unwrap().tls.renew_before_days, 0);
    }

    #[test]
    fn options_render_booleans_as_y_and_n() {
        let text = format!("{BASE}\n[options]\nstart-fast = true\narchive-async = false\nio-timeout = 0.5\nrepo1-s3-bucket = \"b\"\n");
        let options = validated(&text).unwrap().options;
        let got: Vec<(&str, &str)> = options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("archive-async", "n"),
                ("io-timeout", "0.5"),
                ("repo1-s3-bucket", "b"),
                ("start-fast", "y")
            ]
        );
    }

    #[test]
    fn loopback_spellings_are_one_host() {
        let text = BASE
            .replace("host = \"own\"", "host = \"::1\"\npg_port = 6000")
            .replace("host = \"h{index}\"", "host = \"localhost\"");
        assert_eq!(
            validated(&text).unwrap_err(),
            ["t.toml: cells.b.pg_port: expected a Postgres port no other cell on host `localhost` uses, found `6000` (cell `a` uses it)"]
        );
    }
}
