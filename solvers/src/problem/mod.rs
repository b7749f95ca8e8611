//! Problem families: the elliptic ones assemble sparse systems, the time-dependent ones step a
//! trajectory. Every family draws sample `i` of seed `s` from `(s, i)` alone, so a dataset is the
//! same whatever the thread count, shard split or resume point.
//!
//! [`Family`] is what a dataset writer needs from any of them: the [`SampleLayout`] (names and
//! shapes of the per-sample arrays and parameters) and [`Family::generate`]. [`ProblemParams`] is
//! what a family's parameters offer, and [`FamilyParams`] lists every family: adding one is its
//! file and a line in the `families!` registration below.

pub mod beam;
pub mod burgers;
pub mod darcy;
pub mod heat;
pub mod helmholtz;
pub mod navier_stokes;
pub mod poisson;

use crate::linalg::CsrRows;
use crate::param::InvalidParam;
use crate::sequence::{PrecondKind, SequenceError, SequenceSolver, SolverSpec};
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
#[derive(Debug, Clone, PartialEq, Default)]
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
    /// The relative residual after each iteration of the sample's first linear solve, when its
    /// solver's `history` is on (empty otherwise).
    pub history: Vec<f64>,
}

impl SampleReport {
    /// Adds one linear solve's figures.
    pub fn add_solve(&mut self, info: &crate::krylov::SolveInfo) {
        self.iterations += info.iterations;
        self.matvecs += info.matvecs;
        self.rel_residual = self.rel_residual.max(info.rel_residual);
        self.converged &= info.converged;
        if self.history.is_empty() {
            self.history.clone_from(&info.history);
        }
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
    /// A parameter out of range; `param.field` is its key in the family's table.
    #[error("{family}.{param}")]
    Invalid {
        family: &'static str,
        param: InvalidParam,
    },
    #[error(transparent)]
    Field(#[from] crate::field::FieldError),
    #[error(transparent)]
    Darcy(#[from] darcy::DarcyError),
    #[error("{family} sample {index}: {source}")]
    Multiscale {
        family: &'static str,
        index: u64,
        #[source]
        source: crate::multiscale::multilevel::MultiscaleError,
    },
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

    /// Families whose samples can be solved as one sequence (recycling chains in a sorted order,
    /// or a learned SSOR ω) give a sample's features for ordering. `None`: each sample on its own.
    fn order_features(&self, _seed: u64, _index: u64) -> Option<Vec<f64>> {
        None
    }

    /// [`Family::generate`] with the caller's solver (keeping its state from the previous sample)
    /// and preconditioner; only for families that give [`Family::order_features`].
    fn generate_with(
        &self,
        seed: u64,
        index: u64,
        _solver: &mut SequenceSolver,
        _precond: PrecondKind,
    ) -> Result<Sample, ProblemError> {
        self.generate(seed, index)
    }
}

/// The parameters of a problem family: one `[generate.<NAME>]` table of a config.
pub trait ProblemParams: Clone + Default + PartialEq + std::fmt::Debug {
    /// The family's name in configs and datasets.
    const NAME: &'static str;
    /// Whether samples can share solver state in a sorted sequence (see [`Family::order_features`]).
    const SEQUENCES: bool = false;
    /// Every parameter in range; `field` is the key in the family's table.
    fn validate(&self) -> Result<(), InvalidParam>;
    /// Fills the defaults that depend on other parameters (e.g. heat's `every` on `steps`), so
    /// that a printed plan states them.
    fn settle(&mut self) {}
    /// The solver of each sample's linear systems; `None` for families that solve none.
    fn solver(&self) -> Option<&SolverSpec> {
        None
    }
    fn solver_mut(&mut self) -> Option<&mut SolverSpec> {
        None
    }
    /// Why `spec` does not suit this family's systems, if it does not (e.g. CG on an indefinite
    /// matrix); `field` is the solver key.
    fn check_solver(&self, _spec: &SolverSpec) -> Result<(), InvalidParam> {
        Ok(())
    }

    /// [`ProblemParams::validate`] with the family named.
    fn checked(&self) -> Result<(), ProblemError> {
        self.validate().map_err(|param| ProblemError::Invalid {
            family: Self::NAME,
            param,
        })
    }
}

/// [`ProblemParams::solver`] and [`ProblemParams::solver_mut`] for params whose `solver` field
/// solves each sample's systems.
macro_rules! solver_field {
    () => {
        fn solver(&self) -> Option<&SolverSpec> {
            Some(&self.solver)
        }

        fn solver_mut(&mut self) -> Option<&mut SolverSpec> {
            Some(&mut self.solver)
        }
    };
}
pub(crate) use solver_field;

/// A solver that does not start each sample afresh only makes sense in a sequence.
pub(crate) fn one_solve_per_sample(name: &str, spec: &SolverSpec) -> Result<(), InvalidParam> {
    if spec.warm_start {
        return Err(InvalidParam::new(
            "warm_start",
            format!("false: each \"{name}\" sample is one solve started afresh, with no previous solution to start from"),
            true,
        ));
    }
    no_learned_omega(name, spec)
}

pub(crate) fn no_learned_omega(name: &str, spec: &SolverSpec) -> Result<(), InvalidParam> {
    if spec.learns_omega() {
        return Err(InvalidParam::new(
            "omega",
            format!("a number in (0, 2): a learned ω is implemented for problem = \"darcy\", not \"{name}\""),
            "\"learned\"",
        ));
    }
    Ok(())
}

/// Declares [`FamilyParams`], the registry of problem families.
macro_rules! families {
    ($($(#[$doc:meta])* $variant:ident($params:ty => $generator:ty),)*) => {
        /// The parameters of any family, tagged by its name (`{ darcy = { … } }`).
        #[derive(Debug, Clone, PartialEq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        #[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
        pub enum FamilyParams {
            $($(#[$doc])* $variant($params),)*
        }

        impl FamilyParams {
            /// Every family's name.
            pub const NAMES: &'static [&'static str] = &[$(<$params>::NAME),*];

            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$params>::NAME,)*
                }
            }

            /// The family called `name` with its default parameters.
            pub fn default_for(name: &str) -> Option<Self> {
                match name {
                    $(n if n == <$params>::NAME => {
                        let mut p = <$params>::default();
                        p.settle();
                        Some(Self::$variant(p))
                    })*
                    _ => None,
                }
            }

            /// Reads the parameters of the family called `name`.
            #[cfg(feature = "serde")]
            pub fn deserialize_named<'de, D: serde::Deserializer<'de>>(
                name: &str,
                d: D,
            ) -> Result<Self, D::Error> {
                use serde::Deserialize;
                match name {
                    $(n if n == <$params>::NAME => <$params>::deserialize(d).map(|mut p| {
                        p.settle();
                        Self::$variant(p)
                    }),)*
                    other => Err(serde::de::Error::unknown_variant(other, Self::NAMES)),
                }
            }

            pub fn sequences(&self) -> bool {
                match self {
                    $(Self::$variant(_) => <$params>::SEQUENCES,)*
                }
            }

            pub fn validate(&self) -> Result<(), ProblemError> {
                match self {
                    $(Self::$variant(p) => p.checked(),)*
                }
            }

            pub fn solver(&self) -> Option<&SolverSpec> {
                match self {
                    $(Self::$variant(p) => p.solver(),)*
                }
            }

            pub fn solver_mut(&mut self) -> Option<&mut SolverSpec> {
                match self {
                    $(Self::$variant(p) => p.solver_mut(),)*
                }
            }

            pub fn check_solver(&self, spec: &SolverSpec) -> Result<(), InvalidParam> {
                match self {
                    $(Self::$variant(p) => p.check_solver(spec),)*
                }
            }

            /// The family's generator (its constructor validates the parameters).
            pub fn build(&self) -> Result<Box<dyn Family>, ProblemError> {
                match self {
                    $(Self::$variant(p) => Ok(Box::new(<$generator>::new(p.clone())?)),)*
                }
            }
        }
    };
}

families! {
    Darcy(darcy::DarcyParams => darcy::DarcyGenerator),
    Poisson(poisson::PoissonParams => poisson::PoissonGenerator),
    Helmholtz(helmholtz::HelmholtzParams => helmholtz::HelmholtzGenerator),
    Heat(heat::HeatParams => heat::HeatGenerator),
    Burgers(burgers::BurgersParams => burgers::BurgersGenerator),
    NavierStokes(navier_stokes::NavierStokesParams => navier_stokes::NavierStokesGenerator),
    /// Steady beams solved by ML-VMS.
    Mlvms(beam::BeamParams => beam::BeamGenerator),
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
    let mut rows = CsrRows::with_capacity(m * m, 5);
    for p in 0..m {
        for q in 0..m {
            let row = p * m + q;
            // Columns in increasing order: up, left, centre, right, down.
            let entries = [
                (p > 0).then(|| (row - m, -1.0)),
                (q > 0).then(|| (row - 1, -1.0)),
                Some((row, 4.0 + shift(row))),
                (q + 1 < m).then_some((row + 1, -1.0)),
                (p + 1 < m).then_some((row + m, -1.0)),
            ];
            for (col, v) in entries.into_iter().flatten() {
                rows.push(col, v * column_scale(col));
            }
            rows.end_row();
        }
    }
    rows.finish()
}

/// The settings every periodic spectral stepper shares, checked once for all of them.
pub(crate) fn check_spectral_stepping(
    resolution: usize,
    viscosity: f64,
    final_time: f64,
    max_dt: f64,
) -> Result<(), InvalidParam> {
    use crate::param::{positive, require};
    require(
        (8..=16384).contains(&resolution) && resolution.is_multiple_of(2),
        "resolution",
        "an even integer from 8 to 16384",
        resolution,
    )?;
    require(
        positive(viscosity),
        "viscosity",
        "a positive number",
        viscosity,
    )?;
    require(
        positive(final_time),
        "final_time",
        "a positive number",
        final_time,
    )?;
    require(
        positive(max_dt) && max_dt <= final_time,
        "dt",
        &format!("a positive number ≤ final_time = {final_time}"),
        max_dt,
    )
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
