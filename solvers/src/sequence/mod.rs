//! Solving sequences of related systems: a solver that keeps its state (recycle space, previous
//! solution) from one system to the next, orderings that put similar systems next to each other,
//! [`solve_sequence`] for a set of systems in a chosen order, and [`driver`], which schedules the
//! samples of a dataset (independent batches, a learned SSOR ω, or recycling chains).

pub mod driver;
pub mod order;

pub use order::{low_modes, order, tour_length, Ordering};

use crate::krylov::{
    bicgstab, cg, fgmres_in, gmres_in, GcroDr, GcroDrParams, GmresParams, GmresWorkspace,
    RecycleUpdate, RecycledCg, RecycledCgParams, SolveError, SolveInfo, SolveParams,
};
use crate::linalg::{BadDiagonal, CsrOperator, Identity, Jacobi, Preconditioner};
use crate::param::{require, InvalidParam};
use crate::precond::{Amg, AmgError, AmgParams, Ilu0, IluError, SorError, SsorPreconditioner};
use sprs::CsMat;
use std::time::Instant;
use thiserror::Error;

/// The iterative method applied to each system. In a config: `method = "gmres"`, with `restart`,
/// `recycle` and `recycle_update` where the method takes them.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "method", rename_all = "lowercase"))]
pub enum Method {
    Cg,
    Gmres {
        #[cfg_attr(feature = "serde", serde(default = "default_restart"))]
        restart: usize,
    },
    Fgmres {
        #[cfg_attr(feature = "serde", serde(default = "default_restart"))]
        restart: usize,
    },
    Bicgstab,
    /// GCRO-DR(restart, recycle), recycle space carried from system to system.
    #[cfg_attr(feature = "serde", serde(rename = "gcrodr"))]
    GcroDr {
        #[cfg_attr(feature = "serde", serde(default = "default_restart"))]
        restart: usize,
        #[cfg_attr(feature = "serde", serde(default = "default_gcrodr_recycle"))]
        recycle: usize,
        #[cfg_attr(feature = "serde", serde(default, rename = "recycle_update"))]
        update: RecycleUpdate,
    },
    /// Deflated CG, deflation space carried from system to system.
    #[cfg_attr(feature = "serde", serde(rename = "rcg"))]
    RecycledCg {
        #[cfg_attr(feature = "serde", serde(default = "default_rcg_recycle"))]
        recycle: usize,
    },
    /// Smoothed-aggregation AMG V-cycles as the solver (the preconditioner setting is ignored).
    Amg,
}

/// Vectors per cycle of GMRES, FGMRES and GCRO-DR unless given (the SKR paper's m).
pub const DEFAULT_RESTART: usize = 40;
/// GCRO-DR's recycle space unless given (the SKR paper's k).
pub const DEFAULT_GCRODR_RECYCLE: usize = 20;
/// Recycled CG's deflation space unless given.
pub const DEFAULT_RCG_RECYCLE: usize = 10;

#[cfg(feature = "serde")]
fn default_restart() -> usize {
    DEFAULT_RESTART
}

#[cfg(feature = "serde")]
fn default_gcrodr_recycle() -> usize {
    DEFAULT_GCRODR_RECYCLE
}

#[cfg(feature = "serde")]
fn default_rcg_recycle() -> usize {
    DEFAULT_RCG_RECYCLE
}

impl Method {
    /// GCRO-DR's recycle space when none is given for `restart` vectors per cycle: the SKR
    /// paper's k = 20, or fewer when the cycle is too short to hold them and new directions.
    pub fn default_gcrodr_recycle(restart: usize) -> usize {
        DEFAULT_GCRODR_RECYCLE.min(restart.saturating_sub(1))
    }

    /// A short name for tables, e.g. `gcrodr(40,20)`.
    pub fn label(&self) -> String {
        match self {
            Method::Cg => "cg".into(),
            Method::Gmres { restart } => format!("gmres({restart})"),
            Method::Fgmres { restart } => format!("fgmres({restart})"),
            Method::Bicgstab => "bicgstab".into(),
            Method::GcroDr {
                restart,
                recycle,
                update: RecycleUpdate::EveryCycle,
            } => format!("gcrodr({restart},{recycle})"),
            Method::GcroDr {
                restart,
                recycle,
                update: RecycleUpdate::PerSystem,
            } => format!("gcrodr({restart},{recycle},per-system)"),
            Method::RecycledCg { recycle } => format!("rcg({recycle})"),
            Method::Amg => "amg".into(),
        }
    }

