//! The stages a config runs. Each stage's outputs are files the next one reads.

pub mod compare;
pub mod evaluate;
pub mod generate;
pub mod gp;
pub mod gp_operator;
pub mod inspect;
pub mod mlvms;
pub mod plot;
pub mod relax;
pub mod train;

use crate::config::{Plan, Stage};
use crate::progress::Reporter;
use crate::PdekitError;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Options of a run that do not belong in the config.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Discard existing outputs and partial files and start again.
    pub force: bool,
    pub reporter: Reporter,
    /// Generate only this shard of the samples.
    pub shard: Option<Shard>,
}

/// Shard `index` of `count` (0-based): the contiguous sample range
/// `[index·N/count, (index + 1)·N/count)`, written to `NAME.shard-INDEX-of-COUNT.h5`. Contiguous
/// ranges keep each shard's rows in sample order, so reading the shards in order (or merging
/// them) gives exactly the unsharded dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` with `0 ≤ I < N`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let err = || format!("expected I/N with 0 ≤ I < N (e.g. 0/4), got \"{text}\"");
        let (i, n) = text.split_once('/').ok_or_else(err)?;
        let (index, count) = (
            i.trim().parse::<u64>().map_err(|_| err())?,
            n.trim().parse::<u64>().map_err(|_| err())?,
        );
        if count == 0 || index >= count {
            return Err(err());
        }
        Ok(Self { index, count })
    }

    /// The samples of this shard among `samples`.
    pub fn range(&self, samples: u64) -> Range<u64> {
        let at = |k: u64| (k as u128 * samples as u128 / self.count as u128) as u64;
        at(self.index)..at(self.index + 1)
    }

    /// `data/ns.h5` → `data/ns.shard-I-of-N.h5`.
    pub fn path(&self, output: &Path) -> PathBuf {
        shard_path(output, self.index, self.count)
    }

    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// The file of shard `index` of `count` for the dataset `output`.
pub fn shard_path(output: &Path, index: u64, count: u64) -> PathBuf {
    let stem = output
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}.shard-{index}-of-{count}.h5"))
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
        if opts.shard.is_some() && stage != Stage::Generate {
            opts.reporter.info(format!(
                "skipping the {stage:?} stage: a sharded run only generates; merge the shards (pdekit merge) and run the rest"
            ));
            continue;
        }
        match stage {
            Stage::Generate => {
                generate::run(plan, opts, interrupted)?;
            }
            Stage::Train => {
                if let Some(t) = &plan.train {
                    train::run(t, &plan.source_path, opts.reporter, opts.force, interrupted)?;
                }
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
            Stage::Gp => {
                if let Some(g) = &plan.gp {
                    gp::run(g, &plan.source_path, opts.reporter)?;
                }
            }
            Stage::Mlvms => {
                if let Some(m) = &plan.mlvms {
                    mlvms::run(m, &plan.source_path, opts.reporter)?;
                }
            }
            Stage::MlvmsTransient => {
                if let Some(m) = &plan.mlvms_transient {
                    mlvms::run_transient(m, &plan.source_path, opts.reporter)?;
                }
            }
        }
    }
    Ok(())
}
