//! Krylov subspace methods: CG, GMRES(m), FGMRES(m), BiCGStab, GCRO-DR(m, k) and recycled CG.
//!
//! Every method takes [`SolveParams`], returns a [`SolveInfo`] and fails with a [`SolveError`].
//! The residual in a report is always the *true* relative residual ‖b − Ax‖/‖b‖ of the returned
//! `x`, recomputed from `A`, never the recurrence estimate.

pub mod bicgstab;
pub mod block;
pub mod cg;
mod dense;
pub mod gcrodr;
pub mod gmres;
pub mod rcg;

pub use bicgstab::bicgstab;
pub use block::Orthogonalization;
pub use cg::cg;
pub use gcrodr::{GcroDr, GcroDrParams, RecycleUpdate};
pub use gmres::{fgmres, fgmres_in, gmres, gmres_in, GmresParams, GmresWorkspace, PrecondSide};
pub use rcg::{RecycledCg, RecycledCgParams};

use crate::linalg::{norm2, residual, LinearOperator};
use thiserror::Error;

/// Stopping rule and reporting options shared by every Krylov method (in a config: `tolerance`
/// and `max_iterations`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
#[non_exhaustive]
pub struct SolveParams {
    /// Stop when the true relative residual ‖b − Ax‖/‖b‖ is at most this.
    #[cfg_attr(feature = "serde", serde(rename = "tolerance"))]
    pub rtol: f64,
    /// Give up after this many iterations (one iteration = one application of `A` in the Krylov
    /// recurrence; BiCGStab counts half-steps as one each).
    #[cfg_attr(feature = "serde", serde(rename = "max_iterations"))]
    pub max_iter: usize,
    /// Record the (recurrence) relative residual after every iteration in [`SolveInfo::history`].
    #[cfg_attr(feature = "serde", serde(skip))]
    pub history: bool,
}

impl Default for SolveParams {
    fn default() -> Self {
        Self {
            rtol: 1e-8,
            max_iter: 10_000,
            history: false,
        }
    }
}

impl SolveParams {
    pub fn new(rtol: f64, max_iter: usize) -> Self {
        Self {
            rtol,
            max_iter,
            history: false,
        }
    }

    pub fn with_history(self, history: bool) -> Self {
        Self { history, ..self }
    }

    pub fn validate(&self) -> Result<(), crate::InvalidParam> {
        use crate::param::require;
        require(
            self.rtol > 0.0 && self.rtol < 1.0,
            "tolerance",
            "a number in (0, 1)",
            self.rtol,
        )?;
        require(
            self.max_iter >= 1,
            "max_iterations",
            "an integer ≥ 1",
            self.max_iter,
        )
    }
}

/// What a solve did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SolveInfo {
    /// Krylov iterations.
    pub iterations: usize,
    /// Applications of `A`, including those for true residuals and recycle-space updates.
    pub matvecs: usize,
    /// Applications of the preconditioner.
    pub precond_applies: usize,
    /// True relative residual ‖b − Ax‖/‖b‖ of the returned x.
    pub rel_residual: f64,
    pub converged: bool,
    /// Relative residual per iteration (recurrence estimate), when asked for.
    pub history: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum SolveError {
    #[error("{method} did not converge: relative residual {:.3e} after {} iterations (tolerance {rtol:.1e})", info.rel_residual, info.iterations)]
    NoConvergence {
        method: &'static str,
        info: Box<SolveInfo>,
        rtol: f64,
    },
    #[error("{method} broke down at iteration {iteration}: {quantity} = {value:.3e}{hint}")]
    Breakdown {
        method: &'static str,
        iteration: usize,
        quantity: &'static str,
        value: f64,
        hint: &'static str,
    },
    #[error("{method}: vector lengths {got} do not match the operator dimension {expected}")]
    DimensionMismatch {
        method: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{method}: the right-hand side or initial guess contains NaN or infinity")]
    NonFinite { method: &'static str },
    #[error("{method}: invalid parameter: {reason}")]
    BadParams {
        method: &'static str,
        reason: String,
    },
}

impl SolveError {
    /// The solve report, for the errors that have one.
    pub fn info(&self) -> Option<&SolveInfo> {
        match self {
            SolveError::NoConvergence { info, .. } => Some(info),
            _ => None,
        }
    }
}

/// Checks lengths and finiteness; returns ‖b‖.
pub(crate) fn check_inputs<A: LinearOperator + ?Sized>(
    method: &'static str,
    a: &A,
    b: &[f64],
    x: &[f64],
) -> Result<f64, SolveError> {
    let n = a.dim();
    if b.len() != n || x.len() != n {
        return Err(SolveError::DimensionMismatch {
            method,
            expected: n,
            got: if b.len() != n { b.len() } else { x.len() },
        });
    }
    if b.iter().chain(x.iter()).any(|v| !v.is_finite()) {
        return Err(SolveError::NonFinite { method });
    }
    Ok(norm2(b))
}

/// Computes the true residual of `x` into `r`, fills in `info` and turns a miss into the error.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish<A: LinearOperator + ?Sized>(
    method: &'static str,
    a: &A,
    b: &[f64],
    x: &[f64],
    r: &mut [f64],
    b_norm: f64,
    rtol: f64,
    mut info: SolveInfo,
) -> Result<SolveInfo, SolveError> {
    residual(a, b, x, r);
    info.matvecs += 1;
    info.rel_residual = norm2(r) / b_norm;
    info.converged = info.rel_residual <= rtol;
    if info.converged {
        Ok(info)
    } else {
        Err(SolveError::NoConvergence {
            method,
            info: Box::new(info),
            rtol,
        })
    }
}

/// The report for a zero right-hand side: x = 0 is exact.
pub(crate) fn zero_rhs(x: &mut [f64]) -> SolveInfo {
    x.fill(0.0);
    SolveInfo {
        converged: true,
        ..SolveInfo::default()
    }
}

#[cfg(test)]
pub(crate) mod test_matrices {
    //! Small SPD, non-symmetric and indefinite matrices shared by the method tests.
    use sprs::{CsMat, TriMat};

    /// 2-D five-point Laplacian on an m×m grid, plus `shift·I` (indefinite for shift < −λ_min)
    /// and a first-order convection term of strength `conv` (non-symmetric for conv ≠ 0).
    pub fn convection_diffusion(m: usize, shift: f64, conv: f64) -> CsMat<f64> {
        let n = m * m;
        let mut t = TriMat::new((n, n));
        for p in 0..m {
            for q in 0..m {
                let i = p * m + q;
                t.add_triplet(i, i, 4.0 + shift);
                if q > 0 {
                    t.add_triplet(i, i - 1, -1.0 - conv);
                }
                if q + 1 < m {
                    t.add_triplet(i, i + 1, -1.0 + conv);
                }
                if p > 0 {
                    t.add_triplet(i, i - m, -1.0);
                }
                if p + 1 < m {
                    t.add_triplet(i, i + m, -1.0);
                }
            }
        }
        t.to_csr()
    }

    pub fn rhs(n: usize, phase: f64) -> Vec<f64> {
        (0..n)
            .map(|i| (i as f64 * 0.731 + phase).sin() + 0.1)
            .collect()
    }

    pub fn true_rel_residual(a: &CsMat<f64>, b: &[f64], x: &[f64]) -> f64 {
        let mut r = vec![0.0; b.len()];
        crate::linalg::residual(&crate::linalg::CsrOperator::new(a), b, x, &mut r);
        crate::linalg::norm2(&r) / crate::linalg::norm2(b)
    }
}
