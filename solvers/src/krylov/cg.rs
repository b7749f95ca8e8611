//! Preconditioned conjugate gradients for symmetric positive definite systems.

use super::{check_inputs, finish, zero_rhs, SolveError, SolveInfo, SolveParams};
use crate::linalg::{cg_step, dot, norm2, residual, LinearOperator, Preconditioner};

const METHOD: &str = "CG";

/// Solves `A x = b` by preconditioned CG, starting from the `x` passed in.
///
/// On [`SolveError::NoConvergence`], `x` holds the last iterate and the error carries its true
/// residual.
pub fn cg<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
    a: &A,
    precond: &M,
    b: &[f64],
    x: &mut [f64],
    params: &SolveParams,
) -> Result<SolveInfo, SolveError> {
    let b_norm = check_inputs(METHOD, a, b, x)?;
    if b_norm == 0.0 {
        return Ok(zero_rhs(x));
    }
    let mut info = SolveInfo::default();
    let mut r = vec![0.0; a.dim()];
    residual(a, b, x, &mut r);
    info.matvecs += 1;
    cg_iterate(
        METHOD,
        a,
        precond,
        b,
        x,
        &mut r,
        params,
        &mut info,
        |_, _| {},
        |_, _| {},
    )?;
    finish(METHOD, a, b, x, &mut r, b_norm, params.rtol, info)
}

/// The preconditioned CG iteration from `x` with residual `r = b − Ax`, shared by [`cg`] and
/// recycled CG. `deflate(p, z)` adjusts each new search direction (recycled CG keeps it
/// A-orthogonal to its deflation space); `keep(p, pᵀAp)` sees each direction as it is used.
/// Returns with `x` and `r` at the last iterate; the caller confirms the residual.
#[allow(clippy::too_many_arguments)]
pub(crate) fn cg_iterate<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
    method: &'static str,
    a: &A,
    precond: &M,
    b: &[f64],
    x: &mut [f64],
    r: &mut [f64],
    params: &SolveParams,
    info: &mut SolveInfo,
    mut deflate: impl FnMut(&mut [f64], &[f64]),
    mut keep: impl FnMut(&[f64], f64),
) -> Result<(), SolveError> {
    let n = a.dim();
    let b_norm = norm2(b);
    let target = params.rtol * b_norm;
    // The recurrence residual drifts from the true one; a candidate answer is confirmed against A.
    if norm2(r) <= target {
        return Ok(());
    }
    let mut z = vec![0.0; n];
    let mut p = vec![0.0; n];
    let mut ap = vec![0.0; n];
    let mut rz = precond.apply_dot(r, &mut z);
    info.precond_applies += 1;
    p.copy_from_slice(&z);
    deflate(&mut p, &z);
    while info.iterations < params.max_iter {
        a.apply(&p, &mut ap);
        info.matvecs += 1;
        let curvature = dot(&p, &ap);
        if curvature <= 0.0 || !curvature.is_finite() {
            return Err(SolveError::Breakdown {
                method,
                iteration: info.iterations,
                quantity: "p·Ap",
                value: curvature,
                hint: "; the matrix or preconditioner is not positive definite",
            });
        }
        keep(&p, curvature);
        let alpha = rz / curvature;
        let rr = cg_step(x, r, &p, &ap, alpha);
        info.iterations += 1;
        let mut r_norm = rr.sqrt();
        if params.history {
            info.history.push(r_norm / b_norm);
        }
        if r_norm <= target {
            residual(a, b, x, r);
            info.matvecs += 1;
            r_norm = norm2(r);
            if r_norm <= target {
                break;
            }
        }
        let rz_new = precond.apply_dot(r, &mut z);
        info.precond_applies += 1;
        let beta = rz_new / rz;
        rz = rz_new;
        for i in 0..n {
            p[i] = z[i] + beta * p[i];
        }
        deflate(&mut p, &z);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::SolveParams;
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
            &SolveParams::new(1e-10, 1000),
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
            &SolveParams::new(1e-12, 5),
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
            &SolveParams::default(),
        )
        .unwrap_err();
        assert!(matches!(err, SolveError::Breakdown { .. }), "{err}");
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
                &SolveParams::default()
            )
            .unwrap_err(),
            SolveError::DimensionMismatch {
                method: METHOD,
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
                &SolveParams::default()
            )
            .unwrap_err(),
            SolveError::NonFinite { method: METHOD }
        );
    }
}