    /// Whether the method carries a recycle space from system to system.
    pub fn recycles(&self) -> bool {
        matches!(self, Method::GcroDr { .. } | Method::RecycledCg { .. })
    }

    /// Whether the method needs a symmetric positive definite matrix.
    pub fn needs_spd(&self) -> bool {
        matches!(self, Method::Cg | Method::RecycledCg { .. })
    }

    pub fn validate(&self) -> Result<(), InvalidParam> {
        match *self {
            Method::Gmres { restart }
            | Method::Fgmres { restart }
            | Method::GcroDr { restart, .. } => require(
                (1..=1000).contains(&restart),
                "restart",
                "an integer from 1 to 1000",
                restart,
            )?,
            _ => {}
        }
        match *self {
            Method::GcroDr {
                restart, recycle, ..
            } => require(
                recycle < restart,
                "recycle",
                &format!("an integer below restart ({restart})"),
                recycle,
            ),
            Method::RecycledCg { recycle } => require(
                recycle <= 200,
                "recycle",
                "an integer from 0 to 200",
                recycle,
            ),
            _ => Ok(()),
        }
    }
}

/// The SSOR relaxation parameter: fixed, or chosen per system by the learner of a
/// [`driver::Schedule::LearnedOmega`] run. In a config: a number in (0, 2), or `"learned"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Omega {
    Fixed(f64),
    Learned,
}

impl Omega {
    pub const LEARNED: Omega = Omega::Learned;
}

impl crate::param::NumberOrWord for Omega {
    const WORD: &'static str = "learned";
    const EXPECTED: &'static str = "a number in (0, 2) or \"learned\"";
    fn number(&self) -> Option<f64> {
        match self {
            Omega::Fixed(w) => Some(*w),
            Omega::Learned => None,
        }
    }
    fn from_number(w: Option<f64>) -> Self {
        w.map_or(Omega::Learned, Omega::Fixed)
    }
}

crate::param::number_or_word!(Omega);

#[cfg(feature = "serde")]
fn learned() -> Omega {
    Omega::LEARNED
}

/// The preconditioner built for each system. In a config: `preconditioner = "ssor"`, with `omega`
/// for SSOR.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "preconditioner", rename_all = "lowercase")
)]
pub enum PrecondKind {
    #[default]
    None,
    Jacobi,
    Ilu0,
    Ssor {
        #[cfg_attr(feature = "serde", serde(default = "learned"))]
        omega: Omega,
    },
    Amg,
}

impl PrecondKind {
    /// SSOR with a fixed ω.
    pub fn ssor(omega: f64) -> Self {
        PrecondKind::Ssor {
            omega: Omega::Fixed(omega),
        }
    }

    pub fn label(&self) -> String {
        match self {
            PrecondKind::None => "none".into(),
            PrecondKind::Jacobi => "jacobi".into(),
            PrecondKind::Ilu0 => "ilu0".into(),
            PrecondKind::Ssor {
                omega: Omega::Fixed(w),
            } => format!("ssor({w})"),
            PrecondKind::Ssor { .. } => "ssor(learned)".into(),
            PrecondKind::Amg => "amg".into(),
        }
    }

    pub fn validate(&self) -> Result<(), InvalidParam> {
        match *self {
            PrecondKind::Ssor {
                omega: Omega::Fixed(w),
            } => require(
                w > 0.0 && w < 2.0,
                "omega",
                "a number in (0, 2) or \"learned\"",
                w,
            ),
            _ => Ok(()),
        }
    }
}

/// Everything that defines how each system of a sequence is solved. In a config, one table:
/// `method`, `preconditioner`, their parameters, `tolerance`, `max_iterations` and `warm_start`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SolverSpec {
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub method: Method,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub precond: PrecondKind,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub params: SolveParams,
    /// Start each solve from the previous system's solution instead of zero.
    #[cfg_attr(feature = "serde", serde(default))]
    pub warm_start: bool,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub amg: AmgParams,
    /// Mat-vecs over row blocks in parallel; off when the caller runs one solve per thread.
    #[cfg_attr(feature = "serde", serde(skip, default = "parallel"))]
    pub parallel: bool,
}

