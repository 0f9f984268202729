//! Unit tests of [`super::compute`]: a fleet deployed exactly as its
//! topology asks is built in memory (certificates issued, live entries and
//! the disk as apply leaves them), then one thing at a time is changed.

use super::*;
use crate::generations::{CellEntry, FileEntry};
use crate::layout;
use crate::pki::{self, CertAndKey};
use crate::render::{render_cell, Phase};
use crate::store::{CellJournal, ObjectId};
use crate::topology::{example, Cell, Health, KeyScope, Topology};
use proptest::prelude::*;
use std::collections::BTreeMap;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The clock of every test.
const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

/// Stored objects by id, for the diffs of changed configs.
#[derive(Default)]
struct Objects(BTreeMap<ObjectId, Vec<u8>>);

impl super::Objects for Objects {
    fn object(&self, id: &ObjectId) -> Option<Vec<u8>> {
        self.0.get(id).cloned()
    }
}

fn stored(issued: &CertAndKey) -> StoredCert {
    StoredCert {
        pem: issued.cert_pem.clone(),
        cert_id: ObjectId::of(issued.cert_pem.as_bytes()),
        key_id: ObjectId::of(issued.key_pem.0.as_bytes()),
        info: pki::inspect(&issued.cert_pem).expect("issued certificates parse"),
    }
}

/// What a fleet has: its PKI, per cell what is live and on disk, and the
/// stored objects.
struct Fleet {
    ca: CertAndKey,
    leaves: BTreeMap<LeafKey, StoredCert>,
    cells: BTreeMap<String, CellNow>,
    objects: Objects,
}

impl Fleet {
    /// Every cell of `topo` deployed as the topology asks, cell `i` live in
    /// generation `generation(i)`, the leaves issued at `issued`.
    fn deployed(
        topo: &Topology,
        generation: impl Fn(usize) -> u64,
        issued: OffsetDateTime,
    ) -> Fleet {
        let ca = pki::issue_ca(&topo.tls, issued - Duration::days(1)).expect("CA");
        let mut fleet = Fleet {
            ca,
            leaves: BTreeMap::new(),
            cells: BTreeMap::new(),
            objects: Objects::default(),
        };
        for cell in &topo.cells {
            let key = leaf_key(topo, cell);
            if !fleet.leaves.contains_key(&key) {
                let sans = leaf_sans(topo, &key);
                let leaf = pki::issue_leaf(&fleet.ca, &topo.tls, &sans, issued).expect("leaf");
                fleet.leaves.insert(key, stored(&leaf));
            }
        }
        for (i, cell) in topo.cells.iter().enumerate() {
            let now = fleet.live(topo, cell, generation(i));
            fleet.cells.insert(cell.name.to_string(), now);
        }
        fleet
    }

    /// `cell` as apply leaves it in generation `n`: its entry, its disk
    /// and its journal agree with the topology.
    fn live(&mut self, topo: &Topology, cell: &Cell, n: u64) -> CellNow {
        let config = render_cell(topo, cell, Phase::Full);
        let leaf = &self.leaves[&leaf_key(topo, cell)];
        let ids = [
            ObjectId::of(config.as_bytes()),
            ObjectId::of(self.ca.cert_pem.as_bytes()),
            leaf.cert_id,
            leaf.key_id,
        ];
        self.objects.0.insert(ids[0], config.into_bytes());
        let files: Vec<FileEntry> = FILES
            .iter()
            .zip(ids)
            .map(|((path, mode), object)| FileEntry {
                path: (*path).to_owned(),
                object,
                mode: *mode,
            })
            .collect();
        let entry = CellEntry {
            phase: Phase::Full,
            deploy_dir: cell.deploy_dir.to_string(),
            dir_generation: n,
            files: files.clone(),
            cert: None,
            renew_before_days: topo.tls.renew_before_days,
            settings: Settings::of(topo, cell),
        };
        CellNow {
            live: Some((n, entry)),
            observed: Observed {
                exists: true,
                managed: true,
                foreign: false,
                current: Some(n),
                files: files
                    .into_iter()
                    .map(|f| (f.path, (f.object, f.mode)))
                    .collect(),
                generations: vec![n],
                ..Observed::default()
            },
            journal: Some(CellJournal {
                live: Some(n),
                in_flight: None,
            }),
            ..CellNow::default()
        }
    }

