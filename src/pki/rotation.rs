//! CA-rotation step gating: which step `pgbr rotate --ca` performs next, or
//! why it may not start yet. Pure: the command gathers the plan of the
//! current topology and each cell's live leaf.
//!
//! The three steps: 1 deploys a bundle trusting both CAs (leaves still from
//! the old one), 2 re-issues every leaf from the new CA, 3 drops the old CA.
//! A step starts only when the previous one is live everywhere, and step 3
//! only when no cell still deploys a leaf of the old CA.

use super::{signed_by, Error};
use std::collections::BTreeMap;

/// What the gate looks at.
#[derive(Debug, Clone, Default)]
pub struct CaRotationState<'a> {
    /// The step reached (0: no rotation under way).
    pub step_done: u8,
    /// The current CA's certificate, PEM.
    pub ca_pem: &'a str,
    /// Cells whose plan for the topology is not empty.
    pub behind: Vec<String>,
    /// Each cell with a live generation: the PEM of its deployed leaf, if
    /// it has one.
    pub live_leaves: BTreeMap<String, Option<String>>,
}

/// The step `rotate --ca` performs next.
pub fn next_ca_step(state: &CaRotationState<'_>) -> Result<u8, Error> {
    let step = state.step_done + 1;
    if step > 1 && !state.behind.is_empty() {
        return Err(Error::CaStepNotLive {
            step,
            behind: state.behind.clone(),
        });
    }
    if step == 3 {
        let old: Vec<String> = state
            .live_leaves
            .iter()
            .filter(|(_, leaf)| {
                !leaf
                    .as_ref()
                    .is_some_and(|pem| signed_by(pem, state.ca_pem))
            })
            .map(|(cell, _)| cell.clone())
            .collect();
        if !old.is_empty() {
            return Err(Error::OldCaLeaves { cells: old });
        }
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{day0, policy};
    use crate::pki::{issue_ca, issue_leaf};

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_first_step_starts_whatever_the_plan_says() {
        let state = CaRotationState {
            behind: names(&["zone1"]),
            ..CaRotationState::default()
        };
        assert_eq!(next_ca_step(&state).unwrap(), 1);
    }

    #[test]
    fn a_later_step_waits_until_the_previous_one_is_live() {
        let state = CaRotationState {
            step_done: 1,
            behind: names(&["zone2", "zone3"]),
            ..CaRotationState::default()
        };
        let err = next_ca_step(&state).unwrap_err();
        assert_eq!(
            err.to_string(),
            "start CA rotation step 2: step 1 is not live on zone2, zone3"
        );
        let state = CaRotationState {
            behind: vec![],
            ..state
        };
        assert_eq!(next_ca_step(&state).unwrap(), 2);
    }

    #[test]
    fn the_old_ca_is_dropped_only_when_no_cell_deploys_its_leaves() {
        let tls = policy();
        let old = issue_ca(&tls, day0()).unwrap();
        let new = issue_ca(&tls, day0()).unwrap();
        let sans = vec!["zone1.example".to_owned()];
        let leaf = |ca| issue_leaf(ca, &tls, &sans, day0()).unwrap().cert_pem;
        let mut state = CaRotationState {
            step_done: 2,
            ca_pem: &new.cert_pem,
            behind: vec![],
            live_leaves: BTreeMap::from([
                ("zone1".to_owned(), Some(leaf(&new))),
                ("zone2".to_owned(), Some(leaf(&old))),
                ("zone3".to_owned(), None),
            ]),
        };
        assert_eq!(
            next_ca_step(&state).unwrap_err().to_string(),
            "drop the old CA: zone2, zone3 still deploy a leaf from it"
        );
        state.live_leaves.remove("zone3");
        state.live_leaves.insert("zone2".into(), Some(leaf(&new)));
        assert_eq!(next_ca_step(&state).unwrap(), 3);
    }
}
