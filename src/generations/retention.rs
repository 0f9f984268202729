//! Retention: what `pgbr gc` removes, as a plan. Pure: the command gathers
//! the manifests, what each cell has live, what the store and the deploy
//! dirs hold; [`plan_gc`] decides; [`GcPlan::render`] shows it; the command
//! executes exactly it (generation dirs, then the store's records and
//! objects). (nextest: `PrunePlan` in `record/retention.rs`.)
//!
//! The store never learns what a manifest means: the plan hands it the
//! manifests to drop and the objects no kept manifest and no PKI record
//! refers to.

use super::Manifest;
use crate::store::ObjectId;
use crate::topology::{Place, TargetSpec};
use std::collections::{BTreeMap, BTreeSet};

/// Where a known cell lives and what it has live there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCell {
    /// Its target, as the latest manifest naming the cell records it.
    pub target: TargetSpec,
    /// Its deploy dir, likewise.
    pub deploy_dir: String,
    /// The generation `current` names (`None`: none, or not readable).
    pub current: Option<u64>,
}

/// One `generations/<N>` directory in a deploy dir.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GenerationDir {
    /// The deploy dir's target.
    pub target: TargetSpec,
    /// The deploy dir.
    pub deploy_dir: String,
    /// N.
    pub generation: u64,
    /// Total length of its files.
    pub bytes: u64,
}

/// What `gc` decides from.
#[derive(Debug, Clone, Copy)]
pub struct GcInputs<'a> {
    /// Every manifest in the store, oldest first.
    pub manifests: &'a [Manifest],
    /// How many of the newest manifests to keep regardless.
    pub keep: usize,
    /// Per cell: where it lives and the generation `current` points at.
    pub live: &'a BTreeMap<String, LiveCell>,
    /// Generations the store's journal has live or in flight on some cell.
    pub journaled: &'a BTreeSet<u64>,
    /// Objects the PKI record refers to.
    pub pki_objects: &'a BTreeSet<ObjectId>,
    /// Every stored object and its stored length.
    pub stored_objects: &'a [(ObjectId, u64)],
    /// Every generation dir found in the cells' deploy dirs.
    pub dirs: &'a [GenerationDir],
}

/// What `gc` removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcPlan {
    /// Manifests kept: the newest `keep`, and every one a cell has live or in
    /// flight.
    pub kept: BTreeSet<u64>,
    /// Manifests removed.
    pub generations: Vec<u64>,
    /// Generation dirs removed: those no kept manifest points at and no cell
    /// has live.
    pub dirs: Vec<GenerationDir>,
    /// Objects removed: those no kept manifest and no PKI record refers to.
    pub objects: Vec<ObjectId>,
    /// Their stored length.
    pub object_bytes: u64,
}