    fn inputs<'a>(&'a self, topo: &'a Topology, request: Request) -> Inputs<'a> {
        let ca = stored(&self.ca);
        Inputs {
            topology: topo,
            topology_path: "topology.toml".into(),
            now: NOW,
            request,
            ca_bundle: Some(ca.clone()),
            ca: Some(ca),
            previous_ca: None,
            ca_rotation_step: 0,
            leaves: self.leaves.clone(),
            cells: self.cells.clone(),
            store_digest: "digest".into(),
            removed: vec![],
            this_store: ThisStore {
                newest: 1000,
                ..ThisStore::default()
            },
            objects: &self.objects,
        }
    }

    fn cell(&mut self, name: &str) -> &mut CellNow {
        self.cells.get_mut(name).expect("a cell of the fleet")
    }
}

fn three_cells() -> (Topology, Fleet) {
    let topo = example::three_cells(&[]);
    let fleet = Fleet::deployed(&topo, |_| 4, NOW - Duration::days(10));
    (topo, fleet)
}

fn cell_plan<'p>(plan: &'p Plan, name: &str) -> &'p CellPlan {
    plan.cells
        .iter()
        .find(|c| c.cell == name)
        .expect("the cell is planned")
}

/// Every check an empty plan passes.
fn assert_empty(plan: &Plan) {
    assert!(!plan.needs_attention(), "{plan:#?}");
    assert!(matches!(plan.ca, CaAction::Keep { .. }), "{:?}", plan.ca);
    assert!(plan
        .leaves
        .iter()
        .all(|l| matches!(l.action, LeafAction::Keep { .. })));
    for c in &plan.cells {
        assert_eq!(c.action, CellAction::Unchanged, "{c:#?}");
        assert!(c.drift.is_empty() && c.blockers.is_empty(), "{c:#?}");
        assert!(
            c.settings_changed.is_empty() && c.config_diff.is_none(),
            "{c:#?}"
        );
        assert!(c.files.iter().all(|f| f.change == FileChange::Unchanged));
    }
    assert_eq!(
        plan.summary,
        Summary {
            unchanged: plan.cells.len(),
            ..Summary::default()
        }
    );
}

#[test]
fn identical_states_give_an_empty_plan() {
    let (topo, fleet) = three_cells();
    let plan = compute(&fleet.inputs(&topo, Request::default()));
    assert_empty(&plan);
    assert_eq!(plan.cells.len(), 3);
    assert_eq!(plan.cells[0].live_generation, Some(4));
    // The same inputs give the same plan, id included.
    assert_eq!(plan, compute(&fleet.inputs(&topo, Request::default())));
}

#[test]
fn an_empty_store_creates_the_ca_every_leaf_and_every_cell() {
    let (topo, _) = three_cells();
    let empty = Fleet {
        ca: pki::issue_ca(&topo.tls, NOW).unwrap(),
        leaves: BTreeMap::new(),
        cells: BTreeMap::new(),
        objects: Objects::default(),
    };
    let inputs = Inputs {
        ca: None,
        ca_bundle: None,
        ..empty.inputs(&topo, Request::default())
    };
    let plan = compute(&inputs);
    assert!(matches!(plan.ca, CaAction::Create { .. }));
    assert_eq!(plan.summary.create, 3);
    assert_eq!(plan.summary.certificates, 4, "the CA and three leaves");
    for c in &plan.cells {
        assert_eq!(c.action, CellAction::Create);
        assert!(c.files.iter().all(|f| f.change == FileChange::Add));
        assert_eq!(c.config_diff, None, "a new config is not shown as a diff");
    }

    let mut shared = topo.clone();
    shared.tls.key_scope = KeyScope::Shared;
    let plan = compute(&Inputs {
        ca: None,
        ca_bundle: None,
        ..empty.inputs(&shared, Request::default())
    });
    assert_eq!(plan.summary.certificates, 2, "the CA and the shared leaf");
    assert_eq!(plan.leaves.len(), 1);
    assert_eq!(plan.leaves[0].key, LeafKey::Shared);
}

#[test]
fn a_changed_option_updates_every_cell_and_shows_the_config_diff() {
    let (_, fleet) = three_cells();
    let changed = example::three_cells(&[("compress-level", "9")]);
    let plan = compute(&fleet.inputs(&changed, Request::default()));
    assert_eq!(plan.summary.update, 3);
    assert_eq!(plan.summary.certificates, 0);
    let zone1 = cell_plan(&plan, "zone1");
    assert_eq!(zone1.action, CellAction::Update);
    let changes: Vec<_> = zone1
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.change))
        .collect();
    assert_eq!(
        changes,
        [
            (layout::CONFIG, FileChange::Modify),
            (layout::CA_BUNDLE, FileChange::Unchanged),
            (layout::SERVER_CERT, FileChange::Unchanged),
            (layout::SERVER_KEY, FileChange::Unchanged),
        ]
    );
    let diff = zone1.config_diff.as_deref().expect("a diff");
    assert!(
        diff.contains("zone1/pgbackrest.conf (generation 4)"),
        "{diff}"
    );
    assert!(diff.contains("+compress-level=9"), "{diff}");
}

