//! Preconditioned conjugate gradients for symmetric positive definite systems.

use crate::linalg::{dot, norm2, residual, LinearOperator, Preconditioner};
use thiserror::Error;

/// Parameters of [`cg`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CgParams {
    /// Stop when the true relative residual ‖b − Ax‖/‖b‖ is at most this.
    pub rtol: f64,
    /// Give up after this many iterations.
    pub max_iter: usize,
}

impl Default for CgParams {
    fn default() -> Self {
        Self {
            rtol: 1e-8,
            max_iter: 10_000,
        }
    }
}

impl CgParams {
    pub fn new(rtol: f64, max_iter: usize) -> Self {
        Self { rtol, max_iter }
    }
}

/// What a CG solve did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CgInfo {
    pub iterations: usize,
    /// True relative residual ‖b − Ax‖/‖b‖ of the returned x, recomputed from A (not the recurrence).
    pub rel_residual: f64,
    pub converged: bool,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CgError {
    #[error("CG did not converge: relative residual {:.3e} after {} iterations (tolerance {rtol:.1e})", info.rel_residual, info.iterations)]
    NoConvergence { info: CgInfo, rtol: f64 },
    #[error("CG broke down at iteration {iteration}: p·Ap = {curvature:.3e}; the matrix or preconditioner is not positive definite")]
    Breakdown { iteration: usize, curvature: f64 },
    #[error("CG: vector lengths {got} do not match the operator dimension {expected}")]
    DimensionMismatch { expected: usize, got: usize },
    #[error("CG: the right-hand side or initial guess contains NaN or infinity")]
    NonFinite,
}

impl CgError {
    /// The solve report, for the errors that have one.
    pub fn info(&self) -> Option<CgInfo> {
        match self {
            CgError::NoConvergence { info, .. } => Some(*info),
            _ => None,
        }
    }
}

/// Solves `A x = b` by preconditioned CG, starting from the `x` passed in.
///
/// On [`CgError::NoConvergence`], `x` holds the last iterate and the error carries its true residual.
pub fn cg<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
    a: &A,
    precond: &M,
    b: &[f64],
    x: &mut [f64],
    params: &CgParams,
) -> Result<CgInfo, CgError> {
    let n = a.dim();
    if b.len() != n || x.len() != n {
        return Err(CgError::DimensionMismatch {
            expected: n,
            got: if b.len() != n { b.len() } else { x.len() },
        });
    }
    if b.iter().chain(x.iter()).any(|v| !v.is_finite()) {
        return Err(CgError::NonFinite);
    }
    let b_norm = norm2(b);
    if b_norm == 0.0 {
        x.fill(0.0);
        return Ok(CgInfo {
            iterations: 0,
            rel_residual: 0.0,
            converged: true,
        });
    }
    let mut r = vec![0.0; n];
    let mut z = vec![0.0; n];
    let mut p = vec![0.0; n];
    let mut ap = vec![0.0; n];
    residual(a, b, x, &mut r);
    let target = params.rtol * b_norm;
    let mut iterations = 0;
    // The recurrence residual drifts from the true one; a candidate answer is confirmed against A.
    let mut r_norm = norm2(&r);
    if r_norm > target {
        let mut rz = precond.apply_dot(&r, &mut z);
        p.copy_from_slice(&z);
        while iterations < params.max_iter {
            a.apply(&p, &mut ap);
            let curvature = dot(&p, &ap);
            if curvature <= 0.0 || !curvature.is_finite() {
                return Err(CgError::Breakdown {
                    iteration: iterations,
                    curvature,
                });
            }
            let alpha = rz / curvature;
            let mut rr = 0.0;
            for i in 0..n {
                x[i] += alpha * p[i];
                r[i] -= alpha * ap[i];
                rr += r[i] * r[i];
            }
            iterations += 1;
            r_norm = rr.sqrt();
            if r_norm <= target {
                residual(a, b, x, &mut r);
                r_norm = norm2(&r);
                if r_norm <= target {
                    break;
                }
            }
            let rz_new = precond.apply_dot(&r, &mut z);
            let beta = rz_new / rz;
            rz = rz_new;
            for i in 0..n {
                p[i] = z[i] + beta * p[i];
            }
        }
    }
    residual(a, b, x, &mut r);
    let info = CgInfo {
        iterations,
        rel_residual: norm2(&r) / b_norm,
        converged: norm2(&r) <= target,
    };
    if info.converged {
        Ok(info)
    } else {
        Err(CgError::NoConvergence {
            info,
            rtol: params.rtol,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::{CsrOperator, Identity, Jacobi};
    use sprs::{CsMat, TriMat};

    fn laplacian_1d(n: usize, scale: impl Fn(usize) -> f64) -> CsMat<f64> {
        let mut t = TriMat::new((n, n));
        for i in 0..n {
            t.add_triplet(i, i, 2.0 * scale(i));
            if i + 1 < n {
                t.add_triplet(i, i + 1, -1.0);
                t.add_triplet(i + 1, i, -1.0);
            }
        }
        t.to_csr()
    }

    #[test]
    fn cg_solves_spd_system_to_true_residual_tolerance() {
        let a = laplacian_1d(200, |i| 1.0 + (i % 7) as f64);
        let op = CsrOperator::new(&a);
        let b: Vec<f64> = (0..200).map(|i| (i as f64).cos()).collect();
        let mut x = vec![0.0; 200];
        let info = cg(
            &op,
            &Jacobi::new(&a).unwrap(),
            &b,
            &mut x,
            &CgParams::new(1e-10, 1000),
        )
        .unwrap();
        assert!(info.converged && info.rel_residual <= 1e-10);
        let mut ax = vec![0.0; 200];
        op.apply(&x, &mut ax);
        let res: f64 = ax
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(res / norm2(&b) <= 1e-10);
    }

    #[test]
    fn cg_without_enough_iterations_reports_its_last_residual() {
        let a = laplacian_1d(400, |_| 1.0);
        let b = vec![1.0; 400];
        let mut x = vec![0.0; 400];
        let err = cg(
            &CsrOperator::new(&a),
            &Identity,
            &b,
            &mut x,
            &CgParams::new(1e-12, 5),
        )
        .unwrap_err();
        let info = err.info().expect("no-convergence carries its report");
        assert_eq!(info.iterations, 5);
        assert!(!info.converged && info.rel_residual > 1e-12 && info.rel_residual.is_finite());
    }

    #[test]
    fn cg_detects_indefinite_matrix() {
        let mut t = TriMat::new((2, 2));
        t.add_triplet(0, 0, 1.0);
        t.add_triplet(1, 1, -1.0);
        let a: CsMat<f64> = t.to_csr();
        let err = cg(
            &CsrOperator::new(&a),
            &Identity,
            &[0.0, 1.0],
            &mut [0.0, 0.0],
            &CgParams::default(),
        )
        .unwrap_err();
        assert!(matches!(err, CgError::Breakdown { .. }), "{err}");
    }

    #[test]
    fn cg_rejects_wrong_lengths_and_nan() {
        let a = laplacian_1d(3, |_| 1.0);
        let op = CsrOperator::new(&a);
        assert_eq!(
            cg(
                &op,
                &Identity,
                &[1.0; 2],
                &mut [0.0; 3],
                &CgParams::default()
            )
            .unwrap_err(),
            CgError::DimensionMismatch {
                expected: 3,
                got: 2
            }
        );
        assert_eq!(
            cg(
                &op,
                &Identity,
                &[1.0, f64::NAN, 0.0],
                &mut [0.0; 3],
                &CgParams::default()
            )
            .unwrap_err(),
            CgError::NonFinite
        );
    }
}
