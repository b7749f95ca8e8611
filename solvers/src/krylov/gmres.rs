//! Restarted GMRES(m) with left or right preconditioning, and flexible GMRES (FGMRES).

pub use super::block::Orthogonalization;
use super::block::{combination, orthogonalize_on, Block};
use super::{check_inputs, finish, zero_rhs, SolveError, SolveInfo, SolveParams};
use crate::linalg::{axpy, norm2, residual, LinearOperator, Preconditioner};

/// Which side the preconditioner goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrecondSide {
    /// Minimises ‖M⁻¹(b − Ax)‖ inside a cycle; the true residual is checked at the end of it.
    Left,
    /// Minimises the true residual ‖b − Ax‖ over x₀ + M⁻¹·Krylov space.
    #[default]
    Right,
}

/// Parameters of [`gmres`] and [`fgmres`] beyond [`SolveParams`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct GmresParams {
    /// Krylov vectors per cycle (the m of GMRES(m)).
    pub restart: usize,
    pub side: PrecondSide,
    pub orthogonalization: Orthogonalization,
}

impl Default for GmresParams {
    fn default() -> Self {
        Self {
            restart: 40,
            side: PrecondSide::Right,
            orthogonalization: Orthogonalization::Mgs,
        }
    }
}

impl GmresParams {
    pub fn new(restart: usize) -> Self {
        Self {
            restart,
            ..Self::default()
        }
    }

    pub fn with_side(self, side: PrecondSide) -> Self {
        Self { side, ..self }
    }

    pub fn with_orthogonalization(self, orthogonalization: Orthogonalization) -> Self {
        Self {
            orthogonalization,
            ..self
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Left,
    Right,
    Flexible,
}

/// Solves `A x = b` by restarted GMRES(m), starting from the `x` passed in.
pub fn gmres<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
    a: &A,
    precond: &M,
    b: &[f64],
    x: &mut [f64],
    params: &SolveParams,
    gmres: &GmresParams,
) -> Result<SolveInfo, SolveError> {
    gmres_in(
        &mut GmresWorkspace::default(),
        a,
        precond,
        b,
        x,
        params,
        gmres,
    )
}

/// [`gmres`] in a workspace kept by the caller, so that a sequence of solves allocates once.
pub fn gmres_in<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
    ws: &mut GmresWorkspace,
    a: &A,
    precond: &M,
    b: &[f64],
    x: &mut [f64],
    params: &SolveParams,
    gmres: &GmresParams,
) -> Result<SolveInfo, SolveError> {
    let mode = match gmres.side {
        PrecondSide::Left => Mode::Left,
        PrecondSide::Right => Mode::Right,
    };
    run(ws, "GMRES", a, precond, b, x, params, gmres, mode)
}

/// Flexible GMRES(m): right preconditioning that keeps every preconditioned vector, so the
/// preconditioner may change from one application to the next (an inner iteration, a V-cycle with
/// a varying number of sweeps). Costs m more vectors of memory than [`gmres`].
pub fn fgmres<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
    a: &A,
    precond: &M,
    b: &[f64],
    x: &mut [f64],
    params: &SolveParams,
    gmres: &GmresParams,
) -> Result<SolveInfo, SolveError> {
    fgmres_in(
        &mut GmresWorkspace::default(),
        a,
        precond,
        b,
        x,
        params,
        gmres,
    )
}

/// [`fgmres`] in a workspace kept by the caller.
pub fn fgmres_in<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
    ws: &mut GmresWorkspace,
    a: &A,
    precond: &M,
    b: &[f64],
    x: &mut [f64],
    params: &SolveParams,
    gmres: &GmresParams,
) -> Result<SolveInfo, SolveError> {
    run(
        ws,
        "FGMRES",
        a,
        precond,
        b,
        x,
        params,
        gmres,
        Mode::Flexible,
    )
}

/// What a GMRES solve works in: the Krylov basis (and FGMRES's preconditioned vectors) as
/// contiguous blocks, the Hessenberg columns and the vectors of a cycle. Reused from solve to
/// solve, so iterations allocate nothing once the first cycle has sized it.
#[derive(Debug, Clone, Default)]
pub struct GmresWorkspace {
    v: Block,
    z: Block,
    /// Hessenberg columns, `m + 1` entries each.
    h: Vec<f64>,
    cs: Vec<f64>,
    sn: Vec<f64>,
    g: Vec<f64>,
    y: Vec<f64>,
    scratch: Vec<f64>,
    partials: Vec<f64>,
    r: Vec<f64>,
    w: Vec<f64>,
    t: Vec<f64>,
}