/// A new way to reach a cell's host (login, `[ssh]` options) is an update
/// that only records it; another host or port is a redeploy, and so is a
/// connection change that comes with any other change.
#[test]
fn a_connection_change_alone_is_recorded_not_redeployed() {
    use crate::topology::{SshSpec, TargetSpec};
    let ssh = |host: &str, port: Option<u16>, options: &[&str]| {
        TargetSpec::Ssh(SshSpec {
            user: Some("deploy".into()),
            host: host.into(),
            port,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            ..SshSpec::default()
        })
    };
    let mut topo = example::three_cells(&[]);
    for (i, host) in ["db1", "db2", "db3"].into_iter().enumerate() {
        topo.cells[i].target = ssh(host, None, &[]);
    }
    let fleet = Fleet::deployed(&topo, |_| 4, NOW - Duration::days(10));
    topo.cells[0].target = ssh("db1", None, &["ProxyJump=bastion"]);
    topo.cells[1].target = ssh("db2", Some(2222), &[]);
    topo.cells[2].target = ssh("db3", None, &["ProxyJump=bastion"]);
    topo.cells[2].activate = Some("systemctl reload pgbackrest".into());
    let plan = compute(&fleet.inputs(&topo, Request::default()));
    for (name, keys, redeploys) in [
        ("zone1", &["connection"][..], false),
        ("zone2", &["target"][..], true),
        ("zone3", &["activate", "connection"][..], true),
    ] {
        let c = cell_plan(&plan, name);
        assert_eq!(c.action, CellAction::Update, "{name}");
        assert_eq!(c.settings_changed, keys, "{name}");
        assert_eq!(c.redeploys(), redeploys, "{name}");
    }
    let text = render(&plan);
    assert!(text.contains(
        "~ zone1: update generation 4 (full)\n    \
         ~ settings: connection (how its host is reached: recorded, nothing redeployed)\n"
    ));
    assert!(
        text.contains("Plan: 0 to create, 3 to update (1 only recorded), 0 unchanged;"),
        "{text}"
    );
}

#[test]
fn changed_settings_update_the_cell_with_the_same_files() {
    let (mut topo, fleet) = three_cells();
    topo.cells[1].activate = Some("systemctl reload pgbackrest".into());
    topo.cells[2].health = Health::None;
    let plan = compute(&fleet.inputs(&topo, Request::default()));
    assert_eq!(cell_plan(&plan, "zone1").action, CellAction::Unchanged);
    for (name, key) in [("zone2", "activate"), ("zone3", "health")] {
        let c = cell_plan(&plan, name);
        assert_eq!(c.action, CellAction::Update);
        assert_eq!(c.settings_changed, [key]);
        assert!(c.files.iter().all(|f| f.change == FileChange::Unchanged));
    }
}

#[test]
fn the_disk_differing_from_the_live_generation_is_drift() {
    let (topo, mut fleet) = three_cells();
    let other = ObjectId::of(b"edited by hand");
    let zone1 = &mut fleet.cell("zone1").observed;
    zone1.files.get_mut(layout::SERVER_KEY).unwrap().0 = other;
    zone1.files.get_mut(layout::CONFIG).unwrap().1 = 0o666;
    zone1.files.remove(layout::CA_BUNDLE);
    zone1.files.insert("notes.txt".into(), (other, 0o644));
    fleet.cell("zone2").observed.current = Some(3);
    fleet.cell("zone3").observed.current = None;
    let plan = compute(&fleet.inputs(&topo, Request::default()));
    assert_eq!(
        cell_plan(&plan, "zone1").drift,
        [
            "`pgbackrest.conf` has mode 0666, expected 0640",
            "`tls/ca.crt` is missing",
            "`tls/server.key` was modified",
            "`notes.txt` is not part of the generation",
        ]
    );
    assert_eq!(
        cell_plan(&plan, "zone2").drift,
        [
            "`current` points at generation 3, expected 4",
            "`current` points at generation 3, but generation 4 was deployed last (a deploy \
             interrupted after its flip, or `current` moved by hand; apply deploys it again \
             and runs `activate` and the health check)",
        ]
    );
    assert_eq!(
        cell_plan(&plan, "zone3").drift,
        [
            "`current` is missing",
            "`current` is missing (generation 4 was deployed last)"
        ]
    );
    assert_eq!(plan.summary.drift, 3);
    assert_eq!(plan.summary.update, 3);
    assert!(plan.cells.iter().all(|c| c.action == CellAction::Update));
}

