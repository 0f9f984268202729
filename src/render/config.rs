//! The `pgbackrest.conf` of one cell (SPEC §3). (STUB: the render helper implements this.)

use super::Phase;
use crate::topology::{Cell, Topology};

/// Renders `cell`'s `pgbackrest.conf` in `phase`.
pub fn render_cell(topology: &Topology, cell: &Cell, phase: Phase) -> String {
    let _ = (topology, cell, phase);
    todo!("render helper")
}