impl GmresWorkspace {
    fn size(&mut self, n: usize, m: usize, flexible: bool) {
        self.v.reset(n, m + 1);
        self.z.reset(if flexible { n } else { 0 }, m);
        for (vec, len) in [
            (&mut self.h, (m + 1) * m),
            (&mut self.cs, m),
            (&mut self.sn, m),
            (&mut self.g, m + 1),
            (&mut self.y, m),
            (&mut self.scratch, m + 1),
            (&mut self.r, n),
            (&mut self.w, n),
            (&mut self.t, n),
        ] {
            vec.clear();
            vec.resize(len, 0.0);
        }
    }
}

/// Applies the stored Givens rotations to a new Hessenberg column, then makes and applies the one
/// that zeroes its subdiagonal entry. Returns the new |residual| estimate.
pub(crate) fn givens_step(
    h: &mut [f64],
    j: usize,
    cs: &mut [f64],
    sn: &mut [f64],
    g: &mut [f64],
) -> f64 {
    for i in 0..j {
        let t = cs[i] * h[i] + sn[i] * h[i + 1];
        h[i + 1] = -sn[i] * h[i] + cs[i] * h[i + 1];
        h[i] = t;
    }
    let rho = h[j].hypot(h[j + 1]);
    if rho == 0.0 {
        cs[j] = 1.0;
        sn[j] = 0.0;
    } else {
        cs[j] = h[j] / rho;
        sn[j] = h[j + 1] / rho;
    }
    h[j] = rho;
    h[j + 1] = 0.0;
    g[j + 1] = -sn[j] * g[j];
    g[j] *= cs[j];
    g[j + 1].abs()
}

/// Back substitution with the rotated (upper-triangular) Hessenberg columns, stored one after the
/// other `stride` apart: `y[..k]` solves the leading k×k system.
pub(crate) fn solve_upper(cols: &[f64], stride: usize, g: &[f64], k: usize, y: &mut [f64]) {
    for i in (0..k).rev() {
        let mut s = g[i];
        for (j, yj) in y.iter().enumerate().take(k).skip(i + 1) {
            s -= cols[j * stride + i] * yj;
        }
        y[i] = s / cols[i * stride + i];
    }
}