#[cfg(feature = "serde")]
fn parallel() -> bool {
    true
}

impl Default for SolverSpec {
    /// Jacobi-preconditioned CG to 1e-8, at most 10 000 iterations.
    fn default() -> Self {
        Self::new(Method::Cg, PrecondKind::Jacobi, SolveParams::default())
    }
}

impl SolverSpec {
    pub fn new(method: Method, precond: PrecondKind, params: SolveParams) -> Self {
        Self {
            method,
            precond,
            params,
            warm_start: false,
            amg: AmgParams::default(),
            parallel: true,
        }
    }

    pub fn with_warm_start(self, warm_start: bool) -> Self {
        Self { warm_start, ..self }
    }

    pub fn with_parallel(self, parallel: bool) -> Self {
        Self { parallel, ..self }
    }

    /// Whether solves depend on the systems solved before (recycle spaces or warm starts).
    pub fn carries_state(&self) -> bool {
        self.warm_start || self.method.recycles()
    }

    /// Whether the SSOR ω is left to a learner.
    pub fn learns_omega(&self) -> bool {
        matches!(
            self.precond,
            PrecondKind::Ssor {
                omega: Omega::Learned
            }
        )
    }

    /// Every parameter in range; `field` names the config key.
    pub fn validate(&self) -> Result<(), InvalidParam> {
        self.method.validate()?;
        self.precond.validate()?;
        self.params.validate()?;
        Ok(())
    }

