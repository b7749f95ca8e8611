//! The errors a pdekit command can end with, and their exit codes: 2 for usage and config errors
//! (the user must change the command or the config), 130 for an interrupt, 1 for failures at run
//! time (a solver that did not converge, a non-finite loss, an unreadable file).

use crate::config::ConfigError;
use crate::data::DataError;
use pdekit_operators::gp::optim::GpError;
use pdekit_operators::tensor::NnError;
use pdekit_operators::train::trainer::TrainError;
use pdekit_solvers::multiscale::multilevel::MultiscaleError;
use pdekit_solvers::problem::darcy::DarcyError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PdekitError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A command or config that cannot work as given: a missing section, a flag out of range, a
    /// dataset that does not fit the config.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Data(#[from] DataError),
    /// A checkpoint that cannot be exported, or a neuraloperator file that cannot be imported.
    #[error("{0}")]
    Interop(#[from] crate::interop::InteropError),
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
    #[error("training interrupted {}; {} holds the state after it. Rerun the same command to resume", match batch { Some(b) => format!("in epoch {} after batch {b}", epoch + 1), None => format!("after epoch {epoch}") }, checkpoint.display())]
    TrainingInterrupted {
        /// Epochs completed.
        epoch: usize,
        /// Batches of the next epoch taken, when it stopped inside one.
        batch: Option<usize>,
        checkpoint: PathBuf,
    },
    #[error("plot {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
    /// Training stopped (a non-finite loss, a layer that failed on the data).
    #[error("{}: {source}{}", config.display(), checkpoint.as_ref().map_or(String::new(), |c| format!("; the last good checkpoint is {}", c.display())))]
    Train {
        config: PathBuf,
        source: Box<TrainError>,
        /// The checkpoint of the last finished epoch, when there is one.
        checkpoint: Option<PathBuf>,
    },
    /// A model that failed on the data it was given.
    #[error("{what}: {source}")]
    Model { what: String, source: NnError },
    #[error("{}: {source}{hint}", config.display())]
    Gp {
        config: PathBuf,
        source: GpError,
        hint: &'static str,
    },
    /// GP operator regression that failed on its data.
    #[error("{}: train.gp: {source}", config.display())]
    GpOperator {
        config: PathBuf,
        source: pdekit_operators::models::gp::GpError,
    },
    #[error("interrupted while fitting {what}; nothing was written")]
    FitInterrupted { what: String },
    #[error("{}: {source}", config.display())]
    Multiscale {
        config: PathBuf,
        source: MultiscaleError,
    },
    /// A peer program of a benchmark that could not run or failed.
    #[error("{0}; see bench/peers/README.md")]
    Peer(String),
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
    /// 2 for usage and config errors, 130 for an interrupt, 1 for failures at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            PdekitError::Config(_) | PdekitError::Usage(_) => 2,
            PdekitError::Interrupted { .. }
            | PdekitError::TrainingInterrupted { .. }
            | PdekitError::FitInterrupted { .. } => 130,
            PdekitError::Data(_)
            | PdekitError::Interop(_)
            | PdekitError::Darcy(_)
            | PdekitError::Relax(_)
            | PdekitError::NotConverged { .. }
            | PdekitError::BlewUp { .. }
            | PdekitError::Problem(_)
            | PdekitError::Plot { .. }
            | PdekitError::Train { .. }
            | PdekitError::Model { .. }
            | PdekitError::Gp { .. }
            | PdekitError::GpOperator { .. }
            | PdekitError::Multiscale { .. }
            | PdekitError::Peer(_) => 1,
        }
    }
}
