//! The plan as a value: serializable (saved plans, `--json`), hashable,
//! executed exactly as shown. It records actions, never key material.

use crate::render::Phase;

/// First line of a saved plan file; `apply` tells a plan from a topology by it.
pub const PLAN_HEADER: &str = "# pgbr plan v1";

/// What happens to the CA.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CaAction {
    /// Create a new CA (first apply).
    Create {
        /// `ecdsa-p256` or `rsa-2048`.
        key_algorithm: String,
        /// Validity in days.
        validity_days: u32,
    },
    /// A step of a CA rotation (`pgbr rotate --ca`).
    Rotate {
        /// 1: add a new CA to every bundle; 2: re-issue leaves from it;
        /// 3: drop the old CA.
        step: u8,
        /// What the step does, for a human.
        description: String,
    },
    /// Keep the current CA.
    Keep {
        /// Its serial.
        serial: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// notAfter, RFC 3339.
        not_after: String,
        /// Whole days left.
        days_left: i64,
    },
}

/// What happens to one leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum LeafAction {
    /// Keep the stored leaf.
    Keep {
        /// Its serial.
        serial: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// notAfter, RFC 3339.
        not_after: String,
        /// Whole days left.
        days_left: i64,
    },
    /// Issue a new leaf at apply time.
    Issue {
        /// Why, for a human (`expires in 61 days, renewal window is 122 days`).
        reason: String,
        /// The serial it replaces, if any.
        replaces: Option<String>,
        /// The SANs the new leaf will carry.
        sans: Vec<String>,
    },
}

/// One leaf: which cell (or `*` for the shared leaf) and what happens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeafPlan {
    /// Whose leaf.
    pub key: LeafKey,
    /// The action.
    #[serde(flatten)]
    pub action: LeafAction,
}

/// Whose leaf: one cell's own (`key_scope = "per-cell"`) or the one every
/// cell shares. Written as the cell's name or `*` (in saved plans and the
/// store's PKI record).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub enum LeafKey {
    /// The leaf of the named cell.
    Cell(String),
    /// The shared leaf.
    Shared,
}

impl LeafKey {
    const SHARED: &'static str = "*";

    /// The cell name, or `*`.
    pub fn as_str(&self) -> &str {
        match self {
            LeafKey::Cell(name) => name,
            LeafKey::Shared => LeafKey::SHARED,
        }
    }

    /// Whether `cell` deploys this leaf.
    pub fn covers(&self, cell: &str) -> bool {
        match self {
            LeafKey::Cell(name) => name == cell,
            LeafKey::Shared => true,
        }
    }
}

impl From<String> for LeafKey {
    fn from(text: String) -> LeafKey {
        if text == LeafKey::SHARED {
            LeafKey::Shared
        } else {
            LeafKey::Cell(text)
        }
    }
}

impl From<LeafKey> for String {
    fn from(key: LeafKey) -> String {
        key.as_str().to_owned()
    }
}

impl std::fmt::Display for LeafKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ordered as its text, like the store's record keys.
impl Ord for LeafKey {
    fn cmp(&self, other: &LeafKey) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for LeafKey {
    fn partial_cmp(&self, other: &LeafKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What happens to a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellAction {
    /// First deployment.
    Create,
    /// A new generation replaces the live one.
    Update,
    /// Nothing to do.
    Unchanged,
    /// In the store's fleet but no longer in the topology; left in place.
    Remove,
    /// Its deploy dir could not be observed (the error is in
    /// [`CellPlan::unreachable`]): nothing can be planned for it.
    Unreachable,
}

impl CellAction {
    /// The name, as in JSON: `create`, `update`, `unchanged`, `remove`,
    /// `unreachable`.
    pub fn as_str(self) -> &'static str {
        match self {
            CellAction::Create => "create",
            CellAction::Update => "update",
            CellAction::Unchanged => "unchanged",
            CellAction::Remove => "remove",
            CellAction::Unreachable => "unreachable",
        }
    }

    /// `+`, `~`, `=`, `-`, `!`.
    pub fn sign(self) -> char {
        match self {
            CellAction::Create => '+',
            CellAction::Update => '~',
            CellAction::Unchanged => '=',
            CellAction::Remove => '-',
            CellAction::Unreachable => '!',
        }
    }
}

/// How one file changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    /// New file.
    Add,
    /// Different content or mode.
    Modify,
    /// Same.
    Unchanged,
    /// Gone.
    Remove,
}

/// One file of a cell.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FilePlan {
    /// Relative path in the generation dir.
    pub path: String,
    /// What happens to it.
    pub change: FileChange,
    /// Its mode, octal text.
    pub mode: String,
}

