//! `pgbr check` on invalid topologies: each case pins the exact report
//! (snapshots under `tests/it/snapshots/`), so a change in wording is a
//! reviewed diff. Plus the shipped modules, which must pass.

use crate::harness::{repo_root, Pgbr};

/// A valid two-cell topology that the cases below break one way each.
const VALID: &str = r#"stanza = "main"

[repo]
path = "/backup/repo"
retention_full = 7

[tls]
server_port_base = 8432
server_address = "0.0.0.0"

[cells.a]
host = "localhost"
pg_path = "/a/pg"
deploy_dir = "/a/pgbr"
pg_port = 5432

[cells.b]
host = "localhost"
pg_path = "/b/pg"
deploy_dir = "/b/pgbr"
pg_port = 5433
"#;

/// `VALID` with `from` replaced by `to` (which must occur).
fn valid_with(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "`{from}` is not in VALID");
    VALID.replacen(from, to, 1)
}

/// Writes `files` (the first is the root), runs `pgbr check ROOT`, expects
/// exit 1 and nothing on stdout, and returns stderr.
fn check_fails(files: &[(&str, &str)]) -> String {
    let t = Pgbr::new();
    for (rel, content) in files {
        t.write(rel, content);
    }
    let out = t.run(&["check", files[0].0]).expect_code(1);
    assert_eq!(out.stdout, "");
    out.stderr
}

/// `check_fails` for one file `topo.toml`.
fn check_topo(content: &str) -> String {
    check_fails(&[("topo.toml", content)])
}

macro_rules! case {
    ($name:ident, $stderr:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(stringify!($name), $stderr);
        }
    };
}

// Loading: files, TOML, imports.
case!(
    missing_root_file,
    Pgbr::new()
        .run(&["check", "nope.toml"])
        .expect_code(1)
        .stderr
);
case!(
    bad_toml_names_line_and_column,
    check_topo(&valid_with("retention_full = 7", "retention_full = "))
);
case!(
    missing_import_names_the_importer_and_the_path,
    check_fails(&[
        ("topo.toml", "imports = [\"sub/base.toml\"]\n"),
        ("sub/base.toml", "imports = [\"../nope.toml\"]\n")
    ])
);
case!(
    import_cycle_names_the_chain,
    check_fails(&[
        ("a.toml", "imports = [\"b.toml\"]\n"),
        ("b.toml", "imports = [\"mods/c.toml\"]\n"),
        ("mods/c.toml", "imports = [\"../a.toml\"]\n"),
    ])
);
case!(
    self_import_is_a_cycle,
    check_topo("imports = [\"topo.toml\"]\n")
);
case!(
    imports_must_be_an_array_of_strings,
    check_topo("imports = \"base.toml\"\n")
);

// Unknown keys, with a did-you-mean where one is close.
case!(
    unknown_top_level_key,
    check_topo(&format!("{VALID}\n[option]\nstart-fast = true\n"))
);
case!(
    unknown_cell_key,
    check_topo(&valid_with("pg_port = 5432", "pgport = 5432"))
);
case!(
    unknown_tls_key,
    check_topo(&valid_with("server_port_base", "server_port"))
);
case!(
    unknown_repo_key_lists_the_keys,
    check_topo(&valid_with(
        "retention_full = 7",
        "retention_full = 7\nzzz = 1"
    ))
);
case!(
    unknown_defaults_key,
    check_topo(&format!("{VALID}\n[defaults]\nhost_name = \"x\"\n"))
);