#[test]
fn an_interrupted_deploy_and_stale_partials_are_drift() {
    let (topo, mut fleet) = three_cells();
    fleet.cell("zone1").journal = Some(CellJournal {
        live: Some(3),
        in_flight: Some(4),
    });
    fleet.cell("zone2").observed.partials = vec![5];
    let plan = compute(&fleet.inputs(&topo, Request::default()));
    assert_eq!(
        cell_plan(&plan, "zone1").drift,
        [
            "the deploy of generation 4 was interrupted after its flip: `activate` and the \
          health check never finished (apply runs them again)"
        ]
    );
    assert!(cell_plan(&plan, "zone2").drift[0].starts_with("stale `generations/.5.partial`"));
    assert_eq!(cell_plan(&plan, "zone3").action, CellAction::Unchanged);
}

#[test]
fn a_foreign_or_unusable_deploy_dir_blocks_its_cell() {
    let (topo, mut fleet) = three_cells();
    let zone1 = fleet.cell("zone1");
    zone1.live = None;
    zone1.journal = None;
    zone1.observed = Observed {
        exists: true,
        foreign: true,
        ..Observed::default()
    };
    fleet.cell("zone2").unusable = Some("use `/zone2/pgbackrest`: `current` leaves it".into());
    let plan = compute(&fleet.inputs(&topo, Request::default()));
    let zone1 = cell_plan(&plan, "zone1");
    assert_eq!(zone1.action, CellAction::Create);
    assert_eq!(
        zone1.blockers,
        ["`/zone1/pgbackrest` is not empty and holds no pgbr deployment; apply needs `--adopt`"]
    );
    assert_eq!(
        cell_plan(&plan, "zone2").blockers,
        ["cannot use `/zone2/pgbackrest`: `current` leaves it"]
    );
}

#[test]
fn a_cell_gone_from_the_topology_is_removed_unless_cells_are_picked() {
    let (topo, fleet) = three_cells();
    let mut two = topo.clone();
    two.cells.remove(1);
    let inputs = Inputs {
        removed: vec!["zone2".into()],
        ..fleet.inputs(&two, Request::default())
    };
    let plan = compute(&inputs);
    let names: Vec<_> = plan
        .cells
        .iter()
        .map(|c| (c.cell.as_str(), c.action))
        .collect();
    assert_eq!(
        names,
        [
            ("zone1", CellAction::Update),
            ("zone2", CellAction::Remove),
            ("zone3", CellAction::Update),
        ],
        "the others lose a peer from their configs"
    );
    assert_eq!(cell_plan(&plan, "zone2").live_generation, Some(4));
    assert_eq!(plan.summary.remove, 1);

    let picked = Request {
        cells: vec!["zone1".into()],
        ..Request::default()
    };
    let plan = compute(&Inputs {
        removed: vec!["zone2".into()],
        ..fleet.inputs(&two, picked)
    });
    let names: Vec<_> = plan.cells.iter().map(|c| c.cell.as_str()).collect();
    assert_eq!(names, ["zone1"]);
    assert_eq!(plan.summary.remove, 0);
}

#[test]
fn a_bootstrap_plans_one_cell_in_its_bootstrap_phase() {
    let (topo, fleet) = three_cells();
    let request = Request {
        bootstrap: Some("zone2".into()),
        ..Request::default()
    };
    let plan = compute(&fleet.inputs(&topo, request));
    assert_eq!(plan.cells.len(), 1);
    let zone2 = &plan.cells[0];
    assert_eq!(
        (
            zone2.cell.as_str(),
            zone2.action,
            zone2.phase,
            zone2.previous_phase
        ),
        (
            "zone2",
            CellAction::Update,
            Phase::Bootstrap,
            Some(Phase::Full)
        )
    );
}

