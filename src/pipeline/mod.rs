//! The stages a config runs. Each stage's outputs are files the next one reads.

pub mod generate;
pub mod plot;
pub mod relax;

use crate::config::{Plan, Stage};
use crate::progress::Reporter;
use crate::PdekitError;
use std::sync::atomic::AtomicBool;

/// Options of a run that do not belong in the config.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Discard existing outputs and partial files and start again.
    pub force: bool,
    pub reporter: Reporter,
}

/// Runs every stage of the plan in order.
pub fn run(plan: &Plan, opts: RunOptions, interrupted: &AtomicBool) -> Result<(), PdekitError> {
    if plan.stages.is_empty() {
        return Err(PdekitError::Usage(format!(
            "{}: nothing to run; a config with only [solver_bench] runs with `pdekit bench solvers {}`",
            plan.source_path.display(),
            plan.source_path.display()
        )));
    }
    for &stage in &plan.stages {
        match stage {
            Stage::Generate => {
                generate::run(plan, opts, interrupted)?;
            }
            Stage::Plot => {
                if let Some(p) = &plan.plot {
                    plot::run(p, opts.reporter)?;
                }
            }
            Stage::Relax => {
                if let Some(r) = &plan.relax {
                    relax::run(r, opts.reporter)?;
                }
            }
        }
    }
    Ok(())
}