    /// `method+precond`, e.g. `gcrodr(40,20)+ilu0`.
    pub fn label(&self) -> String {
        let mut s = self.method.label();
        if self.method != Method::Amg && self.precond != PrecondKind::None {
            s.push('+');
            s.push_str(&self.precond.label());
        }
        if self.warm_start {
            s.push_str("+warm");
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum SequenceError {
    #[error(transparent)]
    Solve(#[from] SolveError),
    #[error("preconditioner: {0}")]
    Diagonal(#[from] BadDiagonal),
    #[error("preconditioner: {0}")]
    Ilu(#[from] IluError),
    #[error("preconditioner: {0}")]
    Amg(#[from] AmgError),
    #[error("preconditioner: {0}")]
    Ssor(#[from] SorError),
    #[error("solver: {0}")]
    Invalid(#[from] InvalidParam),
    #[error("SSOR with a learned ω is solved by a driver whose schedule learns it; give the solver a fixed ω")]
    LearnedOmega,
}

impl SequenceError {
    /// The solve report, when the failure is a solve that did not converge.
    pub fn info(&self) -> Option<&SolveInfo> {
        match self {
            SequenceError::Solve(e) => e.info(),
            _ => None,
        }
    }
}

/// One solved system.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemReport {
    pub info: SolveInfo,
    /// Preconditioner construction (AMG hierarchy, ILU factors, ...).
    pub setup_seconds: f64,
    pub solve_seconds: f64,
}

/// A solver for one system after another, keeping recycle spaces and the previous solution.
#[derive(Debug)]
pub struct SequenceSolver {
    spec: SolverSpec,
    gcrodr: Option<GcroDr>,
    rcg: Option<RecycledCg>,
    /// GMRES's and FGMRES's basis and scratch, kept from system to system.
    gmres: GmresWorkspace,
    previous: Option<Vec<f64>>,
}

impl SequenceSolver {
    pub fn new(spec: SolverSpec) -> Result<Self, SequenceError> {
        let gcrodr = match spec.method {
            Method::GcroDr {
                restart,
                recycle,
                update,
            } => Some(GcroDr::new(
                GcroDrParams::new(restart, recycle).with_update(update),
            )?),
            _ => None,
        };
        let rcg = match spec.method {
            Method::RecycledCg { recycle } => Some(RecycledCg::new(RecycledCgParams::new(recycle))),
            _ => None,
        };
        spec.validate()?;
        spec.amg.validate().map_err(SequenceError::from)?;
        Ok(Self {
            spec,
            gcrodr,
            rcg,
            gmres: GmresWorkspace::default(),
            previous: None,
        })
    }

    pub fn spec(&self) -> &SolverSpec {
        &self.spec
    }

    /// Records each solve's residual history ([`SolveInfo::history`]) from the next solve on, or
    /// stops recording.
    pub fn record_history(&mut self, on: bool) {
        self.spec.params.history = on;
    }

    /// Forgets recycle spaces and the previous solution.
    pub fn reset(&mut self) {
        if let Some(g) = &mut self.gcrodr {
            g.reset();
        }
        if let Some(r) = &mut self.rcg {
            r.reset();
        }
        self.previous = None;
    }

    /// Solves `a x = b` into `x` with the spec's preconditioner.
    pub fn solve(
        &mut self,
        a: &CsMat<f64>,
        b: &[f64],
        x: &mut [f64],
    ) -> Result<SystemReport, SequenceError> {
        self.solve_with(a, b, x, self.spec.precond)
    }

    /// [`SequenceSolver::solve`] with another preconditioner for this system (e.g. an SSOR ω
    /// chosen per system by a learner).
    pub fn solve_with(
        &mut self,
        a: &CsMat<f64>,
        b: &[f64],
        x: &mut [f64],
        precond: PrecondKind,
    ) -> Result<SystemReport, SequenceError> {
        let start = Instant::now();
        if self.spec.warm_start {
            match &self.previous {
                Some(p) if p.len() == x.len() => x.copy_from_slice(p),
                _ => x.fill(0.0),
            }
        }
        let op = if self.spec.parallel {
            CsrOperator::new(a)
        } else {
            CsrOperator::serial(a)
        };
        let params = &self.spec.params;
        let (result, setup_seconds, solved) = if self.spec.method == Method::Amg {
            let amg = Amg::new(a, self.spec.amg)?;
            let setup_seconds = start.elapsed().as_secs_f64();
            let solved = Instant::now();
            (amg.solve(&op, b, x, params), setup_seconds, solved)
        } else {
            let m: Box<dyn Preconditioner> = match precond {
                PrecondKind::None => Box::new(Identity),
                PrecondKind::Jacobi => Box::new(Jacobi::new(a)?),
                PrecondKind::Ilu0 => Box::new(Ilu0::new(a)?),
                PrecondKind::Ssor {
                    omega: Omega::Fixed(w),
                } => Box::new(SsorPreconditioner::new(a, w)?),
                PrecondKind::Ssor { .. } => return Err(SequenceError::LearnedOmega),
                PrecondKind::Amg => Box::new(Amg::new(a, self.spec.amg)?),
            };
            let setup_seconds = start.elapsed().as_secs_f64();
            let solved = Instant::now();
            let m = m.as_ref();
            let result = match self.spec.method {
                Method::Cg => cg(&op, m, b, x, params),
                Method::Gmres { restart } => gmres_in(
                    &mut self.gmres,
                    &op,
                    m,
                    b,
                    x,
                    params,
                    &GmresParams::new(restart),
                ),
                Method::Fgmres { restart } => fgmres_in(
                    &mut self.gmres,
                    &op,
                    m,
                    b,
                    x,
                    params,
                    &GmresParams::new(restart),
                ),
                Method::Bicgstab => bicgstab(&op, m, b, x, params),
                Method::GcroDr { .. } => self
                    .gcrodr
                    .as_mut()
                    .expect("built in new")
                    .solve(&op, m, b, x, params),
                Method::RecycledCg { .. } => self
                    .rcg
                    .as_mut()
                    .expect("built in new")
                    .solve(&op, m, b, x, params),
                Method::Amg => unreachable!("handled above"),
            };
            (result, setup_seconds, solved)
        };
        let solve_seconds = solved.elapsed().as_secs_f64();
        if self.spec.warm_start {
            self.previous = Some(x.to_vec());
        }
        let info = result?;
        Ok(SystemReport {
            info,
            setup_seconds,
            solve_seconds,
        })
    }
}

/// A system's solution and its report (or why it failed).
pub type Solved = (Vec<f64>, Result<SystemReport, SequenceError>);

/// Solves `systems` one after another in `order` with one [`SequenceSolver`], and returns each
/// system's solution and report in the *original* order.
pub fn solve_sequence(
    systems: &[(&CsMat<f64>, &[f64])],
    order: &[usize],
    spec: SolverSpec,
) -> Result<Vec<Solved>, SequenceError> {
    let mut solver = SequenceSolver::new(spec)?;
    let mut out: Vec<Option<Solved>> = (0..systems.len()).map(|_| None).collect();
    for &i in order {
        let (a, b) = systems[i];
        let mut x = vec![0.0; b.len()];
        let report = solver.solve(a, b, &mut x);
        out[i] = Some((x, report));
    }
    Ok(out
        .into_iter()
        .map(|o| o.expect("order is a permutation of the systems"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::test_matrices::{convection_diffusion, rhs, true_rel_residual};

    #[test]
    fn a_method_that_cannot_converge_reports_its_last_true_residual() {
        let a = convection_diffusion(24, 0.0, 0.1);
        let b = rhs(a.rows(), 0.5);
        for method in [
            Method::Cg,
            Method::Gmres { restart: 10 },
            Method::Fgmres { restart: 10 },
            Method::Bicgstab,
            Method::GcroDr {
                restart: 10,
                recycle: 4,
                update: RecycleUpdate::EveryCycle,
            },
            Method::RecycledCg { recycle: 4 },
            Method::Amg,
        ] {
            let spec = SolverSpec::new(method, PrecondKind::None, SolveParams::new(1e-14, 3));
            let mut solver = SequenceSolver::new(spec).unwrap();
            let mut x = vec![0.0; a.rows()];
            let err = solver.solve(&a, &b, &mut x).unwrap_err();
            let info = err
                .info()
                .unwrap_or_else(|| panic!("{}: {err}", spec.label()));
            assert!(!info.converged && info.iterations <= 3, "{}", spec.label());
            let truth = true_rel_residual(&a, &b, &x);
            assert!(
                (info.rel_residual - truth).abs() <= 1e-12 * truth.max(1.0),
                "{}: reported {} true {truth}",
                spec.label(),
                info.rel_residual
            );
            assert!(err.to_string().contains("did not converge"), "{err}");
        }
    }

    #[test]
    fn every_method_and_preconditioner_solves_an_spd_sequence_in_original_order() {
        let mats: Vec<CsMat<f64>> = (0..4)
            .map(|s| convection_diffusion(20, 0.01 * (3 - s) as f64, 0.0))
            .collect();
        let rhss: Vec<Vec<f64>> = (0..4).map(|s| rhs(400, s as f64)).collect();
        let systems: Vec<(&CsMat<f64>, &[f64])> = mats
            .iter()
            .zip(&rhss)
            .map(|(a, b)| (a, b.as_slice()))
            .collect();
        let params = SolveParams::new(1e-9, 5000);
        let methods = [
            Method::Cg,
            Method::Gmres { restart: 30 },
            Method::Fgmres { restart: 30 },
            Method::Bicgstab,
            Method::GcroDr {
                restart: 30,
                recycle: 10,
                update: RecycleUpdate::EveryCycle,
            },
            Method::GcroDr {
                restart: 30,
                recycle: 10,
                update: RecycleUpdate::PerSystem,
            },
            Method::RecycledCg { recycle: 8 },
            Method::Amg,
        ];
        let preconds = [
            PrecondKind::None,
            PrecondKind::Jacobi,
            PrecondKind::Ilu0,
            PrecondKind::ssor(1.5),
            PrecondKind::Amg,
        ];
        for method in methods {
            for precond in preconds {
                let spec = SolverSpec::new(method, precond, params).with_warm_start(true);
                let out = solve_sequence(&systems, &[3, 1, 0, 2], spec).unwrap();
                for (i, (x, report)) in out.iter().enumerate() {
                    let report = report
                        .as_ref()
                        .unwrap_or_else(|e| panic!("{}: {e}", spec.label()));
                    assert!(report.info.converged);
                    let res = true_rel_residual(&mats[i], &rhss[i], x);
                    assert!(res <= 1e-9, "{} system {i}: {res}", spec.label());
                }
            }
        }
    }
}
