//! What a deploy dir holds, as found on its target: an input of the plan
//! (drift, blockers), produced by a `Target`'s `observe`. A value, no IO.

use crate::store::ObjectId;
use std::collections::BTreeMap;

/// What a deploy dir holds, as found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Observed {
    /// The deploy dir exists.
    pub exists: bool,
    /// It holds pgbr's marker (naming this cell).
    pub managed: bool,
    /// It exists, is not empty, and has no marker.
    pub foreign: bool,
    /// The generation `current` points at.
    pub current: Option<u64>,
    /// Files under `current`: relative path -> (content id, mode).
    pub files: BTreeMap<String, (ObjectId, u32)>,
    /// Generation directories present.
    pub generations: Vec<u64>,
    /// Stale `generations/.<N>.partial` dirs a killed run left behind.
    #[serde(default)]
    pub partials: Vec<u64>,
    /// The store the marker names (`None`: no marker, or one written by a
    /// pgbr from before deploy dirs were bound to a store).
    #[serde(default)]
    pub store: Option<String>,
    /// How the marker names that store (a path or URL), for messages.
    #[serde(default)]
    pub store_name: Option<String>,
}
