//! BiCGStab (van der Vorst 1992) with right preconditioning.

use super::{check_inputs, finish, zero_rhs, SolveError, SolveInfo, SolveParams};
use crate::linalg::{cg_step, dot, norm2, residual, LinearOperator, Preconditioner};

const METHOD: &str = "BiCGStab";

/// Solves `A x = b` by right-preconditioned BiCGStab, starting from the `x` passed in. Each
/// iteration costs two mat-vecs and two preconditioner applications; `max_iter` counts iterations.
pub fn bicgstab<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
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
    let n = a.dim();
    let target = params.rtol * b_norm;
    let mut info = SolveInfo::default();
    let mut r = vec![0.0; n];
    residual(a, b, x, &mut r);
    info.matvecs += 1;
    let r_hat = r.clone();
    let (mut p, mut v) = (vec![0.0; n], vec![0.0; n]);
    let (mut p_hat, mut s_hat, mut t) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let (mut rho, mut alpha, mut omega) = (1.0, 1.0, 1.0);
    let breakdown = |iteration, quantity, value| SolveError::Breakdown {
        method: METHOD,
        iteration,
        quantity,
        value,
        hint: "; restart from the last iterate or use GMRES",
    };
    let mut r_norm = norm2(&r);
    while r_norm > target && info.iterations < params.max_iter {
        let rho_new = dot(&r_hat, &r);
        if rho_new == 0.0 || !rho_new.is_finite() {
            return Err(breakdown(info.iterations, "r̂·r", rho_new));
        }
        if info.iterations == 0 {
            p.copy_from_slice(&r);
        } else {
            let beta = (rho_new / rho) * (alpha / omega);
            for i in 0..n {
                p[i] = r[i] + beta * (p[i] - omega * v[i]);
            }
        }
        rho = rho_new;
        precond.apply(&p, &mut p_hat);
        a.apply(&p_hat, &mut v);
        let rv = dot(&r_hat, &v);
        if rv == 0.0 || !rv.is_finite() {
            return Err(breakdown(info.iterations, "r̂·Ap", rv));
        }
        alpha = rho / rv;
        // s overwrites r.
        for i in 0..n {
            x[i] += alpha * p_hat[i];
            r[i] -= alpha * v[i];
        }
        info.iterations += 1;
        info.matvecs += 1;
        info.precond_applies += 1;
        r_norm = norm2(&r);
        if params.history {
            info.history.push(r_norm / b_norm);
        }
        if r_norm <= target {
            break;
        }
        precond.apply(&r, &mut s_hat);
        a.apply(&s_hat, &mut t);
        info.matvecs += 1;
        info.precond_applies += 1;
        let tt = dot(&t, &t);
        if tt == 0.0 || !tt.is_finite() {
            return Err(breakdown(info.iterations, "t·t", tt));
        }
        omega = dot(&t, &r) / tt;
        if omega == 0.0 {
            return Err(breakdown(info.iterations, "ω", omega));
        }
        let rr = cg_step(x, &mut r, &s_hat, &t, omega);
        r_norm = rr.sqrt();
        if params.history {
            info.history.push(r_norm / b_norm);
        }
        if r_norm <= target {
            // Confirm against A; the recurrence residual can drift.
            residual(a, b, x, &mut r);
            info.matvecs += 1;
            r_norm = norm2(&r);
        }
    }
    finish(METHOD, a, b, x, &mut r, b_norm, params.rtol, info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::test_matrices::{convection_diffusion, rhs, true_rel_residual};
    use crate::linalg::{CsrOperator, Jacobi};

    #[test]
    fn bicgstab_converges_on_spd_and_nonsymmetric_matrices() {
        for (shift, conv) in [(0.0, 0.0), (0.0, 0.4), (-0.2, 0.3)] {
            let a = convection_diffusion(16, shift, conv);
            let b = rhs(a.rows(), 1.0);
            let mut x = vec![0.0; a.rows()];
            let info = bicgstab(
                &CsrOperator::new(&a),
                &Jacobi::new(&a).unwrap(),
                &b,
                &mut x,
                &SolveParams::new(1e-9, 2000),
            )
            .unwrap_or_else(|e| panic!("shift {shift} conv {conv}: {e}"));
            assert!(info.rel_residual <= 1e-9);
            assert!(true_rel_residual(&a, &b, &x) <= 1e-9);
            assert!(info.matvecs >= info.iterations);
        }
    }
}