/// Decides what `gc` removes.
pub fn plan_gc(inputs: &GcInputs<'_>) -> GcPlan {
    let mut kept: BTreeSet<u64> = inputs
        .manifests
        .iter()
        .rev()
        .take(inputs.keep)
        .map(|m| m.number)
        .collect();
    kept.extend(inputs.live.values().filter_map(|l| l.current));
    kept.extend(inputs.journaled);

    let kept_manifests = || inputs.manifests.iter().filter(|m| kept.contains(&m.number));
    // By place, not by target: a generation made before the `[ssh]`
    // settings changed still names the same dirs.
    let mut kept_dirs: BTreeSet<(Place<'_>, &str, u64)> = kept_manifests()
        .flat_map(|m| m.cells.values())
        .map(|e| {
            (
                e.settings.target.place(),
                e.deploy_dir.as_str(),
                e.dir_generation,
            )
        })
        .collect();
    kept_dirs.extend(inputs.live.values().filter_map(|l| {
        l.current
            .map(|g| (l.target.place(), l.deploy_dir.as_str(), g))
    }));
    let mut referenced: BTreeSet<ObjectId> = inputs.pki_objects.clone();
    referenced.extend(
        kept_manifests()
            .flat_map(|m| m.cells.values())
            .flat_map(|e| &e.files)
            .map(|f| f.object),
    );

    let doomed_objects: Vec<&(ObjectId, u64)> = inputs
        .stored_objects
        .iter()
        .filter(|(id, _)| !referenced.contains(id))
        .collect();
    GcPlan {
        generations: inputs
            .manifests
            .iter()
            .map(|m| m.number)
            .filter(|n| !kept.contains(n))
            .collect(),
        dirs: inputs
            .dirs
            .iter()
            .filter(|d| {
                !kept_dirs.contains(&(d.target.place(), d.deploy_dir.as_str(), d.generation))
            })
            .cloned()
            .collect(),
        objects: doomed_objects.iter().map(|(id, _)| *id).collect(),
        object_bytes: doomed_objects.iter().map(|(_, len)| len).sum(),
        kept,
    }
}

impl GcPlan {
    /// The report `pgbr gc` prints; `dry_run` says "would remove".
    pub fn render(&self, dry_run: bool) -> String {
        let verb = if dry_run { "would remove" } else { "removed" };
        let list = |v: &mut dyn Iterator<Item = &u64>| {
            v.map(u64::to_string).collect::<Vec<_>>().join(", ")
        };
        let mut out = format!(
            "gc {verb} {} generation(s){}\n",
            self.generations.len(),
            if self.generations.is_empty() {
                String::new()
            } else {
                format!(": {}", list(&mut self.generations.iter()))
            }
        );
        for d in &self.dirs {
            let place = match &d.target {
                TargetSpec::Local => String::new(),
                remote => format!("{remote}:"),
            };
            out.push_str(&format!(
                "  {place}{}/generations/{} ({} bytes)\n",
                d.deploy_dir, d.generation, d.bytes
            ));
        }
        out.push_str(&format!(
            "gc {verb} {} generation dir(s) ({} bytes) and {} store object(s) ({} bytes); kept generations: {}\n",
            self.dirs.len(),
            self.dirs.iter().map(|d| d.bytes).sum::<u64>(),
            self.objects.len(),
            self.object_bytes,
            list(&mut self.kept.iter())
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generations::{Cause, CellEntry, FileEntry};
    use crate::render::Phase;

    fn id(n: u8) -> ObjectId {
        ObjectId([n; 32])
    }

    /// A manifest `number` whose one cell `zone1` lives in `dir_generation`
    /// with the objects `objects`.
    fn manifest(number: u64, dir_generation: u64, objects: &[u8]) -> Manifest {
        let entry = CellEntry {
            phase: Phase::Full,
            deploy_dir: "/srv/zone1".into(),
            dir_generation,
            files: objects
                .iter()
                .map(|n| FileEntry {
                    path: format!("f{n}"),
                    object: id(*n),
                    mode: 0o644,
                })
                .collect(),
            cert: None,
            renew_before_days: 30,
            settings: crate::generations::Settings {
                owner: None,
                dirs: vec![],
                config_link: None,
                activate: None,
                health: crate::topology::Health::None,
                health_target: String::new(),
                target: crate::topology::TargetSpec::Local,
            },
        };
        Manifest {
            number,
            parent: number.checked_sub(1).filter(|n| *n > 0),
            created_at: 0,
            tool_version: "test".into(),
            topology_hash: String::new(),
            cause: Cause::Apply,
            cells: BTreeMap::from([("zone1".to_owned(), entry)]),
        }
    }

    fn dir(generation: u64) -> GenerationDir {
        GenerationDir {
            target: TargetSpec::Local,
            deploy_dir: "/srv/zone1".into(),
            generation,
            bytes: 100 * generation,
        }
    }

    struct World {
        manifests: Vec<Manifest>,
        live: BTreeMap<String, LiveCell>,
        journaled: BTreeSet<u64>,
        pki: BTreeSet<ObjectId>,
        objects: Vec<(ObjectId, u64)>,
        dirs: Vec<GenerationDir>,
    }

    impl World {
        /// Generations 1..=3 (3 changes nothing for the cell), the cell
        /// live on `live`, objects 1..=5 stored (5 is the PKI's, 4 an orphan).
        fn new(live: u64) -> World {
            World {
                manifests: vec![
                    manifest(1, 1, &[1]),
                    manifest(2, 2, &[2]),
                    manifest(3, 2, &[2, 3]),
                ],
                live: BTreeMap::from([(
                    "zone1".into(),
                    LiveCell {
                        target: TargetSpec::Local,
                        deploy_dir: "/srv/zone1".into(),
                        current: Some(live),
                    },
                )]),
                journaled: BTreeSet::new(),
                pki: BTreeSet::from([id(5)]),
                objects: (1..=5).map(|n| (id(n), u64::from(n))).collect(),
                dirs: vec![dir(1), dir(2)],
            }
        }
        fn plan(&self, keep: usize) -> GcPlan {
            plan_gc(&GcInputs {
                manifests: &self.manifests,
                keep,
                live: &self.live,
                journaled: &self.journaled,
                pki_objects: &self.pki,
                stored_objects: &self.objects,
                dirs: &self.dirs,
            })
        }
    }

    #[test]
    fn keeps_the_newest_and_what_is_live() {
        let plan = World::new(1).plan(1);
        assert_eq!(plan.kept, BTreeSet::from([1, 3]));
        assert_eq!(plan.generations, [2]);
        // Generation 3 points at dir 2, generation 1 is live in dir 1.
        assert_eq!(plan.dirs, []);
        // Object 4 is referenced by nothing; 5 by the PKI record.
        assert_eq!(plan.objects, [id(4)]);
        assert_eq!(plan.object_bytes, 4);
    }

    /// The same host reached with other `[ssh]` settings: generation 1 was
    /// made before the options changed, its dir is the same dir.
    #[test]
    fn a_dir_is_kept_whatever_settings_reached_it() {
        let host = |options: &[&str]| {
            TargetSpec::Ssh(crate::topology::SshSpec {
                host: "db1".into(),
                options: options.iter().map(|o| o.to_string()).collect(),
                ..Default::default()
            })
        };
        let mut world = World::new(3);
        for m in &mut world.manifests {
            let before = if m.number == 1 {
                &["ConnectTimeout=5"][..]
            } else {
                &[]
            };
            for e in m.cells.values_mut() {
                e.settings.target = host(before);
            }
        }
        for l in world.live.values_mut() {
            l.target = host(&[]);
        }
        for d in &mut world.dirs {
            d.target = host(&[]);
        }
        // All three kept: dir 1 is generation 1's, made under other options.
        assert_eq!(world.plan(3).dirs, []);
        // Generation 1 dropped: its dir goes, whatever reached it.
        assert_eq!(
            world
                .plan(1)
                .dirs
                .iter()
                .map(|d| d.generation)
                .collect::<Vec<_>>(),
            [1]
        );
        // Another host is another place.
        for e in world.manifests[0].cells.values_mut() {
            e.settings.target = TargetSpec::Ssh(crate::topology::SshSpec {
                host: "db2".into(),
                ..Default::default()
            });
        }
        assert_eq!(world.plan(3).dirs.len(), 1);
        assert_eq!(Place::Host("db1", None), host(&["X=1"]).place());
    }

    #[test]
    fn keep_zero_keeps_only_what_is_live_and_journaled() {
        let mut world = World::new(2);
        world.journaled.insert(1);
        let plan = world.plan(0);
        assert_eq!(plan.kept, BTreeSet::from([1, 2]));
        assert_eq!(plan.generations, [3]);
        assert_eq!(plan.objects, [id(3), id(4)]);

        world.journaled.clear();
        let plan = world.plan(0);
        assert_eq!(plan.generations, [1, 3]);
        assert_eq!(plan.dirs, [dir(1)]);
        assert_eq!(plan.objects, [id(1), id(3), id(4)]);
        assert_eq!(plan.object_bytes, 1 + 3 + 4);
    }

    #[test]
    fn keeping_everything_removes_only_orphans() {
        let plan = World::new(2).plan(10);
        assert_eq!(plan.kept, BTreeSet::from([1, 2, 3]));
        assert!(plan.generations.is_empty() && plan.dirs.is_empty());
        assert_eq!(plan.objects, [id(4)]);
    }

    #[test]
    fn renders_what_it_removes() {
        let mut world = World::new(2);
        world.manifests.remove(2);
        let plan = world.plan(1);
        assert_eq!(
            plan.render(true),
            "gc would remove 1 generation(s): 1\n  /srv/zone1/generations/1 (100 bytes)\n\
             gc would remove 1 generation dir(s) (100 bytes) and 3 store object(s) (8 bytes); kept generations: 2\n"
        );
        assert_eq!(
            GcPlan::default().render(false),
            "gc removed 0 generation(s)\n\
             gc removed 0 generation dir(s) (0 bytes) and 0 store object(s) (0 bytes); kept generations: \n"
        );
    }
}