#[test]
fn leaves_are_reissued_when_due_or_asked_for() {
    let topo = example::three_cells(&[]);
    // 300 days into 365: 65 left, inside the 122-day window.
    let fleet = Fleet::deployed(&topo, |_| 2, NOW - Duration::days(300));
    let plan = compute(&fleet.inputs(&topo, Request::default()));
    assert_eq!(plan.summary.certificates, 3);
    for l in &plan.leaves {
        let LeafAction::Issue {
            reason, replaces, ..
        } = &l.action
        else {
            panic!("{l:?}")
        };
        assert_eq!(reason, "expires in 65 days, renewal window is 122 days");
        assert_eq!(replaces.as_ref(), Some(&fleet.leaves[&l.key].info.serial));
    }
    assert!(plan.cells.iter().all(|c| c.action == CellAction::Update));

    let (topo, fleet) = three_cells();
    let request = Request {
        force_rotate: vec!["zone3".into()],
        ..Request::default()
    };
    let plan = compute(&fleet.inputs(&topo, request));
    assert_eq!(plan.summary.certificates, 1);
    let reissued: Vec<_> = plan
        .leaves
        .iter()
        .filter_map(|l| match &l.action {
            LeafAction::Issue { reason, .. } => Some((l.key.as_str(), reason.as_str())),
            LeafAction::Keep { .. } => None,
        })
        .collect();
    assert_eq!(reissued, [("zone3", "rotation requested")]);
    let zone3 = cell_plan(&plan, "zone3");
    assert_eq!(zone3.action, CellAction::Update);
    let modified: Vec<_> = zone3
        .files
        .iter()
        .filter(|f| f.change == FileChange::Modify)
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(modified, [layout::SERVER_CERT, layout::SERVER_KEY]);
}

#[test]
fn the_steps_of_a_ca_rotation() {
    let (topo, fleet) = three_cells();
    let step = |n| Request {
        ca_step: Some(n),
        ..Request::default()
    };
    // Step 1: a new CA; every bundle changes, the leaves stay.
    let plan = compute(&fleet.inputs(&topo, step(1)));
    assert!(matches!(plan.ca, CaAction::Rotate { step: 1, .. }));
    assert_eq!(plan.summary.certificates, 1);
    assert!(plan
        .leaves
        .iter()
        .all(|l| matches!(l.action, LeafAction::Keep { .. })));
    // Step 2 with the new CA current: every leaf of the old one re-issued.
    let mut inputs = fleet.inputs(&topo, step(2));
    let new_ca = stored(&pki::issue_ca(&topo.tls, NOW).unwrap());
    inputs.previous_ca = inputs.ca.replace(new_ca);
    inputs.ca_rotation_step = 1;
    let plan = compute(&inputs);
    assert_eq!(plan.summary.certificates, 3);
    assert!(plan.leaves.iter().all(|l| matches!(
        &l.action,
        LeafAction::Issue { reason, .. } if reason == "CA rotation step 2: re-issue from the new CA"
    )));
}

/// A topology of 1..=5 cells with random deployment settings, key scope
/// and options.
fn arb_topology() -> impl Strategy<Value = Topology> {
    let cell = (
        any::<bool>(),
        prop::option::of("[a-z]{1,8}"),
        prop_oneof![
            Just(Health::Tls),
            Just(Health::None),
            "[a-z ]{1,12}".prop_map(Health::Command)
        ],
    );
    (
        prop::collection::vec(cell, 1..=5),
        any::<bool>(),
        prop::collection::btree_map("[a-oq-z][a-z]{0,7}", "[a-z0-9]{1,8}", 0..3),
    )
        .prop_map(|(cells, shared, options)| {
            let cells = cells
                .into_iter()
                .enumerate()
                .map(|(i, (ipv6, owner, health))| {
                    let name = format!("cell{i}");
                    let host = if ipv6 {
                        format!("fd00::{i}")
                    } else {
                        format!("10.0.0.{i}")
                    };
                    let mut c = example::cell(&name, i, &host, 5432, &format!("/srv/{name}"));
                    c.owner = owner;
                    c.health = health;
                    c
                })
                .collect();
            let options: Vec<(&str, &str)> = options
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut topo = example::topology(cells, &options);
            if shared {
                topo.tls.key_scope = KeyScope::Shared;
            }
            topo
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the topology, the generations the cells are live in and
    /// the cells asked for: a fleet deployed as asked has nothing to do.
    #[test]
    fn identical_desired_and_observed_states_give_an_empty_plan(
        topo in arb_topology(),
        generations in prop::collection::vec(1u64..1000, 5),
        picked in prop::collection::vec(any::<bool>(), 5),
    ) {
        let fleet = Fleet::deployed(&topo, |i| generations[i], NOW - Duration::days(30));
        let cells = topo
            .cells
            .iter()
            .zip(&picked)
            .filter(|(_, p)| **p)
            .map(|(c, _)| c.name.to_string())
            .collect();
        let plan = compute(&fleet.inputs(&topo, Request { cells, ..Request::default() }));
        assert_empty(&plan);
    }
}