// Types and values.
case!(
    out_of_range_port_in_a_module,
    check_fails(&[(
        "modules/prod.toml",
        &valid_with("[cells.b]", "[cells.zone2]").replace("5433", "70000")
    )])
);
case!(
    wrong_type_is_shown_as_toml,
    check_topo(&valid_with("pg_port = 5432", "pg_port = \"5432\""))
);
case!(
    relative_path,
    check_topo(&valid_with("pg_path = \"/a/pg\"", "pg_path = \"a/pg\""))
);
case!(
    dot_dot_in_a_path,
    check_topo(&valid_with(
        "deploy_dir = \"/a/pgbr\"",
        "deploy_dir = \"/a/../pgbr\""
    ))
);
case!(
    stanza_name,
    check_topo(&valid_with("stanza = \"main\"", "stanza = \"Main!\""))
);
case!(
    cell_name,
    check_topo(&valid_with("[cells.b]", "[cells.\"../x\"]"))
);
case!(
    empty_string,
    check_topo(&valid_with(
        "pg_port = 5432",
        "pg_port = 5432\npg_user = \"\""
    ))
);
case!(
    cell_must_be_a_table,
    check_topo(&format!("{VALID}\n[cells]\nc = 5\n"))
);
case!(
    missing_required_keys,
    check_topo("[cells.a]\npg_path = \"/a/pg\"\n[repo]\n[tls]\n")
);
case!(
    owner_format,
    check_topo(&valid_with(
        "pg_port = 5432",
        "pg_port = 5432\nowner = \"a:b:c\""
    ))
);
case!(
    health_choices,
    check_topo(&valid_with(
        "pg_port = 5432",
        "pg_port = 5432\nhealth = \"tsl\""
    ))
);
case!(
    health_tls_and_command_conflict,
    check_topo(&valid_with(
        "pg_port = 5432",
        "pg_port = 5432\nhealth = \"tls\"\nhealth_command = \"true\""
    ))
);
case!(
    key_algorithm_choices,
    check_topo(&valid_with(
        "server_address = \"0.0.0.0\"",
        "server_address = \"0.0.0.0\"\nkey_algorithm = \"ed25519\""
    ))
);
case!(
    renew_window_not_shorter_than_validity,
    check_topo(&valid_with(
        "server_address = \"0.0.0.0\"",
        "server_address = \"0.0.0.0\"\ncert_validity_days = 90\nrenew_before_days = 90"
    ))
);
case!(
    client_cn_without_equals_and_extra_sans_are_hosts,
    check_topo(&valid_with("server_address = \"0.0.0.0\"", "server_address = \"0.0.0.0\"\nclient_cn = \"a=b\"\nextra_sans = [\"ok.example\", \"not a host\"]"))
);

// Cells compared with each other.
case!(
    duplicate_postgres_port_on_one_host,
    check_topo(&valid_with("pg_port = 5433", "pg_port = 5432").replacen(
        "host = \"localhost\"",
        "host = \"127.0.0.1\"",
        1
    ))
);
case!(
    same_port_on_different_hosts_is_fine_but_tls_must_fit,
    check_topo(&valid_with(
        "server_port_base = 8432",
        "server_port_base = 65535"
    ))
);
case!(
    postgres_port_on_a_tls_port,
    check_topo(&valid_with("pg_port = 5432", "pg_port = 8433"))
);
case!(
    deploy_dir_inside_another,
    check_topo(&valid_with(
        "deploy_dir = \"/b/pgbr\"",
        "deploy_dir = \"/a/pgbr/b\""
    ))
);
case!(
    equal_deploy_dirs,
    check_topo(&valid_with(
        "deploy_dir = \"/b/pgbr\"",
        "deploy_dir = \"/a/pgbr\""
    ))
);
case!(
    duplicate_config_link,
    check_topo(&format!(
        "{VALID}\n[defaults]\nconfig_link = \"/etc/pgbackrest.conf\"\n"
    ))
);
case!(zero_cells, check_topo("stanza = \"main\"\n[repo]\npath = \"/r\"\nretention_full = 1\n[tls]\nserver_port_base = 8432\nserver_address = \"::\"\n[cells]\n"));
case!(more_than_256_cells, {
    let mut t = String::from(
        "stanza = \"main\"\n[repo]\npath = \"/r\"\nretention_full = 1\n[tls]\nserver_port_base = 1024\nserver_address = \"::\"\n\
         [defaults]\nhost = \"h{index}\"\npg_path = \"/{cell}/pg\"\ndeploy_dir = \"/{cell}/pgbr\"\n",
    );
    for i in 0..257 {
        t += &format!("[cells.c{i:03}]\n");
    }
    check_topo(&t)
});

