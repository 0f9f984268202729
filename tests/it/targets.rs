//! The `target` key and `[ssh]` table: validated, recorded, and (until the
//! SSH target lands) refused clearly before anything is written.

use crate::harness::Pgbr;

#[test]
fn an_ssh_target_is_refused_before_anything_is_written() {
    let p = Pgbr::new();
    let root = p.path().display().to_string();
    let topo = p.write(
        "topo.toml",
        &format!(
            r#"imports = ["{repo}/modules/defaults.toml"]
stanza = "main"
[repo]
path = "{root}/repo"
retention_full = 2
[defaults]
host = "10.0.0.{{index}}"
pg_path = "{root}/{{cell}}/pg_data"
deploy_dir = "{root}/{{cell}}/pgbackrest"
health = "none"
target = "ssh://root@{{host}}"
[ssh]
options = ["ConnectTimeout=1"]
[cells.a]
[cells.b]
"#,
            repo = crate::harness::repo_root().display()
        ),
    );
    let topo = topo.to_str().unwrap();
    p.run(&["check", topo]).expect_code(0);
    let out = p.run(&["apply", topo, "--yes"]).expect_code(1);
    assert!(
        out.stderr
            .contains("error: failed to deploy to `ssh://root@10.0.0.0`: this pgbr cannot deploy to `root@10.0.0.0` over SSH"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: set `target = \"local\"`"),
        "{}",
        out.stderr
    );
    assert!(!p.path().join("a").exists());
    p.run(&["generations"]).expect_code(0);
}
