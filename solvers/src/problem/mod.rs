//! Problem families: the elliptic ones assemble sparse systems, the time-dependent ones step a
//! trajectory. Every family draws sample `i` of seed `s` from `(s, i)` alone, so a dataset is the
//! same whatever the thread count, shard split or resume point.
//!
//! [`Family`] is what a dataset writer needs from any of them: the [`SampleLayout`] (names and
//! shapes of the per-sample arrays and parameters) and [`Family::generate`].

pub mod beam;
pub mod burgers;
pub mod darcy;
pub mod heat;
pub mod helmholtz;
pub mod navier_stokes;
pub mod poisson;

use crate::sequence::SequenceError;
use sprs::CsMat;
use thiserror::Error;

/// Names and shapes of a family's per-sample arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleLayout {
    /// `(name, shape)` of each input field, e.g. `("coefficient", [64, 64])`.
    pub inputs: Vec<(&'static str, Vec<usize>)>,
    /// `(name, shape)` of each output, e.g. `("vorticity", [T, 64, 64])`.
    pub outputs: Vec<(&'static str, Vec<usize>)>,
    /// Scalar parameters recorded per sample (besides the sample index). Every name in a layout is
    /// distinct from the others, across inputs, outputs and parameters: the HDF5 writer keys
    /// datasets by their leaf name.
    pub params: Vec<&'static str>,
    /// Coordinate arrays, e.g. `("x", …)`, `("y", …)`, `("t", output times)`.
    pub axes: Vec<(&'static str, Vec<f64>)>,
    /// True when the family solves linear systems (its report has iterations and residuals);
    /// false for explicit or spectral time steppers, whose report counts time steps.
    pub linear_solves: bool,
}

/// What producing one sample cost, and whether it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SampleReport {
    /// Krylov iterations summed over the sample's systems (0 for spectral steppers).
    pub iterations: usize,
    pub matvecs: usize,
    /// Largest true relative residual ‖b − Ax‖/‖b‖ over the sample's systems.
    pub rel_residual: f64,
    /// Every solve reached its tolerance (spectral steppers: the state stayed finite).
    pub converged: bool,
    /// Time steps taken (1 for a steady problem).
    pub steps: usize,
    /// Wall time of the whole sample.
    pub seconds: f64,
}

impl SampleReport {
    /// Adds one linear solve's figures.
    pub fn add_solve(&mut self, info: &crate::krylov::SolveInfo) {
        self.iterations += info.iterations;
        self.matvecs += info.matvecs;
        self.rel_residual = self.rel_residual.max(info.rel_residual);
        self.converged &= info.converged;
    }
}

/// One generated sample, its arrays in the order of the family's [`SampleLayout`], flattened
/// row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub index: u64,
    pub inputs: Vec<Vec<f64>>,
    pub outputs: Vec<Vec<f64>>,
    pub params: Vec<f64>,
    pub report: SampleReport,
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum ProblemError {
    #[error("{family}: {message}")]
    BadParams {
        family: &'static str,
        message: String,
    },
    #[error(transparent)]
    Field(#[from] crate::field::FieldError),
    #[error(transparent)]
    Darcy(#[from] darcy::DarcyError),
    #[error("{family} sample {index}: {source}")]
    Solver {
        family: &'static str,
        index: u64,
        #[source]
        source: Box<SequenceError>,
    },
}

/// A problem family that a dataset writer can drive.
pub trait Family: Sync {
    fn name(&self) -> &'static str;
    fn layout(&self) -> SampleLayout;
    /// Draws and solves sample `index` of seed `seed`. A linear solve that stops at its iteration
    /// cap is reported with `converged = false`, not as an error; a spectral stepper whose state
    /// stops being finite likewise.
    fn generate(&self, seed: u64, index: u64) -> Result<Sample, ProblemError>;
}

/// Coordinates of `n` equispaced points on [0, 1] including both ends.
pub fn vertex_coords(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 / (n - 1) as f64).collect()
}

/// Coordinates of `n` points of a periodic grid on [0, 1): `i/n`.
pub fn periodic_coords(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 / n as f64).collect()
}

/// A sparse linear system `A x = b`.
#[derive(Debug, Clone)]
pub struct LinearSystem {
    pub matrix: CsMat<f64>,
    pub rhs: Vec<f64>,
}

/// The `m × m` five-point Laplacian stencil (4 on the diagonal, −1 to each neighbour, no 1/h²)
/// plus `shift · I`, on an `m²` grid with Dirichlet boundaries.
pub fn laplacian_2d(m: usize, shift: f64) -> CsMat<f64> {
    laplacian_2d_with(m, |_| shift, |_| 1.0)
}

/// The five-point stencil on an `m × m` interior grid (row-major, Dirichlet) with `shift(i)` added
/// to diagonal entry i and column j scaled by `column_scale(j)`: `(L + diag(shift))·diag(scale)`.
pub fn laplacian_2d_with(
    m: usize,
    shift: impl Fn(usize) -> f64,
    column_scale: impl Fn(usize) -> f64,
) -> CsMat<f64> {
    let n = m * m;
    let mut indptr = Vec::with_capacity(n + 1);
    let mut indices = Vec::with_capacity(5 * n);
    let mut data = Vec::with_capacity(5 * n);
    indptr.push(0);
    let mut push = |indices: &mut Vec<usize>, col: usize, v: f64| {
        indices.push(col);
        data.push(v * column_scale(col));
    };
    for p in 0..m {
        for q in 0..m {
            let row = p * m + q;
            if p > 0 {
                push(&mut indices, row - m, -1.0);
            }
            if q > 0 {
                push(&mut indices, row - 1, -1.0);
            }
            push(&mut indices, row, 4.0 + shift(row));
            if q + 1 < m {
                push(&mut indices, row + 1, -1.0);
            }
            if p + 1 < m {
                push(&mut indices, row + m, -1.0);
            }
            indptr.push(indices.len());
        }
    }
    CsMat::new((n, n), indptr, indices, data)
}

/// The settings every periodic spectral stepper shares, checked once for all of them.
pub(crate) fn check_spectral_stepping(
    family: &'static str,
    resolution: usize,
    viscosity: f64,
    final_time: f64,
    max_dt: f64,
) -> Result<(), ProblemError> {
    let bad = |message: String| Err(ProblemError::BadParams { family, message });
    if resolution < 8 || !resolution.is_multiple_of(2) {
        return bad(format!(
            "resolution must be even and at least 8, got {resolution}"
        ));
    }
    if !(viscosity > 0.0 && viscosity.is_finite()) {
        return bad(format!("viscosity must be positive, got {viscosity}"));
    }
    if !(final_time > 0.0 && final_time.is_finite()) {
        return bad(format!("final_time must be positive, got {final_time}"));
    }
    if !(max_dt > 0.0 && max_dt <= final_time) {
        return bad(format!("dt must be in (0, final_time], got {max_dt}"));
    }
    Ok(())
}

/// `(steps per snapshot, total steps)` for `snapshots` equal intervals of `[0, final_time]` with a
/// step of at most `max_dt` (`snapshots = 0` counts as one interval).
pub(crate) fn snapshot_steps(final_time: f64, snapshots: usize, max_dt: f64) -> (usize, usize) {
    let intervals = snapshots.max(1);
    // The factor keeps T/(snapshots·dt) that is whole up to rounding from gaining a step.
    let per = (final_time / intervals as f64 / max_dt * (1.0 - 1e-12))
        .ceil()
        .max(1.0) as usize;
    (per, per * intervals)
}