// [defaults] and placeholders.
case!(
    placeholder_typo,
    check_topo(&format!("{VALID}\n[defaults]\nlog_path = \"/var/log/{{cel}}\"\nactivate = \"kill -HUP $(cat ${{PGBR_DEPLOY_DIR}}/{{cell}}.pid)\"\n"))
);
case!(
    bad_default_is_one_problem_not_one_per_cell,
    check_topo(&format!("{VALID}\n[defaults]\npg_database = 5\n"))
);
case!(
    collision_from_defaults_names_the_defaults_key,
    check_topo(&format!(
        "{}\n[defaults]\npg_port = 6000\n",
        VALID
            .replace("pg_port = 5432\n", "")
            .replace("pg_port = 5433\n", "")
    ))
);

// [options]: the pgBackRest passthrough.
case!(unknown_option_with_suggestion, check_topo(&format!("{VALID}\n[options]\ncompres-type = \"zst\"\nrepo2-s3-buckett = \"b\"\nno-such-thing = 1\nrepo300-path = \"/x\"\n")));
case!(
    options_pgbr_sets_itself,
    check_topo(&format!("{VALID}\n[options]\nrepo1-path = \"/x\"\nrepo1-retention-full = 2\nlog-path = \"/x\"\nlock-path = \"/x\"\nspool-path = \"/x\"\ntls-server-port = 1\ntls-server-cert-file = \"/x\"\ntls-server-auth = \"a=*\"\npg1-path = \"/x\"\npg2-host = \"h\"\n"))
);
case!(
    stanza_only_option,
    check_topo(&format!(
        "{VALID}\n[options]\npg3-host-cmd = \"/usr/bin/pgbackrest\"\n"
    ))
);
case!(
    command_line_only_options,
    check_topo(&format!(
        "{VALID}\n[options]\nonline = false\nstanza = \"main\"\n"
    ))
);
case!(
    internal_option,
    check_topo(&format!("{VALID}\n[options]\nbeta = true\n"))
);
case!(
    deprecated_options,
    check_topo(&format!(
        "{VALID}\n[options]\nretention-diff = 2\nretention-full = 3\ndb2-port = 1\n"
    ))
);
case!(
    option_value_types,
    check_topo(&format!("{VALID}\n[options]\nstart-fast = \"y\"\nprocess-max = \"4\"\ncompress-level = true\nio-timeout = \"60\"\nrepo2-path = \"relative\"\n"))
);
case!(
    option_allowed_values_and_ranges,
    check_topo(&format!("{VALID}\n[options]\ncompress-type = \"zstd\"\nprocess-max = 1000\nbuffer-size = \"3MiB\"\nlog-level-file = \"verbose\"\n"))
);
case!(
    option_empty_and_multiline_values,
    check_topo(&format!("{VALID}\n[options]\nrepo2-s3-bucket = \"\"\nrepo2-s3-region = \"eu\\nwest\"\nrepo2-s3-endpoint = \" x\"\n"))
);

// Provenance: problems name the module that set the value.
case!(
    many_problems_across_modules_are_all_reported,
    check_fails(&[
        ("topo.toml", "imports = [\"mods/base.toml\", \"mods/cells.toml\"]\nstanza = \"Bad Name\"\n[tls]\nrenew_before_days = 400\n[options]\ncompres-type = \"zst\"\n"),
        ("mods/base.toml", "stanza = \"main\"\n[repo]\npath = \"relative\"\nretention_full = 0\n[tls]\nserver_port_base = 8432\nserver_address = \"0.0.0.0\"\nkey_scope = \"all\"\n"),
        ("mods/cells.toml", "[defaults]\nhost = \"localhost\"\npg_path = \"/{cell}/pg\"\ndeploy_dir = \"/{cel}/pgbr\"\n[cells.a]\npg_port = 5432\n[cells.b]\npg_port = 5432\nhots = \"x\"\n[cells.C]\npg_port = 8432\ndeploy_dir = \"/c\"\n"),
    ])
);