/// One cell in the plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CellPlan {
    /// The cell.
    pub cell: String,
    /// What happens.
    pub action: CellAction,
    /// Phase after apply.
    pub phase: Phase,
    /// Phase live now.
    pub previous_phase: Option<Phase>,
    /// Generation live now.
    pub live_generation: Option<u64>,
    /// Deployed files that no longer match the store (apply repairs them).
    pub drift: Vec<String>,
    /// Problems that will stop apply for this cell (foreign deploy dir, …).
    pub blockers: Vec<String>,
    /// Deployment settings (hooks, owner, links) that change.
    #[serde(default)]
    pub settings_changed: Vec<String>,
    /// Files after apply.
    pub files: Vec<FilePlan>,
    /// Unified diff of `pgbackrest.conf`, when it changes.
    pub config_diff: Option<String>,
    /// Why the deploy dir could not be observed (action `unreachable`).
    #[serde(default)]
    pub unreachable: Option<String>,
}

impl CellPlan {
    /// Whether `apply` writes the cell a new generation dir, flips it and
    /// activates it: a created cell, or an updated one whose files, phase,
    /// disk (drift) or deployment settings change. An update of how its
    /// host is reached alone ([`super::settings::CONNECTION`]) is only
    /// recorded in the new generation.
    pub fn redeploys(&self) -> bool {
        match self.action {
            CellAction::Create => true,
            CellAction::Update => {
                !self.drift.is_empty()
                    || self.previous_phase != Some(self.phase)
                    || self.files.iter().any(|f| f.change != FileChange::Unchanged)
                    || self
                        .settings_changed
                        .iter()
                        .any(|k| k != super::settings::CONNECTION)
            }
            CellAction::Unchanged | CellAction::Remove | CellAction::Unreachable => false,
        }
    }

    /// An update that `apply` only records: how the cell's host is
    /// reached changed, nothing else.
    pub fn only_recorded(&self) -> bool {
        self.action == CellAction::Update && !self.redeploys()
    }
}

/// The request a plan was made for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// `--bootstrap C`.
    pub bootstrap: Option<String>,
    /// `--cells` (empty: all).
    pub cells: Vec<String>,
    /// Leaves to re-issue regardless of policy (`rotate`).
    pub force_rotate: Vec<String>,
    /// The CA rotation step to perform (`rotate --ca`).
    #[serde(default)]
    pub ca_step: Option<u8>,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Cells created.
    pub create: usize,
    /// Cells updated.
    pub update: usize,
    /// Cells unchanged.
    pub unchanged: usize,
    /// Cells removed from the fleet.
    pub remove: usize,
    /// Certificates issued (CA included).
    pub certificates: usize,
    /// Cells with drift.
    pub drift: usize,
    /// Cells whose deploy dir could not be observed.
    #[serde(default)]
    pub unreachable: usize,
}

/// A complete plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Plan format version.
    pub version: u32,
    /// Content id (blake3 of the plan without this field).
    pub id: String,
    /// The topology's root module, as given.
    pub topology: String,
    /// blake3 of the validated topology.
    pub topology_hash: String,
    /// The store's state digest when planned.
    pub store_digest: String,
    /// Digest of the deployed state of the planned cells.
    pub disk_digest: String,
    /// The clock used, RFC 3339.
    pub now: String,
    /// What was asked.
    pub request: Request,
    /// The CA.
    pub ca: CaAction,
    /// Where a CA rotation under way stands and what comes next.
    #[serde(default)]
    pub ca_rotation: Option<String>,
    /// Why the CA itself needs replacing (`pgbr rotate --ca`), when it does:
    /// expired, not valid yet, or too close to its end to back a new leaf.
    #[serde(default)]
    pub ca_problem: Option<String>,
    /// The leaves.
    pub leaves: Vec<LeafPlan>,
    /// The cells, in name order.
    pub cells: Vec<CellPlan>,
    /// Totals.
    pub summary: Summary,
}

impl Plan {
    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        let s = &self.summary;
        s.create + s.update + s.remove + s.certificates > 0
    }

    /// Whether `plan --detailed-exitcode` reports pending work: changes, or
    /// a CA that needs `pgbr rotate --ca`.
    pub fn needs_attention(&self) -> bool {
        self.has_changes() || self.ca_problem.is_some()
    }

    /// Computes and sets `id`.
    pub fn seal(mut self) -> Plan {
        self.id.clear();
        let json = serde_json::to_vec(&self).expect("plan serializes");
        self.id = blake3::hash(&json).to_hex()[..32].to_owned();
        self
    }

    /// The leaf plan for a cell (its own, or the shared one).
    pub fn leaf_for(&self, cell: &str) -> Option<&LeafPlan> {
        self.leaves.iter().find(|l| l.key.covers(cell))
    }
}
