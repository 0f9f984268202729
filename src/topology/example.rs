//! The spec's example layout, built in code: for tests, benchmarks and
//! documentation that need a [`Topology`] without a module file.
//!
//! Cell `X` keeps everything under `<root>`: `pg_data`, `pg_sockets`,
//! `pgbackrest` (its deploy dir, with `log`, `lock`, `spool`), with the
//! defaults the loader applies. Nothing here is used by pgbr itself.

use super::{
    AbsPath, Cell, CellName, Health, KeyAlgorithm, KeyScope, Pgbackrest, Repo, StanzaName, Tls,
    Topology,
};

fn path(s: &str) -> AbsPath {
    AbsPath::new(s).expect("example paths are absolute")
}

/// The spec's example `[tls]` table (TLS base 8432, 365-day leaves with a
/// 122-day window, per-cell ECDSA keys).
pub fn tls() -> Tls {
    Tls {
        server_port_base: 8432,
        server_address: "0.0.0.0".to_owned(),
        client_cn: "pgbackrest".to_owned(),
        ca_validity_days: 3650,
        cert_validity_days: 365,
        renew_before_days: 122,
        key_algorithm: KeyAlgorithm::EcdsaP256,
        extra_sans: Vec::new(),
        key_scope: KeyScope::PerCell,
        ip_sans_as_dns: true,
    }
}

/// A cell at position `index` whose paths live under `root`.
pub fn cell(name: &str, index: usize, host: &str, pg_port: u16, root: &str) -> Cell {
    let deploy_dir = path(&format!("{root}/pgbackrest"));
    Cell {
        name: CellName::new(name).expect("example cell names are valid"),
        index,
        host: host.to_owned(),
        pg_path: path(&format!("{root}/pg_data")),
        pg_socket_path: Some(path(&format!("{root}/pg_sockets"))),
        pg_port,
        pg_user: "postgres".to_owned(),
        pg_database: "postgres".to_owned(),
        log_path: deploy_dir.join("log"),
        lock_path: deploy_dir.join("lock"),
        spool_path: deploy_dir.join("spool"),
        deploy_dir,
        owner: None,
        config_link: None,
        activate: None,
        health: Health::Tls,
        hook_timeout: std::time::Duration::from_secs(120),
        target: super::TargetSpec::Local,
    }
}

/// Stanza `multigres`, repo `/backup/repo` with 7 full backups, [`tls`],
/// the given cells (already in name order) and `[options]`.
pub fn topology(cells: Vec<Cell>, options: &[(&str, &str)]) -> Topology {
    Topology {
        stanza: StanzaName::new("multigres").expect("valid stanza"),
        repo: Repo {
            path: path("/backup/repo"),
            retention_full: 7,
        },
        tls: tls(),
        pgbackrest: Pgbackrest::default(),
        options: options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        cells,
        ssh: super::SshSettings::default(),
    }
}

/// The 3-cell example of `modules/local-3cell.toml`: zone1..zone3 on
/// localhost, Postgres 5432..5434, everything under `/zoneN`.
pub fn three_cells(options: &[(&str, &str)]) -> Topology {
    let cells = ["zone1", "zone2", "zone3"]
        .iter()
        .enumerate()
        .map(|(i, name)| cell(name, i, "localhost", 5432 + i as u16, &format!("/{name}")))
        .collect();
    topology(cells, options)
}