#[allow(clippy::too_many_arguments)]
fn run<A: LinearOperator + ?Sized, M: Preconditioner + ?Sized>(
    ws: &mut GmresWorkspace,
    method: &'static str,
    a: &A,
    precond: &M,
    b: &[f64],
    x: &mut [f64],
    params: &SolveParams,
    gp: &GmresParams,
    mode: Mode,
) -> Result<SolveInfo, SolveError> {
    let b_norm = check_inputs(method, a, b, x)?;
    if gp.restart == 0 {
        return Err(SolveError::BadParams {
            method,
            reason: "restart must be at least 1".into(),
        });
    }
    if b_norm == 0.0 {
        return Ok(zero_rhs(x));
    }
    let n = a.dim();
    let m = gp.restart.min(n.max(1));
    let mut info = SolveInfo::default();
    let target = params.rtol * b_norm;
    ws.size(n, m, mode == Mode::Flexible);
    let GmresWorkspace {
        v,
        z,
        h,
        cs,
        sn,
        g,
        y,
        scratch,
        partials,
        r,
        w,
        t,
    } = ws;
    let parallel = a.parallel();
    let stride = m + 1;

    residual(a, b, x, r);
    info.matvecs += 1;
    let mut true_norm = norm2(r);
    while true_norm > target && info.iterations < params.max_iter {
        // The residual this cycle minimises, and the estimate that stands for the true target.
        let (beta, cycle_target) = if mode == Mode::Left {
            precond.apply(r, w);
            info.precond_applies += 1;
            let beta = norm2(w);
            r.copy_from_slice(w);
            (beta, target * beta / true_norm)
        } else {
            (true_norm, target)
        };
        if beta == 0.0 {
            break;
        }
        v.reset(n, m + 1);
        z.reset(if mode == Mode::Flexible { n } else { 0 }, m);
        v.push_divided(r, beta);
        g.fill(0.0);
        g[0] = beta;
        let mut k = 0;
        while k < m && info.iterations < params.max_iter {
            match mode {
                Mode::Left => {
                    a.apply(v.col(k), t);
                    precond.apply(t, w);
                }
                Mode::Right => {
                    precond.apply(v.col(k), t);
                    a.apply(t, w);
                }
                Mode::Flexible => {
                    let zk = z.push_zero();
                    precond.apply(v.col(k), zk);
                    a.apply(z.col(k), w);
                }
            }
            info.matvecs += 1;
            info.precond_applies += 1;
            let col = &mut h[k * stride..(k + 1) * stride];
            col.fill(0.0);
            let wn = orthogonalize_on(
                v.first(k + 1),
                w,
                &mut col[..k + 1],
                scratch,
                gp.orthogonalization,
                parallel.then_some(&mut *partials),
            );
            col[k + 1] = wn;
            if !wn.is_finite() {
                return Err(SolveError::Breakdown {
                    method,
                    iteration: info.iterations,
                    quantity: "‖w‖",
                    value: wn,
                    hint: "; the operator or preconditioner produced NaN or infinity",
                });
            }
            let est = givens_step(col, k, cs, sn, g);
            info.iterations += 1;
            k += 1;
            if params.history {
                info.history.push(est / beta * true_norm / b_norm);
            }
            // A zero ‖w‖ is a lucky breakdown: the Krylov space is invariant and x is exact.
            if est <= cycle_target || wn == 0.0 {
                break;
            }
            v.push_divided(w, wn);
        }
        solve_upper(h, stride, g, k, y);
        match mode {
            Mode::Left => {
                combination(v.first(k), &y[..k], w);
                axpy(1.0, w, x);
            }
            Mode::Right => {
                combination(v.first(k), &y[..k], w);
                precond.apply(w, t);
                info.precond_applies += 1;
                axpy(1.0, t, x);
            }
            Mode::Flexible => {
                combination(z.first(k), &y[..k], w);
                axpy(1.0, w, x);
            }
        }
        residual(a, b, x, r);
        info.matvecs += 1;
        let new_norm = norm2(r);
        if !new_norm.is_finite() {
            return Err(SolveError::Breakdown {
                method,
                iteration: info.iterations,
                quantity: "‖b − Ax‖",
                value: new_norm,
                hint: "",
            });
        }
        true_norm = new_norm;
    }
    finish(method, a, b, x, r, b_norm, params.rtol, info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::test_matrices::{convection_diffusion, rhs, true_rel_residual};
    use crate::linalg::{CsrOperator, Identity, Jacobi};

    #[test]
    fn gmres_converges_on_spd_nonsymmetric_and_indefinite_matrices() {
        for (shift, conv) in [(0.0, 0.0), (0.0, 0.4), (-0.3, 0.2)] {
            let a = convection_diffusion(16, shift, conv);
            let b = rhs(a.rows(), 0.3);
            let mut right_iterations = 0;
            let jac = Jacobi::new(&a).unwrap();
            for side in [PrecondSide::Left, PrecondSide::Right] {
                for ortho in [Orthogonalization::Mgs, Orthogonalization::Cgs2] {
                    let mut x = vec![0.0; a.rows()];
                    let gp = GmresParams::new(40)
                        .with_side(side)
                        .with_orthogonalization(ortho);
                    let info = gmres(
                        &CsrOperator::new(&a),
                        &jac,
                        &b,
                        &mut x,
                        &SolveParams::new(1e-9, 5000),
                        &gp,
                    )
                    .unwrap_or_else(|e| panic!("shift {shift} conv {conv} {side:?}: {e}"));
                    assert!(info.rel_residual <= 1e-9);
                    assert!(true_rel_residual(&a, &b, &x) <= 1e-9);
                    if side == PrecondSide::Right {
                        right_iterations = info.iterations;
                    }
                }
            }
            let mut x = vec![0.0; a.rows()];
            let flexible = fgmres(
                &CsrOperator::new(&a),
                &jac,
                &b,
                &mut x,
                &SolveParams::new(1e-9, 5000),
                &GmresParams::new(40),
            )
            .unwrap();
            // With a fixed preconditioner FGMRES is right-preconditioned GMRES.
            assert!(flexible.iterations.abs_diff(right_iterations) <= 1);
            assert!(true_rel_residual(&a, &b, &x) <= 1e-9);
        }
    }

    #[test]
    fn full_gmres_finishes_within_n_iterations() {
        let a = convection_diffusion(5, -1.0, 0.3);
        let b = rhs(25, 0.0);
        let mut x = vec![0.0; 25];
        let info = gmres(
            &CsrOperator::new(&a),
            &Identity,
            &b,
            &mut x,
            &SolveParams::new(1e-10, 100),
            &GmresParams::new(25),
        )
        .unwrap();
        assert!(info.iterations <= 25, "{}", info.iterations);
    }

    #[test]
    fn gmres_that_cannot_converge_reports_its_last_residual() {
        let a = convection_diffusion(20, 0.0, 0.0);
        let b = rhs(400, 0.0);
        let mut x = vec![0.0; 400];
        let err = gmres(
            &CsrOperator::new(&a),
            &Identity,
            &b,
            &mut x,
            &SolveParams::new(1e-12, 7).with_history(true),
            &GmresParams::new(5),
        )
        .unwrap_err();
        let info = err.info().unwrap();
        assert_eq!(info.iterations, 7);
        assert_eq!(info.history.len(), 7);
        assert!(info.rel_residual > 1e-12 && info.rel_residual < 1.0);
        assert!((true_rel_residual(&a, &b, &x) - info.rel_residual).abs() < 1e-14);
    }
}
