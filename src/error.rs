//! The errors a pdekit command can end with, and their exit codes.

use crate::config::ConfigError;
use crate::data::DataError;
use pdekit_solvers::problem::darcy::DarcyError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PdekitError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Data(#[from] DataError),
    #[error("{0}")]
    Darcy(#[from] DarcyError),
    #[error("relax: {0}")]
    Relax(#[from] pdekit_solvers::relax::sequence::StepError),
    #[error("sample {index} did not converge: relative residual {residual:.3e} after {iterations} iterations (tolerance {tolerance:.1e}).\n{kept} samples before it are saved in {}; raise generate.solver.max_iterations, or set generate.on_failure = \"keep\" to record such samples with converged = 0", partial.display())]
    NotConverged {
        index: u64,
        residual: f64,
        iterations: usize,
        tolerance: f64,
        kept: u64,
        partial: PathBuf,
    },
    #[error("sample {index} became non-finite (NaN or Inf) during time stepping.\n{kept} samples before it are saved in {}; lower generate.{family}.dt, or set generate.on_failure = \"keep\" to record such samples with converged = 0", partial.display())]
    BlewUp {
        index: u64,
        family: String,
        kept: u64,
        partial: PathBuf,
    },
    #[error("{0}")]
    Problem(#[from] pdekit_solvers::problem::ProblemError),
    #[error("interrupted after {done} of {total} samples; they are saved in {}. Rerun the same command to resume", partial.display())]
    Interrupted {
        done: u64,
        total: u64,
        partial: PathBuf,
    },
    #[error("plot {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
}

impl From<crate::plot::PlotError> for PdekitError {
    fn from(e: crate::plot::PlotError) -> Self {
        PdekitError::Plot {
            path: e.path,
            message: e.message,
        }
    }
}

impl PdekitError {
    /// 2 for usage and config errors, 130 for an interrupt, 1 for other runtime failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            PdekitError::Config(_) | PdekitError::Usage(_) => 2,
            PdekitError::Interrupted { .. } => 130,
            _ => 1,
        }
    }
}