#[test]
fn importer_wins_over_imported_values() {
    let t = Pgbr::new();
    t.write(
        "base.toml",
        &valid_with("pg_port = 5433", "pg_port = 70000"),
    );
    t.write(
        "topo.toml",
        "imports = [\"base.toml\"]\n[cells.b]\npg_port = 5440\n",
    );
    let out = t.run(&["check", "topo.toml"]).expect_code(0);
    assert_eq!(
        out.stdout,
        "topo.toml: ok (2 cell(s), stanza `main`, pgBackRest 2.45)\n"
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn later_import_wins_over_earlier() {
    let t = Pgbr::new();
    t.write(
        "one.toml",
        &valid_with("stanza = \"main\"", "stanza = \"BAD\""),
    );
    t.write("two.toml", "stanza = \"second\"\n");
    t.write("topo.toml", "imports = [\"one.toml\", \"two.toml\"]\n");
    let out = t.run(&["check", "topo.toml"]).expect_code(0);
    assert_eq!(
        out.stdout,
        "topo.toml: ok (2 cell(s), stanza `second`, pgBackRest 2.45)\n"
    );
}

#[test]
fn diamond_imports_are_not_cycles() {
    let t = Pgbr::new();
    t.write("common.toml", VALID);
    t.write("left.toml", "imports = [\"common.toml\"]\n");
    t.write("right.toml", "imports = [\"common.toml\"]\n");
    t.write("topo.toml", "imports = [\"left.toml\", \"right.toml\"]\n");
    t.run(&["check", "topo.toml"]).expect_code(0);
}

#[test]
fn shipped_local_3cell_module_checks() {
    let t = Pgbr::new();
    let path = repo_root().join("modules/local-3cell.toml");
    let out = t
        .run(&["check", path.to_str().expect("utf-8 path")])
        .expect_code(0);
    assert_eq!(
        out.stdout,
        format!(
            "{}: ok (3 cell(s), stanza `multigres`, pgBackRest 2.45)\n",
            path.display()
        )
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn shipped_demo_module_checks() {
    let t = Pgbr::new();
    let path = repo_root().join("modules/demo.toml");
    t.run(&["check", path.to_str().expect("utf-8 path")])
        .expect_code(0);
}

case!(
    an_invalid_port_is_not_taken_for_the_default,
    check_topo(&valid_with("pg_port = 5432", "pg_port = 70000").replace("pg_port = 5433\n", ""))
);

// Strings that reach the INI file: no control characters and no Unicode
// line breaks anywhere (issue 12 item 9): `check` names each, nothing panics.
case!(
    control_characters_in_paths_names_and_options,
    check_topo(&format!(
        "{}\n[options]\nrepo2-s3-bucket = \"a\\u0000b\"\nrepo2-s3-region = \"eu\\u0085west\"\nrepo2-s3-endpoint = \"x\\u2028y\"\n",
        valid_with("pg_path = \"/a/pg\"", "pg_path = \"/a\\u000bpg\"")
            .replace("deploy_dir = \"/b/pgbr\"", "deploy_dir = \"/b/pg\\fbr\"")
            .replace("pg_port = 5433", "pg_port = 5433\npg_user = \"post\\rgres\"\nlog_path = \"/b/\\u0085log\"\npg_database = \"d\\tb\"")
            .replace("path = \"/backup/repo\"", "path = \"/backup/\\u2029repo\"")
    ))
);

#[test]
fn render_never_panics_on_what_check_lets_through() {
    // Every string key of a cell, with each hostile character: either
    // `check` refuses it, or `render` writes a clean file.
    for c in [
        "\\u000b", "\\f", "\\r", "\\u0000", "\\u0085", "\\u2028", "\\u2029", "\\u001b", "\\u007f",
        "\\t",
    ] {
        for (from, to) in [
            ("pg_path = \"/a/pg\"", format!("pg_path = \"/a/p{c}g\"")),
            (
                "pg_port = 5432",
                format!("pg_port = 5432\npg_user = \"u{c}u\""),
            ),
            (
                "pg_port = 5432",
                format!("pg_port = 5432\nconfig_link = \"/etc/{c}x\""),
            ),
            (
                "pg_port = 5432",
                format!("pg_port = 5432\nowner = \"a{c}b\""),
            ),
        ] {
            let t = Pgbr::new();
            t.write("topo.toml", &valid_with(from, &to));
            let out = t.run(&["render", "topo.toml", "--cell", "a"]);
            assert!(
                out.code == 1 && out.stderr.contains("topo.toml: cells.a."),
                "{c} in {to}: {out:?}"
            );
        }
    }
}

// SPEC §1: pgBackRest 2.45 connects to the first address of `host`, so the
// TLS server must listen in that family (issue 12 item 20).
case!(
    host_family_must_match_the_server_address,
    check_topo(
        &valid_with("host = \"localhost\"", "host = \"fd00::1\"").replacen(
            "host = \"localhost\"",
            "host = \"::1\"",
            1
        )
    )
);
case!(
    ipv4_host_with_an_ipv6_server_address,
    check_topo(
        &valid_with("server_address = \"0.0.0.0\"", "server_address = \"::1\"").replacen(
            "host = \"localhost\"",
            "host = \"10.0.0.1\"",
            1
        )
    )
);

#[test]
fn a_dual_stack_listener_or_host_names_pass_the_family_check() {
    let t = Pgbr::new();
    t.write(
        "topo.toml",
        &valid_with("server_address = \"0.0.0.0\"", "server_address = \"::\"").replacen(
            "host = \"localhost\"",
            "host = \"10.0.0.1\"",
            1,
        ),
    );
    t.run(&["check", "topo.toml"]).expect_code(0);
}

// compress-level by compress-type (pgBackRest's own ranges, from 2.56's
// option definition: bz2 1-9, gz -1-9, lz4 -5-12, zst -7-22).
case!(
    compress_level_out_of_range_for_its_type,
    check_topo(&format!("{VALID}\n[options]\ncompress-level = 99\n"))
);
case!(
    compress_level_checked_against_the_chosen_type,
    check_topo(&format!(
        "{VALID}\n[options]\ncompress-type = \"bz2\"\ncompress-level = 0\n"
    ))
);

#[test]
fn compress_level_in_range_for_its_type_passes() {
    let t = Pgbr::new();
    t.write(
        "topo.toml",
        &format!("{VALID}\n[options]\ncompress-type = \"zst\"\ncompress-level = 19\n"),
    );
    t.run(&["check", "topo.toml"]).expect_code(0);
}

// Imports are regular files of bounded size (issue 12 item 8): no endless
// read of `/dev/zero`, no hang on a FIFO, no 1 GB file read whole.
#[test]
fn imports_must_be_regular_files_of_bounded_size() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let t = Pgbr::new();
    t.write(
        "topo.toml",
        "imports = [\"/dev/zero\", \"sub\", \"fifo.toml\", \"big.toml\"]\n",
    );
    std::fs::create_dir(t.path().join("sub")).unwrap();
    nix::unistd::mkfifo(&t.path().join("fifo.toml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let big = std::fs::File::create(t.path().join("big.toml")).unwrap();
    big.set_len(1 << 30).unwrap(); // sparse: costs no disk
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgbr"))
        .args(["check", "topo.toml"])
        .current_dir(t.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`pgbr check` still reading its imports after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_root_module_that_is_not_a_regular_file_is_refused() {
    let t = Pgbr::new();
    let out = t.run(&["check", "/dev/null"]).expect_code(1);
    insta::assert_snapshot!(out.stderr);
}
