//! `pgbr check` and `pgbr render`.

use crate::cli::PhaseArg;
use crate::output::{out, outln};
use crate::render::{render_cell, Phase};
use crate::{exit_codes, topology, Error, Result};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// `pgbr check TOPOLOGY`.
pub fn check(path: &Path) -> Result<u8> {
    let topo = topology::load(path)?;
    outln!(
        "{}: ok ({} cell(s), stanza `{}`, pgBackRest {})",
        path.display(),
        topo.cells.len(),
        topo.stanza,
        topo.pgbackrest.version
    );
    Ok(exit_codes::SUCCESS)
}

/// `pgbr render TOPOLOGY [--cell C] [--phase P] [--out DIR]`.
pub fn render(path: &Path, cell: Option<&str>, phase: PhaseArg, out: Option<&Path>) -> Result<u8> {
    let topo = topology::load(path)?;
    let phase = match phase {
        PhaseArg::Bootstrap => Phase::Bootstrap,
        PhaseArg::Full => Phase::Full,
    };
    let cells: Vec<_> = match cell {
        Some(name) => vec![topo.cell(name).ok_or_else(|| Error::NoSuchRenderCell {
            name: name.to_owned(),
            cells: topo.cells.iter().map(|c| c.name.to_string()).collect(),
        })?],
        None => topo.cells.iter().collect(),
    };
    match out {
        None => {
            if cells.len() > 1 {
                return Err(Error::RenderSeveralCells);
            }
            out!("{}", render_cell(&topo, cells[0], phase));
        }
        Some(dir) => {
            for c in cells {
                let cell_dir = dir.join(c.name.as_str());
                let file = cell_dir.join(crate::layout::CONFIG);
                // Modes stated, not left to the umask (000 would make
                // them writable by all).
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(&cell_dir)
                    .and_then(|()| {
                        std::fs::OpenOptions::new()
                            .write(true)
                            .create(true)
                            .truncate(true)
                            .mode(0o644)
                            .open(&file)
                    })
                    .and_then(|mut f| f.write_all(render_cell(&topo, c, phase).as_bytes()))
                    .map_err(|source| Error::WriteRendered {
                        path: file.clone(),
                        source,
                    })?;
                outln!("{}", file.display());
            }
        }
    }
    Ok(exit_codes::SUCCESS)
}
