//! `pgbr generations`.

use crate::apply::Targets;
use crate::generations::{LiveCell, Manifest};
use crate::output::outln;
use crate::store::{Location, Store};
use crate::topology::TargetSpec;
use crate::{clock, exit_codes, generations, Result};
use std::collections::BTreeMap;

/// What each known cell has live on disk, found where the latest manifest
/// naming it deployed it.
pub(crate) fn live_on_disk(
    targets: &Targets,
    manifests: &[Manifest],
) -> Result<BTreeMap<String, LiveCell>> {
    let mut places: BTreeMap<String, (String, TargetSpec)> = BTreeMap::new();
    for m in manifests {
        for (cell, e) in &m.cells {
            places.insert(
                cell.clone(),
                (e.deploy_dir.clone(), e.settings.target.clone()),
            );
        }
    }
    let mut out = BTreeMap::new();
    for (cell, (deploy_dir, target)) in places {
        let current = targets
            .of(&target)
            .and_then(|t| t.observe(&cell, &deploy_dir))
            .ok()
            .and_then(|o| o.current);
        out.insert(
            cell,
            LiveCell {
                deploy_dir,
                target,
                current,
            },
        );
    }
    Ok(out)
}

/// `pgbr generations`.
pub fn generations(state: &Location, json: bool) -> Result<u8> {
    let store = Store::open_existing(state)?;
    let manifests = generations::read_all(&store)?;
    let live = live_on_disk(&Targets::new(), &manifests)?;
    let live_on = |n: u64| -> Vec<String> {
        live.iter()
            .filter(|(_, l)| l.current == Some(n))
            .map(|(c, _)| c.clone())
            .collect()
    };
    if json {
        let rows: Vec<_> = manifests
            .iter()
            .map(|m| {
                serde_json::json!({
                    "number": m.number,
                    "parent": m.parent,
                    "created_at": clock::rfc3339_unix(m.created_at),
                    "cause": m.cause.to_string(),
                    "tool_version": m.tool_version,
                    "topology_hash": m.topology_hash,
                    "cells": m.cells.iter().map(|(c, e)| (c.clone(), serde_json::json!({
                        "phase": e.phase,
                        "dir_generation": e.dir_generation,
                        "serial": e.cert.as_ref().map(|c| c.serial.clone()),
                        "not_after": e.cert.as_ref().map(|c| clock::rfc3339_unix(c.not_after)),
                    }))).collect::<BTreeMap<_, _>>(),
                    "live_on": live_on(m.number),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return Ok(exit_codes::SUCCESS);
    }
    if manifests.is_empty() {
        outln!("No generations yet: run `pgbr plan` and `pgbr apply`.");
        return Ok(exit_codes::SUCCESS);
    }
    outln!(
        "{:>4}  {:<20}  {:<18}  {:<12}  {:<24}  LIVE ON",
        "GEN",
        "CREATED",
        "CAUSE",
        "TOPOLOGY",
        "CELLS (changed/total)"
    );
    for m in &manifests {
        let changed = m
            .cells
            .values()
            .filter(|e| e.dir_generation == m.number)
            .count();
        let phases: Vec<&str> = {
            let mut p: Vec<&str> = m.cells.values().map(|e| e.phase.as_str()).collect();
            p.sort_unstable();
            p.dedup();
            p
        };
        let on = live_on(m.number);
        outln!(
            "{:>4}  {:<20}  {:<18}  {:<12}  {:<24}  {}",
            m.number,
            clock::rfc3339_unix(m.created_at),
            m.cause.to_string(),
            m.topology_hash.get(..12).unwrap_or("-"),
            format!("{changed}/{} {}", m.cells.len(), phases.join("+")),
            if on.is_empty() {
                "-".to_owned()
            } else {
                on.join(",")
            }
        );
    }
    Ok(exit_codes::SUCCESS)
}
